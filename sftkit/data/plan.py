"""What a prepare run will read, and whether an earlier prepared folder already holds its result.

The fingerprint is a hash over every input that affects the prepared rows: the sources' content, the
format, field map and formatter code, the template, the tokenizer and the data settings. A prepared folder
whose manifest carries the same fingerprint (and whose files are all there) is reused as it is.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sftkit.data import sources as src_mod
from sftkit.data.custom import formatting_func_source
from sftkit.data.sources import Source
from sftkit.data.templates import Template
from sftkit.errors import ConfigError, DataError
from sftkit.layout import MANIFEST
from sftkit.yamlio import check_writable

if TYPE_CHECKING:  # pragma: no cover
    from sftkit.config import RunConfig

#: bump when the prepared layout or the processing changes, so old prepared folders are never reused
DATA_VERSION = 3  # 3: alpaca system/history columns, tools, content parts, HH common-prefix prompts


@dataclass
class Plan:
    train: Source
    train_split: str | None
    validation: Source | None
    validation_split: str | None


def make_plan(cfg: RunConfig) -> Plan:
    """The sources and splits to read; one line for data that is missing, given twice or has no such split."""
    d = cfg.data
    name = d.dataset or d.train_file
    if not name:
        raise ConfigError("no training data is set", hint="set data.dataset")
    given = [k for k, v in (("data.validation_file", d.validation_file), ("data.validation_split", d.validation_split), ("data.validation_fraction", d.validation_fraction)) if v]
    if len(given) > 1:
        raise ConfigError(f"validation data is given twice: {', '.join(given)}", hint="keep one of them")
    train = src_mod.resolve_source(name, d.config_name, d.text_split)
    if train.kind == "builtin" and d.split != "train":
        raise ConfigError(f"{train.name} has splits train and validation; data.split={d.split!r} is not one", hint="set data.split=train")
    validation, validation_split = None, None
    if d.validation_file:
        validation = src_mod.resolve_source(d.validation_file, text_split=d.text_split)
    elif d.validation_split:
        _check_has_split(train, d.validation_split)
        validation, validation_split = train, d.validation_split
    split = train.entry.split if train.entry is not None and d.split == "train" else d.split  # a registry entry's split
    return Plan(train, split, validation, validation_split)


def _check_has_split(src: Source, split: str) -> None:
    if src_mod.has_split(src.name, split, src.config_name) is False:
        raise ConfigError(
            f"data.validation_split={split!r}, but {src.name} has no such split",
            hint="use data.validation_file or data.validation_fraction (e.g. 0.05) for a single file, "
            "or unset it with data.validation_split=null",
        )


# --------------------------------------------------------------------------- fingerprint


def tokenizer_fingerprint(tokenizer: Any) -> str:
    """A hash of what decides tokenisation: vocabulary, merges, normaliser, special tokens, chat template."""
    h = hashlib.sha256()
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:
        h.update(backend.to_str().encode())
    else:
        h.update(json.dumps(sorted(tokenizer.get_vocab().items())).encode())
    special = {k: str(getattr(tokenizer, k, None)) for k in ("bos_token", "eos_token", "pad_token", "unk_token")}
    h.update(json.dumps(special, sort_keys=True).encode())
    h.update(str(getattr(tokenizer, "chat_template", None) or "").encode())
    h.update(type(tokenizer).__name__.encode())
    return h.hexdigest()


def fingerprint_inputs(cfg: RunConfig, plan: Plan, tokenizer: Any, template: Template) -> dict[str, Any]:
    """Every input that affects the prepared rows (recorded in the manifest, so a change can be named)."""
    d = cfg.data
    preference = cfg.trainer_type in ("dpo", "kto")  # prompt and response lengths of their own
    lengths = cfg.kto if cfg.trainer_type == "kto" else cfg.dpo
    settings = {
        "split": plan.train_split,
        "validation_split": d.validation_split,
        "validation_fraction": d.validation_fraction,
        "seed": cfg.train.seed if d.validation_fraction else None,
        "system_prompt": d.system_prompt,
        "completion_only_loss": None if preference else d.completion_only_loss,
        "drop_duplicates": d.drop_duplicates,
        "arabic_normalize": d.arabic_normalize,
        "too_long": d.too_long,
        "skip_invalid": d.skip_invalid,
        "max_rows": d.max_rows,
        "max_seq_length": None if preference else cfg.model.max_seq_length,
        "max_prompt_length": lengths.max_prompt_length if preference else None,
        "max_length": lengths.max_length if preference else None,
    }
    return {
        "version": DATA_VERSION,
        "trainer_type": cfg.trainer_type,
        "source": src_mod.describe_source(plan.train, plan.train_split),
        "validation_source": src_mod.describe_source(plan.validation, plan.validation_split) if plan.validation else None,
        "format": d.format,
        "field_map": dict(sorted(d.field_map.items())),
        "formatting_func": hashlib.sha256(formatting_func_source(d.formatting_func, trusted=cfg.formatting_func_trusted).encode()).hexdigest() if d.formatting_func else None,
        "template": template.describe(),
        "tokenizer": tokenizer_fingerprint(tokenizer),
        "settings": settings,
    }


def fingerprint(inputs: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(inputs, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


def changed_inputs(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """The inputs that differ (``tokenizer``, ``data setting max_seq_length``...), to say why data is prepared again."""
    changed = []
    for key in sorted(set(old) | set(new)):
        if key == "settings" and isinstance(old.get(key), dict):
            changed += [f"data setting {k}" for k in sorted(set(old[key]) | set(new[key])) if old[key].get(k) != new[key].get(k)]
        elif old.get(key) != new.get(key):
            changed.append(key)
    return changed


def reusable(out: Path, manifest: dict[str, Any] | None, fingerprint: str) -> bool:
    """Whether the prepared folder ``out`` (with this manifest) holds the result for ``fingerprint``, complete."""
    if not manifest or manifest.get("fingerprint") != fingerprint:
        return False
    files = manifest.get("files") or {}
    return all((out / name).exists() for name in files.values() if name)


def check_output(out: Path) -> None:
    """Refuse to replace a folder that is not a prepared folder (a typo in the output path must not delete work),
    and an output that cannot be written, before any row is read."""
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not (out / MANIFEST).is_file())):
        raise DataError(
            f"{out} exists and is not a prepared-data folder; refusing to replace it",
            hint="choose another output folder (data.prepared_dir)",
        )
    check_writable(out, hint="choose another output folder (data.prepared_dir)")
