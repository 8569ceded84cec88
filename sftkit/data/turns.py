"""What a conversation turn holds besides plain text: content-part lists, tool calls, tool results, tool definitions.

Rows come in the shapes users already have, and each becomes the one transformers' chat templates take:

- content as a list of parts (OpenAI, transformers): the text parts, joined with newlines (as vLLM joins them for
  text-only models); a part that is not text (an image, audio, a video, a file) makes the row
  :attr:`~sftkit.data.drops.Reason.NON_TEXT`, a counted drop, since a text-only model cannot see it;
- tool calls: OpenAI's ``tool_calls`` on an assistant message and ShareGPT's ``function_call`` turn (LLaMA-Factory:
  ``{"name", "arguments"}`` as JSON text, or a list of them) both become ``tool_calls: [{"type": "function",
  "function": {"name", "arguments": {...}}}]``, with the arguments as an object (JSON text is parsed), as
  transformers' chat templates expect;
- tool results: ``tool`` messages and ShareGPT ``observation`` turns become ``{"role": "tool", "content"}`` (with the
  message's ``name`` and ``tool_call_id`` when it has them);
- tool definitions (a ``tools`` column, a list or its JSON text): each ``{"type": "function", "function": {...}}``;
  a bare function schema (``{"name", "description", "parameters"}``, as LLaMA-Factory stores them) is wrapped so.
"""

from __future__ import annotations

import json
from typing import Any

from sftkit.data.drops import DroppedRow, InvalidRow, Reason
from sftkit.data.readers import snippet

#: media columns (LLaMA-Factory's images/videos/audios, and singular forms): a row holding any is not text-only
MEDIA_COLUMNS = ("images", "videos", "audios", "image", "video", "audio")


def content_text(content: Any, role: str) -> str:
    """A turn's content as text: text as it is, None as "", a list of parts as its text parts joined by newlines."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise InvalidRow(f"a {role} turn's content should be text or a list of parts, got {type(content).__name__}")
    texts = []
    for part in content:
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text":
            text = part.get("text")
            if not isinstance(text, str):
                raise InvalidRow(f"a {role} turn's text part has no text (got {type(text).__name__})")
            texts.append(text)
        elif isinstance(kind, str):
            raise DroppedRow(Reason.NON_TEXT, f"a {role} turn holds a {kind!r} part")
        else:
            raise InvalidRow(f"a {role} turn's content parts should be objects with a 'type', got {_snippet(part)}")
    return "\n".join(texts)


def media_column(row: dict[str, Any]) -> None:
    """Raise DroppedRow (non_text) when the row carries images, videos or audio in a column of its own."""
    for key in MEDIA_COLUMNS:
        value = row.get(key)
        if value is not None and value != [] and value != "":
            count = f"{len(value)} item(s)" if isinstance(value, list) else "a value"
            raise DroppedRow(Reason.NON_TEXT, f"column {key!r} holds {count}")


def tool_calls(value: Any) -> list[dict[str, Any]]:
    """OpenAI ``tool_calls`` (or LLaMA-Factory's ``{name, arguments}`` list) -> transformers' tool calls."""
    if isinstance(value, dict):
        value = [value]
    if not isinstance(value, list) or not value:
        raise InvalidRow(f"tool calls should be a list of {{name, arguments}} objects, got {_snippet(value)}")
    return [_tool_call(call) for call in value]


def _tool_call(call: Any) -> dict[str, Any]:
    if not isinstance(call, dict):
        raise InvalidRow(f"a tool call should be an object, got {_snippet(call)}")
    function = call.get("function", call)
    if not isinstance(function, dict) or not isinstance(function.get("name"), str) or not function["name"].strip():
        raise InvalidRow(f"a tool call has no function name: {_snippet(call)}")
    arguments = function.get("arguments", {})
    if isinstance(arguments, str):
        try:
            arguments = json.loads(arguments) if arguments.strip() else {}
        except json.JSONDecodeError as e:
            raise InvalidRow(f"the arguments of tool call {function['name']!r} are not JSON ({e.msg}): {_snippet(arguments)}") from None
    if not isinstance(arguments, dict):
        raise InvalidRow(f"the arguments of tool call {function['name']!r} should be an object, got {_snippet(arguments)}")
    out: dict[str, Any] = {"type": "function", "function": {"name": function["name"], "arguments": arguments}}
    if isinstance(call.get("id"), str):
        out["id"] = call["id"]
    return out


def function_call_message(value: Any) -> dict[str, Any]:
    """A ShareGPT ``function_call`` turn (JSON text of ``{name, arguments}`` or a list of them) -> an assistant
    message with tool calls."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as e:
            raise InvalidRow(f"a function_call turn should hold JSON {{name, arguments}} ({e.msg}): {_snippet(value)}") from None
    return {"role": "assistant", "content": "", "tool_calls": tool_calls(value)}


def tool_definitions(value: Any) -> list[dict[str, Any]] | None:
    """A ``tools`` column (a list of tool schemas, or its JSON text) -> transformers' tools; None when empty."""
    if value is None or value == "" or value == []:
        return None
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as e:
            raise InvalidRow(f"'tools' should be a list of tool schemas (or its JSON text) ({e.msg}): {_snippet(value)}") from None
    if isinstance(value, dict):
        value = [value]
    if not isinstance(value, list):
        raise InvalidRow(f"'tools' should be a list of tool schemas, got {_snippet(value)}")
    out = []
    for tool in value:
        if isinstance(tool, dict) and isinstance(tool.get("function"), dict) and isinstance(tool["function"].get("name"), str):
            out.append({**tool, "type": tool.get("type", "function")})
        elif isinstance(tool, dict) and isinstance(tool.get("name"), str):
            out.append({"type": "function", "function": tool})
        else:
            raise InvalidRow(f"a tool in 'tools' should be a function schema with a 'name', got {_snippet(tool)}")
    return out or None


def uses_tools(example: dict[str, Any]) -> bool:
    """Whether a canonical example has tool definitions, tool calls or tool results."""
    if example.get("tools"):
        return True
    turns = example.get("messages") or example.get("prompt") or []
    return any(m.get("tool_calls") or m["role"] == "tool" for m in turns)


def _snippet(value: Any) -> str:
    return snippet(value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str))
