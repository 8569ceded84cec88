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

from sftkit.config import RunConfig
from sftkit.errors import ConfigError, Problem
from sftkit.keys import SECTIONS, all_keys, is_optional_key, is_text_key
from sftkit.presets import Layer, file_chain, preset_chain
from sftkit.yamlio import parse_scalar

#: how ``--set`` spells null for a text key that may be unset (quote it, ``'"null"'``, for the word itself)
NULL_WORDS = ("null", "~")


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
        _assign(data, key.split("."), set_value(key, raw))
    if problems:
        raise ConfigError.from_problems(problems)
    return Layer(data, {}, "--set")


def set_value(key: str, raw: str) -> Any:
    """A ``--set`` value read by its key's schema type.

    A text key (a string, optional string or a choice of strings) takes the text exactly as written, so
    ``data.response_marker=### Response:`` keeps its ``#`` and ``:``; YAML is used only when the text is
    quoted as YAML (``'"a: b"'``), and ``null`` / ``~`` unset an optional text key. Every other key (numbers,
    booleans, lists, mappings) reads its value as YAML: ``1e-4``, ``true``, ``[q_proj, v_proj]``.
    """
    if not is_text_key(key):
        return parse_scalar(raw)
    if raw[:1] in ("'", '"') and raw[-1:] == raw[:1] and len(raw) >= 2:
        quoted = parse_scalar(raw)
        return quoted if isinstance(quoted, str) else raw
    if raw.strip() in NULL_WORDS and is_optional_key(key):
        return None
    return raw


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
    complete: bool = True,
) -> Resolved:
    """Build the one RunConfig every command uses; raise ConfigError listing every problem at once.

    ``check=False`` skips the cross-field rules (reading a finished run's config); ``complete=False`` accepts
    a config that still lacks its model or data (a preset shown or extended).

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
    config, problems = validate(merged, sources, check=check, complete=complete)
    if problems:
        raise ConfigError.from_problems(problems)
    assert config is not None
    return Resolved(config, sources, layers)


def validate(
    merged: dict[str, Any], sources: dict[str, str], *, check: bool = True, complete: bool = True
) -> tuple[RunConfig | None, list[Problem]]:
    """Schema errors and cross-field problems together, in one list.

    Values the schema rejects are set aside (their defaults take their place) so that the cross-field
    rules still run on everything else; a cross-field problem about a rejected key is not repeated.
    """
    problems: list[Problem] = []
    data = _copy(merged)
    bad_keys: set[str] = set()
    config = None
    for _ in range(8):  # each round removes the rejected values; nested errors need at most a few
        try:
            config = RunConfig.model_validate(data)
            break
        except ValidationError as e:
            removed = False
            for err in e.errors():
                problems.append(_problem_from_error(err, sources))
                loc = [str(x) for x in err["loc"]]
                bad_keys.add(".".join(loc[:2]))
                removed |= _remove(data, loc)
            problems = _unique(problems)
            if not removed:
                return None, problems
    if config is not None and check:
        for p in config.problems(complete=complete):
            keys = [k.strip() for k in (p.key or "").split(",")]
            if bad_keys.intersection(keys):
                continue
            wheres = list(dict.fromkeys(w for w in (sources.get(k) for k in keys) if w))
            p.where = p.where or (", ".join(wheres) if wheres else None)
            problems.append(p)
    return config, problems


def _remove(data: dict[str, Any], loc: list[str]) -> bool:
    """Drop the value an error is about (a whole key, even when the error is inside a list); True when it went."""
    if not loc:
        return False
    top = loc[0]
    if top in SECTIONS and len(loc) > 1 and isinstance(data.get(top), dict):
        return data[top].pop(loc[1], _MISSING) is not _MISSING
    return data.pop(top, _MISSING) is not _MISSING


_MISSING = object()


def _unique(problems: list[Problem]) -> list[Problem]:
    seen, out = set(), []
    for p in problems:
        key = (p.key, p.message)
        if key not in seen:
            seen.add(key)
            out.append(p)
    return out


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
