"""The Ollama ``Modelfile`` of a GGUF export: a Go template, a default system prompt and stop strings that give
the format the run trained with.

The trained format is the Jinja chat template of the run's tokenizer. Ollama renders Go templates instead, so
:func:`turn_format` reads the Jinja template's output for a few conversations of marker strings and cuts out the
text around each message: what comes before the first user message (with and without a system prompt), between a
user message and its answer, between an answer and the next user message, after the last user message (the
generation prompt) and after a final answer. :func:`go_template` writes a template that puts those texts back
around Ollama's ``.Messages`` (every literal as a quoted Go string, so no whitespace is trimmed by accident), and a
default system message the Jinja template adds by itself becomes the Modelfile's ``SYSTEM``.

:func:`modelfile_for` then renders that template with :func:`render` (an interpreter for the part of Go's
``text/template`` the template uses) on several conversations, prepared as Ollama prepares them
(:func:`ollama_values`: ``SYSTEM`` when the conversation has no system message, messages of the same role in a
row joined by a blank line, the system messages joined into ``.System``), and holds the text to be exactly what
``tokenizer.apply_chat_template(..., add_generation_prompt=True)`` gives; a format that cannot be written this way
(content-dependent templates, tools-only formats) is refused with one line.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sftkit.errors import SftkitError

#: marker contents: no whitespace, nothing a template would escape or change
_SYS, _U1, _A1, _U2 = "SYSzq7marker", "USRzq7marker", "ANSzq7marker", "USRzq7second"

#: conversations the template is checked on
CHECK_CONVERSATIONS: list[list[dict[str, str]]] = [
    [{"role": "user", "content": "Hello! Who are you?"}],
    [
        {"role": "system", "content": "You answer in one word."},
        {"role": "user", "content": "What is the capital of France?"},
    ],
    [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "Hello, how can I help?"},
        {"role": "user", "content": "Tell me a joke.\nMake it short."},
    ],
    [
        {"role": "system", "content": "Be kind.\nBe brief."},
        {"role": "user", "content": "a"},
        {"role": "assistant", "content": "b"},
        {"role": "user", "content": "c"},
        {"role": "assistant", "content": "d"},
        {"role": "user", "content": "e f g"},
    ],
]


@dataclass
class TurnFormat:
    """The texts around the messages of a conversation in the trained format."""

    system_head: str
    """Before the system prompt."""
    system_tail: str
    """After the system prompt, up to the first user message."""
    head: str
    """Before the first user message when there is no system prompt."""
    user_to_answer: str
    """Between a user message and its answer."""
    answer_to_user: str
    """Between an answer and the next user message."""
    generation: str
    """After the last user message: the generation prompt."""
    end: str
    """After a final answer."""
    default_system: str | None = None
    """The system prompt the format adds when a conversation has none."""


def turn_format(tokenizer: Any) -> TurnFormat:
    """Cut the trained format (the tokenizer's chat template) into the texts around each message; see the module docstring."""

    def render(messages: list[dict[str, str]], generation: bool) -> str:
        return tokenizer.apply_chat_template(
            messages, tokenize=False, add_generation_prompt=generation
        )

    sys_, u1, a1, u2 = (
        {"role": r, "content": c}
        for r, c in (("system", _SYS), ("user", _U1), ("assistant", _A1), ("user", _U2))
    )
    try:
        r0 = render([u1], True)
        r1 = render([sys_, u1], True)
        r2 = render([sys_, u1, a1, u2], True)
        r3 = render([sys_, u1, a1], False)
    except Exception as e:  # noqa: BLE001 - jinja2's errors, raised by the template itself: one line
        raise _unsupported(f"rendering it failed ({e})") from None
    parts1 = _split(r1, [_SYS, _U1])
    parts0 = _split(r0, [_U1])
    parts2 = _split(r2, [_SYS, _U1, _A1, _U2])
    parts3 = _split(r3, [_SYS, _U1, _A1])
    if None in (parts1, parts0, parts2, parts3):
        raise _unsupported(
            "its output does not hold each message's text once, in order"
        )
    assert (
        parts0 is not None
        and parts1 is not None
        and parts2 is not None
        and parts3 is not None
    )
    system_head, system_tail, generation = parts1
    head, generation0 = parts0
    if (
        generation0 != generation
        or parts2[:2] != [system_head, system_tail]
        or parts2[4] != generation
        or parts3[:3] != parts2[:3]
    ):
        raise _unsupported(
            "the text around a message depends on the rest of the conversation"
        )
    default = None
    if (
        head.startswith(system_head)
        and head.endswith(system_tail)
        and len(head) > len(system_head) + len(system_tail)
    ):
        default = head[len(system_head) : len(head) - len(system_tail)]
    return TurnFormat(
        system_head,
        system_tail,
        head,
        parts2[2],
        parts2[3],
        generation,
        parts3[3],
        default,
    )


def _split(text: str, markers: list[str]) -> list[str] | None:
    """The texts between ``markers``, which must each occur once, in order; None otherwise."""
    out, rest = [], text
    for marker in markers:
        if text.count(marker) != 1 or marker not in rest:
            return None
        before, _, rest = rest.partition(marker)
        out.append(before)
    out.append(rest)
    return out


def _unsupported(why: str) -> SftkitError:
    return SftkitError(
        f"cannot write the trained format as an Ollama template: {why}",
        hint="export --format gguf and give Ollama a TEMPLATE of your own (the GGUF carries the trained Jinja template)",
    )


# --------------------------------------------------------------------------- the Go template


def go_string(text: str) -> str:
    """``text`` as a Go interpreted string literal, with every character that is not printable escaped
    (a Modelfile keeps printable characters only)."""
    out = ['"']
    for ch in text:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif ch == "\r":
            out.append("\\r")
        elif not ch.isprintable():
            out.append(
                f"\\u{ord(ch):04x}" if ord(ch) <= 0xFFFF else f"\\U{ord(ch):08x}"
            )
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def _lit(text: str) -> str:
    return "{{ " + go_string(text) + " }}" if text else ""


def go_template(fmt: TurnFormat) -> str:
    """The Go template (Ollama's ``.System`` and ``.Messages``) that renders ``fmt``."""
    return (
        "{{- if .System }}"
        + _lit(fmt.system_head)
        + "{{ .System }}"
        + _lit(fmt.system_tail)
        + "{{ else }}"
        + _lit(fmt.head)
        + "{{ end }}\n"
        "{{- range $i, $m := .Messages }}\n"
        "{{- $last := eq (len (slice $.Messages $i)) 1 }}\n"
        '{{- if eq $m.Role "user" }}{{ $m.Content }}{{ if $last }}'
        + _lit(fmt.generation)
        + "{{ else }}"
        + _lit(fmt.user_to_answer)
        + "{{ end }}\n"
        '{{- else if eq $m.Role "assistant" }}{{ $m.Content }}{{ if $last }}'
        + _lit(fmt.end)
        + "{{ else }}"
        + _lit(fmt.answer_to_user)
        + "{{ end }}\n"
        "{{- end }}\n"
        "{{- end }}"
    )


def ollama_values(
    messages: list[dict[str, str]], default_system: str | None
) -> dict[str, Any]:
    """What Ollama gives the template for a chat: the Modelfile's ``SYSTEM`` first when the chat has no system
    message, consecutive messages of one role joined by a blank line, ``.System`` all system messages joined."""
    if default_system and not any(m["role"] == "system" for m in messages):
        messages = [{"role": "system", "content": default_system}, *messages]
    collated: list[dict[str, str]] = []
    for m in messages:
        if collated and collated[-1]["Role"] == m["role"] and m["role"] != "tool":
            collated[-1]["Content"] += "\n\n" + m["content"]
        else:
            collated.append({"Role": m["role"], "Content": m["content"]})
    system = "\n\n".join(m["content"] for m in messages if m["role"] == "system")
    return {"System": system, "Messages": collated}


# --------------------------------------------------------------------------- a Go text/template subset


class TemplateError(ValueError):
    """The template uses Go template syntax :func:`render` does not implement."""


_ACTION = re.compile(
    r'\{\{(-\s)?((?:[^"}]|"(?:[^"\\]|\\.)*"|\}(?!\}))*?)(\s-)?\}\}', re.DOTALL
)
_TOKEN = re.compile(
    r'\s*(?:("(?:[^"\\]|\\.)*")|(\()|(\))|(:=|=)|(,)|(\$[A-Za-z0-9_]*(?:\.[A-Za-z0-9_]+)*)|(\.[A-Za-z0-9_]+(?:\.[A-Za-z0-9_]+)*|\.)|(-?\d+)|([A-Za-z_][A-Za-z0-9_]*))'
)


def render(template: str, data: dict[str, Any]) -> str:
    """Render ``template`` as Go's ``text/template`` does, for the subset :func:`go_template` writes: text, trim
    markers, ``if``/``else if``/``else``/``end``, ``range $i, $x := ...``, variables (``:=``, ``=``), fields,
    string and integer literals, and the functions ``eq``, ``ne``, ``not``, ``and``, ``or``, ``len``, ``slice``,
    ``index``."""
    nodes = _parse(_lex(template))
    out: list[str] = []
    _run(nodes, data, [{"$": data}], out)
    return "".join(out)


def _lex(template: str) -> list[tuple[str, str]]:
    items: list[tuple[str, str]] = []
    pos, trim_next = 0, False
    for m in _ACTION.finditer(template):
        text = template[pos : m.start()]
        if trim_next:
            text = text.lstrip(" \t\r\n")
        if m.group(1):
            text = text.rstrip(" \t\r\n")
        if text:
            items.append(("text", text))
        items.append(("action", m.group(2).strip()))
        trim_next = bool(m.group(3))
        pos = m.end()
    text = template[pos:]
    if "{{" in text:
        raise TemplateError(f"unclosed action in {text[:40]!r}")
    if trim_next:
        text = text.lstrip(" \t\r\n")
    if text:
        items.append(("text", text))
    return items


def _tokens(src: str) -> list[tuple[str, str]]:
    out, pos = [], 0
    kinds = ("str", "(", ")", "assign", ",", "var", "field", "int", "ident")
    while pos < len(src):
        if not src[pos:].strip():
            break
        m = _TOKEN.match(src, pos)
        if not m:
            raise TemplateError(f"cannot read {src[pos:]!r}")
        for kind, value in zip(kinds, m.groups(), strict=True):
            if value is not None:
                out.append((kind, value))
                break
        pos = m.end()
    return out


def _parse(items: list[tuple[str, str]]) -> list[Any]:
    pos = 0

    def block(stops: tuple[str, ...]) -> tuple[list[Any], str]:
        nonlocal pos
        nodes: list[Any] = []
        while pos < len(items):
            kind, value = items[pos]
            pos += 1
            if kind == "text":
                nodes.append(("text", value))
                continue
            word = value.split(None, 1)[0] if value else ""
            if word in ("end", "else"):
                if word not in stops:
                    raise TemplateError(f"unexpected {{{{ {value} }}}}")
                return nodes, value
            if word == "if":
                nodes.append(if_node(value[2:]))
            elif word == "range":
                nodes.append(range_node(value[5:]))
            else:
                nodes.append(("action", _tokens(value)))
        if stops:
            raise TemplateError("missing {{ end }}")
        return nodes, ""

    def if_node(cond: str) -> Any:
        branches = []
        body, stop = block(("end", "else"))
        branches.append((_tokens(cond), body))
        while stop.startswith("else"):
            rest = stop[4:].strip()
            if rest.startswith("if "):
                body, stop = block(("end", "else"))
                branches.append((_tokens(rest[3:]), body))
            else:
                body, stop = block(("end",))
                branches.append((None, body))
        return ("if", branches)

    def range_node(spec: str) -> Any:
        tokens = _tokens(spec)
        names: list[str] = []
        if any(k == "assign" for k, _ in tokens):
            split = next(i for i, (k, _) in enumerate(tokens) if k == "assign")
            names = [v for k, v in tokens[:split] if k == "var"]
            tokens = tokens[split + 1 :]
        body, _ = block(("end",))
        return ("range", names, tokens, body)

    nodes, _ = block(())
    return nodes


def _run(
    nodes: list[Any], dot: Any, scopes: list[dict[str, Any]], out: list[str]
) -> None:
    for node in nodes:
        kind = node[0]
        if kind == "text":
            out.append(node[1])
        elif kind == "action":
            tokens = node[1]
            if len(tokens) >= 2 and tokens[0][0] == "var" and tokens[1][0] == "assign":
                value = _eval(tokens[2:], dot, scopes)
                if tokens[1][1] == ":=":
                    scopes[-1][tokens[0][1]] = value
                else:
                    for scope in reversed(scopes):
                        if tokens[0][1] in scope:
                            scope[tokens[0][1]] = value
                            break
                    else:
                        raise TemplateError(f"undefined variable {tokens[0][1]}")
            else:
                out.append(_text(_eval(tokens, dot, scopes)))
        elif kind == "if":
            for cond, body in node[1]:
                if cond is None or _truth(_eval(cond, dot, scopes)):
                    _run(body, dot, [*scopes, {}], out)
                    break
        elif kind == "range":
            _, names, tokens, body = node
            for i, item in enumerate(_eval(tokens, dot, scopes) or []):
                scope: dict[str, Any] = {}
                if len(names) == 2:
                    scope[names[0]], scope[names[1]] = i, item
                elif len(names) == 1:
                    scope[names[0]] = item
                _run(body, item, [*scopes, scope], out)


def _eval(tokens: list[tuple[str, str]], dot: Any, scopes: list[dict[str, Any]]) -> Any:
    args, pos = [], 0
    while pos < len(tokens):
        kind, value = tokens[pos]
        if kind == "(":
            depth, end = 1, pos + 1
            while depth:
                depth += {"(": 1, ")": -1}.get(tokens[end][0], 0)
                end += 1
            args.append(("value", _eval(tokens[pos + 1 : end - 1], dot, scopes)))
            pos = end
            continue
        args.append((kind, value))
        pos += 1
    if args and args[0][0] == "ident":
        return _call(args[0][1], [_operand(a, dot, scopes) for a in args[1:]])
    if len(args) != 1:
        raise TemplateError(f"cannot evaluate {tokens!r}")
    return _operand(args[0], dot, scopes)


def _operand(arg: tuple[str, Any], dot: Any, scopes: list[dict[str, Any]]) -> Any:
    kind, value = arg
    if kind == "value":
        return value
    if kind == "str":
        return _unquote(value)
    if kind == "int":
        return int(value)
    if kind == "field":
        return dot if value == "." else _fields(dot, value[1:].split("."))
    if kind == "var":
        name, *path = value.split(".")
        for scope in reversed(scopes):
            if name in scope:
                return _fields(scope[name], path)
        raise TemplateError(f"undefined variable {name}")
    if kind == "ident":
        raise TemplateError(f"function {value} used as a value")
    raise TemplateError(f"unexpected {value!r}")


def _fields(value: Any, path: list[str]) -> Any:
    for name in path:
        if not isinstance(value, dict):
            raise TemplateError(f"cannot read field {name} of {type(value).__name__}")
        value = value.get(name)
    return value


def _call(name: str, args: list[Any]) -> Any:
    if name == "eq":
        return any(args[0] == a for a in args[1:])
    if name == "ne":
        return args[0] != args[1]
    if name == "not":
        return not _truth(args[0])
    if name == "and":
        for a in args:
            if not _truth(a):
                return a
        return args[-1]
    if name == "or":
        for a in args:
            if _truth(a):
                return a
        return args[-1]
    if name == "len":
        return len(args[0])
    if name == "slice":
        start = args[1] if len(args) > 1 else None
        stop = args[2] if len(args) > 2 else None
        return args[0][start:stop]
    if name == "index":
        value = args[0]
        for key in args[1:]:
            value = value[key]
        return value
    raise TemplateError(f"unknown function {name}")


def _truth(value: Any) -> bool:
    return bool(value)


def _text(value: Any) -> str:
    if value is None:
        return "<no value>"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _unquote(literal: str) -> str:
    body, out, i = literal[1:-1], [], 0
    simple = {
        "n": "\n",
        "t": "\t",
        "r": "\r",
        '"': '"',
        "\\": "\\",
        "a": "\a",
        "b": "\b",
        "f": "\f",
        "v": "\v",
    }
    while i < len(body):
        ch = body[i]
        if ch != "\\":
            out.append(ch)
            i += 1
            continue
        nxt = body[i + 1]
        if nxt in simple:
            out.append(simple[nxt])
            i += 2
        elif nxt in "uU":
            width = 4 if nxt == "u" else 8
            out.append(chr(int(body[i + 2 : i + 2 + width], 16)))
            i += 2 + width
        elif nxt == "x":
            out.append(chr(int(body[i + 2 : i + 4], 16)))
            i += 4
        else:
            raise TemplateError(f"unknown escape \\{nxt}")
    return "".join(out)


# --------------------------------------------------------------------------- the Modelfile


@dataclass
class Modelfile:
    """The Modelfile of an export, less its ``FROM`` line (the GGUF's name is known only when it is written)."""

    template: str
    system: str | None
    stops: list[str]

    def text(self, gguf_name: str) -> str:
        lines = [
            "# Made by sftkit: the template, system prompt and stop strings give the format the model was fine-tuned with.",
            f"FROM ./{gguf_name}",
            f'TEMPLATE """{self.template}"""',
        ]
        if self.system:
            lines.append(f'SYSTEM """{self.system}"""')
        lines += [f'PARAMETER stop "{stop}"' for stop in self.stops]
        lines.append(
            "PARAMETER temperature 0"
        )  # greedy decoding, as `sftkit generate` does by default
        return "\n".join(lines) + "\n"

    @staticmethod
    def create_command(folder: Path) -> str:
        name = (
            re.sub(r"[^a-z0-9._-]+", "-", folder.name.lower()).strip("-._") or "model"
        )
        return f"ollama create {name} -f {shlex.quote(str(folder / 'Modelfile'))}"


def modelfile_for(tokenizer: Any) -> Modelfile:
    """The Modelfile that gives the tokenizer's chat template (the trained format), checked by rendering; see the module docstring."""
    if not getattr(tokenizer, "chat_template", None):
        raise _unsupported("the tokenizer has no chat template")
    fmt = turn_format(tokenizer)
    template = go_template(fmt)
    for messages in CHECK_CONVERSATIONS:
        expected = tokenizer.apply_chat_template(
            messages, tokenize=False, add_generation_prompt=True
        )
        got = render(template, ollama_values(messages, fmt.default_system))
        if got != expected:
            raise _unsupported(
                f"the conversation {messages!r} renders as {got!r} instead of {expected!r}"
            )
    if fmt.default_system is not None and not _modelfile_safe(fmt.default_system):
        raise _unsupported(
            'its default system prompt holds characters a Modelfile cannot carry (""" or control characters)'
        )
    return Modelfile(template, fmt.default_system, _stops(tokenizer, fmt))


def _modelfile_safe(text: str) -> bool:
    return '"""' not in text and all(ch.isprintable() or ch in "\n\t" for ch in text)


def _stops(tokenizer: Any, fmt: TurnFormat) -> list[str]:
    """The end-of-answer texts: the EOS and a special token the format closes an answer with."""
    stops: list[str] = []
    special = set(getattr(tokenizer, "all_special_tokens", []) or []) | {
        t for t, _ in (getattr(tokenizer, "get_added_vocab", dict)() or {}).items()
    }
    ending = fmt.end.strip()
    for candidate in (tokenizer.eos_token, ending if ending in special else None):
        if (
            candidate
            and candidate not in stops
            and '"' not in candidate
            and candidate.isprintable()
        ):
            stops.append(candidate)
    return stops


__all__ = [
    "CHECK_CONVERSATIONS",
    "Modelfile",
    "TurnFormat",
    "go_string",
    "go_template",
    "modelfile_for",
    "ollama_values",
    "render",
    "turn_format",
]
