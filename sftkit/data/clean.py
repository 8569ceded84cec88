"""Reading and cleaning: source rows -> canonical examples, each with its ``file:line`` and the row as read.

The format is detected from the first rows (or set by ``data.format`` / ``data.formatting_func``); then each
row is normalised, given ``data.system_prompt``, Arabic-normalised (``data.arabic_normalize``), checked and
deduplicated (``data.drop_duplicates``). A row that is not kept is dropped on the :class:`Tally` with its
:class:`Reason`, or (invalid, without ``data.skip_invalid``) stops the run with its ``file:line``.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

from sftkit.data import sources as src_mod
from sftkit.data.arabic import normalize_arabic
from sftkit.data.canonical import add_system_prompt, check_example, map_text
from sftkit.data.custom import load_formatting_func, normalize_custom
from sftkit.data.drops import DroppedRow, InvalidRow, Reason, Tally
from sftkit.data.formats import (
    apply_field_map,
    check_field_map,
    check_format_for_trainer,
    check_unlabelled,
    detect_format,
    explain_format,
)
from sftkit.data.normalize import normalize_row, unpair
from sftkit.data.readers import SourceRow
from sftkit.errors import DataError

if TYPE_CHECKING:  # pragma: no cover
    from sftkit.config import RunConfig

#: rows looked at to detect the format
HEAD = 50


@dataclass
class Example:
    data: dict[str, Any]
    """The canonical example."""
    where: str
    row: Any
    """The source row it came from, as read (what ``dropped.jsonl`` shows)."""


class Reader:
    """Turns source rows into cleaned canonical examples; everything not kept is dropped on the tally."""

    def __init__(self, cfg: RunConfig, tally: Tally) -> None:
        self.cfg, self.tally, self.fmt = cfg, tally, None
        self.reason: str | None = None
        """Why the format is what it is (detected from which columns, set by data.format, ...)."""
        d = cfg.data
        self.custom = load_formatting_func(d.formatting_func, trusted=cfg.formatting_func_trusted) if d.formatting_func else None
        self.seen: dict[bytes, str] = {}  # example hash -> where it was first seen

    def read(self, rows: Iterator[SourceRow]) -> list[Example]:
        d = self.cfg.data
        head: list[SourceRow] = []
        for row in rows:  # buffer the first rows for format detection
            head.append(row)
            if len(head) >= HEAD:
                break
        if not head:
            raise DataError("the data has no rows", hint="check the file or the split")
        if all(r.error is not None for r in head):
            first = head[0]
            self.tally.invalid(first.where, first.error or "", first.data)  # raises unless data.skip_invalid
            raise DataError(f"{first.where}: none of the first {len(head)} rows can be read", hint="check the file's format")
        if d.field_map:
            check_field_map([r.data for r in head if r.error is None], d.field_map)
        good = [r for r in head if r.error is None]
        self.fmt, self.reason = self._detect([apply_field_map(r.data, d.field_map) for r in good], [r.where for r in good])
        examples: list[Example] = []
        for row in _chain(head, rows):
            self.tally.source_rows += 1
            examples.extend(self._one(row))
        return examples

    def _detect(self, rows: list[Any], wheres: list[str]) -> tuple[str, str]:
        """(format, why)."""
        d, trainer = self.cfg.data, self.cfg.trainer_type
        if self.custom is not None:
            return "custom", f"data.formatting_func={d.formatting_func}"
        if d.format != "auto":
            check_format_for_trainer(d.format, trainer)
            return d.format, "set by data.format"
        detected = explain_format(rows, trainer, wheres)
        return detected.format, detected.reason

    def _one(self, row: SourceRow) -> list[Example]:
        d, tally = self.cfg.data, self.tally
        if row.error is not None:
            tally.rows_in += 1
            tally.invalid(row.where, row.error, row.data)
            return []
        data = apply_field_map(row.data, d.field_map)
        try:
            if self.custom is not None:
                produced = normalize_custom(data, self.custom, self.cfg.trainer_type)
            else:
                check_unlabelled(data, row.where, self.cfg.trainer_type)
                produced = normalize_row(data, self.fmt or "")
            notes = getattr(produced, "notes", [])  # what was done to the row, counted in the manifest
            if self.cfg.trainer_type == "kto":  # preference pairs: each answer becomes a row of its own
                produced = [one for ex in produced for one in (unpair(ex) if "chosen" in ex else [ex])]
        except InvalidRow as e:
            tally.rows_in += 1
            tally.invalid(row.where, str(e), row.data)
            return []
        except DroppedRow as e:
            tally.rows_in += 1
            tally.drop(e.reason, row.where, row.data, message=e.message)
            return []
        if not produced:
            tally.rows_in += 1
            tally.drop(Reason.EMPTY, row.where, row.data, message="the row holds no example")
            return []
        for note in notes:
            tally.notes[note.value] += 1
        kept = []
        for ex in produced:
            tally.rows_in += 1
            ex = add_system_prompt(ex, d.system_prompt)
            if d.arabic_normalize:
                ex = map_text(ex, normalize_arabic)
            try:
                reason = check_example(ex)
            except InvalidRow as e:
                tally.invalid(row.where, str(e), row.data, example=ex)
                continue
            message = None
            if reason is None and d.drop_duplicates:
                key = hashlib.blake2b(json.dumps(ex, sort_keys=True, ensure_ascii=False).encode(), digest_size=16).digest()
                first = self.seen.get(key)
                if first is None:
                    self.seen[key] = row.where
                else:
                    reason, message = Reason.DUPLICATE, f"same as {first}"
            if reason:
                tally.drop(reason, row.where, row.data, message=message, example=ex)
                continue
            kept.append(Example(ex, row.where, row.data))
        return kept


def _chain(head: list[SourceRow], rest: Iterator[SourceRow]) -> Iterator[SourceRow]:
    yield from head
    yield from rest


# --------------------------------------------------------------------------- helpers other commands reuse


def read_examples(
    path: str | Path,
    *,
    fmt: str = "auto",
    field_map: dict[str, str] | None = None,
    trainer_type: str | None = None,
    split: str | None = None,
    skip_invalid: bool = False,
) -> tuple[list[tuple[dict[str, Any], str]], str]:
    """Canonical examples of any supported source, each with its ``file:line``, and the format used.

    For eval/generate on a file: each example is ``{"messages": [...]}`` (the last assistant message is the
    reference answer), ``{"text": ...}`` or a DPO ``{"prompt", "chosen", "rejected"}``. Nothing is cleaned
    or deduplicated; invalid rows raise DataError (or are skipped with ``skip_invalid``).
    """
    field_map = field_map or {}
    rows = list(src_mod.read_rows(path, split))
    good = [apply_field_map(r.data, field_map) for r in rows if r.error is None]
    if not good:
        raise DataError(f"{path}: no readable rows")
    if fmt == "auto":
        fmt = detect_format(good[:HEAD], trainer_type)
    out: list[tuple[dict[str, Any], str]] = []
    for r in rows:
        try:
            if r.error is not None:
                raise InvalidRow(r.error)
            for ex in normalize_row(apply_field_map(r.data, field_map), fmt):
                out.append((ex, r.where))
        except (InvalidRow, DroppedRow) as e:
            if isinstance(e, InvalidRow) and not skip_invalid:
                raise DataError(f"{r.where}: {e}", hint="fix the row, or pass skip_invalid=True to skip unusable rows") from None
    return out, fmt


def peek(path: str | Path, n: int = 5) -> tuple[list[Any], int, str | None]:
    """(first ``n`` rows as stored, total row count, detected format or None) — for the init wizard."""
    first: list[Any] = []
    total = 0
    for row in src_mod.read_rows(path):
        total += 1
        if row.error is None and len(first) < max(n, HEAD):
            first.append(row.data)
    try:
        fmt: str | None = detect_format(first)
    except DataError:
        fmt = None
    return first[:n], total, fmt
