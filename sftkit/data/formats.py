"""Row formats: their names, the columns each is recognised by, and telling which one rows are in.

How each format becomes canonical examples is :mod:`sftkit.data.normalize`.
"""

from __future__ import annotations

from collections import Counter
from typing import Any, Iterable, get_args

from sftkit.config import DataFormat
from sftkit.errors import DataError

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
        "data.field_map or set one with data.format",
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
            hint=f"DPO needs one of: {', '.join(DPO_FORMATS)} (prompt/chosen/rejected); or set trainer_type=sft",
        )
    if trainer_type == "sft" and fmt in DPO_FORMATS:
        raise DataError(
            f"format {fmt!r} holds preference pairs, but trainer_type is sft",
            hint="set trainer_type=dpo, or use data with one answer per prompt",
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

