"""The Ollama Modelfile's Go template renders exactly the trained format (the tokenizer's chat template) for every
template sftkit trains with, and the Go template interpreter behaves as Go's text/template does."""

from __future__ import annotations

import copy

import pytest
from data_fixtures import qwen, smollm2, tiny_tok  # noqa: F401 - fixtures

from sftkit.data.chat_template import trained_chat_template
from sftkit.data.templates import ALPACA_PREAMBLE, resolve_template
from sftkit.errors import SftkitError
from sftkit.ollama import Modelfile, go_string, modelfile_for, ollama_values, render

#: conversations other than the ones the export checks itself on
CONVERSATIONS = [
    [{"role": "user", "content": "Write a haiku about rain."}],
    [
        {"role": "system", "content": "You are a pirate."},
        {"role": "user", "content": "Where is the treasure?"},
    ],
    [
        {"role": "system", "content": "Answer in French."},
        {"role": "user", "content": "Hello"},
        {"role": "assistant", "content": "Bonjour"},
        {"role": "user", "content": "How are you?"},
        {"role": "assistant", "content": "Je vais bien, merci."},
        {"role": "user", "content": 'Quote "this" \\ and {{ that }}.'},
    ],
    [{"role": "user", "content": "Line one.\n\nLine two:\n\t- a tab"}],
]


def _rendered(modelfile: Modelfile, messages):
    return render(modelfile.template, ollama_values(messages, modelfile.system))


def _expected(tok, messages):
    return tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)


class _Trained:
    """A tokenizer whose chat template is the trained format of a text template (as the run's model/ saves it)."""

    def __init__(self, tok, jinja):
        self.tok, self.chat_template = tok, jinja
        self.eos_token, self.all_special_tokens = tok.eos_token, tok.all_special_tokens

    def get_added_vocab(self):
        return self.tok.get_added_vocab()

    def apply_chat_template(self, messages, **kwargs):
        return self.tok.apply_chat_template(
            messages, chat_template=self.chat_template, **kwargs
        )


def test_tiny_chat_template(tiny_tok):  # noqa: F811 - a fixture
    modelfile = modelfile_for(tiny_tok)
    for messages in CONVERSATIONS:
        assert _rendered(modelfile, messages) == _expected(tiny_tok, messages)
    assert modelfile.system is None and modelfile.stops == ["<|end|>"]


@pytest.mark.parametrize("name", ["smollm2", "qwen"])
def test_real_chat_templates_with_their_default_system_prompt(request, name):
    tok = request.getfixturevalue(name)
    modelfile = modelfile_for(tok)
    for messages in CONVERSATIONS:
        assert _rendered(modelfile, messages) == _expected(tok, messages)
    # the system prompt the template adds by itself is the Modelfile's SYSTEM (what `ollama show --system` gives)
    assert modelfile.system and modelfile.system in _expected(tok, CONVERSATIONS[0])
    assert modelfile.stops == ["<|im_end|>"]


TEXT_TEMPLATES = [
    ("alpaca", None, None),
    ("arabic", None, "كن موجزا"),
    ("Q: {instruction}\nA: {response}", None, None),
    (
        "### Instruction: {instruction}\n### Response: The answer is {response}",
        "### Response:",
        None,
    ),
    ("chatml", None, "Be brief."),
]


@pytest.mark.parametrize("spec, marker, system_prompt", TEXT_TEMPLATES)
def test_sftkit_templates_and_system_prompts(smollm2, spec, marker, system_prompt):  # noqa: F811 - a fixture
    tok = _Trained(
        smollm2,
        trained_chat_template(resolve_template(spec, smollm2, marker), system_prompt),
    )
    modelfile = modelfile_for(tok)
    for messages in CONVERSATIONS:
        assert _rendered(modelfile, messages) == _expected(tok, messages)
    assert modelfile.system == (
        system_prompt or (ALPACA_PREAMBLE if spec == "alpaca" else None)
    )
    assert modelfile.stops == ["<|im_end|>"]


def test_modelfile_text(smollm2):  # noqa: F811 - a fixture
    text = modelfile_for(smollm2).text("smol-f16.gguf")
    lines = text.splitlines()
    assert lines[1] == "FROM ./smol-f16.gguf"
    assert (
        lines[2].startswith('TEMPLATE """{{- if .System }}') and text.count('"""') == 4
    )
    assert (
        'SYSTEM """You are a helpful AI assistant named SmolLM, trained by Hugging Face"""'
        in lines
    )
    assert 'PARAMETER stop "<|im_end|>"' in lines and "PARAMETER temperature 0" in lines
    assert all(
        ch.isprintable() for line in lines for ch in line
    )  # a Modelfile keeps printable characters only
    assert (
        Modelfile.create_command(__import__("pathlib").Path("exports/My Model"))
        == "ollama create my-model -f 'exports/My Model/Modelfile'"
    )


def test_a_format_that_changes_the_content_is_refused(tiny_tok):  # noqa: F811 - a fixture
    tok = copy.deepcopy(tiny_tok)
    tok.chat_template = "{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] | upper }}<|end|>{% endfor %}<|assistant|>"
    with pytest.raises(
        SftkitError, match="cannot write the trained format as an Ollama template"
    ) as info:
        modelfile_for(tok)
    assert "\n" not in info.value.message and "--format gguf" in info.value.hint


def test_a_format_that_depends_on_the_turn_is_refused(tiny_tok):  # noqa: F811 - a fixture
    tok = copy.deepcopy(tiny_tok)
    tok.chat_template = "{% for m in messages %}<|{{ m['role'] }}|>{{ loop.index }}:{{ m['content'] }}<|end|>{% endfor %}{% if add_generation_prompt %}<|assistant|>{% endif %}"
    with pytest.raises(SftkitError, match="Ollama template"):
        modelfile_for(tok)


# --------------------------------------------------------------------------- the Go template interpreter


def test_go_string_escapes_what_a_modelfile_cannot_carry():
    text = 'a"b\\c\nd\te\u200df\U0001f600'
    literal = go_string(text)
    assert literal == '"a\\"b\\\\c\\nd\\te\\u200df\U0001f600"'
    assert render("{{ " + literal + " }}", {}) == text


def test_trim_markers_and_text():
    assert render("a  {{- .X -}}  b", {"X": 1}) == "a1b"
    assert render("a  {{ .X }}  b", {"X": "x"}) == "a  x  b"
    assert render("{{ .Missing }}", {}) == "<no value>"


def test_if_else_if_range_and_variables():
    template = (
        "{{- range $i, $m := .Messages }}{{ $last := eq (len (slice $.Messages $i)) 1 }}"
        '{{- if eq $m.Role "user" }}U{{ $i }}:{{ $m.Content }}{{ else if eq .Role "assistant" }}A:{{ .Content }}{{ else }}?{{ end }}'
        "{{- if $last }}!{{ end }}{{ end }}"
    )
    data = {
        "Messages": [
            {"Role": "user", "Content": "x"},
            {"Role": "assistant", "Content": "y"},
            {"Role": "tool", "Content": "z"},
        ]
    }
    assert render(template, data) == "U0:xA:y?!"
    assert (
        render('{{ $x := "a" }}{{ if .T }}{{ $x = "b" }}{{ end }}{{ $x }}', {"T": True})
        == "b"
    )
    assert (
        render("{{ if and .A (not .B) }}yes{{ else }}no{{ end }}", {"A": 1, "B": ""})
        == "yes"
    )
    assert render("{{ index .L 1 }}{{ len .S }}", {"L": ["p", "q"], "S": "abc"}) == "q3"


def test_ollama_values_collate_as_ollama_does():
    values = ollama_values(
        [
            {"role": "user", "content": "a"},
            {"role": "user", "content": "b"},
            {"role": "assistant", "content": "c"},
        ],
        default_system="Be kind.",
    )
    assert values["System"] == "Be kind."
    assert values["Messages"] == [
        {"Role": "system", "Content": "Be kind."},
        {"Role": "user", "Content": "a\n\nb"},
        {"Role": "assistant", "Content": "c"},
    ]
    assert (
        ollama_values(
            [{"role": "system", "content": "Mine."}], default_system="Be kind."
        )["System"]
        == "Mine."
    )
