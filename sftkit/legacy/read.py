"""Reading an old config file, never running it: every field's final value, the file and line that set it.

A ``.py`` file is read by :mod:`sftkit.legacy.static`: the config is the module-level ``config`` object (an
instance, one made by a factory function or derived from another config), else the last config object the file
makes, else what a zero-argument ``*config*`` factory returns, else an instance of the last ``*Config`` class
defined in it. Its class may live in a sibling file of the same folder (``from config.train_smollm3 import
SmolLM3Config``, ``from .base_config import BaseConfig``); that file is read the same way. A base class sftkit
knows (``SmolLM3Config``) whose file is not there is taken with its known defaults.

A ``.yaml`` file in the Arabic library's shape (``model:``, ``training:``, ``lora:`` ... sections) is read into
the same flat field names (:data:`~sftkit.legacy.fields.YAML_KEYS`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sftkit.errors import ConfigError
from sftkit.legacy.fields import (
    KNOWN_BASES,
    YAML_EVALUATION_SECTIONS,
    YAML_GROUPS,
    YAML_KEYS,
    YAML_METHOD_SECTIONS,
)
from sftkit.legacy.static import (
    ClassRef,
    FuncRef,
    Loader,
    NotStatic,
    Obj,
    Skipped,
    Value,
    _Unknown,
    call_factory,
    instantiate_class,
    to_plain,
)

__all__ = ["LegacyFile", "Skipped", "Value", "read_legacy"]

YAML_SUFFIXES = (".yaml", ".yml")


@dataclass
class LegacyFile:
    """What reading an old config file found."""

    source: Path
    class_name: str
    """The config's class (for a YAML file, its file name)."""
    chain: list[str]
    """Its class and base classes, root first."""
    values: dict[str, Value]
    skipped: list[Skipped] = field(default_factory=list)
    """Things that make values uncertain as a whole (``**kwargs`` that were not evaluated), and YAML keys dropped."""
    assumed: list[str] = field(default_factory=list)
    """Base classes whose file was not found, whose known defaults were used."""
    files: list[Path] = field(default_factory=list)
    """Every file read."""
    kind: str = "python"
    same: dict[str, str] = field(default_factory=dict)
    """YAML keys that repeat another key's value (``checkpointing.save_steps`` as ``training.save_steps``): key -> that key."""

    @property
    def base(self) -> str:
        return self.chain[0] if self.chain else self.class_name

    @property
    def external(self) -> bool:
        return bool(self.assumed)


def read_legacy(path: Path) -> LegacyFile:
    """The config in an old ``.py`` (or ``.yaml``) file, by reading it only."""
    path = Path(path)
    if path.is_dir():
        raise ConfigError(
            f"{path} is a folder",
            hint="pass the old config file itself (config/train_*.py)",
        )
    try:
        path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            f"legacy config not found: {path}",
            hint="pass the path to the old config/*.py file",
        ) from None
    except UnicodeDecodeError:
        raise ConfigError(
            f"{path}: not UTF-8 text", hint="pass the old config/*.py file"
        ) from None
    except OSError as e:
        raise ConfigError(
            f"cannot read {path}: {e.strerror or e}",
            hint="check that the file is readable",
        ) from None
    if path.suffix.lower() in YAML_SUFFIXES:
        return _read_yaml(path)
    try:
        return _read_python(path)
    except SyntaxError as e:
        where = e.filename or str(path)
        raise ConfigError(
            f"{where}:{e.lineno}: not valid Python: {e.msg}",
            hint="pass the old config/*.py file",
        ) from None
    except (
        RecursionError,
        MemoryError,
    ):  # the parser and the tree walks recurse once per nesting level
        raise ConfigError(
            f"{path}: nested too deeply to read",
            hint="pass the old config/*.py file: a config nests a few levels at most",
        ) from None


def _read_python(path: Path) -> LegacyFile:
    loader = Loader(KNOWN_BASES)
    module = loader.load(path)
    ns = module.namespace()
    obj = _target(path, module, ns)
    missing = obj.missing_base
    if missing is not None:
        looked = ", ".join(str(p) for p in missing.looked[:3])
        raise ConfigError(
            f"{path}: {obj.cls.name} builds on {missing.describe()}, which was not found next to it (looked for {looked})",
            hint=f"convert the file where it sits in the old project, next to the file that defines {missing.name}",
        )
    assumed = [ref.name for ref in obj.chain if ref.builtin is not None]
    values = {name: _plain(v) for name, v in obj.fields.items()}
    return LegacyFile(
        source=path.resolve(),
        class_name=obj.cls.name,
        chain=[ref.name for ref in obj.chain],
        values=values,
        skipped=list(obj.extra),
        assumed=assumed,
        files=list(loader.modules),
    )


def _plain(v: Value) -> Value:
    if v.skipped is None and isinstance(v.value, (Obj, dict, list, tuple)):
        v.value = to_plain(v.value)
    return v


def _target(path: Path, module: Any, ns: dict[str, Any]) -> Obj:
    """The config object the file defines (see the module docstring)."""
    binding = ns.get("config")
    if isinstance(binding, _Unknown):
        _not_static(path, "config", binding.error)
    if binding is not None:
        try:
            value = module.loader.resolve(binding)
        except NotStatic as e:
            _not_static(path, "config", e)
        if isinstance(value, Obj):
            return value
    for name in reversed(module.order):
        value = ns.get(name)
        if isinstance(value, Obj):
            return value
    factories = [
        v
        for v in ns.values()
        if isinstance(v, FuncRef)
        and v.module is module
        and "config" in v.name.lower()
        and _no_required_args(v)
    ]
    for fn in reversed(factories):
        try:
            made = call_factory(module, fn)
        except NotStatic:
            continue
        if isinstance(made, Obj):
            return made
    classes = [
        v
        for v in ns.values()
        if isinstance(v, ClassRef)
        and v.module is module
        and (
            v.name.endswith("Config")
            or any(_base_name(b).endswith("Config") for b in v.node.bases)
        )  # type: ignore[union-attr]
    ]
    if classes:
        return instantiate_class(module, classes[-1])
    unknown = {
        k: v
        for k, v in ns.items()
        if isinstance(v, _Unknown)
        and v.error is not None
        and v.error.missing is not None
    }
    for name, v in unknown.items():
        _not_static(path, name, v.error)
    raise ConfigError(
        f"{path}: no config class found in the legacy file",
        hint="expected a dataclass like `class MyConfig(SmolLM3Config): ...`, or `config = SomeConfig(...)`",
    )


def _not_static(path: Path, name: str, error: NotStatic | None) -> None:
    if error is not None and error.missing is not None:
        m = error.missing
        looked = ", ".join(str(p) for p in m.looked[:3])
        raise ConfigError(
            f"{path}: `{name}` uses {m.describe()}, which was not found next to it (looked for {looked})",
            hint=f"convert the file where it sits in the old project, next to the file that defines {m.name}",
        )
    why = error.reason if error is not None else "not evaluated"
    raise ConfigError(
        f"{path}: `{name}` cannot be read without running the file ({why})",
        hint="sftkit reads configs without running them: write the values out, or create sftkit.yaml with `sftkit init`",
    )


def _no_required_args(fn: FuncRef) -> bool:
    a = fn.node.args
    positional = [*a.posonlyargs, *a.args]
    required = len(positional) - len(a.defaults)
    kw_required = sum(1 for d in a.kw_defaults if d is None)
    return required <= 0 and kw_required == 0


def _base_name(node: Any) -> str:
    import ast

    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return ""


# --------------------------------------------------------------------------- YAML


def _read_yaml(path: Path) -> LegacyFile:
    from sftkit.keys import SECTIONS
    from sftkit.yamlio import load_yaml

    data, lines = load_yaml(path)
    path = path.resolve()
    if set(data) <= {
        *SECTIONS,
        "trainer_type",
        "extends",
        "description",
    } and _is_sftkit_yaml(path):
        raise ConfigError(
            f"{path} is already an sftkit config",
            hint=f"use it as it is: sftkit train --config {path}",
        )
    values: dict[str, Value] = {}
    skipped: list[Skipped] = []
    same: dict[str, str] = {}
    for dotted, value in _flatten(data).items():
        line = lines.get(dotted, 0)
        section = dotted.split(".")[0]
        if section in YAML_GROUPS:
            continue
        if section in YAML_EVALUATION_SECTIONS:
            reason = f"not mapped: sampling and metrics are options of `sftkit eval` / `sftkit generate` (value {_short(value)})"
            skipped.append(Skipped(dotted, line, reason, path))
            continue
        name = YAML_KEYS.get(dotted) if section not in YAML_METHOD_SECTIONS else None
        if name is None:
            values[dotted] = Value(dotted, line, value, path=path)
            continue
        first = values.get(name)
        if first is None:
            values[name] = Value(name, line, value, path=path, key=dotted)
        elif first.value == value:
            same[dotted] = str(first.key)
        else:
            reason = f"disagrees with {first.key}={first.value!r} (line {first.line}), which was used"
            skipped.append(Skipped(dotted, line, reason, path))
    for section, name in YAML_GROUPS.items():
        group = data.get(section)
        if isinstance(group, dict):
            values[name] = Value(
                name, lines.get(section, 0), dict(group), path=path, key=section
            )
    return LegacyFile(
        source=path,
        class_name=path.name,
        chain=[],
        values=values,
        skipped=skipped,
        files=[path],
        kind="yaml",
        same=same,
    )


def _is_sftkit_yaml(path: Path) -> bool:
    from sftkit.resolve import resolve_config

    try:
        resolve_config(config_file=path, check=False)
    except ConfigError:
        return False
    return True


def _flatten(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in data.items():
        dotted = f"{prefix}{key}"
        if (
            isinstance(value, dict)
            and value
            and dotted.split(".")[0] not in YAML_GROUPS
        ):
            out.update(_flatten(value, dotted + "."))
        else:
            out[dotted] = value
    return out


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 50 else text[:47] + "..."
