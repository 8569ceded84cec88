"""The data pipeline: source rows -> canonical examples -> cleaned -> rendered -> tokenised -> saved.

:func:`prepare_data` writes a prepared folder (atomically: a temp folder renamed into place)::

    prepared/
      manifest.json     sources and their sha256, format, template, tokenizer fingerprint, settings, counts
      train/            datasets.save_to_disk: SFT input_ids, labels, messages | DPO prompt_ids, chosen_ids, ...
                        | KTO prompt_ids, completion_ids, label, ...
      validation/       the same, when there is validation data
      dropped.jsonl     every row not used, with its reason, explanation, file:line and the row itself

and reuses it when the fingerprint over every input that affects the result is unchanged.

Accounting: ``rows_in`` counts examples read (a SQuAD article or self-instruct task counts once per
question/instance; a row that yields none counts once, as dropped ``empty``). Always
``rows_in == rows_kept + sum(dropped.values()) + capped``: ``dropped`` counts by reason code
(:class:`~sftkit.data.drops.Reason`, one line each in ``dropped.jsonl``), ``capped`` the rows left over by
``data.max_rows``; ``rows_kept`` includes the rows carved out for validation by ``data.validation_fraction``.
"""

from __future__ import annotations

import math
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sftkit.data.clean import Reader
from sftkit.data.drops import Tally
from sftkit.data.encode import Job, encode_all
from sftkit.data.manifest import build_manifest, finish_tally, label_counts, read_manifest
from sftkit.data.plan import (
    Plan,
    changed_inputs,
    check_output,
    fingerprint,
    fingerprint_inputs,
    make_plan,
    reusable,
)
from sftkit.data.sources import source_rows
from sftkit.data.templates import Template, resolve_template
from sftkit.data.write import write_manifest, write_prepared
from sftkit.errors import DataError
from sftkit.layout import prepared_dir

if TYPE_CHECKING:  # pragma: no cover
    import datasets

    from sftkit.config import RunConfig


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
    tokenizer: Any = field(default=None, repr=False)
    """The tokenizer the rows were encoded with (for previews and decoding)."""
    notes: list[str] = field(default_factory=list)
    """What the user should know about how the settings were read (e.g. a template without ``{response}``)."""


def default_prepared_dir(cfg: RunConfig) -> Path:
    return Path(cfg.data.prepared_dir or prepared_dir(cfg.train.output_dir))


def prepare_data(
    cfg: RunConfig, *, tokenizer: Any = None, output: Path | None = None, overwrite: bool = False
) -> PreparedData:
    """Prepare (or reuse) the tokenised training data a RunConfig describes. See the module docstring.

    ``overwrite``: prepare again even when a matching prepared folder exists.
    """
    out = Path(output) if output else default_prepared_dir(cfg)
    plan = make_plan(cfg)
    if tokenizer is None:
        from sftkit.modeling import tokenizer_for

        tokenizer = tokenizer_for(cfg)
    template = resolve_template(cfg.data.template, tokenizer, cfg.data.response_marker, cfg.data.chat_template_kwargs)
    inputs = fingerprint_inputs(cfg, plan, tokenizer, template)
    key = fingerprint(inputs)
    changed: list[str] = []
    if not overwrite:
        previous = read_manifest(out)
        if reusable(out, previous, key):
            reused = _reuse(out, previous, cfg, tokenizer)
            reused.notes = list(template.notes)
            return reused
        if previous:
            changed = changed_inputs(previous.get("inputs", {}), inputs)
    check_output(out)
    manifest, train_rows, val_rows, dropped = _run(cfg, plan, tokenizer, template, inputs["tokenizer"])
    manifest.update({"fingerprint": key, "inputs": inputs, "packing": cfg.data.packing, "created": time.strftime("%Y-%m-%dT%H:%M:%S%z")})
    write_prepared(out, manifest, train_rows, val_rows, dropped, cfg.trainer_type)
    from datasets import load_from_disk

    return PreparedData(
        out,
        manifest,
        load_from_disk(str(out / "train")),
        load_from_disk(str(out / "validation")) if val_rows is not None else None,
        reused=False,
        changed=changed,
        tokenizer=tokenizer,
        notes=list(template.notes),
    )


def _run(cfg: RunConfig, plan: Plan, tokenizer: Any, template: Template, tokenizer_fp: str) -> tuple[dict, list, list | None, list]:
    """Read, clean and encode the training (and validation) rows: (manifest, train rows, validation rows, dropped.jsonl lines)."""
    d = cfg.data
    job = Job.for_config(cfg, tokenizer, template)
    tally = Tally("train", d.skip_invalid)
    reader = Reader(cfg, tally)
    examples = reader.read(source_rows(plan.train, plan.train_split, cfg.trainer_type))
    fraction = d.validation_fraction
    target = None
    if d.max_rows:  # encode only as many rows as are used (plus the validation share carved out of them)
        target = math.ceil(d.max_rows / (1 - fraction)) if fraction else d.max_rows
    rows = encode_all(job, examples, tally, target, d.num_proc)
    train_rows, val_rows = _split(rows, fraction, cfg.train.seed) if fraction else (rows, None)
    if d.max_rows and len(train_rows) > d.max_rows:
        tally.capped += len(train_rows) - d.max_rows
        train_rows = train_rows[: d.max_rows]
    tally.kept = len(train_rows) + (len(val_rows) if val_rows is not None else 0)
    if not train_rows:
        raise DataError(
            f"no training rows are left ({tally.rows_in} read: {tally.text()})",
            hint="a larger model.max_seq_length, data.too_long=truncate or fixing the rows may help",
        )
    finish_tally(tally, train_rows + (val_rows or []))
    dropped = tally.records
    validation = None
    if plan.validation is not None:
        vtally = Tally("validation", d.skip_invalid)
        vreader = Reader(cfg, vtally)
        val_rows = encode_all(job, vreader.read(source_rows(plan.validation, plan.validation_split, cfg.trainer_type)), vtally, None, d.num_proc)
        vtally.kept = len(val_rows)
        if not val_rows:
            raise DataError(f"no validation rows are left ({vtally.rows_in} read: {vtally.text()})")
        finish_tally(vtally, val_rows)
        validation = {"format": vreader.fmt, "format_reason": vreader.reason, **vtally.as_dict(), **_labels(cfg, val_rows)}
        dropped = dropped + vtally.records
    elif val_rows is not None:
        validation = {"from": f"validation_fraction={fraction} (seed {cfg.train.seed})", "rows": len(val_rows), **_labels(cfg, val_rows)}
    manifest = build_manifest(cfg, plan, tokenizer, tokenizer_fp, template, reader.fmt, tally, train_rows, val_rows, validation, reader.reason)
    return manifest, train_rows, val_rows, dropped


def _labels(cfg: RunConfig, rows: list[dict[str, Any]]) -> dict[str, Any]:
    """KTO: the rows' desirable and undesirable counts, for the manifest."""
    return {"labels": label_counts(rows)} if cfg.trainer_type == "kto" else {}


def _split(rows: list[dict[str, Any]], fraction: float, seed: int) -> tuple[list, list]:
    """(train, validation): a seeded random ``fraction`` of the rows for validation, at least one of each."""
    n_val = round(len(rows) * fraction)
    if len(rows) >= 2:
        n_val = min(max(n_val, 1), len(rows) - 1)
    order = list(range(len(rows)))
    random.Random(seed).shuffle(order)
    val_index = set(order[:n_val])
    return [r for i, r in enumerate(rows) if i not in val_index], [r for i, r in enumerate(rows) if i in val_index]


def _reuse(out: Path, manifest: dict[str, Any], cfg: RunConfig, tokenizer: Any) -> PreparedData:
    from datasets import load_from_disk

    if manifest.get("packing") != cfg.data.packing:  # recorded, not part of the result: keep the record true
        manifest["packing"] = cfg.data.packing
        write_manifest(out, manifest)
    val = out / "validation"
    return PreparedData(
        out, manifest, load_from_disk(str(out / "train")), load_from_disk(str(val)) if val.is_dir() else None, reused=True, tokenizer=tokenizer
    )


def summary(prepared: PreparedData) -> dict[str, Any]:
    """The machine-readable summary ``sftkit prepare --json`` prints."""
    m = prepared.manifest
    keys = (
        "trainer_type",
        "format",
        "format_reason",
        "template",
        "rows_in",
        "rows_kept",
        "dropped",
        "notes",
        "capped",
        "truncated",
        "truncated_pct",
        "splits",
        "token_lengths",
        "trained_tokens",
        "labels",
        "validation",
        "fingerprint",
    )
    out = {"path": str(prepared.path), "reused": prepared.reused, "changed": prepared.changed}
    out.update({k: m.get(k) for k in keys})
    out["template"] = (m.get("template") or {}).get("name")
    return out
