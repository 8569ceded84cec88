"""Each row format turned into canonical examples (see :mod:`sftkit.data.canonical`).

A row that cannot be turned into an example raises :class:`~sftkit.data.drops.InvalidRow` (an error, or
with ``data.skip_invalid`` a row dropped as ``invalid``); a row that is readable but must not be trained on
(OpenHermes ``bad_entry``) raises :class:`~sftkit.data.drops.DroppedRow`. Emptiness and duplicates are
judged later, on the canonical examples.
"""

from __future__ import annotations

import re
from typing import Any, Callable

from sftkit.data.drops import DroppedRow, InvalidRow, Reason

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


# --------------------------------------------------------------------------- turns


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
        raise DroppedRow(Reason.BAD_ENTRY)
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


def dpo_example(row: dict[str, Any]) -> list[dict[str, Any]]:
    """A ``{prompt, chosen, rejected}`` row (prompt as text or turns) -> one DPO example."""
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
    "dpo": dpo_example,
    "sharegpt_dpo": _sharegpt_dpo,
    "hh": _hh,
}


def normalize_row(row: Any, fmt: str) -> list[dict[str, Any]]:
    """One source row -> canonical examples (several for SQuAD articles and self-instruct tasks).

    Raises InvalidRow (cannot be used: an error, or dropped as invalid with data.skip_invalid) or DroppedRow.
    """
    if not isinstance(row, dict):
        raise InvalidRow(f"expected a JSON object, got {type(row).__name__}")
    normalise = NORMALISERS.get(fmt)
    if normalise is None:
        raise InvalidRow(f"unknown format {fmt!r}")
    return normalise(row)
