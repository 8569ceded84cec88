"""Presets: YAML files found on disk, never registered by hand.

Search order (a later folder's preset shadows an earlier one of the same name):

1. the presets shipped with sftkit (``presets/`` in a checkout, ``sftkit/_presets`` in a wheel);
2. ``~/.config/sftkit/presets`` (or ``$XDG_CONFIG_HOME/sftkit/presets``);
3. each folder in ``$SFTKIT_PRESET_PATH`` (separated by ``:``; ``;`` on Windows).

A preset file is a partial config plus two optional meta keys: ``description`` (one line, shown by
``sftkit presets list`` and the ``init`` wizard) and ``extends`` (the name of another preset, or a
path relative to this file, whose values this one starts from).
"""

from __future__ import annotations

import difflib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sftkit.errors import ConfigError
from sftkit.yamlio import load_yaml

META_KEYS = ("description", "extends")
PRESET_PATH_ENV = "SFTKIT_PRESET_PATH"


@dataclass(frozen=True)
class PresetFile:
    name: str
    path: Path
    source: str  # "builtin" or "user"


def builtin_dir() -> Path:
    here = Path(__file__).resolve().parent
    wheel_dir = here / "_presets"
    return wheel_dir if wheel_dir.is_dir() else here.parent / "presets"


def user_dirs() -> list[Path]:
    config_home = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    dirs = [config_home / "sftkit" / "presets"]
    extra = os.environ.get(PRESET_PATH_ENV, "")
    dirs.extend(Path(p).expanduser() for p in extra.split(os.pathsep) if p)
    return dirs


def discover() -> dict[str, PresetFile]:
    """Every preset by name, built-ins first and user folders shadowing them."""
    found: dict[str, PresetFile] = {}
    for source, folder in [("builtin", builtin_dir())] + [("user", d) for d in user_dirs()]:
        if not folder.is_dir():
            continue
        for path in sorted(folder.glob("*.yaml")) + sorted(folder.glob("*.yml")):
            found[path.stem] = PresetFile(path.stem, path, source)
    return found


def find(name: str) -> PresetFile:
    presets = discover()
    if name in presets:
        return presets[name]
    close = difflib.get_close_matches(name, list(presets), n=1, cutoff=0.5)
    hint = f"did you mean {close[0]!r}? " if close else ""
    raise ConfigError(f"unknown preset {name!r}", hint=f"{hint}see `sftkit presets list`")


@dataclass
class Layer:
    """One source of config values: its nested data, where each key was written, and its name."""

    data: dict[str, Any]
    lines: dict[str, int]
    origin: str  # a file path, "--set" or a flag name

    def where(self, key: str) -> str:
        line = self.lines.get(key)
        return f"{self.origin}:{line}" if line else self.origin


def file_chain(path: Path, _seen: tuple[Path, ...] = ()) -> list[Layer]:
    """Layers for a YAML file and everything it ``extends``, base first."""
    path = path.resolve()
    if path in _seen:
        cycle = " -> ".join(p.name for p in (*_seen, path))
        raise ConfigError(f"presets extend each other in a cycle: {cycle}", hint="remove one of the extends")
    data, lines = load_yaml(path)
    layers: list[Layer] = []
    parent = data.pop("extends", None)
    data.pop("description", None)
    if parent is not None:
        if not isinstance(parent, str):
            raise ConfigError(f"{display_path(path)}:{lines.get('extends', 1)}: extends must be a preset name or a path")
        layers = file_chain(_extends_target(parent, path, lines), (*_seen, path))
    layers.append(Layer(data, lines, display_path(path)))
    return layers


def _extends_target(parent: str, child: Path, lines: dict[str, int]) -> Path:
    if parent.endswith((".yaml", ".yml")):
        target = (child.parent / parent).resolve()
        if not target.exists():
            raise ConfigError(f"{display_path(child)}:{lines.get('extends', 1)}: extends a missing file {parent!r}")
        return target
    try:
        return find(parent).path
    except ConfigError as e:
        raise ConfigError(f"{display_path(child)}:{lines.get('extends', 1)}: {e.message}", hint=e.hint) from None


def preset_chain(name: str) -> list[Layer]:
    return file_chain(find(name).path)


def describe(preset: PresetFile) -> dict[str, Any]:
    """Name, description, parent and the resolved essentials of a preset, for listings.

    A preset that does not resolve (invalid YAML, an unknown key, a missing parent) is described too, so one
    broken file does not hide the others: its ``error`` holds the reason in one line (None for a working
    preset) and its resolved fields are None. ``resolve_config(preset=...)`` still raises the full error.
    """
    from sftkit.names import method_of
    from sftkit.resolve import resolve_config

    row: dict[str, Any] = {
        "name": preset.name,
        "description": "",
        "extends": None,
        "trainer_type": None,
        "method": None,
        "model": None,
        "dataset": None,
        "source": preset.source,
        "path": str(preset.path),
        "error": None,
    }
    try:
        data, _ = load_yaml(preset.path)
        row.update(description=data.get("description", ""), extends=data.get("extends"))
        cfg = resolve_config(preset=preset.name, check=False).config
    except ConfigError as e:
        first = e.problems[0] if e.problems else None
        more = f" (and {len(e.problems) - 1} more)" if len(e.problems) > 1 else ""
        row["error"] = f"{first}{more}" if first is not None else e.message
        return row
    row.update(
        trainer_type=cfg.trainer_type,
        method=method_of(cfg.lora.enabled, cfg.lora.load_in_4bit, cfg.lora.load_in_8bit),
        model=cfg.model.name,
        dataset=cfg.data.dataset or cfg.data.train_file,
    )
    return row


def display_path(path: Path) -> str:
    """A path relative to the working directory when it is below it, else absolute."""
    try:
        return str(Path(path).resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)
