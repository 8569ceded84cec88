"""Writing a prepared folder, atomically: everything goes into a temp folder next to it, renamed into place.

A run that fails or is interrupted leaves the previous prepared folder (or none) and no temp folder.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from sftkit.errors import DataError, partial_output
from sftkit.layout import DROPPED, MANIFEST
from sftkit.yamlio import atomic_write_text, follow_umask


def _to_dataset(rows: list[dict[str, Any]], trainer_type: str) -> Any:
    from datasets import Dataset, Features, List, Value

    if trainer_type == "dpo":
        cols = {"prompt_ids": List(Value("int64")), "chosen_ids": List(Value("int64")), "rejected_ids": List(Value("int64"))}
        cols.update({k: Value("string") for k in ("prompt", "chosen", "rejected", "messages")})
    elif trainer_type == "kto":
        cols = {"prompt_ids": List(Value("int64")), "completion_ids": List(Value("int64")), "label": Value("bool")}
        cols.update({k: Value("string") for k in ("prompt", "completion", "messages")})
    else:
        cols = {"input_ids": List(Value("int64")), "labels": List(Value("int64")), "messages": Value("string")}
    data = {k: [r[k] for r in rows] for k in cols}
    return Dataset.from_dict(data, features=Features(cols))


def _manifest_text(manifest: dict[str, Any]) -> str:
    return json.dumps(manifest, indent=2, ensure_ascii=False) + "\n"


def write_prepared(
    out: Path,
    manifest: dict[str, Any],
    train_rows: list[dict[str, Any]],
    val_rows: list[dict[str, Any]] | None,
    dropped: list[dict[str, Any]],
    trainer_type: str,
) -> None:
    """Write ``train/``, ``validation/``, ``dropped.jsonl`` and ``manifest.json`` and replace ``out`` with them."""
    from datasets.utils.logging import (
        disable_progress_bar,
        enable_progress_bar,
        is_progress_bar_enabled,
    )

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    old = None
    bars = is_progress_bar_enabled()
    disable_progress_bar()
    try:
        hint = "free space on that disk (or choose another folder), then run the same command again"
        with partial_output(tmp, f"the prepared data to {out} (nothing half-written was left)", hint, error=DataError):
            _to_dataset(train_rows, trainer_type).save_to_disk(str(tmp / "train"))
            if val_rows is not None:
                _to_dataset(val_rows, trainer_type).save_to_disk(str(tmp / "validation"))
            with open(tmp / DROPPED, "w", encoding="utf-8") as f:
                for record in dropped:
                    f.write(json.dumps(record, ensure_ascii=False, default=str) + "\n")
            (tmp / MANIFEST).write_text(_manifest_text(manifest), encoding="utf-8")
        follow_umask(tmp)  # mkdtemp made the folder private; the prepared data is an ordinary folder
        if out.exists():
            old = out.with_name(f".{out.name}.old-{os.getpid()}")
            os.rename(out, old)
        os.rename(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        if old is not None and not out.exists():
            os.rename(old, out)
            old = None
        raise
    finally:
        if bars:
            enable_progress_bar()
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def write_manifest(out: Path, manifest: dict[str, Any]) -> None:
    """Replace the manifest of an existing prepared folder (atomically)."""
    atomic_write_text(out / MANIFEST, _manifest_text(manifest))
