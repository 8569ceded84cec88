"""Why a row is not used: the one list of reasons, and the tally that writes each dropped row down.

Every example read is kept, dropped for one of the :class:`Reason` codes below, or left over by
``data.max_rows``. The last is a cap, not a drop: nothing is wrong with those rows (most were never even
tokenised, as encoding stops once enough rows are kept), so they are only counted, as ``capped``. For each
source (train, and validation when it is a separate file or split)::

    rows_in == rows_kept + sum(dropped.values()) + capped

Each dropped row is written to ``dropped.jsonl`` in the prepared folder (:data:`sftkit.layout.DROPPED`),
one JSON object a line: train before validation, and in each the rows dropped while reading (in file order)
before those dropped while tokenising::

    {"reason": "duplicate", "explanation": "the same example as an earlier row ...", "where": "data.jsonl:7",
     "split": "train", "message": "same as data.jsonl:3", "row": {... the row as read ...},
     "example": {... the example sftkit made of it ...}}

``message`` says what exactly (the error of an ``invalid`` row, the lengths of a ``too_long`` one); it and
``example`` (present once the row was turned into an example) are left out when there is nothing to say.
The manifest counts the same codes under ``dropped``.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from sftkit.errors import DataError


class _Explained(str, Enum):
    """A code (the member's value, as written in files) with its explanation for people."""

    explanation: str

    def __new__(cls, code: str, explanation: str) -> _Explained:
        member = str.__new__(cls, code)
        member._value_ = code
        member.explanation = explanation
        return member

    def __str__(self) -> str:
        return self.value


class Reason(_Explained):
    """Why a row was dropped. The value is the code in ``dropped.jsonl`` and the manifest's ``dropped`` counts."""

    INVALID = (
        "invalid",
        "cannot be read or turned into an example (message says why); skipped because data.skip_invalid=true",
    )
    BAD_ENTRY = ("bad_entry", "marked bad_entry: true in the data (OpenHermes)")
    EMPTY = ("empty", "nothing to train on: an empty row, message or answer (e.g. an unanswerable SQuAD question)")
    IDENTICAL_RESPONSES = ("identical_responses", "chosen and rejected are the same text, so the pair teaches nothing (DPO)")
    DUPLICATE = ("duplicate", "the same example as an earlier row (data.drop_duplicates=true)")
    TOO_LONG = (
        "too_long",
        "longer than the length limit (model.max_seq_length; DPO: dpo.max_prompt_length, dpo.max_length; "
        "KTO: kto.max_prompt_length, kto.max_length) "
        "and data.too_long=drop",
    )
    PROMPT_TOO_LONG = (
        "prompt_too_long",
        "cut to model.max_seq_length (data.too_long=truncate), nothing of the answer was left to train on",
    )
    NO_TRAINED_TOKENS = ("no_trained_tokens", "no token of the row is trained on (the loss mask covers all of it)")
    NON_TEXT = (
        "non_text",
        (
            "holds images, audio, video or other non-text content (a content part, or an images/videos/audios column) "
            "that a text-only model cannot see; training on its text alone would teach answers about content it never saw"
        ),
    )


class Note(_Explained):
    """Something done to a row that was kept, which the user should know: counted in the manifest's ``notes``."""

    PROMPT_FROM_COMMON_PREFIX = (
        "prompt_from_common_prefix",
        (
            "an HH pair whose transcripts differ before their last Assistant turn: the prompt is the turns both share, "
            "each answer the rest of its own transcript (as TRL's HH processing does)"
        ),
    )


class InvalidRow(Exception):
    """The row cannot be turned into an example; the message says why. An error, or with
    ``data.skip_invalid`` a row dropped as :attr:`Reason.INVALID`."""


class DroppedRow(Exception):
    """The row is readable but must not be used; ``reason`` says why (the message is its code)."""

    def __init__(self, reason: Reason, message: str | None = None) -> None:
        super().__init__(reason.value)
        self.reason = reason
        self.message = message


def skip_invalid_hint() -> str:
    """The hint under an invalid-row error (it names the setting; the CLI adds its flag)."""
    return "fix the row, or set data.skip_invalid=true to skip unusable rows and list them in dropped.jsonl"


@dataclass
class Tally:
    """What became of the rows of one source (``split``: train or validation) and the record of each drop."""

    split: str
    skip_invalid: bool = False
    source_rows: int = 0
    """Rows as stored (a SQuAD article is one row)."""
    rows_in: int = 0
    """Examples read (a SQuAD article counts once per question; a row that yields none counts once)."""
    kept: int = 0
    capped: int = 0
    dropped: Counter = field(default_factory=Counter)
    records: list[dict[str, Any]] = field(default_factory=list)
    """The ``dropped.jsonl`` lines of this source."""
    truncated: int = 0
    boundary_merges: int = 0
    notes: Counter = field(default_factory=Counter)
    """Examples made with a :class:`Note` (whatever became of them later), by note code."""

    def drop(self, reason: Reason, where: str, row: Any, *, message: str | None = None, example: Any = None) -> None:
        """Count a dropped row and write it down."""
        self.dropped[reason.value] += 1
        record: dict[str, Any] = {"reason": reason.value, "explanation": reason.explanation, "where": where, "split": self.split}
        if message:
            record["message"] = message
        record["row"] = row
        if example is not None:
            record["example"] = example
        self.records.append(record)

    def invalid(self, where: str, message: str, row: Any, *, example: Any = None) -> None:
        """A row that cannot be used: an error naming its place, or (``data.skip_invalid``) dropped as invalid."""
        if not self.skip_invalid:
            raise DataError(f"{where}: {message}", hint=skip_invalid_hint())
        self.drop(Reason.INVALID, where, row, message=message, example=example)

    def text(self) -> str:
        """``"14 duplicate, 2 invalid; first: data.jsonl:3 duplicate (same as data.jsonl:1)"`` for error messages."""
        counts = ", ".join(f"{n} {reason}" for reason, n in self.dropped.most_common()) or "nothing usable"
        if not self.records:
            return counts
        first = self.records[0]
        detail = f" ({first['message']})" if first.get("message") else ""
        return f"{counts}; first: {first['where']} {first['reason']}{detail}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "source_rows": self.source_rows,
            "rows_in": self.rows_in,
            "rows_kept": self.kept,
            "dropped": dict(sorted(self.dropped.items())),
            "capped": self.capped,
            "truncated": self.truncated,
            "truncated_pct": round(100.0 * self.truncated / self.kept, 2) if self.kept else 0.0,
            "boundary_merges": self.boundary_merges,
            "notes": dict(sorted(self.notes.items())),
        }
