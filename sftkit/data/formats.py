"""Row formats: detect them from the columns, and turn each row into a canonical example.

Canonical SFT example: ``{"messages": [{"role": "system"|"user"|"assistant", "content": str}, ...]}``,
ending with an assistant message, or ``{"text": str}`` for raw text. A user message may also carry
``"input"`` (the separate input of Alpaca-style rows): text templates with an input slot put it
there, chat templates see it appended to the content (see :func:`user_text`).

Canonical DPO example: ``{"prompt": [messages...], "chosen": str, "rejected": str}``.

A row that cannot be turned into an example raises :class:`InvalidRow` (an error, or a reject with
``--skip-invalid``); a row that is readable but must not be trained on (OpenHermes ``bad_entry``)
raises :class:`DroppedRow`. Emptiness and duplicates are judged later, on canonical examples.
"""

from __future__ import annotations

import importlib
import importlib.util
import re
import sys
from collections import Counter
from pathlib import Path
from typing import Any, Callable, Iterable, get_args

from sftkit.config import DataFormat
from sftkit.errors import ConfigError, DataError

DPO_FORMATS = ("dpo", "sharegpt_dpo", "hh")
#: the names config.DataFormat accepts, besides "auto"
FORMATS = tuple(f for f in get_args(DataFormat) if f != "auto")
SFT_FORMATS = tuple(f for f in FORMATS if f not in DPO_FORMATS)

#: the columns each format is recognised by (first match wins, in this order)
SIGNATURES: list[tuple[str, tuple[str, ...]]] = [
    ("sharegpt_dpo", ("conversations", "chosen", "rejected")),
    ("dpo", ("prompt", "chosen", "rejected")),
    ("hh", ("chosen", "rejected")),
    ("openhermes", ("prompt", "accepted_completion")),
    ("messages", ("messages",)),
    ("sharegpt", ("conversations",)),
    ("squad", ("paragraphs",)),
    ("squad", ("context", "question", "answers")),
    ("self_instruct", ("instruction", "instances")),
    ("alpaca", ("instruction", "output")),
    ("instruction", ("instruction", "response")),
    ("prompt_completion", ("prompt", "completion")),
    ("qa", ("question", "answer")),
    ("text", ("text",)),
]

ROLES = {
    "system": "system",
    "user": "user",
    "human": "user",
    "assistant": "assistant",
    "gpt": "assistant",
    "chatgpt": "assistant",
    "bard": "assistant",
    "bing": "assistant",
    "model": "assistant",
}


class InvalidRow(Exception):
    """The row cannot be turned into an example; the message says why."""


class DroppedRow(Exception):
    """The row is fine but must not be used; the message is the drop reason (counted)."""


# --------------------------------------------------------------------------- detection


def accepted_formats_text() -> str:
    return "; ".join(f"{name}: {', '.join(cols)}" for name, cols in SIGNATURES)


def detect_format(rows: Iterable[Any], trainer_type: str | None = None) -> str:
    """The format of ``rows`` (their first rows are enough) from their column names.

    Raises DataError listing the columns found and the accepted formats when nothing matches, or when
    the format does not fit ``trainer_type`` (an SFT format for DPO or the other way round).
    """
    keys: set[str] = set()
    votes: Counter[str] = Counter()
    for n, row in enumerate(rows):
        if n >= 50:
            break
        if isinstance(row, dict):
            keys |= set(row)
            match = _row_format(row)
            if match:
                votes[match] += 1
    if votes:
        name = votes.most_common(1)[0][0]  # the format most of the first rows have (ties: the first seen)
        if trainer_type:
            check_format_for_trainer(name, trainer_type)
        return name
    found = ", ".join(sorted(keys)) or "(none: rows are not JSON objects)"
    raise DataError(
        f"cannot tell the data format from its columns: {found}",
        hint=f"accepted formats and their columns: {accepted_formats_text()}. Rename columns with "
        "data.field_map or force one with --format",
    )


def _row_format(row: dict[str, Any]) -> str | None:
    for name, cols in SIGNATURES:
        if all(c in row for c in cols):
            return name
    return None


def check_format_for_trainer(fmt: str, trainer_type: str) -> None:
    if trainer_type == "dpo" and fmt not in DPO_FORMATS:
        raise DataError(
            f"format {fmt!r} has no preference pairs, but trainer_type is dpo",
            hint=f"DPO needs one of: {', '.join(DPO_FORMATS)} (prompt/chosen/rejected); or train with --set trainer_type=sft",
        )
    if trainer_type == "sft" and fmt in DPO_FORMATS:
        raise DataError(
            f"format {fmt!r} holds preference pairs, but trainer_type is sft",
            hint="use --set trainer_type=dpo, or data with one answer per prompt",
        )


def apply_field_map(row: Any, field_map: dict[str, str]) -> Any:
    if not field_map or not isinstance(row, dict):
        return row
    return {field_map.get(k, k): v for k, v in row.items()}


def check_field_map(rows: list[Any], field_map: dict[str, str]) -> None:
    """Every column named in ``data.field_map`` must exist (a mapping that matches nothing is an error)."""
    keys: set[str] = set()
    for row in rows[:50]:
        if isinstance(row, dict):
            keys |= set(row)
    missing = [k for k in field_map if k not in keys]
    if missing and keys:
        raise DataError(
            f"data.field_map names column(s) not in the data: {', '.join(missing)}",
            hint=f"columns found: {', '.join(sorted(keys))}",
        )


# --------------------------------------------------------------------------- helpers


def user_text(message: dict[str, Any]) -> str:
    """A user message's full text: its content, then its separate ``input`` (if any) after a blank line."""
    extra = message.get("input")
    return f"{message['content']}\n\n{extra}" if extra else message["content"]


def chat_messages(messages: list[dict[str, Any]]) -> list[dict[str, str]]:
    """Messages as chat templates take them (``input`` folded into the content)."""
    return [{"role": m["role"], "content": user_text(m) if m.get("input") else m["content"]} for m in messages]


def _text(row: dict[str, Any], key: str, required: bool = True) -> str:
    value = row.get(key)
    if value is None:
        if required:
            raise InvalidRow(f"missing {key!r}")
        return ""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    if not isinstance(value, str):
        raise InvalidRow(f"{key!r} should be text, got {type(value).__name__}")
    return value


def _user(content: str, extra: str = "") -> dict[str, Any]:
    msg: dict[str, Any] = {"role": "user", "content": content}
    if extra.strip():
        msg["input"] = extra
    return msg


def _assistant(content: str) -> dict[str, str]:
    return {"role": "assistant", "content": content}


def _with_system(row: dict[str, Any], messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    system = row.get("system")
    if isinstance(system, str) and system.strip() and not any(m["role"] == "system" for m in messages):
        return [{"role": "system", "content": system}, *messages]
    return messages


def to_message(turn: Any) -> dict[str, str]:
    """One ``{role, content}`` or ShareGPT ``{from, value}`` turn -> a canonical message."""
    if not isinstance(turn, dict):
        raise InvalidRow(f"a conversation turn should be an object, got {type(turn).__name__}")
    raw_role = turn.get("role", turn.get("from"))
    content = turn.get("content", turn.get("value"))
    if not isinstance(raw_role, str):
        raise InvalidRow("a conversation turn has no 'role' (or 'from')")
    role = ROLES.get(raw_role.lower())
    if role is None:
        raise InvalidRow(f"unknown role {raw_role!r} (known: {', '.join(sorted(ROLES))})")
    if content is None:
        content = ""
    if not isinstance(content, str):
        raise InvalidRow(f"a {raw_role} turn's content should be text, got {type(content).__name__}")
    return {"role": role, "content": content}


def to_messages(value: Any, key: str) -> list[dict[str, str]]:
    if not isinstance(value, list):
        raise InvalidRow(f"{key!r} should be a list of turns, got {type(value).__name__}")
    return [to_message(t) for t in value]


# --------------------------------------------------------------------------- SFT formats


def _alpaca(row):
    return [{"messages": [_user(_text(row, "instruction"), _text(row, "input", False)), _assistant(_text(row, "output"))]}]


def _instruction(row):
    return [{"messages": [_user(_text(row, "instruction"), _text(row, "input", False)), _assistant(_text(row, "response"))]}]


def _prompt_completion(row):
    prompt, completion = row.get("prompt"), row.get("completion")
    messages = to_messages(prompt, "prompt") if isinstance(prompt, list) else [_user(_text(row, "prompt"))]
    if isinstance(completion, list):
        messages += to_messages(completion, "completion")
    else:
        messages.append(_assistant(_text(row, "completion")))
    return [{"messages": messages}]


def _qa(row):
    context = _text(row, "context", False)
    question = _text(row, "question")
    return [{"messages": [_user(f"{context}\n\n{question}" if context.strip() else question), _assistant(_text(row, "answer"))]}]


def _messages(row):
    return [{"messages": _with_system(row, to_messages(row.get("messages"), "messages"))}]


def _sharegpt(row):
    return [{"messages": _with_system(row, to_messages(row.get("conversations"), "conversations"))}]


def _text_row(row):
    return [{"text": _text(row, "text")}]


def _openhermes(row):
    bad = row.get("bad_entry")
    if bad is True or (isinstance(bad, str) and bad.strip().lower() in ("true", "1", "yes")):
        raise DroppedRow("bad_entry")
    return [{"messages": [_user(_text(row, "prompt")), _assistant(_text(row, "accepted_completion"))]}]


def _squad(row):
    if "paragraphs" not in row:  # flat rows (HF "squad"): context, question, answers{text: [...]}
        return [_squad_qa(_text(row, "context"), row)]
    paragraphs = row.get("paragraphs")
    if not isinstance(paragraphs, list):
        raise InvalidRow("'paragraphs' should be a list")
    out = []
    for p in paragraphs:
        if not isinstance(p, dict) or not isinstance(p.get("qas"), list):
            raise InvalidRow("each paragraph needs 'context' and a list 'qas'")
        context = _text(p, "context")
        out.extend(_squad_qa(context, qa) for qa in p["qas"])
    return out


def _squad_qa(context: str, qa: Any) -> dict[str, Any]:
    if not isinstance(qa, dict):
        raise InvalidRow("a 'qas' entry should be an object")
    question = _text(qa, "question")
    answers = qa.get("answers")
    if isinstance(answers, dict):  # HF layout: {"text": [...], "answer_start": [...]}
        texts = answers.get("text") or []
    elif isinstance(answers, list):
        texts = [a.get("text", "") if isinstance(a, dict) else a for a in answers]
    else:
        raise InvalidRow("'answers' should be a list (or {text: [...]})")
    answer = texts[0] if texts else ""  # no answer (SQuAD 2 impossible question) -> empty, dropped and counted
    if not isinstance(answer, str):
        raise InvalidRow("an answer's text should be text")
    return {"messages": [_user(f"{context.strip()}\n\n{question.strip()}"), _assistant(answer)]}


def _self_instruct(row):
    instruction = _text(row, "instruction")
    instances = row.get("instances")
    if not isinstance(instances, list):
        raise InvalidRow("'instances' should be a list")
    out = []
    for inst in instances:
        if not isinstance(inst, dict):
            raise InvalidRow("each instance should be an object with 'input' and 'output'")
        out.append({"messages": [_user(instruction, _text(inst, "input", False)), _assistant(_text(inst, "output"))]})
    return out


# --------------------------------------------------------------------------- DPO formats


def _response(value: Any, key: str) -> tuple[list[dict[str, str]], str]:
    """(extra prompt turns, response text) from a chosen/rejected value: text, a turn, or a list of turns."""
    if isinstance(value, str):
        return [], value
    if isinstance(value, dict):
        msg = to_message(value)
        if msg["role"] != "assistant":
            raise InvalidRow(f"{key!r} should be an assistant turn, got role {msg['role']!r}")
        return [], msg["content"]
    if isinstance(value, list) and value:
        turns = to_messages(value, key)
        if turns[-1]["role"] != "assistant":
            raise InvalidRow(f"{key!r} should end with an assistant turn")
        return turns[:-1], turns[-1]["content"]
    raise InvalidRow(f"{key!r} should be text, a turn or a list of turns")


def _pair(prompt: list[dict[str, Any]], chosen: Any, rejected: Any) -> dict[str, Any]:
    c_extra, c_text = _response(chosen, "chosen")
    r_extra, r_text = _response(rejected, "rejected")
    if c_extra != r_extra:
        raise InvalidRow("chosen and rejected differ before their last assistant turn")
    return {"prompt": prompt + c_extra, "chosen": c_text, "rejected": r_text}


def _dpo(row):
    prompt = row.get("prompt")
    messages = to_messages(prompt, "prompt") if isinstance(prompt, list) else [_user(_text(row, "prompt"))]
    return [_pair(_with_system(row, messages), row.get("chosen"), row.get("rejected"))]


def _sharegpt_dpo(row):
    messages = to_messages(row.get("conversations"), "conversations")
    return [_pair(_with_system(row, messages), row.get("chosen"), row.get("rejected"))]


_HH_TURN = re.compile(r"\n\n(Human|Assistant): ?")


def parse_hh(transcript: str) -> list[dict[str, str]]:
    """An Anthropic HH transcript (``\\n\\nHuman: ...\\n\\nAssistant: ...``) -> messages."""
    if not transcript.startswith("\n\n"):
        transcript = "\n\n" + transcript.lstrip("\n")
    parts = _HH_TURN.split(transcript)
    if parts[0].strip():
        raise InvalidRow("an HH transcript should start with '\\n\\nHuman:'")
    return [
        {"role": "user" if who == "Human" else "assistant", "content": text}
        for who, text in zip(parts[1::2], parts[2::2], strict=True)
    ]


def _hh(row):
    chosen, rejected = parse_hh(_text(row, "chosen")), parse_hh(_text(row, "rejected"))
    for name, turns in (("chosen", chosen), ("rejected", rejected)):
        if not turns or turns[-1]["role"] != "assistant":
            raise InvalidRow(f"the {name} transcript does not end with an Assistant turn")
    if chosen[:-1] != rejected[:-1]:
        raise InvalidRow("chosen and rejected transcripts differ before their last Assistant turn")
    return [{"prompt": chosen[:-1], "chosen": chosen[-1]["content"], "rejected": rejected[-1]["content"]}]


NORMALISERS: dict[str, Callable[[dict[str, Any]], list[dict[str, Any]]]] = {
    "alpaca": _alpaca,
    "instruction": _instruction,
    "prompt_completion": _prompt_completion,
    "qa": _qa,
    "messages": _messages,
    "sharegpt": _sharegpt,
    "text": _text_row,
    "openhermes": _openhermes,
    "squad": _squad,
    "self_instruct": _self_instruct,
    "dpo": _dpo,
    "sharegpt_dpo": _sharegpt_dpo,
    "hh": _hh,
}


def normalize_row(row: Any, fmt: str) -> list[dict[str, Any]]:
    """One source row -> canonical examples (several for SQuAD articles and self-instruct tasks).

    Raises InvalidRow (cannot be used: an error, or a reject with --skip-invalid) or DroppedRow (counted).
    """
    if not isinstance(row, dict):
        raise InvalidRow(f"expected a JSON object, got {type(row).__name__}")
    try:
        return NORMALISERS[fmt](row)
    except KeyError:
        raise InvalidRow(f"unknown format {fmt!r}") from None


def check_example(example: dict[str, Any]) -> str | None:
    """Structural check of a canonical example: raise InvalidRow, or return a drop reason (``empty``...) or None."""
    if "text" in example:
        return "empty" if not example["text"].strip() else None
    if "messages" in example:
        messages = example["messages"]
        if not messages:
            return "empty"
        if not any(m["role"] == "assistant" for m in messages):
            raise InvalidRow("the conversation has no assistant turn")
        if messages[-1]["role"] != "assistant":
            raise InvalidRow("the conversation does not end with an assistant turn")
        if any(not m["content"].strip() for m in messages):
            return "empty"
        return None
    prompt = example["prompt"]
    if not prompt or any(not m["content"].strip() for m in prompt):
        return "empty"
    if prompt[-1]["role"] == "assistant":
        raise InvalidRow("the prompt ends with an assistant turn")
    if not example["chosen"].strip() or not example["rejected"].strip():
        return "empty"
    if example["chosen"] == example["rejected"]:
        return "identical_responses"
    return None


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


# --------------------------------------------------------------------------- custom formatter


def load_formatting_func(spec: str) -> Callable[[dict[str, Any]], Any]:
    """``module:function`` or ``path/to/file.py:function`` -> the function (``data.formatting_func``)."""
    target, sep, name = spec.rpartition(":")
    if not sep or not target or not name:
        raise ConfigError(f"data.formatting_func {spec!r} should be module:function or file.py:function")
    try:
        if target.endswith(".py"):
            path = Path(target).expanduser()
            if not path.is_file():
                raise ConfigError(f"data.formatting_func: file not found: {target}")
            module_spec = importlib.util.spec_from_file_location(f"sftkit_user_formatter_{path.stem}", path)
            assert module_spec and module_spec.loader
            module = importlib.util.module_from_spec(module_spec)
            sys.modules[module_spec.name] = module
            module_spec.loader.exec_module(module)
        else:
            module = importlib.import_module(target)
    except ImportError as e:
        raise ConfigError(f"data.formatting_func: cannot import {target!r} ({e})") from None
    fn = getattr(module, name, None)
    if not callable(fn):
        raise ConfigError(f"data.formatting_func: {target!r} has no function {name!r}")
    return fn


def formatting_func_source(spec: str) -> str:
    """Text identifying the formatter's code, for the cache fingerprint: its module file and its own source.

    A function defined in a notebook has no module file; its source (or, failing that, its byte code)
    still changes the fingerprint when it is edited, so a stale prepared dataset is never reused.
    """
    import inspect

    target = spec.rpartition(":")[0]
    path = Path(target).expanduser() if target.endswith(".py") else None
    if path is None:
        try:
            spec_ = importlib.util.find_spec(target)
        except (ImportError, ValueError):
            spec_ = None
        origin = getattr(spec_, "origin", None) if spec_ else None
        path = Path(origin) if origin else None
    parts = [path.read_text(encoding="utf-8") if path and path.is_file() else spec]
    fn = load_formatting_func(spec)
    try:
        parts.append(inspect.getsource(fn))
    except (OSError, TypeError):
        code = getattr(fn, "__code__", None)
        parts.append(repr((code.co_code, code.co_consts, code.co_names)) if code else repr(fn))
    return "\n".join(parts)


def normalize_custom(row: Any, fn: Callable[[dict[str, Any]], Any], trainer_type: str) -> list[dict[str, Any]]:
    """Run ``data.formatting_func`` on a row: text -> raw text example; a list of turns -> a conversation;
    a dict -> a canonical example (``{"prompt", "chosen", "rejected"}`` for DPO)."""
    try:
        out = fn(row)
    except Exception as e:  # noqa: BLE001 - user code: any failure makes the row invalid
        raise InvalidRow(f"data.formatting_func failed: {type(e).__name__}: {e}") from None
    if trainer_type == "dpo":
        if not isinstance(out, dict) or not {"prompt", "chosen", "rejected"} <= set(out):
            raise InvalidRow("for DPO, data.formatting_func must return {prompt, chosen, rejected}")
        return _dpo(out)
    if isinstance(out, str):
        return [{"text": out}]
    if isinstance(out, list):
        return [{"messages": to_messages(out, "formatting_func result")}]
    if isinstance(out, dict) and "messages" in out:
        return [{"messages": to_messages(out["messages"], "messages")}]
    raise InvalidRow(f"data.formatting_func returned {type(out).__name__}; expected text or a list of turns")
