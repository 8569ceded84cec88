"""Each row format turned into canonical examples (see :mod:`sftkit.data.canonical`).

A row that cannot be turned into an example raises :class:`~sftkit.data.drops.InvalidRow` (an error, or
with ``data.skip_invalid`` a row dropped as ``invalid``); a row that is readable but must not be trained on
(OpenHermes ``bad_entry``) raises :class:`~sftkit.data.drops.DroppedRow`. Emptiness and duplicates are
judged later, on the canonical examples.
"""

from __future__ import annotations

import os
import re
from typing import Any, Callable

from sftkit.data.canonical import Noted
from sftkit.data.drops import DroppedRow, InvalidRow, Note, Reason
from sftkit.data.turns import (
    content_text,
    function_call_message,
    media_column,
    tool_calls,
    tool_definitions,
)

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
    "function_call": "assistant",  # ShareGPT (LLaMA-Factory): the assistant calls a tool
    "tool": "tool",
    "observation": "tool",  # ShareGPT (LLaMA-Factory): a tool's result
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


def to_message(turn: Any) -> dict[str, Any]:
    """One ``{role, content}`` or ShareGPT ``{from, value}`` turn -> a canonical message (content parts, tool calls and
    tool results read as :mod:`sftkit.data.turns` says)."""
    if not isinstance(turn, dict):
        raise InvalidRow(f"a conversation turn should be an object, got {type(turn).__name__}")
    raw_role = turn.get("role", turn.get("from"))
    content = turn.get("content", turn.get("value"))
    if not isinstance(raw_role, str):
        raise InvalidRow("a conversation turn has no 'role' (or 'from')")
    role = ROLES.get(raw_role.lower())
    if role is None:
        raise InvalidRow(f"unknown role {raw_role!r} (known: {', '.join(sorted(ROLES))})")
    if raw_role.lower() == "function_call":
        return function_call_message(content)
    msg: dict[str, Any] = {"role": role, "content": content_text(content, raw_role)}
    if role == "assistant" and turn.get("tool_calls"):
        msg["tool_calls"] = tool_calls(turn["tool_calls"])
    if role == "tool":
        msg.update({k: turn[k] for k in ("name", "tool_call_id") if isinstance(turn.get(k), str)})
    return msg


def to_messages(value: Any, key: str) -> list[dict[str, str]]:
    if not isinstance(value, list):
        raise InvalidRow(f"{key!r} should be a list of turns, got {type(value).__name__}")
    return [to_message(t) for t in value]


# --------------------------------------------------------------------------- SFT formats


def _history(row: dict[str, Any]) -> list[dict[str, Any]]:
    """The earlier exchanges of an Alpaca row (LLaMA-Factory's ``history``: ``[[instruction, response], ...]``)."""
    history = row.get("history")
    if history is None or history == [] or history == "":
        return []
    if not isinstance(history, list):
        raise InvalidRow(f"'history' should be a list of [instruction, response] pairs, got {type(history).__name__}")
    turns: list[dict[str, Any]] = []
    for pair in history:
        if not (isinstance(pair, list) and len(pair) == 2 and all(isinstance(x, str) for x in pair)):
            raise InvalidRow("each 'history' entry should be [instruction, response] (two texts)")
        turns += [_user(pair[0]), _assistant(pair[1])]
    return turns


def _alpaca(row):
    last = [_user(_text(row, "instruction"), _text(row, "input", False)), _assistant(_text(row, "output"))]
    return [{"messages": _with_system(row, [*_history(row), *last])}]


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


def _conversation(row: dict[str, Any], key: str) -> list[dict[str, Any]]:
    """A conversation in ``row[key]`` with the row's system prompt and tool definitions (``tools``)."""
    example: dict[str, Any] = {"messages": _with_system(row, to_messages(row.get(key), key))}
    tools = tool_definitions(row.get("tools"))
    if tools:
        example["tools"] = tools
    return [example]


def _messages(row):
    return _conversation(row, "messages")


def _sharegpt(row):
    return _conversation(row, "conversations")


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


#: where an answer starts in an HH transcript (TRL's HH processing cuts the common start here)
_HH_ANSWER = "\n\nAssistant: "


def _hh(row):
    chosen_text, rejected_text = _text(row, "chosen"), _text(row, "rejected")
    chosen, rejected = parse_hh(chosen_text), parse_hh(rejected_text)
    for name, turns in (("chosen", chosen), ("rejected", rejected)):
        if not turns or turns[-1]["role"] != "assistant":
            raise InvalidRow(f"the {name} transcript does not end with an Assistant turn")
    if chosen[:-1] == rejected[:-1]:
        return [{"prompt": chosen[:-1], "chosen": chosen[-1]["content"], "rejected": rejected[-1]["content"]}]
    # the transcripts differ before their last turn: as TRL's HH processing does, the prompt is their common start
    # up to its last "\n\nAssistant: ", and each answer the rest of its own transcript
    cut = chosen_text.rfind(_HH_ANSWER, 0, _shared(chosen_text, rejected_text))
    prompt = parse_hh(chosen_text[:cut]) if cut > 0 else []
    if not prompt:
        raise InvalidRow("chosen and rejected transcripts differ before their first Assistant turn: no prompt is shared")
    start = cut + len(_HH_ANSWER)
    example = {"prompt": prompt, "chosen": chosen_text[start:], "rejected": rejected_text[start:]}
    return Noted([example], [Note.PROMPT_FROM_COMMON_PREFIX])


def _shared(a: Any, b: Any) -> int:
    """How many items (characters, messages) two sequences share at their start."""
    if isinstance(a, str) and isinstance(b, str):
        return len(os.path.commonprefix([a, b]))
    return next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))


def split_common_prefix(chosen: Any, rejected: Any) -> tuple[Any, Any, Any]:
    """(prompt, chosen rest, rejected rest): the implicit prompt of a preference pair as TRL's ``extract_prompt`` finds
    it, for texts and for lists of messages alike: their longest common start (a text prompt gives its last space to
    the answers; when one is a start of the other, the last shared item goes to the answers)."""
    n = _shared(chosen, rejected)
    if n == min(len(chosen), len(rejected)) or (n and chosen[n - 1] == " "):
        n -= 1
    n = max(n, 0)
    return chosen[:n], chosen[n:], rejected[n:]


def _chosen_rejected(row):
    """TRL's preference rows with an implicit prompt: ``{chosen, rejected}`` as texts or as lists of messages."""
    chosen, rejected = row.get("chosen"), row.get("rejected")
    if isinstance(chosen, list) and isinstance(rejected, list):
        prompt, rest_c, rest_r = split_common_prefix(to_messages(chosen, "chosen"), to_messages(rejected, "rejected"))
        if not prompt:
            raise InvalidRow("chosen and rejected differ from their first turn: they share no prompt")
        for name, rest in (("chosen", rest_c), ("rejected", rest_r)):
            if len(rest) != 1 or rest[0]["role"] != "assistant":
                roles = ", ".join(m["role"] for m in rest)
                raise InvalidRow(f"after the turns chosen and rejected share, {name} should be one assistant turn, got: {roles}")
        return [{"prompt": _with_system(row, prompt), "chosen": rest_c[0]["content"], "rejected": rest_r[0]["content"]}]
    if isinstance(chosen, str) and isinstance(rejected, str):
        prompt, rest_c, rest_r = split_common_prefix(chosen, rejected)
        if not prompt.strip():
            raise InvalidRow("chosen and rejected differ from their first character: they share no prompt text")
        return [{"prompt": _with_system(row, [_user(prompt)]), "chosen": rest_c, "rejected": rest_r}]
    raise InvalidRow(
        f"'chosen' and 'rejected' should both be texts or both lists of turns, got {type(chosen).__name__} and {type(rejected).__name__}"
    )


# --------------------------------------------------------------------------- KTO formats (unpaired preference)

#: the columns a KTO label may be in: TRL's ``label``, LLaMA-Factory's ``kto_tag``
KTO_LABEL_KEYS = ("label", "kto_tag")
_LABEL_TEXT = {"true": True, "false": False}


def kto_label(row: dict[str, Any]) -> tuple[str, bool] | None:
    """(column, value) of the row's KTO label: a boolean (or the text ``true``/``false``, as CSV gives it) in
    ``label`` or ``kto_tag``; None when the row carries none (a ``label`` holding anything else is not one)."""
    for key in KTO_LABEL_KEYS:
        value = row.get(key)
        if isinstance(value, bool):
            return key, value
        if isinstance(value, str) and value.strip().lower() in _LABEL_TEXT:
            return key, _LABEL_TEXT[value.strip().lower()]
    return None


def _label(row: dict[str, Any]) -> bool:
    found = kto_label(row)
    if found is None:
        key = next((k for k in KTO_LABEL_KEYS if k in row), "label")
        raise InvalidRow(f"{key!r} should be true (desirable) or false (undesirable), got {row.get(key)!r}")
    return found[1]


def kto_example(row: dict[str, Any]) -> list[dict[str, Any]]:
    """TRL's unpaired preference row ``{prompt, completion, label}`` (prompt and completion as text or turns) -> one
    KTO example ``{prompt: [messages], completion: str, label: bool}``."""
    prompt = row.get("prompt")
    messages = to_messages(prompt, "prompt") if isinstance(prompt, list) else [_user(_text(row, "prompt"))]
    extra, completion = _response(row.get("completion"), "completion")
    return [{"prompt": _with_system(row, messages) + extra, "completion": completion, "label": _label(row)}]


def _sharegpt_kto(row):
    """LLaMA-Factory's KTO rows: ``messages`` (or ShareGPT ``conversations``) ending with the judged answer, and a
    ``label`` (or ``kto_tag``) saying whether that answer is desirable."""
    key = "messages" if "messages" in row else "conversations"
    turns = _with_system(row, to_messages(row.get(key), key))
    if not turns or turns[-1]["role"] != "assistant":
        raise InvalidRow(f"{key!r} should end with the assistant answer the label judges")
    return [{"prompt": turns[:-1], "completion": turns[-1]["content"], "label": _label(row)}]


def unpair(example: dict[str, Any]) -> list[dict[str, Any]]:
    """A DPO example -> two KTO examples (chosen: desirable, rejected: undesirable), as TRL's KTOTrainer unpairs
    paired preference data. A pair whose answers are the same text teaches nothing: dropped."""
    if example["chosen"] == example["rejected"]:
        raise DroppedRow(Reason.IDENTICAL_RESPONSES)
    prompt = example["prompt"]
    return [
        {"prompt": prompt, "completion": example["chosen"], "label": True},
        {"prompt": prompt, "completion": example["rejected"], "label": False},
    ]


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
    "chosen_rejected": _chosen_rejected,
    "kto": kto_example,
    "sharegpt_kto": _sharegpt_kto,
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
    media_column(row)
    examples = normalise(row)
    if not any("tools" in ex for ex in examples) and tool_definitions(row.get("tools")):
        raise InvalidRow(f"the row has 'tools', which are used with conversations (messages or conversations), not {fmt} rows")
    return examples
