"""``data.chat_template_kwargs``: the chat template's variables (SmolLM3's and Qwen3's ``enable_thinking``, gpt-oss's
``reasoning_effort``) reach every place sftkit renders the template: training data, prompts for generation and
evaluation, and the template saved with the model."""

from __future__ import annotations

import copy

import pytest
from data_fixtures import tiny_tok  # noqa: F401 - fixture

from sftkit.data.chat_template import trained_chat_template
from sftkit.data.templates import render_conversation, render_prompt, resolve_template
from sftkit.errors import ConfigError
from sftkit.resolve import resolve_config

# a template that, like SmolLM3's, switches thinking off when enable_thinking is false
THINKING = (
    "{%- if enable_thinking is defined and not enable_thinking -%}{{- '<no_think>' -}}{%- endif -%}"
    "{%- for m in messages -%}{{- '<|' + m['role'] + '|>' + m['content'] + eos_token -}}{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{- '<|assistant|>' -}}"
    "{%- if reasoning_effort is defined -%}{{- '[effort ' + reasoning_effort + ']' -}}{%- endif -%}{%- endif -%}"
)
CHAT = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]
PROMPT = CHAT[:1]


@pytest.fixture
def tok(tiny_tok):  # noqa: F811
    t = copy.deepcopy(tiny_tok)
    t.chat_template = THINKING
    return t


def test_variables_reach_training_text_and_prompts(tok):
    plain = resolve_template("auto", tok)
    off = resolve_template(
        "auto", tok, chat_kwargs={"enable_thinking": False, "reasoning_effort": "low"}
    )
    assert not render_conversation(CHAT, tok, plain).text.startswith("<no_think>")
    trained = render_conversation(CHAT, tok, off)
    assert trained.text.startswith("<no_think>")
    start, end = trained.spans[-1]
    assert trained.text[start:end].startswith(
        "hello"
    )  # the answer is still what is trained on
    assert render_prompt(PROMPT, tok, off).endswith("<|assistant|>[effort low]")
    # the data.template value with its kwargs, as generate and eval pass them
    assert render_prompt(
        PROMPT, tok, "auto", chat_template_kwargs={"enable_thinking": False}
    ).startswith("<no_think>")


def test_the_saved_template_renders_as_training_did_and_can_still_be_told_otherwise(
    tok,
):
    tpl = resolve_template("auto", tok, chat_kwargs={"enable_thinking": False})
    saved = trained_chat_template(tpl)
    plain = tok.apply_chat_template(
        PROMPT, chat_template=saved, tokenize=False, add_generation_prompt=True
    )
    assert plain == render_prompt(PROMPT, tok, tpl)
    other = tok.apply_chat_template(
        PROMPT,
        chat_template=saved,
        tokenize=False,
        add_generation_prompt=True,
        enable_thinking=True,
    )
    assert not other.startswith("<no_think>")


def test_the_variables_are_part_of_what_identifies_prepared_data(tok):
    plain, off = (
        resolve_template("auto", tok),
        resolve_template("auto", tok, chat_kwargs={"enable_thinking": False}),
    )
    assert (
        "chat_template_kwargs" not in plain.describe()
    )  # data prepared before the key existed keeps its fingerprint
    assert off.describe()["chat_template_kwargs"] == {"enable_thinking": False}


def test_only_chat_templates_take_variables(tok):
    with pytest.raises(ConfigError, match="only apply to chat templates"):
        resolve_template("alpaca", tok, chat_kwargs={"enable_thinking": False})


def test_arguments_of_apply_chat_template_are_refused_by_name():
    with pytest.raises(ConfigError) as err:
        resolve_config(
            preset="tiny",
            sets=[
                "data.chat_template_kwargs={add_generation_prompt: true, enable_thinking: false}"
            ],
        )
    assert err.value.problems[0].key == "data.chat_template_kwargs"
    assert "add_generation_prompt" in err.value.problems[0].message
    cfg = resolve_config(
        preset="tiny", sets=["data.chat_template_kwargs={enable_thinking: false}"]
    ).config
    assert cfg.data.chat_template_kwargs == {"enable_thinking": False}


def test_generation_renders_with_the_run_s_variables(tok):
    from sftkit.generation import LoadedModel

    loaded = LoadedModel(
        None,
        tok,
        None,
        template="auto",
        chat_template_kwargs={"enable_thinking": False},
    )
    assert loaded.render("hi").startswith("<no_think>")
