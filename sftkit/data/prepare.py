"""The data pipeline: source rows -> canonical examples -> cleaned -> rendered -> tokenised -> saved.

:func:`prepare_data` writes a prepared folder (atomically: a temp folder renamed into place)::

    prepared/
      manifest.json     sources and their sha256, format, template, tokenizer fingerprint, settings, counts
      train/            datasets.save_to_disk: SFT input_ids, labels, messages | DPO prompt_ids, chosen_ids, ...
      validation/       the same, when there is validation data
      rejects.jsonl     with data.skip_invalid: every rejected row with its place and reason

and reuses it when the fingerprint over every input that affects the result is unchanged.

Accounting: ``rows_in`` counts examples read (a SQuAD article or self-instruct task counts once per
question/instance; a row that yields none counts once, as dropped ``empty``). Always
``rows_in == rows_kept + rejected + sum(dropped.values())``; ``rows_kept`` includes the rows carved out
for validation by ``data.validation_fraction``.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import random
import shutil
import tempfile
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Iterator

from sftkit.data import sources as src_mod
from sftkit.data.arabic import normalize_arabic
from sftkit.data.formats import (
    DroppedRow,
    InvalidRow,
    add_system_prompt,
    apply_field_map,
    check_example,
    check_field_map,
    check_format_for_trainer,
    detect_format,
    formatting_func_source,
    load_formatting_func,
    map_text,
    normalize_custom,
    normalize_row,
)
from sftkit.data.sources import BUILTIN_TINY, Source, SourceRow
from sftkit.data.templates import Template, render_conversation, render_pair, render_text, resolve_template
from sftkit.data.tokenize import (
    IGNORE_INDEX,
    encode_pairs,
    encode_sft,
    has_trained_tokens,
    truncate_pair,
    truncate_sft,
)
from sftkit.errors import ConfigError, DataError
from sftkit.yamlio import atomic_write_text

if TYPE_CHECKING:  # pragma: no cover
    import datasets

    from sftkit.config import RunConfig

#: bump when the prepared layout or the processing changes, so old caches are never reused
DATA_VERSION = 1
MANIFEST = "manifest.json"
REJECTS = "rejects.jsonl"
CHUNK = 512
SKIP_HINT = "fix the row, or pass --skip-invalid (data.skip_invalid=true) to skip bad rows and list them in rejects.jsonl"


@dataclass
class PreparedData:
    path: Path
    """The prepared folder."""
    manifest: dict
    """What manifest.json holds."""
    train: "datasets.Dataset"
    validation: "datasets.Dataset | None"
    reused: bool
    """True when a matching prepared folder was reused."""
    changed: list[str] = field(default_factory=list)
    """Why an existing prepared folder was not reused: the inputs that changed (empty when new or reused)."""


@dataclass
class Example:
    data: dict[str, Any]
    where: str


@dataclass
class Tally:
    """Counts for one source; ``rows_in == kept + rejected + sum(dropped)``."""

    source_rows: int = 0
    rows_in: int = 0
    kept: int = 0
    dropped: Counter = field(default_factory=Counter)
    rejects: list[dict[str, Any]] = field(default_factory=list)
    truncated: int = 0
    boundary_merges: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "source_rows": self.source_rows,
            "rows_in": self.rows_in,
            "rows_kept": self.kept,
            "rejected": len(self.rejects),
            "dropped": dict(sorted(self.dropped.items())),
            "truncated": self.truncated,
            "truncated_pct": round(100.0 * self.truncated / self.kept, 2) if self.kept else 0.0,
            "boundary_merges": self.boundary_merges,
        }


# --------------------------------------------------------------------------- public entry point


def default_prepared_dir(cfg: RunConfig) -> Path:
    return Path(cfg.data.prepared_dir or Path(cfg.train.output_dir) / "prepared")


def prepare_data(cfg: RunConfig, *, tokenizer: Any = None, output: Path | None = None, force: bool = False) -> PreparedData:
    """Prepare (or reuse) the tokenised training data a RunConfig describes. See the module docstring."""
    out = Path(output) if output else default_prepared_dir(cfg)
    plan = _plan(cfg)
    if tokenizer is None:
        from sftkit.modeling import tokenizer_for

        tokenizer = tokenizer_for(cfg)
    template = resolve_template(cfg.data.template, tokenizer, cfg.data.response_marker)
    inputs = _inputs(cfg, plan, tokenizer, template)
    fingerprint = _hash(inputs)
    changed: list[str] = []
    if not force:
        previous = _read_manifest(out)
        if previous and previous.get("fingerprint") == fingerprint and _complete(out, previous):
            return _reuse(out, previous, cfg)
        if previous:
            changed = _changed_inputs(previous.get("inputs", {}), inputs)
    _check_output(out)
    manifest, train_rows, val_rows, rejects = _run(cfg, plan, tokenizer, template, inputs["tokenizer"])
    manifest.update(
        {
            "fingerprint": fingerprint,
            "inputs": inputs,
            "packing": cfg.data.packing,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
    )
    _write(out, manifest, train_rows, val_rows, rejects, cfg)
    from datasets import load_from_disk

    return PreparedData(
        out,
        manifest,
        load_from_disk(str(out / "train")),
        load_from_disk(str(out / "validation")) if val_rows is not None else None,
        reused=False,
        changed=changed,
    )


def summary(prepared: PreparedData) -> dict[str, Any]:
    """The machine-readable summary ``sftkit prepare --json`` prints."""
    m = prepared.manifest
    keys = (
        "trainer_type",
        "format",
        "template",
        "rows_in",
        "rows_kept",
        "rejected",
        "dropped",
        "truncated",
        "truncated_pct",
        "splits",
        "token_lengths",
        "trained_tokens",
        "validation",
        "fingerprint",
    )
    out = {"path": str(prepared.path), "reused": prepared.reused, "changed": prepared.changed}
    out.update({k: m.get(k) for k in keys})
    out["template"] = (m.get("template") or {}).get("name")
    return out


# --------------------------------------------------------------------------- planning and fingerprint


@dataclass
class Plan:
    train: Source
    train_split: str | None
    validation: Source | None
    validation_split: str | None


def _plan(cfg: RunConfig) -> Plan:
    d = cfg.data
    name = d.dataset or d.train_file
    if not name:
        raise ConfigError("no training data is set", hint="pass --data FILE or set data.dataset")
    given = [k for k, v in (("data.validation_file", d.validation_file), ("data.validation_split", d.validation_split), ("data.validation_fraction", d.validation_fraction)) if v]
    if len(given) > 1:
        raise ConfigError(f"validation data is given twice: {', '.join(given)}", hint="keep one of them")
    train = src_mod.resolve_source(name, d.config_name)
    train_split = d.split
    if train.kind == "builtin" and d.split != "train":
        raise ConfigError(f"builtin:tiny has splits train and validation; data.split={d.split!r} is not one", hint="set data.split=train")
    validation, validation_split = None, None
    if d.validation_file:
        validation = src_mod.resolve_source(d.validation_file)
    elif d.validation_split:
        _check_has_splits(train, d.validation_split)
        validation, validation_split = train, d.validation_split
    return Plan(train, train_split, validation, validation_split)


def _check_has_splits(src: Source, split: str) -> None:
    if src_mod.has_split(src.name, split, src.config_name) is False:
        raise ConfigError(
            f"data.validation_split={split!r}, but {src.name} has no such split",
            hint="use data.validation_file or data.validation_fraction (e.g. 0.05) for a single file, "
            "or unset it with --set data.validation_split=null",
        )


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


def _inputs(cfg: RunConfig, plan: Plan, tokenizer: Any, template: Template) -> dict[str, Any]:
    d = cfg.data
    dpo = cfg.trainer_type == "dpo"
    settings = {
        "split": plan.train_split,
        "validation_split": d.validation_split,
        "validation_fraction": d.validation_fraction,
        "seed": cfg.train.seed if d.validation_fraction else None,
        "system_prompt": d.system_prompt,
        "completion_only_loss": None if dpo else d.completion_only_loss,
        "drop_duplicates": d.drop_duplicates,
        "arabic_normalize": d.arabic_normalize,
        "too_long": d.too_long,
        "skip_invalid": d.skip_invalid,
        "max_rows": d.max_rows,
        "max_seq_length": None if dpo else cfg.model.max_seq_length,
        "max_prompt_length": cfg.dpo.max_prompt_length if dpo else None,
        "max_length": cfg.dpo.max_length if dpo else None,
    }
    return {
        "version": DATA_VERSION,
        "trainer_type": cfg.trainer_type,
        "source": src_mod.describe_source(plan.train, plan.train_split),
        "validation_source": src_mod.describe_source(plan.validation, plan.validation_split) if plan.validation else None,
        "format": d.format,
        "field_map": dict(sorted(d.field_map.items())),
        "formatting_func": hashlib.sha256(formatting_func_source(d.formatting_func).encode()).hexdigest() if d.formatting_func else None,
        "template": template.describe(),
        "tokenizer": tokenizer_fingerprint(tokenizer),
        "settings": settings,
    }


def _hash(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


def _changed_inputs(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    changed = []
    for key in sorted(set(old) | set(new)):
        if key == "settings" and isinstance(old.get(key), dict):
            changed += [f"data setting {k}" for k in sorted(set(old[key]) | set(new[key])) if old[key].get(k) != new[key].get(k)]
        elif old.get(key) != new.get(key):
            changed.append(key)
    return changed


def _read_manifest(out: Path) -> dict[str, Any] | None:
    try:
        return json.loads((out / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _complete(out: Path, manifest: dict[str, Any]) -> bool:
    files = manifest.get("files") or {}
    return all((out / name).exists() for name in files.values() if name)


def _reuse(out: Path, manifest: dict[str, Any], cfg: RunConfig) -> PreparedData:
    from datasets import load_from_disk

    if manifest.get("packing") != cfg.data.packing:  # recorded, not part of the result: keep the record true
        manifest["packing"] = cfg.data.packing
        atomic_write_text(out / MANIFEST, json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")
    val = out / "validation"
    return PreparedData(
        out, manifest, load_from_disk(str(out / "train")), load_from_disk(str(val)) if val.is_dir() else None, reused=True
    )


def _check_output(out: Path) -> None:
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not (out / MANIFEST).is_file())):
        raise DataError(
            f"{out} exists and is not a prepared-data folder; refusing to replace it",
            hint="choose another --output (or data.prepared_dir)",
        )


# --------------------------------------------------------------------------- reading and cleaning


def _iter_rows(src: Source, split: str | None, trainer_type: str) -> Iterator[SourceRow]:
    if src.kind != "builtin":
        yield from src_mod.read_rows(src, split)
        return
    from sftkit import tiny

    validation = split == "validation"
    n = src_mod.TINY_VALIDATION_ROWS if validation else src_mod.TINY_TRAIN_ROWS
    if trainer_type == "dpo":
        rows = _tiny_heldout_pairs(n, src_mod.TINY_SEED) if validation else tiny.dpo_rows(n, src_mod.TINY_SEED)
    else:
        rows = tiny.heldout_rows(n, src_mod.TINY_SEED) if validation else tiny.sft_rows(n, src_mod.TINY_SEED)
    for k, row in enumerate(rows, 1):
        yield SourceRow(row, f"{BUILTIN_TINY}[{split or 'train'}] row {k}", k)


def _tiny_heldout_pairs(n: int, seed: int) -> list[dict[str, str]]:
    """Preference pairs over the held-out words of the tiny task (chosen: upper-cased; rejected: a mistake)."""
    from sftkit import tiny

    rng = random.Random(f"sftkit-tiny-dpo-heldout-{seed}")
    pairs = []
    for row in tiny.heldout_rows(n, seed):
        answer, word = row["output"], row["output"].lower()
        cut = rng.randint(1, len(word) - 1)
        rejected = rng.choice([word, answer[:cut] + word[cut:]])
        pairs.append({"prompt": row["instruction"], "chosen": answer, "rejected": rejected})
    return pairs


class _Reader:
    """Turns source rows into cleaned canonical examples, counting everything it does not keep."""

    def __init__(self, cfg: RunConfig, tally: Tally, fmt: str | None = None) -> None:
        self.cfg, self.tally, self.fmt = cfg, tally, fmt
        d = cfg.data
        self.custom = load_formatting_func(d.formatting_func) if d.formatting_func else None
        self.seen: set[bytes] = set()

    def read(self, rows: Iterator[SourceRow]) -> list[Example]:
        d = self.cfg.data
        head: list[SourceRow] = []
        for row in rows:  # buffer the first rows for format detection
            head.append(row)
            if len(head) >= 50:
                break
        if not head:
            raise DataError("the data has no rows", hint="check the file or the split")
        if all(r.error is not None for r in head):
            self.invalid(head[0].where, head[0].error or "", head[0].data)  # raises unless skip_invalid
            raise DataError(f"{head[0].where}: none of the first {len(head)} rows can be read", hint="check the file's format")
        if d.field_map:
            check_field_map([r.data for r in head if r.error is None], d.field_map)
        if self.fmt is None:
            self.fmt = self._detect([apply_field_map(r.data, d.field_map) for r in head if r.error is None])
        examples: list[Example] = []
        for row in _chain(head, rows):
            self.tally.source_rows += 1
            examples.extend(self._one(row))
        return examples

    def _detect(self, rows: list[Any]) -> str:
        d, trainer = self.cfg.data, self.cfg.trainer_type
        if self.custom is not None:
            return "custom"
        if d.format != "auto":
            check_format_for_trainer(d.format, trainer)
            return d.format
        return detect_format(rows, trainer)

    def _one(self, row: SourceRow) -> list[Example]:
        d = self.cfg.data
        if row.error is not None:
            self.invalid(row.where, row.error, row.data)
            return []
        data = apply_field_map(row.data, d.field_map)
        try:
            if self.custom is not None:
                produced = normalize_custom(data, self.custom, self.cfg.trainer_type)
            else:
                produced = normalize_row(data, self.fmt or "")
        except InvalidRow as e:
            self.invalid(row.where, str(e), row.data)
            return []
        except DroppedRow as e:
            self.tally.rows_in += 1
            self.tally.dropped[str(e)] += 1
            return []
        if not produced:
            self.tally.rows_in += 1
            self.tally.dropped["empty"] += 1
            return []
        kept = []
        for ex in produced:
            self.tally.rows_in += 1
            ex = add_system_prompt(ex, d.system_prompt)
            if d.arabic_normalize:
                ex = map_text(ex, normalize_arabic)
            try:
                reason = check_example(ex)
            except InvalidRow as e:
                self.tally.rows_in -= 1  # invalid() counts it
                self.invalid(row.where, str(e), row.data)
                continue
            if reason is None and d.drop_duplicates:
                key = hashlib.blake2b(json.dumps(ex, sort_keys=True, ensure_ascii=False).encode(), digest_size=16).digest()
                if key in self.seen:
                    reason = "duplicate"
                self.seen.add(key)
            if reason:
                self.tally.dropped[reason] += 1
                continue
            kept.append(Example(ex, row.where))
        return kept

    def invalid(self, where: str, reason: str, raw: Any) -> None:
        """A row that cannot be used: an error, or (skip_invalid) counted and listed in rejects.jsonl."""
        if not self.cfg.data.skip_invalid:
            raise DataError(f"{where}: {reason}", hint=SKIP_HINT)
        self.tally.rows_in += 1
        self.tally.rejects.append({"where": where, "reason": reason, "row": raw})


def _chain(head: list[SourceRow], rest: Iterator[SourceRow]) -> Iterator[SourceRow]:
    yield from head
    yield from rest


# --------------------------------------------------------------------------- rendering and tokenising


@dataclass
class _Job:
    """What a worker needs to encode chunks (module-level so worker processes can use it)."""

    tokenizer: Any
    template: Template
    trainer_type: str
    completion_only: bool
    max_seq_length: int
    max_prompt_length: int
    max_length: int
    drop_too_long: bool


_WORKER_JOB: _Job | None = None


def _init_worker(job: _Job) -> None:
    global _WORKER_JOB
    _WORKER_JOB = job


def _encode_in_worker(chunk: list[Example]) -> list[tuple[str, Any]]:
    assert _WORKER_JOB is not None
    return _encode_chunk(_WORKER_JOB, chunk)


def _encode_chunk(job: _Job, chunk: list[Example]) -> list[tuple[str, Any]]:
    """Each example -> ("keep", row) | ("drop", reason) | ("invalid", reason); a kept row notes truncation."""
    results: list[tuple[str, Any]] = [("invalid", "")] * len(chunk)
    rendered, index = [], []
    for k, ex in enumerate(chunk):
        try:
            rendered.append(_render(job, ex.data))
            index.append(k)
        except InvalidRow as e:
            results[k] = ("invalid", str(e))
    if job.trainer_type == "dpo":
        encoded = encode_pairs(rendered, job.tokenizer)
        for k, (texts, enc) in zip(index, zip(rendered, encoded, strict=True), strict=True):
            cut_enc, cut = truncate_pair(enc, job.max_prompt_length, job.max_length)
            if cut and job.drop_too_long:
                results[k] = ("drop", "too_long")
                continue
            ex = chunk[k].data
            results[k] = (
                "keep",
                {
                    "prompt_ids": cut_enc.prompt_ids,
                    "chosen_ids": cut_enc.chosen_ids,
                    "rejected_ids": cut_enc.rejected_ids,
                    "prompt": texts[0],
                    "chosen": texts[1],
                    "rejected": texts[2],
                    "messages": json.dumps([*ex["prompt"], {"role": "assistant", "content": ex["chosen"]}], ensure_ascii=False),
                    "_truncated": cut,
                    "_merge": enc.boundary_merge,
                },
            )
        return results
    encoded = encode_sft(rendered, job.tokenizer, job.completion_only)
    for k, enc in zip(index, encoded, strict=True):
        cut_enc, cut = truncate_sft(enc, job.max_seq_length)
        if cut and job.drop_too_long:
            results[k] = ("drop", "too_long")
            continue
        if not has_trained_tokens(cut_enc):
            results[k] = ("drop", "prompt_too_long" if cut else "no_trained_tokens")
            continue
        ex = chunk[k].data
        messages = ex["messages"] if "messages" in ex else [{"role": "assistant", "content": ex["text"]}]
        results[k] = (
            "keep",
            {
                "input_ids": cut_enc.input_ids,
                "labels": cut_enc.labels,
                "messages": json.dumps(messages, ensure_ascii=False),
                "_truncated": cut,
                "_merge": enc.boundary_merge,
            },
        )
    return results


def _render(job: _Job, ex: dict[str, Any]) -> Any:
    if job.trainer_type == "dpo":
        p1, chosen = render_pair(ex["prompt"], ex["chosen"], job.tokenizer, job.template)
        p2, rejected = render_pair(ex["prompt"], ex["rejected"], job.tokenizer, job.template)
        if p1 != p2:
            raise InvalidRow("the template renders the prompt differently for chosen and rejected")
        return (p1, chosen, rejected)
    if "text" in ex:
        return render_text(ex["text"], job.template)
    return render_conversation(ex["messages"], job.tokenizer, job.template)


def _encode_all(
    job: _Job, examples: list[Example], tally: Tally, reader: _Reader, target: int | None, num_proc: int | None
) -> list[dict[str, Any]]:
    """Encode examples in order until ``target`` rows are kept (None: all); the rest count as dropped ``max_rows``."""
    kept: list[dict[str, Any]] = []
    size = CHUNK if target is None else min(CHUNK, max(64, target))
    chunks = [examples[i : i + size] for i in range(0, len(examples), size)]
    workers = num_proc if num_proc and num_proc > 1 and len(chunks) > 1 else 1
    pool = None
    parallelism = os.environ.get("TOKENIZERS_PARALLELISM")
    if workers > 1:
        import multiprocessing

        os.environ["TOKENIZERS_PARALLELISM"] = "false"  # processes instead of tokenizer threads (and no fork warning)
        pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork"), initializer=_init_worker, initargs=(job,))
    done = 0
    try:
        pos = 0
        while pos < len(chunks) and (target is None or len(kept) < target):
            batch = chunks[pos : pos + workers]
            pos += len(batch)
            results: Iterable[list[tuple[str, Any]]]
            results = pool.map(_encode_in_worker, batch) if pool else [_encode_chunk(job, c) for c in batch]
            for chunk, chunk_results in zip(batch, results, strict=True):
                for ex, (status, value) in zip(chunk, chunk_results, strict=True):
                    done += 1
                    if status == "invalid":
                        tally.rows_in -= 1  # reader.invalid counts it again
                        reader.invalid(ex.where, value, ex.data)
                    elif status == "drop":
                        tally.dropped[value] += 1
                    elif target is not None and len(kept) >= target:
                        tally.dropped["max_rows"] += 1
                    else:
                        kept.append(value)
    finally:
        if pool:
            pool.shutdown()
            if parallelism is None:
                os.environ.pop("TOKENIZERS_PARALLELISM", None)
            else:
                os.environ["TOKENIZERS_PARALLELISM"] = parallelism
    if done < len(examples):
        tally.dropped["max_rows"] += len(examples) - done
    return kept


# --------------------------------------------------------------------------- the run


def _run(cfg: RunConfig, plan: Plan, tokenizer: Any, template: Template, tok_fp: str) -> tuple[dict, list, list | None, list]:
    d = cfg.data
    job = _Job(
        tokenizer,
        template,
        cfg.trainer_type,
        d.completion_only_loss,
        cfg.model.max_seq_length,
        cfg.dpo.max_prompt_length,
        cfg.dpo.max_length,
        d.too_long == "drop",
    )
    tally = Tally()
    reader = _Reader(cfg, tally)
    examples = reader.read(_iter_rows(plan.train, plan.train_split, cfg.trainer_type))
    fraction = d.validation_fraction
    target = None
    if d.max_rows:
        target = math.ceil(d.max_rows / (1 - fraction)) if fraction else d.max_rows
    rows = _encode_all(job, examples, tally, reader, target, d.num_proc)
    val_rows = None
    if fraction:
        train_rows, val_rows = _split(rows, fraction, cfg.train.seed)
    else:
        train_rows = rows
    if d.max_rows and len(train_rows) > d.max_rows:
        tally.dropped["max_rows"] += len(train_rows) - d.max_rows
        train_rows = train_rows[: d.max_rows]
    tally.kept = len(train_rows) + (len(val_rows) if val_rows is not None else 0)
    if not train_rows:
        raise DataError(
            f"no training rows are left ({tally.rows_in} read: {_drop_text(tally)})",
            hint="a larger model.max_seq_length, data.too_long=truncate or fixing the rows may help",
        )
    _finish_tally(tally, rows if fraction else train_rows)
    validation_block = None
    rejects = [dict(r, split="train") for r in tally.rejects]
    if plan.validation is not None:
        vtally = Tally()
        vreader = _Reader(cfg, vtally)
        vexamples = vreader.read(_iter_rows(plan.validation, plan.validation_split, cfg.trainer_type))
        val_rows = _encode_all(job, vexamples, vtally, vreader, None, d.num_proc)
        vtally.kept = len(val_rows)
        _finish_tally(vtally, val_rows)
        validation_block = {"format": vreader.fmt, **vtally.as_dict()}
        rejects += [dict(r, split="validation") for r in vtally.rejects]
        if not val_rows:
            raise DataError(f"no validation rows are left ({vtally.rows_in} read: {_drop_text(vtally)})")
    elif val_rows is not None:
        validation_block = {"from": f"validation_fraction={fraction} (seed {cfg.train.seed})", "rows": len(val_rows)}
    manifest = {
        "sftkit_data_version": DATA_VERSION,
        "trainer_type": cfg.trainer_type,
        "source": _public_source(plan.train, plan.train_split),
        "format": reader.fmt,
        "format_requested": d.format,
        "template": template.describe(),
        "tokenizer": {
            "name": cfg.model.tokenizer or cfg.model.name,
            "class": type(tokenizer).__name__,
            "eos_token": tokenizer.eos_token,
            "bos_token": tokenizer.bos_token,
            "vocab_size": len(tokenizer),
            "fingerprint": tok_fp,
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
            "validation_fraction": d.validation_fraction,
            "seed": cfg.train.seed,
        },
        **tally.as_dict(),
        "splits": {"train": len(train_rows), "validation": len(val_rows) if val_rows is not None else 0},
        "token_lengths": _length_stats(train_rows, cfg.trainer_type),
        "trained_tokens": _trained_tokens(train_rows, cfg.trainer_type),
        "validation": validation_block,
        "files": {"train": "train", "validation": "validation" if val_rows is not None else None, "rejects": REJECTS if d.skip_invalid else None},
    }
    return manifest, train_rows, val_rows, rejects


def _public_source(src: Source, split: str | None) -> dict[str, Any]:
    if src.kind == "hub":
        return {"kind": "hub", "id": src.name, "config": src.config_name, "revision": src.revision, "split": split}
    if src.kind == "builtin":
        return {"kind": "builtin", "name": src.name, "rows": [src_mod.TINY_TRAIN_ROWS, src_mod.TINY_VALIDATION_ROWS]}
    return src_mod.describe_source(src, split)


def _split(rows: list[dict[str, Any]], fraction: float, seed: int) -> tuple[list, list]:
    n_val = round(len(rows) * fraction)
    if len(rows) >= 2:
        n_val = min(max(n_val, 1), len(rows) - 1)
    order = list(range(len(rows)))
    random.Random(seed).shuffle(order)
    val_index = set(order[:n_val])
    return [r for i, r in enumerate(rows) if i not in val_index], [r for i, r in enumerate(rows) if i in val_index]


def _finish_tally(tally: Tally, rows: list[dict[str, Any]]) -> None:
    tally.truncated = sum(1 for r in rows if r["_truncated"])
    tally.boundary_merges = sum(1 for r in rows if r["_merge"])


def _drop_text(tally: Tally) -> str:
    parts = [f"{n} {reason}" for reason, n in tally.dropped.most_common()]
    if tally.rejects:
        parts.append(f"{len(tally.rejects)} rejected")
    return ", ".join(parts) or "nothing usable"


def _lengths(rows: list[dict[str, Any]], trainer_type: str) -> list[int]:
    if trainer_type == "dpo":
        return [len(r["prompt_ids"]) + max(len(r["chosen_ids"]), len(r["rejected_ids"])) for r in rows]
    return [len(r["input_ids"]) for r in rows]


def _length_stats(rows: list[dict[str, Any]], trainer_type: str) -> dict[str, float]:
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


def _trained_tokens(rows: list[dict[str, Any]], trainer_type: str) -> int:
    if trainer_type == "dpo":
        return sum(len(r["chosen_ids"]) + len(r["rejected_ids"]) for r in rows)
    return sum(sum(1 for x in r["labels"] if x != IGNORE_INDEX) for r in rows)


# --------------------------------------------------------------------------- writing


def _to_dataset(rows: list[dict[str, Any]], trainer_type: str) -> Any:
    from datasets import Dataset, Features, List, Value

    if trainer_type == "dpo":
        cols = {"prompt_ids": List(Value("int64")), "chosen_ids": List(Value("int64")), "rejected_ids": List(Value("int64"))}
        cols.update({k: Value("string") for k in ("prompt", "chosen", "rejected", "messages")})
    else:
        cols = {"input_ids": List(Value("int64")), "labels": List(Value("int64")), "messages": Value("string")}
    data = {k: [r[k] for r in rows] for k in cols}
    return Dataset.from_dict(data, features=Features(cols))


def _write(out: Path, manifest: dict, train_rows: list, val_rows: list | None, rejects: list, cfg: RunConfig) -> None:
    """Write everything into a temp folder next to ``out`` and rename it into place."""
    from datasets.utils.logging import disable_progress_bar, enable_progress_bar, is_progress_bar_enabled

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    old = None
    bars = is_progress_bar_enabled()
    disable_progress_bar()
    try:
        _to_dataset(train_rows, cfg.trainer_type).save_to_disk(str(tmp / "train"))
        if val_rows is not None:
            _to_dataset(val_rows, cfg.trainer_type).save_to_disk(str(tmp / "validation"))
        if cfg.data.skip_invalid:
            with open(tmp / REJECTS, "w", encoding="utf-8") as f:
                for r in rejects:
                    f.write(json.dumps(r, ensure_ascii=False, default=str) + "\n")
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
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
        fmt = detect_format(good[:50], trainer_type)
    out: list[tuple[dict[str, Any], str]] = []
    for r in rows:
        try:
            if r.error is not None:
                raise InvalidRow(r.error)
            for ex in normalize_row(apply_field_map(r.data, field_map), fmt):
                out.append((ex, r.where))
        except (InvalidRow, DroppedRow) as e:
            if isinstance(e, InvalidRow) and not skip_invalid:
                raise DataError(f"{r.where}: {e}", hint=SKIP_HINT) from None
    return out, fmt


def peek(path: str | Path, n: int = 5) -> tuple[list[Any], int, str | None]:
    """(first ``n`` rows as stored, total row count, detected format or None) — for the init wizard."""
    first: list[Any] = []
    total = 0
    for row in src_mod.read_rows(path):
        total += 1
        if row.error is None and len(first) < max(n, 50):
            first.append(row.data)
    try:
        fmt: str | None = detect_format(first)
    except DataError:
        fmt = None
    return first[:n], total, fmt


__all__ = [
    "PreparedData",
    "prepare_data",
    "summary",
    "read_examples",
    "peek",
    "tokenizer_fingerprint",
    "default_prepared_dir",
]
