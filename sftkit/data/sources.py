"""Where rows come from: what a ``data.dataset`` name means, the rows it holds, and what identifies them.

A name is ``builtin:tiny`` (rows sftkit makes itself), a data file (see :mod:`sftkit.data.readers`), a
folder written by ``datasets.Dataset.save_to_disk``, a Hub dataset id, or an entry of a LLaMA-Factory registry
(``path/to/dataset_info.json#name``, see :mod:`sftkit.data.registry`: its file or Hub dataset, its rows rewritten
into sftkit's columns). Whether text is a local path or a Hub id is decided by :mod:`sftkit.names`, so a mistyped
path is "not found" and never a Hub download.
"""

from __future__ import annotations

import hashlib
import json
import random
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Iterator

from sftkit.config import STDIN, STDIN_HINT, STDIN_MESSAGE
from sftkit.data import registry
from sftkit.data.readers import (
    DOCUMENT_SUFFIXES,
    SourceRow,
    data_suffix,
    json_splits,
    no_split,
    parquet_rows,
    read_file,
)
from sftkit.errors import ConfigError, DataError
from sftkit.names import BUILTIN_TINY, is_builtin, looks_like_path

#: rows ``builtin:tiny`` provides (train / validation); ``data.max_rows`` caps train
TINY_TRAIN_ROWS = 2000
TINY_VALIDATION_ROWS = 200
TINY_SEED = 0

__all__ = ["Source", "SourceRow", "count_rows", "describe_source", "has_split", "read_rows", "resolve_source", "source_rows"]


@dataclass(frozen=True)
class Source:
    """A resolved data source: ``kind`` is file, saved (a save_to_disk folder), hub or builtin."""

    kind: str
    name: str
    path: Path | None = None
    config_name: str | None = None
    revision: str | None = None
    text_split: str = "line"
    """How a ``.txt`` file is cut into documents (``data.text_split``)."""
    entry: Any = field(default=None, compare=False)
    """The LLaMA-Factory registry entry (:class:`sftkit.data.registry.Entry`) the rows are read through, if any."""


# --------------------------------------------------------------------------- resolving a name


def resolve_source(name: str, config_name: str | None = None, text_split: str = "line") -> Source:
    """Decide what a ``data.dataset`` value names; raise a one-line DataError for a missing local path."""
    if name == STDIN:  # (resolved configs refuse it already; this covers data given directly, e.g. `eval --data -`)
        raise ConfigError(STDIN_MESSAGE, hint=STDIN_HINT)
    if is_builtin(name):
        if name != BUILTIN_TINY:
            raise DataError(f"unknown built-in dataset {name!r}", hint=f"the built-in dataset is {BUILTIN_TINY}")
        return Source("builtin", name)
    path = Path(name).expanduser()
    if not path.exists() and (reference := registry.split_reference(name)):
        return _registry_source(name, registry.load_entry(*reference), text_split)
    if path.is_file():
        return Source("file", name, path, text_split=text_split)
    if path.is_dir():
        if registry.looks_like_registry(path) and not any((path / m).is_file() for m in ("state.json", "dataset_dict.json")):
            raise DataError(
                f"{name}: a LLaMA-Factory data folder (its dataset_info.json is a registry of datasets)",
                hint=f"name one of its entries: {Path(name) / 'dataset_info.json'}{registry.SEPARATOR}NAME",
            )
        if any((path / marker).is_file() for marker in ("dataset_info.json", "state.json", "dataset_dict.json")):
            return Source("saved", name, path)
        raise DataError(
            f"{name}: a folder, but not a dataset saved with datasets' save_to_disk",
            hint="point data.dataset at a data file (JSONL, JSON, CSV, Parquet) or a save_to_disk folder",
        )
    if looks_like_path(name) or (path.parent != Path(".") and path.parent.exists()):
        raise DataError(f"data file not found: {name}", hint="check the path (relative paths start from the current folder)")
    repo, _, revision = name.partition("@")
    return Source("hub", repo, config_name=config_name, revision=revision or None)


def _registry_source(name: str, entry: Any, text_split: str) -> Source:
    """The source a registry entry names: its file (or save_to_disk folder), or its Hub dataset."""
    if entry.hub:
        return Source("hub", entry.hub, config_name=entry.subset, entry=entry)
    inner = resolve_source(str(entry.file), text_split=text_split)
    if inner.kind not in ("file", "saved"):
        raise DataError(f"{entry.label}: file_name {entry.file} is not a data file or a save_to_disk folder")
    return Source(inner.kind, name, inner.path, text_split=text_split, entry=entry)


# --------------------------------------------------------------------------- reading rows


def read_rows(source: str | Path | Source, split: str | None = None) -> Iterator[SourceRow]:
    """Every row of a file, saved folder or Hub dataset, in order, each with its ``file:line``.

    ``split`` picks one split of a source that has several (JSON object of splits, saved DatasetDict,
    Hub dataset); for a plain list of rows it must be None or ``train``.
    """
    src = source if isinstance(source, Source) else resolve_source(str(source))
    if src.entry is not None:
        yield from map(src.entry.convert, read_rows(replace(src, entry=None), split))
    elif src.kind == "file":
        assert src.path is not None
        yield from read_file(src.path, split, src.text_split)
    elif src.kind == "saved":
        yield from _read_dataset(_load_saved(src, split), f"{src.name}[{split or 'train'}]")
    elif src.kind == "hub":
        yield from _read_dataset(load_hub(src, split or "train"), f"hub:{src.name}[{split or 'train'}]")
    else:
        raise DataError(f"{src.name} is built in and has no file to read", hint="prepare it (sftkit.data.prepare) instead")


def source_rows(src: Source, split: str | None, trainer_type: str) -> Iterator[SourceRow]:
    """The rows of any source, ``builtin:tiny`` included (its rows depend on ``trainer_type``)."""
    if src.kind != "builtin":
        yield from read_rows(src, split)
        return
    import sftkit.tiny as tiny

    validation = split == "validation"
    n = TINY_VALIDATION_ROWS if validation else TINY_TRAIN_ROWS
    if trainer_type in ("dpo", "kto"):  # KTO takes the pairs unpaired: each answer a row, desirable or not
        rows = _tiny_heldout_pairs(n, TINY_SEED) if validation else tiny.dpo_rows(n, TINY_SEED)
    else:
        rows = tiny.heldout_rows(n, TINY_SEED) if validation else tiny.sft_rows(n, TINY_SEED)
    for k, row in enumerate(rows, 1):
        yield SourceRow(row, f"{src.name}[{split or 'train'}] row {k}", k)


def _tiny_heldout_pairs(n: int, seed: int) -> list[dict[str, str]]:
    """Preference pairs over the held-out words of the tiny task (chosen: upper-cased; rejected: a mistake)."""
    import sftkit.tiny as tiny

    rng = random.Random(f"sftkit-tiny-dpo-heldout-{seed}")
    pairs = []
    for row in tiny.heldout_rows(n, seed):
        answer, word = row["output"], row["output"].lower()
        cut = rng.randint(1, len(word) - 1)
        rejected = rng.choice([word, answer[:cut] + word[cut:]])
        pairs.append({"prompt": row["instruction"], "chosen": answer, "rejected": rejected})
    return pairs


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
        no_split(Path(src.name), split)
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
    return {**_describe(src, split), **_reading(src)}


def _reading(src: Source) -> dict[str, Any]:
    """How a source's rows are read, where that is more than its content: a registry entry, a .txt file's split."""
    out: dict[str, Any] = {}
    if src.entry is not None:
        out["registry"] = src.entry.describe()
    if src.kind == "file" and src.path is not None and data_suffix(src.path) in DOCUMENT_SUFFIXES:
        out["text_split"] = src.text_split
    return out


def _describe(src: Source, split: str | None) -> dict[str, Any]:
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


def public_source(src: Source, split: str | None) -> dict[str, Any]:
    """The source as the manifest shows it (no Hub download to fingerprint it again)."""
    if src.kind == "hub":
        return {"kind": "hub", "id": src.name, "config": src.config_name, "revision": src.revision, "split": split, **_reading(src)}
    if src.kind == "builtin":
        return {"kind": "builtin", "name": src.name, "rows": [TINY_TRAIN_ROWS, TINY_VALIDATION_ROWS]}
    return describe_source(src, split)


def count_rows(source: str | Path, split: str | None = None) -> int:
    """How many rows a source has (cheap for Parquet and datasets)."""
    src = resolve_source(str(source))
    if src.kind == "file" and src.path is not None and data_suffix(src.path) == ".parquet":
        return parquet_rows(src.path)
    return sum(1 for _ in read_rows(src, split))
