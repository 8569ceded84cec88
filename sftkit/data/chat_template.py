"""The trained prompt format as a Jinja chat template, so that it travels with the model.

A run's ``model/`` (and every export) saves the tokenizer with :func:`trained_chat_template` as its
``chat_template``: ``tokenizer.apply_chat_template(messages, add_generation_prompt=True)`` in plain
transformers (and in vLLM, llama.cpp's converter, Ollama importers, the Hub's widget) then gives exactly the
text, and so the token ids, that sftkit trained on and generates from (:func:`render_prompt`).

- chat templates (the tokenizer's own, ``model.chat_template``, ``chatml``) are kept as they are;
- text templates (``alpaca``, ``arabic``, a custom string) are written out as Jinja that renders each
  user -> assistant exchange as :mod:`sftkit.data.templates` does: the system messages first, several user
  messages merged, ``"\\n\\n"`` between exchanges, the EOS after each answer, and for the generation prompt the
  text up to the response (after ``data.response_marker`` and its whitespace, when there is one);
- ``data.system_prompt`` becomes the template's default system message (used when a conversation has none);
- ``data.chat_template_kwargs`` become the template's defaults for those variables (a caller may still pass them).
"""

from __future__ import annotations

import json
import string
from typing import Any

from sftkit.data.templates import (
    ALPACA_MARKER,
    ALPACA_PREAMBLE,
    ALPACA_PREAMBLE_INPUT,
    Template,
)


def trained_chat_template(template: Template, system_prompt: str | None = None) -> str:
    """The Jinja chat template that renders conversations exactly as training rendered them."""
    body = template.jinja if template.kind == "chat" else _text_jinja(template)
    assert body is not None
    if template.kind == "chat" and template.chat_kwargs:
        body = _variable_defaults(template.chat_kwargs) + body
    if not system_prompt:
        return body
    default = (
        "{%- if not (messages and messages[0]['role'] == 'system') -%}"
        "{%- set messages = [{'role': 'system', 'content': " + _lit(system_prompt) + "}] + messages -%}"
        "{%- endif -%}"
    )
    return default + body


def _variable_defaults(variables: dict[str, Any]) -> str:
    """``data.chat_template_kwargs`` as the template's defaults: what training rendered with, unless a caller
    passes the variable (``apply_chat_template(..., enable_thinking=True)``)."""
    out = ""
    for name, value in variables.items():
        if isinstance(name, str) and name.isidentifier():
            out += "{%- if " + name + " is not defined -%}{%- set " + name + " = " + _jinja_literal(value) + " -%}{%- endif -%}"
    return out


def _jinja_literal(value: Any) -> str:
    """A Jinja expression for a YAML value (none, true/false, numbers, strings, lists, mappings)."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_jinja_literal(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_jinja_literal(str(k))}: {_jinja_literal(v)}" for k, v in value.items()) + "}"
    return _lit(str(value))


def _lit(text: str) -> str:
    """A Jinja string literal (JSON's escapes are Jinja's)."""
    return json.dumps(text, ensure_ascii=False)


def _format_expr(fmt: str, names: dict[str, str]) -> str:
    """A ``str.format`` pattern with {instruction}/{input} as a Jinja concatenation expression."""
    parts = []
    for literal, field, _, _ in string.Formatter().parse(fmt):
        if literal:
            parts.append(_lit(literal))
        if field is not None:
            parts.append(names[field])
    return " ~ ".join(parts) if parts else '""'


def _text_jinja(tpl: Template) -> str:
    """One exchange: head (system text or, for alpaca, its preamble) + prompt + answer + EOS; see the module docstring."""
    if tpl.name == "alpaca":
        prompt = '"### Instruction:\\n" ~ ns.content ~ "\\n\\n" ~ (("### Input:\\n" ~ ns.input ~ "\\n\\n") if ns.input else "") ~ ' + _lit(ALPACA_MARKER + "\n")
        gen_prompt, after = prompt, '""'
        head = f'(ns.system if ns.system else (({_lit(ALPACA_PREAMBLE_INPUT)} if ns.input else {_lit(ALPACA_PREAMBLE)}) ~ "\\n\\n"))'
    else:
        assert tpl.text is not None
        prefix, _, suffix = tpl.text.partition("{response}")
        uses_input = any(f == "input" for _, f, _, _ in string.Formatter().parse(prefix))
        cut = _cut(prefix, tpl.response_marker)
        names = {"instruction": "ns.content" if uses_input else "ns.full", "input": "ns.input"}
        prompt = _format_expr(prefix, names)
        # the template's text after the marker and its whitespace is trained as part of the answer: the
        # generation prompt stops before it (the model writes it), a whole conversation renders all of it
        gen_prompt = _format_expr(prefix[:cut], names)
        after = _format_expr(suffix, names)
        head = "ns.system"
    return (
        "{%- set ns = namespace(system='', users=[], first=true, after='', content='', input='', full='') -%}"
        + (_lit(tpl.bos).join(["{{- ", " -}}"]) if tpl.bos else "")
        + "{%- for m in messages if m['role'] == 'system' -%}{%- set ns.system = ns.system ~ m['content'] ~ '\\n\\n' -%}{%- endfor -%}"
        + "{%- for m in messages -%}"
        + "{%- if m['role'] == 'user' -%}{%- set ns.users = ns.users + [m] -%}"
        + "{%- elif m['role'] == 'assistant' -%}"
        + _merge_users()
        + "{{- ns.after ~ ('' if ns.first else '\\n\\n') ~ ((" + head + ") if ns.first else '') ~ " + prompt + " ~ m['content'] ~ " + _lit(tpl.eos) + " -}}"
        + "{%- set ns.after = " + after + " -%}{%- set ns.first = false -%}{%- set ns.users = [] -%}"
        + "{%- endif -%}"
        + "{%- endfor -%}"
        + "{%- if add_generation_prompt -%}"
        + _merge_users()
        + "{{- ns.after ~ ('' if ns.first else '\\n\\n') ~ ((" + head + ") if ns.first else '') ~ " + gen_prompt + " -}}"
        + "{%- endif -%}"
    )


def _merge_users() -> str:
    """Jinja setting ns.content/ns.input/ns.full from the pending user messages (as ``_merge_users`` + ``user_text``)."""
    return (
        "{%- if ns.users | length == 1 -%}"
        "{%- set u = ns.users[0] -%}"
        "{%- set ns.content = u['content'] -%}"
        "{%- set ns.input = u['input'] if u['input'] is defined and u['input'] else '' -%}"
        "{%- set ns.full = ns.content ~ ('\\n\\n' ~ ns.input if ns.input else '') -%}"
        "{%- else -%}"
        "{%- set ns.input = '' -%}{%- set ns.content = '' -%}"
        "{%- for u in ns.users -%}"
        "{%- set t = u['content'] ~ ('\\n\\n' ~ u['input'] if u['input'] is defined and u['input'] else '') -%}"
        "{%- set ns.content = ns.content ~ ('\\n\\n' if not loop.first else '') ~ t -%}"
        "{%- endfor -%}"
        "{%- set ns.full = ns.content -%}"
        "{%- endif -%}"
    )


def _cut(prefix: str, marker: str | None) -> int:
    """Where the generation prompt ends in the template's prefix: after the marker and its whitespace, else the end."""
    if not marker:
        return len(prefix)
    k = prefix.rfind(marker)
    if k < 0:
        return len(prefix)
    k += len(marker)
    rest = prefix[k:]
    return k + len(rest) - len(rest.lstrip())


__all__ = ["trained_chat_template"]
