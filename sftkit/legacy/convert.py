"""Mapping an old config's field values onto sftkit keys, on top of the ``smollm3`` / ``smollm3-dpo`` preset.

Fields equal to the old ``SmolLM3Config`` defaults need no line: the preset already holds them. The rest are
mapped (directly, through aliases, or in groups: data format and files, reference model, LoRA), compared with
the preset's resolved values, and what differs becomes the project file. What cannot be carried over is
listed with its line and the reason.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sftkit.errors import ConfigError
from sftkit.layout import CONFIG
from sftkit.legacy.fields import (
    ALIASES,
    BASE_CLASSES,
    DIRECT,
    GROUPED,
    NO_EQUIVALENT,
    is_secret,
)
from sftkit.legacy.read import Skipped, Value, read_legacy
from sftkit.projectfile import (
    ProjectFile,
    check_text,
    diff_against,
    same_value,
    write_project,
)
from sftkit.projectfile import render as render_project

#: where the data is: carried over even when equal to the old defaults, since the presets name no data
DATA_LOCATION = ("data_dir", "train_file", "validation_file")


@dataclass(kw_only=True)
class Conversion(ProjectFile):
    """The project file a legacy config becomes, and the account of how each field got there."""

    source: Path
    class_name: str
    mapped: list[tuple[str, str, int]] = field(default_factory=list)
    """(old name, sftkit key, line) for every value written."""
    skipped: list[Skipped] = field(default_factory=list)
    """Everything that could not be carried over (unmappable, not a literal, or a secret), with its line."""
    same_as_base: int = 0
    """Fields equal to the old base config's defaults (already in the preset)."""


def convert_legacy(path: Path) -> Conversion:
    """Read an old config file (never running it) and map it onto the ``smollm3`` / ``smollm3-dpo`` preset."""
    from sftkit.resolve import resolve_config

    path = Path(path)
    legacy = read_legacy(path)
    class_name, base_class, values, skipped = legacy.class_name, legacy.base, legacy.values, legacy.skipped
    notes: list[str] = []
    trainer = values.get("trainer_type")
    is_dpo = base_class == "SmolLM3DPOConfig" or (trainer is not None and trainer.value == "dpo")
    extends, defaults = BASE_CLASSES["SmolLM3DPOConfig" if is_dpo else "SmolLM3Config"]
    if legacy.external and base_class not in BASE_CLASSES:
        notes.append(
            f"{class_name} builds on {base_class}, which is not in this file: its values are not seen here, "
            f"only the old SmolLM3Config defaults (add them by hand if it changed any)"
        )

    desired: dict[str, Any] = {}
    mapped: list[tuple[str, str, int]] = []
    same = 0
    live: dict[str, Value] = {}
    for name, v in values.items():
        if is_secret(name):
            if v.skipped or v.value is not None:
                skipped.append(Skipped(name, v.line, "a secret: never written to a file (sftkit reads tokens from the environment)"))
            continue
        if v.skipped:
            skipped.append(Skipped(name, v.line, v.skipped))
            continue
        if name in defaults and same_value(v.value, defaults[name]) and name not in DATA_LOCATION:
            same += 1
            continue
        live[name] = v

    def put(key: str, value: Any, v: Value | None) -> None:
        """Set a key; ``v`` is the old field (and line) it came from, None for an old default not in the file."""
        desired[key] = value
        if v is not None:
            mapped.append((v.name, key, v.line))

    for name, v in live.items():
        if name in DIRECT:
            put(DIRECT[name], v.value, v)
    for key, names in ALIASES.items():
        given = [live[n] for n in names if n in live]
        if not given:
            continue
        winner = given[-1]
        put(key, winner.value, winner)
        for other in given[:-1]:
            if not same_value(other.value, winner.value):
                skipped.append(
                    Skipped(other.name, other.line, f"disagrees with {winner.name}={winner.value!r} (line {winner.line}), which was used")
                )
    _map_data(live, values, defaults, put, skipped, notes)
    _map_dpo_extras(live, values, put, skipped)

    for name, v in live.items():
        if name in DIRECT or name in GROUPED or any(name in names for names in ALIASES.values()):
            continue
        reason = NO_EQUIVALENT.get(name, "no sftkit setting with this name")
        skipped.append(Skipped(name, v.line, f"not mapped: {reason} (value {_short(v.value)})"))

    base = resolve_config(preset=extends, check=False).config
    if "data.train_file" in desired and "data.dataset" not in desired and base.data.dataset:
        desired["data.dataset"] = None  # the old config's file replaces the preset's data
    sections = diff_against(desired, base)
    skipped.sort(key=lambda s: s.line)
    return Conversion(
        extends=extends, values=sections, notes=notes, source=path, class_name=class_name,
        mapped=mapped, skipped=skipped, same_as_base=same,
    )


def _map_data(
    live: dict[str, Value], values: dict[str, Value], defaults: dict[str, Any], put, skipped: list[Skipped], notes: list[str]
) -> None:
    """input/target fields and bad-entry filtering -> data.format / data.field_map; data_dir/train_file."""

    def val(name: str) -> Any:
        v = values.get(name)
        return v.value if v and not v.skipped else None

    inp, target = val("input_field"), val("target_field")
    filt, bad_field = val("filter_bad_entries"), val("bad_entry_field")
    anchor = next((live[n] for n in ("input_field", "target_field", "filter_bad_entries", "bad_entry_field") if n in live), None)
    if anchor is not None:
        openhermes = inp == "prompt" and target == "accepted_completion"
        bad_ok = not filt or (bad_field or "bad_entry") == "bad_entry"
        if openhermes and filt is not False and bad_ok:
            put("data.format", "openhermes", anchor)  # prompt -> accepted_completion, bad_entry rows dropped
        else:
            field_map = {}
            if inp and inp != "instruction":
                field_map[inp] = "instruction"
            if target and target != "output":
                field_map[target] = "output"
            if field_map:
                put("data.field_map", field_map, anchor)
            if filt:
                line = live["filter_bad_entries"].line if "filter_bad_entries" in live else anchor.line
                skipped.append(
                    Skipped("filter_bad_entries", line, f"not mapped: only the openhermes format drops rows by {bad_field!r}")
                )
            elif openhermes:
                notes.append("filter_bad_entries is off: rows marked bad_entry are kept (field_map used, not the openhermes format)")
    # a local file: data_dir/train_file (relative to where the old scripts ran), the old defaults included
    if val("dataset_name") is None:
        train_file = val("train_file") if "train_file" in values else defaults.get("train_file")
        folder = val("data_dir") if "data_dir" in values else defaults.get("data_dir")
        if train_file:
            joined = str(Path(folder) / train_file) if folder else train_file
            source = live.get("train_file") or live.get("data_dir")
            put("data.train_file", joined, source)
            old = "" if source else " (the old default data_dir/train_file)"
            notes.append(f"data.train_file is {joined!r}{old}, relative to the folder you run sftkit in")
        if "validation_file" in live and val("validation_file"):
            folder = val("data_dir")
            vf = val("validation_file")
            put("data.validation_file", str(Path(folder) / vf) if folder else vf, live["validation_file"])


def _map_dpo_extras(live: dict[str, Value], values: dict[str, Value], put, skipped: list[Skipped]) -> None:
    ref = live.get("ref_model_name")
    model = values.get("model_name")
    if ref is not None and ref.value is not None and not (model and ref.value == model.value):
        put("dpo.ref_model", ref.value, ref)
    peft = live.get("dpo_peft_config")
    if peft is not None and isinstance(peft.value, dict):
        put("lora.enabled", True, peft)
        for old, new in (("r", "lora.r"), ("lora_alpha", "lora.alpha"), ("lora_dropout", "lora.dropout")):
            if old in peft.value:
                put(new, peft.value[old], peft)
        rest = sorted(set(peft.value) - {"r", "lora_alpha", "lora_dropout", "bias", "task_type"})
        if rest:
            skipped.append(Skipped("dpo_peft_config", peft.line, f"not mapped: keys {', '.join(rest)}"))
    for old, new in (("use_lora", "lora.enabled"), ("lora_r", "lora.r"), ("lora_alpha", "lora.alpha"), ("lora_dropout", "lora.dropout")):
        if old in live:
            put(new, live[old].value, live[old])


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 50 else text[:47] + "..."


def write_conversion(conv: Conversion, path: Path) -> None:
    """Write the converted file after checking it resolves; values sftkit rejects are reported by key (exit 2)."""
    text = render(conv)
    problems = check_text(text)
    if problems:
        lines = {key: line for _old, key, line in conv.mapped}
        for p in problems:
            first = (p.key or "").split(",")[0].strip()
            if first in lines:
                p.where = f"{conv.source}:{lines[first]}"
        error = ConfigError.from_problems(problems)
        error.message = f"the converted config is not valid, nothing was written: {error.message}"
        error.hint = error.hint or f"fix these values in the legacy file, or write {CONFIG} with `sftkit init`"
        raise error
    write_project(path, text)


def render(conv: Conversion) -> str:
    """The converted project file's text, with where it came from in its header."""
    header = [
        f"Converted by `sftkit init --from-legacy` from {conv.source.name} ({conv.class_name}).",
        "The file was read, not run. Values equal to the preset are left out.",
    ]
    return render_project(conv, header)
