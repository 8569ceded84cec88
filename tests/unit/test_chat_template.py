"""The trained format as the saved tokenizer's chat template: plain transformers' apply_chat_template gives the
exact text (and so the token ids) sftkit trained on and generates from, for every template."""

from __future__ import annotations

import pytest
from data_fixtures import plain_tok, qwen, smollm2, tiny_tok  # noqa: F401 - fixtures

from sftkit.data.chat_template import trained_chat_template
from sftkit.data.templates import render_conversation, render_prompt, resolve_template

TEMPLATES = [
    ("alpaca", None),
    ("arabic", None),
    ("Q: {instruction}\nA: {response}", None),
    ("Question: {instruction}\nContext: {input}\nAnswer: {response}\n-- end --", None),
    ("### Instruction: {instruction}\n### Response: The answer is {response}", "### Response:"),
    ("chatml", None),
    ("auto", None),
]

SINGLE = [{"role": "user", "content": "Name a colour."}]
MULTI = [
    {"role": "user", "content": "Name a colour."},
    {"role": "assistant", "content": "Blue."},
    {"role": "user", "content": "Another one, please."},
]
WITH_SYSTEM = [{"role": "system", "content": "You answer in one word."}, *MULTI]
TWO_USERS = [{"role": "user", "content": "First part."}, {"role": "user", "content": "Second part."}]
CONVERSATIONS = {"single": SINGLE, "multi": MULTI, "system": WITH_SYSTEM, "two-users": TWO_USERS}


class _Saved:
    """The tokenizer as saved in model/ (same vocabulary, the trained format as its chat template); saving and
    loading it for real is covered by the training integration test."""

    def __init__(self, tok, jinja):
        self.tok, self.jinja = tok, jinja

    def apply_chat_template(self, messages, **kwargs):
        return self.tok.apply_chat_template(messages, chat_template=self.jinja, **kwargs)


def _saved_copy(tok, jinja):
    return _Saved(tok, jinja)


SYSTEM_PROMPT = "Be brief: one word."
CASES = [("single", None), ("multi", SYSTEM_PROMPT), ("system", SYSTEM_PROMPT), ("two-users", None), ("single", SYSTEM_PROMPT)]


@pytest.mark.parametrize("tokenizer_name", ["smollm2", "plain_tok", "qwen"])
@pytest.mark.parametrize("spec, marker", TEMPLATES)
@pytest.mark.parametrize("conversation, system_prompt", CASES)
def test_generation_prompt_round_trips(request, tokenizer_name, spec, marker, conversation, system_prompt):
    tok = request.getfixturevalue(tokenizer_name)
    tpl = resolve_template(spec, tok, marker)
    saved = _saved_copy(tok, trained_chat_template(tpl, system_prompt))
    messages = CONVERSATIONS[conversation]
    expected = render_prompt(messages, tok, tpl, system_prompt=system_prompt)
    got = saved.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    assert got == expected
    ids = saved.apply_chat_template(messages, add_generation_prompt=True, tokenize=True, return_dict=True)["input_ids"]
    assert list(ids) == tok(expected, add_special_tokens=False)["input_ids"]


@pytest.mark.parametrize("spec, marker", TEMPLATES)
def test_whole_conversation_renders_as_trained(smollm2, spec, marker):
    tpl = resolve_template(spec, smollm2, marker)
    saved = _saved_copy(smollm2, trained_chat_template(tpl))
    conversation = [*WITH_SYSTEM, {"role": "assistant", "content": "Green."}]
    trained = render_conversation(conversation, smollm2, tpl).text
    rendered = saved.apply_chat_template(conversation, tokenize=False)
    # the trained text ends right after the last answer's EOS; a chat template may add its own turn end after it
    assert rendered.startswith(trained)


def test_an_alpaca_input_field_is_rendered_like_training(tiny_tok):
    tpl = resolve_template("alpaca", tiny_tok)
    saved = _saved_copy(tiny_tok, trained_chat_template(tpl))
    messages = [{"role": "user", "content": "Translate.", "input": "chat"}]
    assert saved.apply_chat_template(messages, add_generation_prompt=True, tokenize=False) == render_prompt(messages, tiny_tok, tpl)
    assert "### Input:\nchat" in render_prompt(messages, tiny_tok, tpl)
