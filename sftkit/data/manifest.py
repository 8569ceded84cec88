"""What ``manifest.json`` says about a prepared folder: where the rows came from, how they were made, what
became of them (kept, dropped by reason, capped, truncated) and their token lengths.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sftkit.data.drops import Tally
from sftkit.data.plan import DATA_VERSION, Plan
from sftkit.data.sources import public_source
from sftkit.data.templates import Template
from sftkit.data.tokenize import IGNORE_INDEX
from sftkit.layout import DROPPED, MANIFEST

if TYPE_CHECKING:  # pragma: no cover
    from sftkit.config import RunConfig


def read_manifest(folder: Path) -> dict[str, Any] | None:
    """The manifest of a prepared folder, or None when there is none (or it cannot be read)."""
    try:
        return json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def build_manifest(
    cfg: RunConfig,
    plan: Plan,
    tokenizer: Any,
    tokenizer_fp: str,
    template: Template,
    fmt: str | None,
    tally: Tally,
    train_rows: list[dict[str, Any]],
    val_rows: list[dict[str, Any]] | None,
    validation: dict[str, Any] | None,
    format_reason: str | None = None,
) -> dict[str, Any]:
    """The manifest of one run (the fingerprint and its inputs are added by the caller). ``format_reason``: why the
    format is ``fmt`` (which columns it was detected by, or the setting that chose it)."""
    d = cfg.data
    return {
        "sftkit_data_version": DATA_VERSION,
        "trainer_type": cfg.trainer_type,
        "source": public_source(plan.train, plan.train_split),
        "format": fmt,
        "format_requested": d.format,
        "format_reason": format_reason,
        "template": template.describe(),
        "tokenizer": {
            "name": cfg.model.tokenizer or cfg.model.name,
            "class": type(tokenizer).__name__,
            "eos_token": tokenizer.eos_token,
            "bos_token": tokenizer.bos_token,
            "vocab_size": len(tokenizer),
            "fingerprint": tokenizer_fp,
        },
        "settings": {
            "field_map": d.field_map,
            "system_prompt": d.system_prompt,
            "completion_only_loss": d.completion_only_loss,
            "drop_duplicates": d.drop_duplicates,
            "arabic_normalize": d.arabic_normalize,
            "too_long": d.too_long,
            "skip_invalid": d.skip_invalid,
            "max_rows": d.max_rows,
            "max_seq_length": cfg.model.max_seq_length,
            "dpo_max_prompt_length": cfg.dpo.max_prompt_length,
            "dpo_max_length": cfg.dpo.max_length,
            **(
                {"kto_max_prompt_length": cfg.kto.max_prompt_length, "kto_max_length": cfg.kto.max_length}
                if cfg.trainer_type == "kto"
                else {}
            ),
            "validation_fraction": d.validation_fraction,
            "seed": cfg.train.seed,
        },
        **tally.as_dict(),
        "splits": {"train": len(train_rows), "validation": len(val_rows) if val_rows is not None else 0},
        "token_lengths": length_stats(train_rows, cfg.trainer_type),
        "trained_tokens": trained_tokens(train_rows, cfg.trainer_type),
        **({"labels": label_counts(train_rows)} if cfg.trainer_type == "kto" else {}),
        "validation": validation,
        "files": {"train": "train", "validation": "validation" if val_rows is not None else None, "dropped": DROPPED},
    }


def finish_tally(tally: Tally, rows: list[dict[str, Any]]) -> None:
    """Count the kept rows that were truncated or had a token merged across a trained-span boundary."""
    tally.truncated = sum(1 for r in rows if r["_truncated"])
    tally.boundary_merges = sum(1 for r in rows if r["_merge"])


def label_counts(rows: list[dict[str, Any]]) -> dict[str, int]:
    """KTO rows by label: how many answers are desirable and how many undesirable."""
    desirable = sum(1 for r in rows if r["label"])
    return {"desirable": desirable, "undesirable": len(rows) - desirable}


def _lengths(rows: list[dict[str, Any]], trainer_type: str) -> list[int]:
    if trainer_type == "kto":
        return [len(r["prompt_ids"]) + len(r["completion_ids"]) for r in rows]
    if trainer_type == "dpo":
        return [len(r["prompt_ids"]) + max(len(r["chosen_ids"]), len(r["rejected_ids"])) for r in rows]
    return [len(r["input_ids"]) for r in rows]


def length_stats(rows: list[dict[str, Any]], trainer_type: str) -> dict[str, float]:
    lengths = sorted(_lengths(rows, trainer_type))
    if not lengths:
        return {}

    def pct(p: float) -> int:
        return lengths[min(len(lengths) - 1, max(0, math.ceil(p / 100 * len(lengths)) - 1))]

    return {
        "min": lengths[0],
        "mean": round(sum(lengths) / len(lengths), 1),
        "p50": pct(50),
        "p95": pct(95),
        "max": lengths[-1],
    }


def trained_tokens(rows: list[dict[str, Any]], trainer_type: str) -> int:
    if trainer_type == "kto":
        return sum(len(r["completion_ids"]) for r in rows)
    if trainer_type == "dpo":
        return sum(len(r["chosen_ids"]) + len(r["rejected_ids"]) for r in rows)
    return sum(sum(1 for x in r["labels"] if x != IGNORE_INDEX) for r in rows)
