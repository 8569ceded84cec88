"""Templates: how a canonical conversation becomes the text a model is trained on, and which parts of
that text are trained on.

``data.template`` names one of:

- ``auto``: the tokenizer's chat template when it has one, else ``chatml``;
- ``chat``: the tokenizer's chat template (an error when it has none);
- ``chatml``: ``<|im_start|>role\\ncontent<|im_end|>\\n`` turns;
- ``alpaca``: the Stanford Alpaca prompt (with an ``### Input:`` block when the row has an input);
- ``arabic``: ``### التعليمات:\\n{instruction}\\n\\n### الإجابة:\\n{response}``;
- a custom string with ``{instruction}``, ``{input}`` and ``{response}`` placeholders (``{response}``
  last; literal braces doubled).

With a text template the trained part starts at ``{response}``. ``data.response_marker`` (``### Response:``
for alpaca and ``### الإجابة:`` for arabic) masks everything up to and including the marker plus the
template's whitespace after it; template text between the marker and ``{response}`` (``A: The answer is
{response}`` with marker ``A:``) is then trained on as part of the answer.

:func:`render_conversation` returns the text and the character spans trained on: each assistant turn's
content plus what closes the turn (the EOS token). For chat templates a turn's span is what
``render(messages[:i+1])`` adds to ``render(messages[:i], add_generation_prompt=True)``, cut after its
EOS. The text always ends with one EOS. Text from :func:`render_prompt` is what generation must feed the
model; both are tokenised with ``add_special_tokens=False`` (BOS, when the tokenizer wants one, is part
of the text, as chat templates do).
"""

from __future__ import annotations

import hashlib
import string
from dataclasses import dataclass, field, replace
from typing import Any

from sftkit.data.canonical import chat_messages, user_text
from sftkit.data.drops import InvalidRow
from sftkit.errors import ConfigError, DataError

NAMES = ("auto", "chat", "chatml", "alpaca", "arabic")

CHATML = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
CHATML_END = "<|im_end|>"

ALPACA_PREAMBLE = (
    "Below is an instruction that describes a task. Write a response that appropriately completes the request."
)
ALPACA_PREAMBLE_INPUT = (
    "Below is an instruction that describes a task, paired with an input that provides further context. "
    "Write a response that appropriately completes the request."
)
ALPACA_MARKER = "### Response:"
ARABIC = "### التعليمات:\n{instruction}\n\n### الإجابة:\n{response}"
ARABIC_MARKER = "### الإجابة:"
_PLACEHOLDERS = ("instruction", "input", "response")


@dataclass(frozen=True)
class Template:
    """A resolved template. ``kind`` is ``chat`` (Jinja, rendered by the tokenizer) or ``text``."""

    name: str
    kind: str
    jinja: str | None = None
    text: str | None = None
    response_marker: str | None = None
    bos: str = ""
    eos: str = ""
    end_markers: tuple[str, ...] = field(default_factory=tuple)
    notes: tuple[str, ...] = field(default_factory=tuple)
    """What the user should know about how the template was read (shown when data is prepared)."""
    chat_kwargs: dict[str, Any] = field(default_factory=dict, hash=False)
    """Variables a chat template is rendered with (``data.chat_template_kwargs``)."""

    def describe(self) -> dict[str, Any]:
        """What identifies this template (for the manifest and the cache fingerprint)."""
        body = self.jinja if self.kind == "chat" else self.text
        return {
            "name": self.name,
            "kind": self.kind,
            "sha256": hashlib.sha256((body or "").encode()).hexdigest(),
            "text": self.text,
            "response_marker": self.response_marker,
            "bos": self.bos,
            "eos": self.eos,
            # only when set: data prepared before this key existed keeps its fingerprint
            **({"chat_template_kwargs": self.chat_kwargs} if self.chat_kwargs else {}),
        }


def resolve_template(
    spec: str, tokenizer: Any, response_marker: str | None = None, chat_kwargs: dict[str, Any] | None = None
) -> Template:
    """``data.template`` (+ ``data.response_marker``, ``data.chat_template_kwargs``) and the tokenizer -> a Template,
    or a ConfigError."""
    tpl = _resolve_template(spec, tokenizer, response_marker)
    if not chat_kwargs:
        return tpl
    if tpl.kind != "chat":
        raise ConfigError(
            f"data.chat_template_kwargs only apply to chat templates, not data.template={spec!r}",
            hint="remove data.chat_template_kwargs, or use data.template=auto (the tokenizer's chat template)",
        )
    return replace(tpl, chat_kwargs=dict(chat_kwargs))


def _resolve_template(spec: str, tokenizer: Any, response_marker: str | None = None) -> Template:
    eos = tokenizer.eos_token or ""
    if not eos:
        raise DataError("the tokenizer has no EOS token, so the model could not learn to stop", hint="set eos_token in its tokenizer_config.json")
    name = spec.strip() if spec.strip() in NAMES else spec
    if name == "auto":
        name = "chat" if _chat_template(tokenizer) else "chatml"
    if name in ("chat", "chatml"):
        if response_marker:
            raise ConfigError(
                f"data.response_marker only applies to text templates, not {spec!r}",
                hint="remove data.response_marker: chat templates mask every non-assistant token themselves",
            )
        if name == "chat":
            jinja = _chat_template(tokenizer)
            if not jinja:
                raise ConfigError(
                    "data.template is 'chat' but the tokenizer has no chat template",
                    hint="use data.template=chatml, or set model.chat_template",
                )
            return Template("chat", "chat", jinja=jinja, eos=eos, end_markers=(eos,))
        return Template("chatml", "chat", jinja=CHATML, eos=eos, end_markers=(eos, CHATML_END))
    bos = _bos_text(tokenizer)
    if name == "alpaca":
        marker = _check_marker(response_marker or ALPACA_MARKER, "### Instruction:\n{instruction}\n\n### Response:\n", spec)
        return Template("alpaca", "text", text=None, response_marker=marker, bos=bos, eos=eos)
    if name == "arabic":
        marker = _check_marker(response_marker or ARABIC_MARKER, ARABIC.split("{response}")[0], spec)
        return Template("arabic", "text", text=ARABIC, response_marker=marker, bos=bos, eos=eos)
    text = _check_custom(spec)
    notes = () if text == spec else (f"data.template has no {{response}}: the response follows its text directly, as in {text!r}",)
    marker = _check_marker(response_marker, text.split("{response}")[0], spec)
    return Template("custom", "text", text=text, response_marker=marker, bos=bos, eos=eos, notes=notes)


def _chat_template(tokenizer: Any) -> str | None:
    tpl = getattr(tokenizer, "chat_template", None)
    if isinstance(tpl, dict):
        tpl = tpl.get("default")
    return tpl or None


def _bos_text(tokenizer: Any) -> str:
    """The BOS token text when the tokenizer puts one in front of encoded text, else ''."""
    bos_id = tokenizer.bos_token_id
    if bos_id is None:
        return ""
    ids = tokenizer("a", add_special_tokens=True)["input_ids"]
    return tokenizer.bos_token if ids and ids[0] == bos_id else ""


def _check_custom(spec: str) -> str:
    """The custom template's text, checked: ``{response}`` is appended when it has none (the response follows
    the prompt part, ``"User: {instruction}\\nAssistant: "``)."""
    if "{%" in spec or "{{" in spec and "messages" in spec:
        raise ConfigError(
            "data.template looks like a Jinja chat template",
            hint="put Jinja chat templates in model.chat_template and use data.template=chat",
        )
    try:
        fields = [f for _, f, _, _ in string.Formatter().parse(spec) if f is not None]
    except ValueError as e:
        raise ConfigError(f"data.template {spec!r} is not a valid template ({e})", hint="double literal braces: {{ }}") from None
    if not fields:
        raise ConfigError(
            f"unknown template {spec!r}",
            hint=f"use one of {', '.join(NAMES)}, or a string with {{instruction}} and {{response}} placeholders",
        )
    unknown = [f for f in fields if f not in _PLACEHOLDERS]
    if unknown:
        raise ConfigError(
            f"data.template has unknown placeholder(s): {', '.join('{' + f + '}' for f in unknown)}",
            hint="placeholders are {instruction}, {input} and {response}",
        )
    if "response" not in fields and "instruction" in fields:
        return spec + "{response}"
    if fields.count("response") != 1 or fields[-1] != "response" or "instruction" not in fields:
        raise ConfigError(
            "a custom data.template needs {instruction} and at most one {response}, after every other placeholder",
            hint="e.g. 'Question: {instruction}\\nAnswer: {response}' (without {response}, the response follows the template's text)",
        )
    return spec


def _check_marker(marker: str | None, prompt_part: str, spec: str) -> str | None:
    if marker and marker not in prompt_part:
        raise ConfigError(
            f"data.response_marker {marker!r} does not occur before {{response}} in template {spec!r}",
            hint="the marker must be text of the template that comes before the response",
        )
    return marker or None


# --------------------------------------------------------------------------- rendering


@dataclass
class Rendered:
    """A rendered example: its text and the [start, end) character spans trained on."""

    text: str
    spans: list[tuple[int, int]]


def render_conversation(
    messages: list[dict[str, Any]], tokenizer: Any, template: Template, tools: list[dict[str, Any]] | None = None
) -> Rendered:
    """A canonical conversation (ending with an assistant turn) -> text + trained spans, ending in one EOS.

    ``tools``: the tool definitions a chat template is given (``apply_chat_template(tools=...)``); every assistant
    turn, its tool calls included, is trained on, and tool results are not (see :func:`tool_problem`)."""
    if template.kind == "chat":
        rendered = _render_chat(messages, tokenizer, template, tools)
    else:
        rendered = _render_text(messages, template)
    return _close_with_eos(rendered, template.eos)


def render_text(text: str, template: Template) -> Rendered:
    """A raw-text example: everything trained, BOS (if the tokenizer uses one) before, EOS after."""
    bos = template.bos
    return _close_with_eos(Rendered(bos + text, [(len(bos), len(bos) + len(text))]), template.eos)


def render_prompt(
    messages: list[dict[str, Any]],
    tokenizer: Any,
    template: Template | str,
    *,
    system_prompt: str | None = None,
    response_marker: str | None = None,
    chat_template_kwargs: dict[str, Any] | None = None,
) -> str:
    """The text a model is given to generate the next assistant turn, exactly as it was trained.

    ``messages`` is the conversation so far (canonical messages, no final answer). ``template`` is a
    resolved Template or the ``data.template`` value the run trained with (then ``response_marker`` and
    ``chat_template_kwargs`` are ``data.response_marker`` and ``data.chat_template_kwargs``). ``system_prompt``
    (``data.system_prompt``) is added when there is no system message. Tokenise the result with
    ``add_special_tokens=False`` (see :func:`prompt_ids`).
    """
    tpl = template if isinstance(template, Template) else resolve_template(template, tokenizer, response_marker, chat_template_kwargs)
    if system_prompt and not any(m["role"] == "system" for m in messages):
        messages = [{"role": "system", "content": system_prompt}, *messages]
    if not messages or messages[-1]["role"] == "assistant":
        raise DataError("a prompt must end with a user (or system) message, not an assistant answer")
    if tpl.kind == "chat":
        return _apply(tokenizer, tpl, messages, generation=True)
    rendered = _render_text([*messages, {"role": "assistant", "content": ""}], tpl)
    return rendered.text[: rendered.spans[-1][0]]


def prompt_ids(messages: list[dict[str, Any]], tokenizer: Any, template: Template | str, **kwargs: Any) -> list[int]:
    """Token ids of :func:`render_prompt` (encoded the way training encoded it)."""
    return tokenizer(render_prompt(messages, tokenizer, template, **kwargs), add_special_tokens=False)["input_ids"]


def render_pair(prompt: list[dict[str, Any]], response: str, tokenizer: Any, template: Template) -> tuple[str, str]:
    """(prompt text, response text ending in EOS) for one side of a DPO pair."""
    rendered = render_conversation([*prompt, {"role": "assistant", "content": response}], tokenizer, template)
    start, end = rendered.spans[-1]
    return rendered.text[:start], rendered.text[start:end]


def _apply(tokenizer: Any, tpl: Template, messages: list[dict[str, Any]], generation: bool, tools: list[dict[str, Any]] | None = None) -> str:
    extra = {**tpl.chat_kwargs, **({"tools": tools} if tools else {})}
    try:
        return tokenizer.apply_chat_template(
            chat_messages(messages), tokenize=False, add_generation_prompt=generation, chat_template=tpl.jinja, **extra
        )
    except Exception as e:  # noqa: BLE001 - Jinja raises TemplateError, TypeError, ... on unexpected input
        raise InvalidRow(f"the chat template cannot render this conversation ({type(e).__name__}: {e})") from None


def _render_chat(messages: list[dict[str, Any]], tokenizer: Any, tpl: Template, tools: list[dict[str, Any]] | None = None) -> Rendered:
    full = _apply(tokenizer, tpl, messages, False, tools)
    spans: list[tuple[int, int]] = []
    last = len(messages) - 1
    for i, msg in enumerate(messages):
        if msg["role"] != "assistant":
            continue
        start_text = _apply(tokenizer, tpl, messages[:i], True, tools) if i else ""
        end_text = full if i == last else _apply(tokenizer, tpl, messages[: i + 1], False, tools)
        floor = spans[-1][1] if spans else 0
        if i and full.startswith(start_text) and full.startswith(end_text) and floor <= len(start_text) < len(end_text):
            a, b = len(start_text), len(end_text)
        else:
            a, b = _locate(full, msg["content"], floor, tpl)
        spans.append((a, _cut_after_marker(full, a, b, tpl.end_markers)))
    return Rendered(full[: spans[-1][1]], spans)


def tool_problem(example: dict[str, Any], tokenizer: Any, template: Template) -> tuple[str, str] | None:
    """Why ``template`` cannot render the tool use of a canonical example, as (what it uses, what goes wrong), or
    None when it can (or the example uses no tools). A chat template that renders the conversation the same with and
    without its tool definitions, or without its tool calls, or leaves a tool result out, cannot train tool use."""
    messages = example.get("messages") or example.get("prompt") or []
    tools = example.get("tools")
    calls = any(m.get("tool_calls") for m in messages)
    results = [m["content"] for m in messages if m["role"] == "tool"]
    used = ", ".join(n for n, u in (("tool definitions", tools), ("tool calls", calls), ("tool results", results)) if u)
    if not used:
        return None
    if template.kind != "chat":
        return used, f"data.template={template.name} is plain text, with no place for them"
    try:
        full = _apply(tokenizer, template, messages, False, tools)
        if tools and full == _apply(tokenizer, template, messages, False, None):
            return used, "the chat template ignores the tool definitions (tools=)"
        if calls and full == _apply(tokenizer, template, [{k: v for k, v in m.items() if k != "tool_calls"} for m in messages], False, tools):
            return used, "the chat template leaves the assistant's tool calls out"
    except InvalidRow as e:
        return used, str(e)
    missing = next((r for r in results if r not in full), None)
    if missing is not None:
        return used, f"the chat template leaves a tool result out ({missing[:40]!r})"
    return None


def _locate(full: str, content: str, floor: int, tpl: Template) -> tuple[int, int]:
    """Fallback when the template does not render prefixes consistently: find the content itself."""
    pos = full.find(content, floor)
    if pos < 0:
        raise DataError(
            "the chat template renders conversation prefixes inconsistently and changes assistant text, so the "
            "trained tokens cannot be located",
            hint="use data.template=chatml or another model.chat_template",
        )
    end = pos + len(content)
    for marker in tpl.end_markers:
        if marker and full.startswith(marker, end):
            return pos, end + len(marker)
    return pos, end


def _cut_after_marker(full: str, a: int, b: int, markers: tuple[str, ...]) -> int:
    """End of the trained span: just after the last end-of-turn marker (EOS) inside [a, b), else b."""
    best = -1
    for marker in markers:
        if marker:
            k = full.rfind(marker, a, b)
            if k >= 0:
                best = max(best, k + len(marker))
    return best if best >= 0 else b


def _close_with_eos(rendered: Rendered, eos: str) -> Rendered:
    """Make the text end with exactly one EOS, inside the last trained span."""
    text, spans = rendered.text, list(rendered.spans)
    a, b = spans[-1]
    text = text[:b]
    if not text.endswith(eos):
        text += eos
    spans[-1] = (a, len(text))
    return Rendered(text, spans)


def _render_text(messages: list[dict[str, Any]], tpl: Template) -> Rendered:
    """Alpaca, Arabic and custom templates: one block per user -> assistant exchange."""
    text = tpl.bos
    spans: list[tuple[int, int]] = []
    system = [m["content"] for m in messages if m["role"] == "system"]
    pending: list[dict[str, Any]] = []
    first = True
    for msg in messages:
        if msg["role"] == "system":
            continue
        if msg["role"] == "user":
            pending.append(msg)
            continue
        user = _merge_users(pending)
        pending = []
        prompt, after = _turn_parts(tpl, user, system if first else [], first)
        if not first:
            text += "\n\n"
        first = False
        text += prompt
        start = len(text)
        if tpl.response_marker:  # masked: up to and including the marker, and the template's whitespace after it
            k = prompt.rfind(tpl.response_marker) + len(tpl.response_marker)
            gap = prompt[k:]
            start = len(text) - len(prompt) + k + len(gap) - len(gap.lstrip())
        text += msg["content"] + tpl.eos
        spans.append((start, len(text)))
        text += after
    if not spans:
        raise InvalidRow("the conversation has no assistant turn")
    return Rendered(text, spans)


def _merge_users(users: list[dict[str, Any]]) -> dict[str, Any]:
    if not users:
        return {"role": "user", "content": ""}
    if len(users) == 1:
        return users[0]
    return {"role": "user", "content": "\n\n".join(user_text(u) for u in users)}


def _turn_parts(tpl: Template, user: dict[str, Any], system: list[str], first: bool) -> tuple[str, str]:
    """(prompt text of one exchange, template text after the response)."""
    head = "".join(s + "\n\n" for s in system)
    if tpl.name == "alpaca":
        extra = user.get("input", "")
        if first and not system:
            head = (ALPACA_PREAMBLE_INPUT if extra else ALPACA_PREAMBLE) + "\n\n"
        body = f"### Instruction:\n{user['content']}\n\n"
        if extra:
            body += f"### Input:\n{extra}\n\n"
        return head + body + f"{ALPACA_MARKER}\n", ""
    assert tpl.text is not None
    prefix, _, suffix = tpl.text.partition("{response}")
    has_input = any(f == "input" for _, f, _, _ in string.Formatter().parse(prefix))
    instruction = user["content"] if has_input else user_text(user)
    values = {"instruction": instruction, "input": user.get("input", "")}
    return head + prefix.format(**values), suffix.format(**values)
