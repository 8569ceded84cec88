"""Templates: resolution, exact rendering, trained spans, and prompts for generation that match training."""

from __future__ import annotations

import pytest
from data_fixtures import plain_tok, smollm2, tiny_tok  # noqa: F401 - fixtures

from sftkit.data.templates import (
    ALPACA_PREAMBLE,
    ALPACA_PREAMBLE_INPUT,
    render_conversation,
    render_prompt,
    resolve_template,
)
from sftkit.errors import ConfigError

QA = [{"role": "user", "content": "What is 2+2?"}, {"role": "assistant", "content": "4"}]
MULTI = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "Hi"},
    {"role": "assistant", "content": "Hello!"},
    {"role": "user", "content": "Capital of France?"},
    {"role": "assistant", "content": "Paris."},
]


ARABIC_PRESET = "### التعليمات:\n{instruction}\n\n### الإجابة:\n{response}"  # the arabic-qwen-lora preset's template


def trained(rendered):
    return [rendered.text[a:b] for a, b in rendered.spans]


def test_auto_uses_the_tokenizers_chat_template_else_chatml(smollm2, plain_tok):
    assert resolve_template("auto", smollm2).name == "chat"
    assert resolve_template("auto", plain_tok).name == "chatml"
    with pytest.raises(ConfigError, match="has no chat template"):
        resolve_template("chat", plain_tok)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("mistral", "unknown template 'mistral'"),
        ("Q: {question}\nA: {response}", r"unknown placeholder\(s\): \{question\}"),
        ("{response} after {instruction}", "at most one {response}, after every other placeholder"),
        ("{% for m in messages %}{{ m.content }}{% endfor %}", "looks like a Jinja chat template"),
    ],
)
def test_bad_templates_are_one_clear_config_error(tiny_tok, spec, message):
    with pytest.raises(ConfigError, match=message):
        resolve_template(spec, tiny_tok)


def test_response_marker_rules(smollm2, tiny_tok):
    with pytest.raises(ConfigError, match="only applies to text templates"):
        resolve_template("chat", smollm2, response_marker="assistant")
    with pytest.raises(ConfigError, match="does not occur before"):
        resolve_template("Q: {instruction}\nA: {response}", tiny_tok, response_marker="Answer:")


def test_smollm2_chat_template_single_and_multi_turn(smollm2):
    tpl = resolve_template("auto", smollm2)
    r = render_conversation(QA, smollm2, tpl)
    assert r.text.endswith("<|im_start|>assistant\n4<|im_end|>")  # ends at the EOS: the template's trailing newline is not needed
    assert trained(r) == ["4<|im_end|>"]
    r = render_conversation(MULTI, smollm2, tpl)
    assert trained(r) == ["Hello!<|im_end|>", "Paris.<|im_end|>"]
    assert r.text.startswith("<|im_start|>system\nBe brief.<|im_end|>\n")


def test_chatml_with_a_tokenizer_whose_eos_is_different(plain_tok):
    tpl = resolve_template("chatml", plain_tok)
    r = render_conversation(QA, plain_tok, tpl)
    assert r.text == "<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n4<|im_end|><|end|>"
    assert trained(r) == ["4<|im_end|><|end|>"]  # the turn's end marker, then the tokenizer's EOS once


def test_alpaca_with_and_without_input(tiny_tok):
    tpl = resolve_template("alpaca", tiny_tok)
    r = render_conversation(QA, tiny_tok, tpl)
    assert r.text == f"{ALPACA_PREAMBLE}\n\n### Instruction:\nWhat is 2+2?\n\n### Response:\n4<|end|>"
    assert trained(r) == ["4<|end|>"]
    with_input = [{"role": "user", "content": "Translate", "input": "chat"}, {"role": "assistant", "content": "cat"}]
    r = render_conversation(with_input, tiny_tok, tpl)
    assert r.text == f"{ALPACA_PREAMBLE_INPUT}\n\n### Instruction:\nTranslate\n\n### Input:\nchat\n\n### Response:\ncat<|end|>"


def test_arabic_template(tiny_tok):
    tpl = resolve_template("arabic", tiny_tok)
    r = render_conversation([{"role": "user", "content": "سؤال"}, {"role": "assistant", "content": "جواب"}], tiny_tok, tpl)
    assert r.text == "### التعليمات:\nسؤال\n\n### الإجابة:\nجواب<|end|>"
    assert trained(r) == ["جواب<|end|>"]


def test_custom_template_input_slot_and_marker(tiny_tok):
    tpl = resolve_template("Task: {instruction}\nData: {input}\nAnswer: {response}", tiny_tok)
    msgs = [{"role": "user", "content": "Sum", "input": "1 2"}, {"role": "assistant", "content": "3"}]
    assert render_conversation(msgs, tiny_tok, tpl).text == "Task: Sum\nData: 1 2\nAnswer: 3<|end|>"
    no_slot = resolve_template("Q: {instruction}\nA: {response}", tiny_tok)
    assert render_conversation(msgs, tiny_tok, no_slot).text == "Q: Sum\n\n1 2\nA: 3<|end|>"  # the input is never lost
    marked = resolve_template("Q: {instruction}\nA:\n{response}", tiny_tok, response_marker="A:")
    r = render_conversation(msgs, tiny_tok, marked)
    assert trained(r) == ["3<|end|>"]  # the template's newline after the marker stays masked
    assert render_prompt(msgs[:1], tiny_tok, marked) == "Q: Sum\n\n1 2\nA:\n"
    lead_in = resolve_template("Q: {instruction}\nA: The answer is {response}", tiny_tok, response_marker="A:")
    r = render_conversation(msgs, tiny_tok, lead_in)
    assert trained(r) == ["The answer is 3<|end|>"]
    assert render_prompt(msgs[:1], tiny_tok, lead_in) == "Q: Sum\n\n1 2\nA: "


@pytest.mark.parametrize("spec", ["auto", "chatml", "alpaca", "arabic", "Q: {instruction}\nA: {response}", ARABIC_PRESET])
def test_render_prompt_is_exactly_the_trained_prefix(smollm2, spec):
    marker = "### الإجابة:" if spec == ARABIC_PRESET else None
    tpl = resolve_template(spec, smollm2, marker)
    for messages in (QA, MULTI):
        r = render_conversation(messages, smollm2, tpl)
        prompt = render_prompt(messages[:-1], smollm2, spec, response_marker=marker)
        assert r.text[: r.spans[-1][0]] == prompt


def test_render_prompt_adds_the_system_prompt(smollm2):
    text = render_prompt([{"role": "user", "content": "hi"}], smollm2, "auto", system_prompt="You are terse.")
    assert text.startswith("<|im_start|>system\nYou are terse.<|im_end|>")
    assert text.endswith("<|im_start|>assistant\n")


def test_eos_appears_exactly_once_at_the_end(smollm2):
    for spec in ("auto", "alpaca", "arabic"):
        r = render_conversation(QA, smollm2, resolve_template(spec, smollm2))
        assert r.text.endswith("<|im_end|>") and not r.text.endswith("<|im_end|><|im_end|>")
