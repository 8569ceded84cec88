"""YAML reading that remembers where each key was written (file:line), atomic writing, and file modes that follow
the user's umask."""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path
from typing import Any

import yaml

from sftkit.errors import ConfigError


class _Loader(yaml.SafeLoader):
    """SafeLoader that also reads ``1e-4`` as a float (YAML 1.1 wants ``1.0e-4``)."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(
        r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
        |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
        |\.[0-9_]+(?:[eE][-+][0-9]+)?
        |[-+]?\.(?:inf|Inf|INF)
        |\.(?:nan|NaN|NAN))$""",
        re.X,
    ),
    list("-+0123456789."),
)


def parse_scalar(text: str) -> Any:
    """Parse a ``--set`` value the way YAML would (``1e-4`` -> float, ``true`` -> bool, ``[a, b]`` -> list)."""
    try:
        return yaml.load(text, Loader=_Loader)
    except yaml.YAMLError:
        return text


def load_yaml(path: Path) -> tuple[dict[str, Any], dict[str, int]]:
    """Read a YAML mapping; return it and a map from dotted key to the line it is written on."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}", hint="check the path") from None
    except UnicodeDecodeError as e:
        raise ConfigError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start})", hint="save the file as UTF-8") from None
    except IsADirectoryError:
        raise ConfigError(f"{path} is a folder, not a config file", hint="pass the YAML file itself, or rename the folder") from None
    except OSError as e:
        raise ConfigError(f"cannot read {path}: {e.strerror or e}", hint="check that the file is readable (its permissions)") from None
    try:
        node = yaml.compose(text, Loader=_Loader)
        data = yaml.load(text, Loader=_Loader)
        lines: dict[str, int] = {}
        if isinstance(data, dict):
            _collect_lines(node, "", lines)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        raise ConfigError(f"{where}: invalid YAML: {e.problem}", hint="check indentation and quoting on that line") from None
    except RecursionError:
        raise ConfigError(f"{path}: nested too deeply to read", hint="a config nests a few levels at most: is this the right file?") from None
    if data is None:
        return {}, {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}:1: expected a mapping of keys to values, got {type(data).__name__}")
    return data, lines


def _collect_lines(node: yaml.Node, prefix: str, out: dict[str, int]) -> None:
    if not isinstance(node, yaml.MappingNode):
        return
    for key_node, value_node in node.value:
        key = f"{prefix}{key_node.value}"
        out[key] = key_node.start_mark.line + 1
        _collect_lines(value_node, key + ".", out)


def dump_yaml(data: dict[str, Any]) -> str:
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, default_flow_style=False)


def check_writable(path: Path, hint: str | None = None) -> None:
    """Fail early, in one line, when ``path`` (a file or folder to create or replace) cannot be written: the
    nearest existing folder on its way is a file, or is not writable. Checked before long work, so nothing is
    computed (or half-written) for an output that cannot be saved; what already exists at ``path`` is the
    caller's to judge."""
    given = Path(path)
    path = given.expanduser().absolute()
    parent = path.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    shown = os.path.relpath(parent) if not given.is_absolute() else str(parent)
    reason = None
    if parent.exists() and not parent.is_dir():
        reason = f"{shown} is a file, not a folder"
    elif not os.access(parent, os.W_OK | os.X_OK):  # outputs are written next to ``path`` and renamed into place
        reason = f"permission denied in {shown}"
    if reason:
        from sftkit.errors import EXIT_USAGE, SftkitError

        raise SftkitError(f"cannot write to {given}: {reason}", hint=hint or "choose an output path you can write to", exit_code=EXIT_USAGE)


def atomic_write_text(path: Path, text: str) -> None:
    """Write a file via a temp file in the same folder and a rename, so readers never see half of it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.chmod(tmp, FILE_MODE & ~umask())  # mkstemp makes the file private (0600); the result is an ordinary file
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


#: the modes an ordinary file and folder get before the umask (what ``open`` and ``mkdir`` ask for)
FILE_MODE, DIR_MODE = 0o666, 0o777


def umask() -> int:
    """This process's umask, read without changing it where the system allows (``/proc/self/status``): setting
    it to read it back would briefly change the mode of files other threads create meanwhile."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def follow_umask(path: Path) -> None:
    """Give ``path`` and, for a folder, everything under it the modes a plain ``open``/``mkdir`` would have given
    (0644/0755 under umask 022). For output written through temporary files and folders, which are private
    (``mkstemp``, ``mkdtemp``, safetensors' own temp file): colleagues on a shared machine can read what they
    could read had it been written directly. Symbolic links are left alone."""
    mask = umask()
    path = Path(path)
    if path.is_symlink():
        return
    if not path.is_dir():
        os.chmod(path, FILE_MODE & ~mask)
        return
    os.chmod(path, DIR_MODE & ~mask)
    for root, dirs, files in os.walk(path):
        for name in dirs + files:
            entry = Path(root, name)
            if not entry.is_symlink():
                os.chmod(entry, (DIR_MODE if entry.is_dir() else FILE_MODE) & ~mask)
