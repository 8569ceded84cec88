"""Writing a project file (``sftkit.yaml``): ``extends: <preset>`` plus only the values that differ from it.

Both ways of making one use this: the ``sftkit init`` wizard and the ``--from-legacy`` converter. They decide
which values they want as dotted keys (``train.learning_rate``); :func:`diff_against` keeps those that differ
from the preset's resolved config, :func:`render` turns the result into text, :func:`check_text` resolves the
text as ``sftkit train`` would, and :func:`write_project` writes it atomically, only when it resolves.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

from sftkit.config import RunConfig
from sftkit.errors import ConfigError, Problem, SftkitError
from sftkit.layout import CONFIG


@dataclass
class ProjectFile:
    """What a project file holds: the preset it extends and the values that differ from that preset."""

    extends: str | None
    """The preset it is written on top of; None: on sftkit's own defaults (no ``extends:`` line)."""
    values: dict[str, Any]
    """Nested sections, only keys whose value differs from the preset's resolved value."""
    notes: list[str] = field(default_factory=list)
    """Values adjusted or worth a word (shown to the user, not written)."""

    def data(self) -> dict[str, Any]:
        return {"extends": self.extends, **self.values} if self.extends else dict(self.values)

    def changed(self) -> int:
        """How many values differ from the preset."""
        return sum(len(v) if isinstance(v, dict) else 1 for v in self.values.values())


def flatten(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"train": {"lr": 1}}`` -> ``{"train.lr": 1}`` (one section level, as the schema has)."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        if not prefix and isinstance(value, dict):
            out.update(flatten(value, f"{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def same_value(a: Any, b: Any) -> bool:
    """Equal as config values: ``2`` and ``2.0`` are, ``1`` and ``True`` are not."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return float(a) == float(b)
    return a == b


def diff_against(values: dict[str, Any], base: RunConfig) -> dict[str, Any]:
    """Nested sections holding only the dotted ``values`` that differ from ``base``, in schema order."""
    current = flatten(base.to_dict())
    nested: dict[str, Any] = {}
    order = list(current)
    for key in sorted(values, key=lambda k: order.index(k) if k in order else len(order)):
        if key in current and same_value(values[key], current[key]):
            continue
        section, _, name = key.partition(".")
        if name:
            nested.setdefault(section, {})[name] = values[key]
        else:
            nested[key] = values[key]
    top_order = list(base.to_dict())
    return {k: nested[k] for k in sorted(nested, key=lambda k: top_order.index(k) if k in top_order else 99)}


def render(project: ProjectFile, header: Iterable[str] = ()) -> str:
    """The file's text: ``header`` as comments, a pointer to the preset's values, then the YAML."""
    from sftkit.yamlio import dump_yaml

    lines = [f"# {line}" if line else "#" for line in header]
    if project.extends:
        lines.append(f"# Values not listed here come from the preset: `sftkit presets show {project.extends}`.")
    else:
        lines.append("# Values not listed here are sftkit's defaults: `sftkit config keys`.")
    return "\n".join(lines) + "\n" + dump_yaml(project.data())


def check_text(text: str, complete: bool = True) -> list[Problem]:
    """Resolve a project file's text as ``sftkit train`` would; the problems, or [] when it is valid.
    ``complete=False``: a file that still lacks its model or data is valid too."""
    from sftkit.resolve import resolve_config

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / CONFIG
        path.write_text(text, encoding="utf-8")
        try:
            resolve_config(config_file=path, complete=complete)
        except ConfigError as e:
            problems = e.problems or [Problem(e.message, hint=e.hint)]
            for p in problems:
                p.where = None  # the temporary file's name would only confuse
            return problems
    return []


def write_project(path: Path, text: str, complete: bool = True) -> None:
    """Write atomically after a self-check: the text must resolve, or nothing is written (``complete=False``:
    it may still lack its model or data)."""
    from sftkit.resolve import resolve_config
    from sftkit.yamlio import atomic_write_text

    path = Path(path)
    problems = check_text(text, complete=complete)
    if problems:
        raise SftkitError(
            f"the generated {path.name} does not resolve, so it was not written: " + "; ".join(map(str, problems)),
            hint="this is a bug in sftkit: please report it with the command you ran",
            problems=problems,
        )
    atomic_write_text(path, text)
    try:
        resolve_config(config_file=path, complete=complete)  # the self-check on the file as written
    except ConfigError as e:
        raise SftkitError(
            f"{path} was written but does not resolve: {e.message}", hint="this is a bug in sftkit: please report it"
        ) from None


def may_write(
    path: Path,
    *,
    overwrite: bool,
    confirm: Callable[[str, bool], bool] | None = None,
    names: Mapping[str, str] | None = None,
) -> bool:
    """Whether ``path`` may be (over)written: when new or with ``overwrite``; else ask ``confirm``, or fail.

    ``names`` says what the caller calls ``overwrite`` and ``path`` (the CLI: its flags), for the error's hint.
    """
    if not Path(path).exists() or overwrite:
        return True
    if confirm is None:
        name = {"overwrite": "overwrite=True", "path": "another path", **(names or {})}
        raise ConfigError(
            f"{path} already exists", hint=f"pass {name['overwrite']} to replace it, or {name['path']} to write elsewhere"
        )
    return bool(confirm(f"{path} already exists. Replace it?", False))
