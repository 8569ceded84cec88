"""Resolution: schema defaults < preset chain < project file < ``--set key=value`` < named flags.

Every problem (unknown keys, bad values, cross-field rules) is collected and reported at once, each with
the file and line (or the flag) it came from, before anything heavy is imported.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

from pydantic import BaseModel, ValidationError

from sftkit.config import RunConfig, Section, all_keys
from sftkit.errors import ConfigError, Problem
from sftkit.presets import Layer, file_chain, preset_chain
from sftkit.yamlio import parse_scalar

SECTIONS = tuple(
    name
    for name, info in RunConfig.model_fields.items()
    if isinstance(info.annotation, type) and issubclass(info.annotation, Section)
)


@dataclass
class Resolved:
    """A validated config and, for each dotted key that was set, where its value came from."""

    config: RunConfig
    sources: dict[str, str] = field(default_factory=dict)
    layers: list[Layer] = field(default_factory=list)


def parse_sets(sets: Iterable[str]) -> Layer:
    """Turn ``["train.learning_rate=1e-4", ...]`` into one layer."""
    data: dict[str, Any] = {}
    problems: list[Problem] = []
    for item in sets:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key:
            problems.append(Problem(f"expected key=value, got {item!r}", where="--set", hint="e.g. --set train.learning_rate=1e-4"))
            continue
        _assign(data, key.split("."), parse_scalar(raw))
    if problems:
        raise ConfigError.from_problems(problems)
    return Layer(data, {}, "--set")


def flags_layer(flags: Mapping[str, Any]) -> list[Layer]:
    """Named CLI flags (``{"--trainer-type": ("trainer_type", "dpo")}``), one layer each, None values skipped."""
    layers = []
    for flag, (key, value) in flags.items():
        if value is None:
            continue
        data: dict[str, Any] = {}
        _assign(data, key.split("."), value)
        layers.append(Layer(data, {}, flag))
    return layers


def _assign(data: dict[str, Any], parts: list[str], value: Any) -> None:
    node = data
    for part in parts[:-1]:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            return
    node[parts[-1]] = value


def merge_layers(layers: list[Layer]) -> tuple[dict[str, Any], dict[str, str]]:
    """Deep-merge layers (sections one level deep; dict-valued fields merge too) and record sources."""
    merged: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for layer in layers:
        for key, value in layer.data.items():
            if key in SECTIONS and isinstance(value, dict) and isinstance(merged.get(key), dict):
                section = merged[key]
                for sub, subval in value.items():
                    dotted = f"{key}.{sub}"
                    if isinstance(subval, dict) and isinstance(section.get(sub), dict):
                        section[sub] = {**section[sub], **subval}
                    else:
                        section[sub] = subval
                    sources[dotted] = layer.where(dotted)
            else:
                merged[key] = _copy(value)
                if key in SECTIONS and isinstance(value, dict):
                    for sub in value:
                        sources[f"{key}.{sub}"] = layer.where(f"{key}.{sub}")
                else:
                    sources[key] = layer.where(key)
    return merged, sources


def _copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return list(value)
    return value


def resolve_config(
    preset: str | None = None,
    config_file: str | Path | None = None,
    sets: Iterable[str] = (),
    flags: Mapping[str, tuple[str, Any]] | None = None,
    check: bool = True,
    overrides: Mapping[str, Any] | None = None,
) -> Resolved:
    """Build the one RunConfig every command uses; raise ConfigError listing every problem at once.

    ``overrides`` (``{"train.seed": 1}``, as the Python API takes them) sit where ``--set`` does; unlike
    flags, a None value there sets the key to null.
    """
    layers: list[Layer] = []
    if preset:
        layers += preset_chain(preset)
    if config_file:
        path = Path(config_file)
        if not path.exists():
            raise ConfigError(f"config file not found: {path}", hint="create one with `sftkit init`")
        layers += file_chain(path)
    layers.append(parse_sets(sets))
    if overrides:
        data: dict[str, Any] = {}
        for key, value in overrides.items():
            _assign(data, key.split("."), value)
        layers.append(Layer(data, {}, "overrides"))
    layers += flags_layer(flags or {})
    merged, sources = merge_layers(layers)
    problems: list[Problem] = []
    try:
        config = RunConfig.model_validate(merged)
    except ValidationError as e:
        problems = [_problem_from_error(err, sources) for err in e.errors()]
        raise ConfigError.from_problems(problems) from None
    if check:
        problems = config.problems()
        for p in problems:
            first_key = (p.key or "").split(",")[0].strip()
            p.where = p.where or sources.get(first_key)
        if problems:
            raise ConfigError.from_problems(problems)
    return Resolved(config, sources, layers)


def _problem_from_error(err: Mapping[str, Any], sources: dict[str, str]) -> Problem:
    loc = [str(x) for x in err["loc"]]
    key = ".".join(loc[:2]) if loc else "?"
    where = sources.get(key) or sources.get(loc[0] if loc else "")
    if err["type"] == "extra_forbidden":
        return Problem("unknown key", key=key, where=where, hint=_did_you_mean(key))
    value = err.get("input")
    message = err["msg"]
    if err["type"] in ("literal_error", "enum"):
        message = f"{value!r} is not one of: {err.get('ctx', {}).get('expected', '')}"
    elif not isinstance(value, (dict, BaseModel)):
        message = f"{message} (got {value!r})"
    return Problem(message, key=key, where=where)


def _did_you_mean(key: str) -> str:
    candidates = all_keys() + list(SECTIONS)
    close = difflib.get_close_matches(key, candidates, n=1, cutoff=0.6)
    if not close and "." in key:
        leaf = key.rsplit(".", 1)[1]
        by_leaf = {k.rsplit(".", 1)[-1]: k for k in candidates}
        leaf_close = difflib.get_close_matches(leaf, list(by_leaf), n=1, cutoff=0.7)
        close = [by_leaf[leaf_close[0]]] if leaf_close else []
    if close:
        return f"did you mean {close[0]}?"
    return "see `sftkit train --preset tiny --dry-run` for every key"
