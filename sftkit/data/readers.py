"""Reading a data file's rows, each with the line it starts on (``file:line``).

JSONL, JSON (a list of rows, an object of splits ``{"train": [...], ...}`` or a ``{"data": [...]}`` wrapper
such as SQuAD), CSV/TSV (quoted newlines), Parquet, plain text (``.txt``: documents for continued pre-training,
one per line or per blank-line-separated paragraph, each a ``{"text": ...}`` row), and any of those gzipped (``.gz``).

File-level problems (empty, not UTF-8, unreadable JSON document) raise :class:`DataError` with one line. A
single unreadable row of a JSONL or CSV file is yielded as a :class:`SourceRow` with an ``error`` so the
caller decides: fail with ``file:line`` or skip it (``data.skip_invalid``) and write it to ``dropped.jsonl``.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from sftkit.errors import DataError

TEXT_SUFFIXES = (".jsonl", ".ndjson", ".json", ".csv", ".tsv")
DATA_SUFFIXES = (*TEXT_SUFFIXES, ".parquet")
#: plain text read as documents (``data.text_split``), not rows
DOCUMENT_SUFFIXES = (".txt",)


@dataclass
class SourceRow:
    """One raw row and where it came from. ``error`` is set (and ``data`` is the raw text) when unreadable."""

    data: Any
    where: str
    line: int | None = None
    error: str | None = None


def data_suffix(path: Path) -> str | None:
    """The data suffix of a file name (``.jsonl`` for ``x.jsonl.gz``), or None for other files."""
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes = suffixes[:-1]
    if suffixes and suffixes[-1] in (*DATA_SUFFIXES, *DOCUMENT_SUFFIXES):
        return suffixes[-1]
    return None


def no_split(path: Path, split: str | None) -> None:
    """A file of one list of rows has no split but ``train``."""
    if split not in (None, "train"):
        raise DataError(f"{path}: has no split {split!r}", hint="only Hub datasets, saved folders and JSON objects of splits have splits")


def read_file(path: Path, split: str | None, text_split: str = "line") -> Iterator[SourceRow]:
    """Every row of a data file, in order; ``split`` picks one list of a JSON object of splits; ``text_split``
    (``line`` or ``paragraph``) cuts a ``.txt`` file into documents."""
    suffix = data_suffix(path)
    if suffix is None:
        raise DataError(
            f"{path}: unsupported file type {''.join(path.suffixes) or '(no extension)'}",
            hint="use .jsonl, .json, .csv, .tsv, .parquet or .txt (optionally .gz)",
        )
    raw = read_bytes(path)
    if not raw.strip():
        raise DataError(f"{path}: the file is empty", hint="check that the file was written completely")
    if suffix == ".parquet":
        yield from _read_parquet(path, raw, split)
        return
    text = decode(path, raw)
    if suffix in (".jsonl", ".ndjson"):
        no_split(path, split)
        yield from _read_jsonl(path, text)
    elif suffix == ".json":
        yield from _read_json(path, text, split)
    elif suffix in DOCUMENT_SUFFIXES:
        no_split(path, split)
        yield from _read_documents(path, text, text_split)
    else:
        no_split(path, split)
        yield from _read_csv(path, text, "\t" if suffix == ".tsv" else ",")


def read_bytes(path: Path) -> bytes:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"data file not found: {path}") from None
    except OSError as e:
        raise DataError(f"{path}: cannot read ({e.strerror})") from None
    if path.suffix.lower() == ".gz":
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError) as e:
            raise DataError(f"{path}: not a valid gzip file ({e})") from None
    return data


def decode(path: Path, raw: bytes) -> str:
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = raw.count(b"\n", 0, e.start) + 1
        raise DataError(
            f"{path}:{line}: not UTF-8 text (byte 0x{raw[e.start]:02x} at offset {e.start})",
            hint="convert the file to UTF-8, e.g. `iconv -f latin1 -t utf-8 IN > OUT`",
        ) from None


def snippet(text: str, width: int = 60) -> str:
    """A short one-line excerpt of a row for error messages."""
    one = " ".join(str(text).split())
    return one if len(one) <= width else one[: width - 1] + "…"


def _read_jsonl(path: Path, text: str) -> Iterator[SourceRow]:
    # split on "\n" only: str.splitlines() would also break inside strings holding U+2028 and friends
    for number, line in enumerate(text.split("\n"), 1):
        line = line.removesuffix("\r")
        if not line.strip():
            continue
        where = f"{path}:{number}"
        try:
            data = json.loads(line)
        except json.JSONDecodeError as e:
            yield SourceRow(line, where, number, f"invalid JSON ({e.msg} at column {e.colno}): {snippet(line)}")
            continue
        yield SourceRow(data, where, number)


def _read_documents(path: Path, text: str, text_split: str) -> Iterator[SourceRow]:
    """A plain-text file as ``{"text": document}`` rows: each non-blank line (``line``), or each block of lines between
    blank lines (``paragraph``, its lines joined by newlines), at the line it starts on."""
    block: list[str] = []
    start = 0
    for number, line in enumerate(text.split("\n"), 1):
        line = line.removesuffix("\r")
        if line.strip():
            if text_split == "line":
                yield SourceRow({"text": line}, f"{path}:{number}", number)
                continue
            start = start or number
            block.append(line)
        elif block:
            yield SourceRow({"text": "\n".join(block)}, f"{path}:{start}", start)
            block, start = [], 0
    if block:
        yield SourceRow({"text": "\n".join(block)}, f"{path}:{start}", start)


class _Lines:
    """Character offset -> 1-based line number, for offsets asked in increasing order (counted in C)."""

    def __init__(self, text: str) -> None:
        self._text, self._offset, self._line = text, 0, 1

    def __call__(self, offset: int) -> int:
        if offset < self._offset:
            self._offset, self._line = 0, 1
        self._line += self._text.count("\n", self._offset, offset)
        self._offset = offset
        return self._line


_WS = " \t\n\r"


def _read_json(path: Path, text: str, split: str | None) -> Iterator[SourceRow]:
    decoder = json.JSONDecoder()
    lines = _Lines(text)
    i = _skip_ws(text, 0)
    try:
        if text[i] == "[":
            no_split(path, split)
            yield from _walk_list(path, text, i, decoder, lines)
        elif text[i] == "{":
            start, key = _find_rows_in_object(path, text, i, decoder, split)
            for row in _walk_list(path, text, start, decoder, lines):
                yield row
        else:
            raise DataError(f"{path}:1: expected a JSON list of rows or an object of splits")
    except json.JSONDecodeError as e:
        raise DataError(f"{path}:{e.lineno}: invalid JSON ({e.msg}, column {e.colno}): {snippet(_line_at(text, e.lineno))}") from None


def _line_at(text: str, lineno: int) -> str:
    lines = text.split("\n")
    return lines[lineno - 1] if 0 < lineno <= len(lines) else ""


def _skip_ws(text: str, i: int) -> int:
    while i < len(text) and text[i] in _WS:
        i += 1
    return i


def _walk_list(path: Path, text: str, i: int, decoder: json.JSONDecoder, lines: _Lines) -> Iterator[SourceRow]:
    """Yield each element of the JSON array starting at ``text[i] == '['`` with its line number."""
    i = _skip_ws(text, i + 1)
    if i < len(text) and text[i] == "]":
        return
    while True:
        value, end = decoder.raw_decode(text, i)
        number = lines(i)
        yield SourceRow(value, f"{path}:{number}", number)
        i = _skip_ws(text, end)
        if i >= len(text):
            raise json.JSONDecodeError("unterminated list", text, i)
        if text[i] == "]":
            return
        if text[i] != ",":
            raise json.JSONDecodeError("Expecting ',' delimiter", text, i)
        i = _skip_ws(text, i + 1)


def _find_rows_in_object(path: Path, text: str, i: int, decoder: json.JSONDecoder, split: str | None) -> tuple[int, str]:
    """Offset of the list of rows inside a top-level JSON object: ``obj[split]`` or ``obj["data"]``."""
    lists: dict[str, int] = {}
    i = _skip_ws(text, i + 1)
    while i < len(text) and text[i] != "}":
        key, i = decoder.raw_decode(text, i)
        i = _skip_ws(text, i)
        if text[i] != ":":
            raise json.JSONDecodeError("Expecting ':' delimiter", text, i)
        i = _skip_ws(text, i + 1)
        start = i
        _, i = decoder.raw_decode(text, i)
        if text[start] == "[":
            lists[str(key)] = start
        i = _skip_ws(text, i)
        if text[i] == ",":
            i = _skip_ws(text, i + 1)
    wanted = split or "train"
    if wanted in lists:
        return lists[wanted], wanted
    if list(lists) == ["data"] and split in (None, "train"):
        return lists["data"], "data"
    if not lists:
        raise DataError(f"{path}: a JSON object without any list of rows", hint="use a list of rows or {\"train\": [...]}")
    raise DataError(
        f"{path}: no split {wanted!r} in this JSON object (lists found: {', '.join(lists)})",
        hint="set data.split / data.validation_split to one of them",
    )


def json_splits(path: Path) -> list[str]:
    """Names of the lists in a JSON object-of-splits file ([] for other files)."""
    if data_suffix(path) != ".json":
        return []
    text = decode(path, read_bytes(path))
    i = _skip_ws(text, 0)
    if i >= len(text) or text[i] != "{":
        return []
    try:
        obj = json.loads(text)
    except json.JSONDecodeError:
        return []
    return [k for k, v in obj.items() if isinstance(v, list)]


def _read_csv(path: Path, text: str, delimiter: str) -> Iterator[SourceRow]:
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        header = next(reader)
    except StopIteration:
        return
    except csv.Error as e:
        raise DataError(f"{path}:1: invalid CSV header ({e})") from None
    start = reader.line_num + 1
    while True:
        try:
            record = next(reader)
        except StopIteration:
            return
        except csv.Error as e:
            raise DataError(f"{path}:{start}: invalid CSV ({e})") from None
        number, start = start, reader.line_num + 1
        if not record:
            continue
        where = f"{path}:{number}"
        if len(record) > len(header):
            yield SourceRow(delimiter.join(record), where, number, f"{len(record)} fields but the header has {len(header)}")
            continue
        row = dict(zip(header, record))
        yield SourceRow(row, where, number)


def _read_parquet(path: Path, raw: bytes, split: str | None) -> Iterator[SourceRow]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    no_split(path, split)
    try:
        table = pq.read_table(pa.BufferReader(raw))
    except (pa.ArrowInvalid, OSError) as e:
        raise DataError(f"{path}: not a readable Parquet file ({str(e).splitlines()[0]})") from None
    n = 0
    for batch in table.to_batches(max_chunksize=4096):
        for row in batch.to_pylist():
            n += 1
            yield SourceRow(row, f"{path} row {n}", n)


def parquet_rows(path: Path) -> int:
    """How many rows a Parquet file has (from its metadata, without reading the rows)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    return pq.ParquetFile(pa.BufferReader(read_bytes(path))).metadata.num_rows
