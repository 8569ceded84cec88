"""Row formats: their names, the columns each is recognised by, and telling which one rows are in.

How each format becomes canonical examples is :mod:`sftkit.data.normalize`.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from typing import Any, Iterable, get_args

from sftkit.config import DataFormat
from sftkit.data.normalize import kto_label
from sftkit.errors import DataError

DPO_FORMATS = ("dpo", "sharegpt_dpo", "hh", "chosen_rejected")
#: unpaired preference: one answer per row labelled desirable or undesirable (KTO)
KTO_FORMATS = ("kto", "sharegpt_kto")
#: the names config.DataFormat accepts, besides "auto"
FORMATS = tuple(f for f in get_args(DataFormat) if f != "auto")
SFT_FORMATS = tuple(f for f in FORMATS if f not in DPO_FORMATS and f not in KTO_FORMATS)

#: the columns each format is recognised by (first match wins, in this order)
SIGNATURES: list[tuple[str, tuple[str, ...]]] = [
    ("sharegpt_dpo", ("conversations", "chosen", "rejected")),
    ("dpo", ("prompt", "chosen", "rejected")),
    ("hh", ("chosen", "rejected")),  # only when chosen is a Human:/Assistant: transcript
    ("chosen_rejected", ("chosen", "rejected")),  # TRL's implicit prompt: the common start of chosen and rejected
    ("openhermes", ("prompt", "accepted_completion")),
    # KTO rows are SFT-shaped rows with a label: recognised before their SFT twins, and only when the label is one
    ("kto", ("prompt", "completion", "label")),
    ("kto", ("prompt", "completion", "kto_tag")),
    ("sharegpt_kto", ("messages", "label")),
    ("sharegpt_kto", ("messages", "kto_tag")),
    ("sharegpt_kto", ("conversations", "label")),
    ("sharegpt_kto", ("conversations", "kto_tag")),
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


@dataclass(frozen=True)
class Detection:
    """A detected format and why it was chosen (the manifest's ``format_reason``)."""

    format: str
    reason: str


def detect_format(rows: Iterable[Any], trainer_type: str | None = None) -> str:
    """The format of ``rows`` (their first rows are enough) from their column names (see :func:`explain_format`;
    without its check that the rows are safe to train on, for reading rows to evaluate or prompt with)."""
    return _detect(rows, trainer_type)[0].format


def explain_format(rows: Iterable[Any], trainer_type: str | None = None, wheres: list[str] | None = None) -> Detection:
    """The format to train on ``rows`` in (their first 50 are looked at) from their columns, and why: which columns,
    in how many rows, and what else the rows would fit (so an ambiguous guess says what it chose).

    Raises DataError listing the columns found and the accepted formats when nothing matches (or naming the TRL type
    the rows are, when sftkit cannot train it), when the format does not fit ``trainer_type`` (an SFT format for DPO
    or the other way round), or when the guess is not safe to train on (:func:`check_confident`: multiple-choice rows
    whose answer is only a choice's label). ``wheres`` (each row's ``file:line``) places that error.
    """
    detection, head = _detect(rows, trainer_type)
    check_confident(detection.format, head, wheres)
    return detection


def _detect(rows: Iterable[Any], trainer_type: str | None) -> tuple[Detection, list[Any]]:
    """(the detection, the rows looked at)."""
    keys: set[str] = set()
    votes: Counter[str] = Counter()
    columns: dict[str, tuple[str, ...]] = {}
    also: dict[str, tuple[str, ...]] = {}
    head: list[Any] = []
    for n, row in enumerate(rows):
        if n >= 50:
            break
        head.append(row)
        if isinstance(row, dict):
            keys |= set(row)
            matches = _row_matches(row)
            if matches:
                (name, cols), *others = matches
                votes[name] += 1
                columns.setdefault(name, cols)
                also.update((o, c) for o, c in others if not set(c) <= set(cols))
    if not votes:
        _refuse_untrainable(keys)
        found = ", ".join(sorted(keys)) or "(none: rows are not JSON objects)"
        raise DataError(
            f"cannot tell the data format from its columns: {found}",
            hint=f"accepted formats and their columns: {accepted_formats_text()}. Rename columns with "
            "data.field_map or set one with data.format",
        )
    name, n = votes.most_common(1)[0]  # the format most of the first rows have (ties: the first seen)
    total = sum(1 for r in head if isinstance(r, dict))
    reason = f"columns {', '.join(columns[name])} in {n} of {total} rows looked at"
    if name in _WHY:
        reason += f" ({_WHY[name]})"
    others = [f"{o} ({k} rows)" for o, k in votes.most_common() if o != name]
    others += [f"{o} (columns {', '.join(c)})" for o, c in also.items() if o != name and o not in votes]
    if others:
        reason += f"; the rows also fit {', '.join(others)}: set data.format to use another"
    if trainer_type:
        check_format_for_trainer(name, trainer_type)
    return Detection(name, reason), head


#: what a format's columns alone do not say
_WHY = {
    "hh": "chosen holds a Human:/Assistant: transcript",
    "chosen_rejected": "no prompt column: the prompt is the start chosen and rejected share",
}


def _row_matches(row: dict[str, Any]) -> list[tuple[str, tuple[str, ...]]]:
    """Every (format, columns) signature the row fits, in SIGNATURES order."""
    return [(name, cols) for name, cols in SIGNATURES if all(c in row for c in cols) and _fits(name, row)]


def _fits(name: str, row: dict[str, Any]) -> bool:
    """What the columns alone do not tell: a KTO label that is one, an HH transcript."""
    if name in KTO_FORMATS:
        return kto_label(row) is not None
    if name == "hh":
        chosen = row.get("chosen")
        return isinstance(chosen, str) and chosen.lstrip("\n ").startswith("Human:")
    return True


def _refuse_untrainable(keys: set[str]) -> None:
    """Rows of a TRL dataset type that sftkit cannot train: one line saying which type, and what to do instead."""
    if {"prompt", "completions", "labels"} <= keys:
        raise DataError(
            "the rows are stepwise supervision (prompt, completions, labels: TRL's type for process reward models), "
            "which sftkit does not train: it trains on answers (sft), preference pairs (dpo) and labelled answers (kto)",
            hint="train a process reward model with TRL's PRMTrainer; for SFT, write each prompt with its correct "
            "steps as a prompt/completion row",
        )
    if "prompt" in keys and not keys & {"completion", "chosen", "rejected", "response", "output", "accepted_completion"}:
        raise DataError(
            "the rows are prompt-only (a prompt column and no answer: TRL's prompt-only type), so there is nothing to train on",
            hint="`sftkit generate --input FILE` answers them; to train, add a completion column (sft) or chosen and "
            "rejected (dpo)",
        )


# --------------------------------------------------------------------------- confidence: guesses not to make

#: column names that hold the choices of a multiple-choice question (option_a, "Option 1", mc_answer2, sol1, A, ...)
_CHOICE_COLUMN = re.compile(r"(options?|choices?|candidates?|endings?|mc_answer|sol|answer_?option)_?[a-z0-9]?|[a-e]", re.IGNORECASE)
#: a bare choice label: 2, "2", "B", "(b)", "C.", or an Arabic letter (أ ب ج د ه)
_LABEL = re.compile(r"\s*[\(\[]?([0-9]{1,2}|[A-Za-z]|[\u0621-\u064a])[\)\]\.]?\s*")
_ARABIC_LETTERS = "أبجده"
#: the answer column of the formats whose rows are one question and its answer
ANSWER_COLUMNS = {"qa": "answer", "alpaca": "output", "instruction": "response", "prompt_completion": "completion"}


def check_confident(name: str, rows: list[Any], wheres: list[str] | None = None) -> None:
    """Refuse a detected format whose answers are only the labels of choices given in other columns (multiple choice:
    ``answer: 2`` or ``"B"`` next to ``choices``/``option_a``...): training on them would teach the label, not the
    answer. Forcing ``data.format`` trains on the labels as they are."""
    answer = ANSWER_COLUMNS.get(name)
    if answer is None:
        return
    dicts = [(k, r) for k, r in enumerate(rows) if isinstance(r, dict)]
    found = [(k, r, choices) for k, r in dicts if (choices := _labelled_choices(r, answer))]
    if not dicts or len(found) * 2 < len(dicts):
        return
    k, row, choices = found[0]
    where = f"{wheres[k]}: " if wheres and k < len(wheres) else ""
    raise DataError(
        f"{where}the rows look like multiple choice ({len(found)} of {len(dicts)} rows looked at): {answer!r} is "
        f"{row[answer]!r}, a label of the choices in {choices}, so as {name} rows sftkit would train on the label, not the answer",
        hint=f"turn each row into the question and its answer's text (data.formatting_func), or set data.format={name} "
        "to train on the labels as they are",
    )


def _labelled_choices(row: dict[str, Any], answer: str) -> str | None:
    """The column(s) holding the choices the row's answer labels (as text for a message), or None."""
    value = row.get(answer)
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        return None
    if isinstance(value, str) and not _LABEL.fullmatch(value):
        return None
    index = _label_index(value)
    for key, choices in row.items():
        if key == answer:
            continue
        if isinstance(choices, dict) and isinstance(choices.get("text"), list):  # {"text": [...], "label": [...]} (ARC)
            choices = choices["text"]
        listed = isinstance(choices, list) and 2 <= len(choices) <= 26 and all(isinstance(c, (str, int, float)) for c in choices)
        if listed and index <= len(choices):
            return repr(key)
    named = [k for k in row if k != answer and _CHOICE_COLUMN.fullmatch(k.strip().replace(" ", "_").replace("-", "_"))]
    if len(named) >= 2 and index <= len(named):
        return ", ".join(repr(k) for k in named)
    return None


def _label_index(value: int | str) -> int:
    """The position a label names (0-based or 1-based: both must fit the choices)."""
    if isinstance(value, int):
        return value
    text = value.strip().strip("()[].")
    if text.isdigit():
        return int(text)
    if text in _ARABIC_LETTERS:
        return _ARABIC_LETTERS.index(text)
    return ord(text.upper()) - ord("A") if text.isascii() else 99


#: what to do with rows labelled for KTO when the trainer would ignore the label
KTO_LABEL_HINT = (
    "train on the labels with --trainer-type kto (trainer_type: kto); to fine-tune on every row whatever its label, "
    "rename the label column away with data.field_map (e.g. {label: quality})"
)


def check_format_for_trainer(fmt: str, trainer_type: str) -> None:
    if fmt in KTO_FORMATS and trainer_type != "kto":
        raise DataError(
            f"format {fmt!r} holds answers labelled desirable or undesirable (KTO), but trainer_type is {trainer_type}",
            hint=KTO_LABEL_HINT,
        )
    if trainer_type == "kto" and fmt not in KTO_FORMATS + DPO_FORMATS:
        raise DataError(
            f"format {fmt!r} has no desirable/undesirable labels, but trainer_type is kto",
            hint="KTO needs rows with a true/false label: {prompt, completion, label}, or messages/conversations with "
            "label (or kto_tag); preference pairs (prompt/chosen/rejected) are unpaired for it. Or set trainer_type=sft",
        )
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


def check_unlabelled(row: Any, where: str, trainer_type: str) -> None:
    """An SFT row carrying a KTO label (``data.format`` forced to an SFT format, or a labelled row among unlabelled
    ones) would be trained on whatever its label says: an error naming the row."""
    if trainer_type != "sft" or not isinstance(row, dict):
        return
    found = kto_label(row)
    if found is not None:
        key, value = found
        raise DataError(
            f"{where}: the row is labelled for KTO ({key}: {str(value).lower()}), but trainer_type is sft, which would "
            "train on it whatever its label",
            hint=KTO_LABEL_HINT,
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

