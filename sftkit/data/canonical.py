"""The canonical example every format is turned into, and what is done to it before it is rendered.

Canonical SFT example: ``{"messages": [{"role": "system"|"user"|"assistant"|"tool", "content": str}, ...]}``,
ending with an assistant message, or ``{"text": str}`` for raw text. A user message may also carry
``"input"`` (the separate input of Alpaca-style rows): text templates with an input slot put it
there, chat templates see it appended to the content (see :func:`user_text`). Tool use (see
:mod:`sftkit.data.turns`): an assistant message may carry ``"tool_calls"`` (its content may then be empty), a
``tool`` message is a tool's result (with ``"name"``/``"tool_call_id"`` when given), and the example may carry
``"tools"``, the tool definitions the chat template is given.

Canonical DPO example: ``{"prompt": [messages...], "chosen": str, "rejected": str}``.

Canonical KTO example: ``{"prompt": [messages...], "completion": str, "label": bool}`` (``label``: the completion
is desirable).
"""

from __future__ import annotations

from typing import Any, Callable

from sftkit.data.drops import InvalidRow, Note, Reason


def user_text(message: dict[str, Any]) -> str:
    """A user message's full text: its content, then its separate ``input`` (if any) after a blank line."""
    extra = message.get("input")
    return f"{message['content']}\n\n{extra}" if extra else message["content"]


class Noted(list):
    """The examples made of one row, with the :class:`~sftkit.data.drops.Note` s the manifest counts for it."""

    def __init__(self, examples: list[dict[str, Any]], notes: list[Note]) -> None:
        super().__init__(examples)
        self.notes = list(notes)


def chat_messages(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Messages as chat templates take them (``input`` folded into the content; tool calls and names kept)."""
    return [{**{k: v for k, v in m.items() if k != "input"}, "content": user_text(m)} for m in messages]


def check_example(example: dict[str, Any]) -> Reason | None:
    """Structural check of a canonical example: raise InvalidRow, or return why to drop it (``empty``...) or None."""
    if "text" in example:
        return Reason.EMPTY if not example["text"].strip() else None
    if "messages" in example:
        messages = example["messages"]
        if not messages:
            return Reason.EMPTY
        if not any(m["role"] == "assistant" for m in messages):
            raise InvalidRow("the conversation has no assistant turn")
        if messages[-1]["role"] != "assistant":
            raise InvalidRow("the conversation does not end with an assistant turn")
        if any(_empty(m) for m in messages):
            return Reason.EMPTY
        return None
    prompt = example["prompt"]
    if not prompt or any(_empty(m) for m in prompt):
        return Reason.EMPTY
    if prompt[-1]["role"] == "assistant":
        raise InvalidRow("the prompt ends with an assistant turn")
    if "completion" in example:
        return Reason.EMPTY if not example["completion"].strip() else None
    if not example["chosen"].strip() or not example["rejected"].strip():
        return Reason.EMPTY
    if example["chosen"] == example["rejected"]:
        return Reason.IDENTICAL_RESPONSES
    return None


def _empty(message: dict[str, Any]) -> bool:
    """A message with nothing in it (an assistant message that only calls tools is not empty)."""
    return not message["content"].strip() and not message.get("tool_calls")


def add_system_prompt(example: dict[str, Any], system_prompt: str | None) -> dict[str, Any]:
    """``data.system_prompt`` as a first system message where the conversation has none."""
    if not system_prompt:
        return example
    key = "messages" if "messages" in example else "prompt" if "prompt" in example else None
    if key is None or any(m["role"] == "system" for m in example[key]):
        return example
    return {**example, key: [{"role": "system", "content": system_prompt}, *example[key]]}


def map_text(example: dict[str, Any], fn: Callable[[str], str]) -> dict[str, Any]:
    """Apply ``fn`` to every piece of text of a canonical example."""
    out: dict[str, Any] = {}
    for key, value in example.items():
        if isinstance(value, str):
            out[key] = fn(value)
        elif isinstance(value, list):
            out[key] = [{k: fn(v) if k in ("content", "input") else v for k, v in m.items()} for m in value]
        else:
            out[key] = value
    return out
