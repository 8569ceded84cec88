"""Reading rows from where they live, each with the place it came from (``file:line``).

Supported sources: JSONL, JSON (a list of rows, an object of splits ``{"train": [...], ...}`` or a
``{"data": [...]}`` wrapper such as SQuAD), CSV/TSV (quoted newlines), Parquet, any of those gzipped
(``.gz``), a folder written by ``datasets.Dataset.save_to_disk``, a Hub dataset id, and ``builtin:tiny``.

File-level problems (missing, empty, not UTF-8, unreadable JSON document) raise :class:`DataError`
with one line. A single unreadable row of a JSONL file is yielded as a :class:`SourceRow` with an
``error`` so the caller decides: fail with ``file:line`` or skip and count it.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from sftkit.errors import DataError

BUILTIN_TINY = "builtin:tiny"
#: rows ``builtin:tiny`` provides (train / validation); ``data.max_rows`` caps train
TINY_TRAIN_ROWS = 2000
TINY_VALIDATION_ROWS = 200
TINY_SEED = 0

TEXT_SUFFIXES = (".jsonl", ".ndjson", ".json", ".csv", ".tsv")
DATA_SUFFIXES = (*TEXT_SUFFIXES, ".parquet")


@dataclass
class SourceRow:
    """One raw row and where it came from. ``error`` is set (and ``data`` is the raw text) when unreadable."""

    data: Any
    where: str
    line: int | None = None
    error: str | None = None


@dataclass(frozen=True)
class Source:
    """A resolved data source: ``kind`` is file, saved (a save_to_disk folder), hub or builtin."""

    kind: str
    name: str
    path: Path | None = None
    config_name: str | None = None
    revision: str | None = None


# --------------------------------------------------------------------------- resolving a name


def resolve_source(name: str, config_name: str | None = None) -> Source:
    """Decide what a ``data.dataset`` value names; raise a one-line DataError for a missing local path."""
    if name == BUILTIN_TINY:
        return Source("builtin", name)
    path = Path(name).expanduser()
    if path.is_file():
        return Source("file", name, path)
    if path.is_dir():
        if any((path / marker).is_file() for marker in ("dataset_info.json", "state.json", "dataset_dict.json")):
            return Source("saved", name, path)
        raise DataError(
            f"{name}: a folder, but not a dataset saved with datasets' save_to_disk",
            hint="point data.dataset at a data file (JSONL, JSON, CSV, Parquet) or a save_to_disk folder",
        )
    looks_local = name.startswith((".", "/", "~")) or _data_suffix(path) is not None or name.count("/") > 1
    if looks_local or path.parent.exists() and path.parent != Path("."):
        raise DataError(f"data file not found: {name}", hint="check the path (relative paths start from the current folder)")
    repo, _, revision = name.partition("@")
    return Source("hub", repo, config_name=config_name, revision=revision or None)


def _data_suffix(path: Path) -> str | None:
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes = suffixes[:-1]
    if suffixes and suffixes[-1] in DATA_SUFFIXES:
        return suffixes[-1]
    return None


# --------------------------------------------------------------------------- reading rows


def read_rows(source: str | Path | Source, split: str | None = None) -> Iterator[SourceRow]:
    """Every row of a file, saved folder or Hub dataset, in order, each with its ``file:line``.

    ``split`` picks one split of a source that has several (JSON object of splits, saved DatasetDict,
    Hub dataset); for a plain list of rows it must be None or ``train``.
    """
    src = source if isinstance(source, Source) else resolve_source(str(source))
    if src.kind == "file":
        assert src.path is not None
        yield from _read_file(src.path, split)
    elif src.kind == "saved":
        yield from _read_dataset(_load_saved(src, split), f"{src.name}[{split or 'train'}]")
    elif src.kind == "hub":
        yield from _read_dataset(load_hub(src, split or "train"), f"hub:{src.name}[{split or 'train'}]")
    else:
        raise DataError(f"{src.name} is built in: read it with sftkit.data.prepare, not as a file")


def _read_file(path: Path, split: str | None) -> Iterator[SourceRow]:
    suffix = _data_suffix(path)
    if suffix is None:
        raise DataError(
            f"{path}: unsupported file type {''.join(path.suffixes) or '(no extension)'}",
            hint="use .jsonl, .json, .csv, .tsv or .parquet (optionally .gz)",
        )
    raw = _read_bytes(path)
    if not raw.strip():
        raise DataError(f"{path}: the file is empty", hint="check that the file was written completely")
    if suffix == ".parquet":
        yield from _read_parquet(path, raw, split)
        return
    text = _decode(path, raw)
    if suffix in (".jsonl", ".ndjson"):
        _no_split(path, split)
        yield from _read_jsonl(path, text)
    elif suffix == ".json":
        yield from _read_json(path, text, split)
    else:
        _no_split(path, split)
        yield from _read_csv(path, text, "\t" if suffix == ".tsv" else ",")


def _read_bytes(path: Path) -> bytes:
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


def _decode(path: Path, raw: bytes) -> str:
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = raw.count(b"\n", 0, e.start) + 1
        raise DataError(
            f"{path}:{line}: not UTF-8 text (byte 0x{raw[e.start]:02x} at offset {e.start})",
            hint="convert the file to UTF-8, e.g. `iconv -f latin1 -t utf-8 IN > OUT`",
        ) from None


def _no_split(path: Path, split: str | None) -> None:
    if split not in (None, "train"):
        raise DataError(f"{path}: has no split {split!r}", hint="only Hub datasets, saved folders and JSON objects of splits have splits")


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
            _no_split(path, split)
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
    if _data_suffix(path) != ".json":
        return []
    text = _decode(path, _read_bytes(path))
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

    _no_split(path, split)
    try:
        table = pq.read_table(pa.BufferReader(raw))
    except (pa.ArrowInvalid, OSError) as e:
        raise DataError(f"{path}: not a readable Parquet file ({str(e).splitlines()[0]})") from None
    n = 0
    for batch in table.to_batches(max_chunksize=4096):
        for row in batch.to_pylist():
            n += 1
            yield SourceRow(row, f"{path} row {n}", n)


def _read_dataset(ds: Any, label: str) -> Iterator[SourceRow]:
    for n, row in enumerate(ds, 1):
        yield SourceRow(dict(row), f"{label} row {n}", n)


def _load_saved(src: Source, split: str | None) -> Any:
    from datasets import Dataset, load_from_disk

    try:
        loaded = load_from_disk(str(src.path))
    except (FileNotFoundError, ValueError, OSError) as e:
        raise DataError(f"{src.name}: cannot load the saved dataset ({str(e).splitlines()[0]})") from None
    if isinstance(loaded, Dataset):
        _no_split(Path(src.name), split)
        return loaded
    wanted = split or "train"
    if wanted not in loaded:
        raise DataError(f"{src.name}: no split {wanted!r} (splits: {', '.join(loaded)})", hint="set data.split / data.validation_split")
    return loaded[wanted]


def saved_splits(path: Path) -> list[str]:
    """Split names of a save_to_disk folder ([] for a single Dataset)."""
    dd = path / "dataset_dict.json"
    if dd.is_file():
        return list(json.loads(dd.read_text(encoding="utf-8")).get("splits", []))
    return []


def has_split(name: str, split: str, config_name: str | None = None) -> bool | None:
    """Whether a source has ``split`` (None when only loading it could tell: Hub datasets)."""
    src = resolve_source(name, config_name)
    if src.kind == "builtin":
        return split in ("train", "validation")
    if src.kind == "hub":
        return None
    assert src.path is not None
    if src.kind == "saved":
        return split in saved_splits(src.path)
    return split in json_splits(src.path)


def load_hub(src: Source, split: str) -> Any:
    """``datasets.load_dataset`` for a Hub id; offline and uncached fails at once with one line."""
    import datasets
    import huggingface_hub.constants as hub_constants

    from sftkit.hub import local_only, offline_error

    offline = local_only()
    saved = (datasets.config.HF_HUB_OFFLINE, hub_constants.HF_HUB_OFFLINE)
    if offline:
        datasets.config.HF_HUB_OFFLINE = hub_constants.HF_HUB_OFFLINE = True
    try:
        return datasets.load_dataset(src.name, src.config_name, split=split, revision=src.revision)
    except ValueError as e:
        if "split" in str(e).lower() or "Unknown split" in str(e):
            raise DataError(f"hub:{src.name}: no split {split!r} ({str(e).splitlines()[0]})", hint="set data.split") from None
        raise offline_error("dataset", src.name, e) from None
    except Exception as e:  # noqa: BLE001 - datasets raises many types (ConnectionError, FileNotFoundError, DatasetNotFoundError...)
        raise offline_error("dataset", src.name, e) from None
    finally:
        datasets.config.HF_HUB_OFFLINE, hub_constants.HF_HUB_OFFLINE = saved


# --------------------------------------------------------------------------- fingerprints


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def describe_source(src: Source, split: str | None) -> dict[str, Any]:
    """What identifies a source's content, for the manifest and the cache fingerprint."""
    if src.kind == "file":
        assert src.path is not None
        return {"kind": "file", "path": str(src.path.resolve()), "sha256": sha256_file(src.path), "split": split}
    if src.kind == "saved":
        assert src.path is not None
        h = hashlib.sha256()
        for f in sorted(p for p in src.path.rglob("*") if p.is_file()):
            h.update(str(f.relative_to(src.path)).encode())
            h.update(sha256_file(f).encode())
        return {"kind": "saved", "path": str(src.path.resolve()), "sha256": h.hexdigest(), "split": split}
    if src.kind == "hub":
        ds = load_hub(src, split or "train")
        return {
            "kind": "hub",
            "id": src.name,
            "config": src.config_name,
            "revision": src.revision,
            "split": split or "train",
            "fingerprint": getattr(ds, "_fingerprint", None),
        }
    return {"kind": "builtin", "name": src.name, "split": split, "rows": [TINY_TRAIN_ROWS, TINY_VALIDATION_ROWS], "seed": TINY_SEED}


def count_rows(source: str | Path, split: str | None = None) -> int:
    """How many rows a source has (cheap for Parquet and datasets)."""
    src = resolve_source(str(source))
    if src.kind == "file" and src.path is not None and _data_suffix(src.path) == ".parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        return pq.ParquetFile(pa.BufferReader(_read_bytes(src.path))).metadata.num_rows
    return sum(1 for _ in read_rows(src, split))
