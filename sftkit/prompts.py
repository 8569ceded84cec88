"""The prompt of a data row of any format ``prepare`` knows: the row's messages without its answer
(``sftkit generate --input-format jsonl`` and ``--input rows.jsonl``)."""

from __future__ import annotations

from typing import Any

from sftkit.errors import DataError

#: where the answer lives in rows of each answer-carrying format (a missing answer is fine for generate)
_ANSWER_FIELDS = {"alpaca": "output", "instruction": "response", "prompt_completion": "completion", "qa": "answer", "openhermes": "accepted_completion"}
#: a row without its answer column still names its format by these columns
_PROMPT_ONLY = [("instruction", "output"), ("prompt", "completion"), ("question", "answer")]


def _format_of(row: dict[str, Any]) -> str | None:
    from sftkit.data.formats import detect_format

    try:
        return detect_format([row])
    except DataError:
        return None


def row_prompt(row: Any, where: str = "row") -> list[dict[str, Any]]:
    """The prompt of one data row: its canonical messages without the final assistant answer.

    ``row`` is a string (one user message) or an object in any format ``prepare`` knows (alpaca,
    sharegpt, messages, prompt/completion, qa, dpo, ...); the answer column may be missing. A ``text`` row
    is one user message. Raises DataError (with ``where``) for a row that holds no usable prompt.
    """
    from sftkit.data.drops import DroppedRow, InvalidRow, Reason
    from sftkit.data.normalize import normalize_row

    if isinstance(row, str):
        return [{"role": "user", "content": row}]
    if not isinstance(row, dict):
        raise DataError(f"{where}: expected a JSON object or string, got {type(row).__name__}")
    probe, fmt = row, _format_of(row)
    if fmt is None:  # a row without its answer column: name the format by its prompt column
        for column, answer in _PROMPT_ONLY:
            if column in row:
                probe = {**row, answer: ""}
                fmt = _format_of(probe)
                break
    if fmt is None:
        from sftkit.data.formats import accepted_formats_text

        raise DataError(
            f"{where}: cannot tell the row format from its columns: {', '.join(sorted(row)) or '(none)'}",
            hint=f"accepted formats and their columns: {accepted_formats_text()}",
        )
    if fmt in _ANSWER_FIELDS and probe.get(_ANSWER_FIELDS[fmt]) is None:
        probe = {**probe, _ANSWER_FIELDS[fmt]: ""}
    assert fmt is not None
    try:
        examples = normalize_row(probe, fmt)
    except InvalidRow as e:
        raise DataError(f"{where}: {e}") from None
    except DroppedRow as e:  # an OpenHermes row marked bad_entry still has a prompt to answer; other drops have none
        if e.reason != Reason.BAD_ENTRY:
            raise DataError(f"{where}: {e.message or e.reason.explanation}", hint=e.reason.explanation) from None
        examples = normalize_row({**probe, "bad_entry": False}, fmt)
    if len(examples) != 1:
        raise DataError(
            f"{where}: a {fmt} row holds {len(examples)} prompts; generate takes one prompt per row",
            hint="flatten the rows first (one question per row)",
        )
    ex = examples[0]
    if "text" in ex:
        messages = [{"role": "user", "content": ex["text"]}]
    elif "messages" in ex:
        messages = list(ex["messages"])
        if messages and messages[-1]["role"] == "assistant":
            messages = messages[:-1]
    else:
        messages = list(ex["prompt"])
    if not messages or all(m["role"] == "system" for m in messages):
        raise DataError(f"{where}: the row has no user message to answer")
    return messages
