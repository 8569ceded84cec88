"""Reading an old config file as a syntax tree (never running it): every field's final literal value and its line.

The config class is the one instantiated as ``config = X(...)`` (else the last ``*Config`` class). Its values
come, in the order Python would apply them, from the class chain defined in the file, the ``__post_init__``
bodies that run, and the keyword arguments of that instantiation. Anything that is not a literal is kept
as skipped, with its line and source text.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sftkit.errors import ConfigError


@dataclass
class Value:
    """One field's final value in the old config, and the line that set it."""

    name: str
    line: int
    value: Any = None
    skipped: str | None = None
    """Why the value could not be taken (an expression that is not a literal); None when it was."""


@dataclass
class Skipped:
    name: str
    line: int
    reason: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.name}: {self.reason}"


class _Reader:
    """Collect field values from the class chain, ``__post_init__`` and the module-level instance."""

    def __init__(self, tree: ast.Module) -> None:
        self.tree = tree
        self.classes = {n.name: n for n in tree.body if isinstance(n, ast.ClassDef)}
        self.values: dict[str, Value] = {}
        self.skipped: list[Skipped] = []

    def target(self) -> tuple[ast.ClassDef, ast.Call | None]:
        """The config class: the one instantiated as ``config = X(...)``, else the last *Config class."""
        for node in self.tree.body:
            if (
                isinstance(node, ast.Assign)
                and any(isinstance(t, ast.Name) and t.id == "config" for t in node.targets)
                and isinstance(node.value, ast.Call)
                and isinstance(node.value.func, ast.Name)
                and node.value.func.id in self.classes
            ):
                return self.classes[node.value.func.id], node.value
        candidates = [c for c in self.classes.values() if c.name.endswith("Config") or any(_name(b).endswith("Config") for b in c.bases)]
        if not candidates:
            raise ConfigError(
                "no config class found in the legacy file",
                hint="expected a dataclass like `class MyConfig(SmolLM3Config): ...` and `config = MyConfig()`",
            )
        return candidates[-1], None

    def chain(self, cls: ast.ClassDef) -> tuple[list[ast.ClassDef], str | None]:
        """Classes from the root down (those defined in this file) and the external base's name."""
        chain = [cls]
        seen = {cls.name}
        while True:
            bases = [_name(b) for b in chain[0].bases]
            local = next((self.classes[b] for b in bases if b in self.classes and b not in seen), None)
            if local is None:
                external = next((b for b in bases if b and b != "object"), None)
                return chain, external
            chain.insert(0, local)
            seen.add(local.name)

    def read_class(self, cls: ast.ClassDef) -> None:
        for stmt in cls.body:
            if isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name) and stmt.value is not None:
                self.set(stmt.target.id, stmt.value, stmt.lineno)
            elif isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name):
                self.set(stmt.targets[0].id, stmt.value, stmt.lineno)

    def post_inits(self, chain: list[ast.ClassDef]) -> list[ast.FunctionDef]:
        """The ``__post_init__`` bodies that run: the most derived one, and its parents' through super()."""
        runs: list[ast.FunctionDef] = []
        for cls in reversed(chain):
            fn = next((s for s in cls.body if isinstance(s, ast.FunctionDef) and s.name == "__post_init__"), None)
            if fn is None:
                continue
            runs.insert(0, fn)
            if not _calls_super_post_init(fn):
                break
        return runs

    def read_post_init(self, fn: ast.FunctionDef) -> None:
        for stmt in fn.body:
            attr = _self_assign(stmt)
            if attr:
                self.set(attr, stmt.value, stmt.lineno)  # type: ignore[union-attr]
            elif isinstance(stmt, ast.If):
                self._read_if(stmt)

    def _read_if(self, stmt: ast.If) -> None:
        """``if self.x is None: self.x = <literal>`` fills a default; other conditional assignments are skipped."""
        assigned = [(s, _self_assign(s)) for s in ast.walk(stmt) if _self_assign(s)]
        if not assigned:
            return  # validation or printing: nothing to carry over
        test = stmt.test
        is_none_check = (
            isinstance(test, ast.Compare)
            and len(test.ops) == 1
            and isinstance(test.ops[0], ast.Is)
            and isinstance(test.comparators[0], ast.Constant)
            and test.comparators[0].value is None
            and _self_attr(test.left)
        )
        if is_none_check and not stmt.orelse and all(_self_assign(s) == _self_attr(test.left) for s in stmt.body):
            name = _self_attr(test.left)
            current = self.values.get(name)
            if current is None or (current.skipped is None and current.value is None):
                for s in stmt.body:
                    self.set(name, s.value, s.lineno)  # type: ignore[attr-defined]
            return
        for s, name in assigned:
            self.values.pop(name, None)
            self.skipped.append(Skipped(name, s.lineno, "set under a condition in __post_init__: not evaluated"))

    def read_instance(self, call: ast.Call | None) -> None:
        if call is None:
            return
        for kw in call.keywords:
            if kw.arg is None:
                self.skipped.append(Skipped("**kwargs", kw.value.lineno, "not evaluated: " + _source(kw.value)))
            else:
                self.set(kw.arg, kw.value, kw.value.lineno)

    def set(self, name: str, node: ast.expr, line: int) -> None:
        try:
            value = _literal(node)
        except ValueError:
            self.values[name] = Value(name, line, skipped="not evaluated: " + _source(node))
            return
        self.values[name] = Value(name, line, value)


def _literal(node: ast.expr) -> Any:
    """A literal's value; ``field(default=<literal>)`` too. Raises ValueError for anything else."""
    if isinstance(node, ast.Call) and _name(node.func) in ("field", "dataclasses.field"):
        for kw in node.keywords:
            if kw.arg == "default":
                return ast.literal_eval(kw.value)
        raise ValueError("field() without a literal default")
    return ast.literal_eval(node)


def _name(node: ast.expr) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        inner = _name(node.value)
        return f"{inner}.{node.attr}" if inner else node.attr
    return ""


def _self_attr(node: ast.expr) -> str | None:
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "self":
        return node.attr
    return None


def _self_assign(stmt: ast.AST) -> str | None:
    if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1:
        return _self_attr(stmt.targets[0])
    if isinstance(stmt, ast.AnnAssign) and stmt.value is not None:
        return _self_attr(stmt.target)
    return None


def _calls_super_post_init(fn: ast.FunctionDef) -> bool:
    for node in ast.walk(fn):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "__post_init__"
            and isinstance(node.func.value, ast.Call)
            and _name(node.func.value.func) == "super"
        ):
            return True
    return False


def _source(node: ast.expr) -> str:
    text = ast.unparse(node)
    return text if len(text) <= 60 else text[:57] + "..."


@dataclass
class LegacyFile:
    """What parsing an old config file found."""

    class_name: str
    """The config class (the one ``config = ...()`` instantiates)."""
    base: str
    """The class it builds on: an imported one (``SmolLM3Config``), or the root of its in-file chain."""
    external: bool
    """Whether ``base`` is defined in another file (its values are then only known for the SmolLM3 bases)."""
    values: dict[str, Value]
    skipped: list[Skipped]


def read_legacy(path: Path) -> LegacyFile:
    """The config class, its base and every field's final value in an old config file, by parsing only."""
    path = Path(path)
    try:
        source = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"legacy config not found: {path}", hint="pass the path to the old config/*.py file") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text", hint="pass the old config/*.py file") from None
    try:
        tree = ast.parse(source, filename=str(path))  # parsed, never compiled to code or run
        reader = _Reader(tree)
        cls, call = reader.target()
        chain, external = reader.chain(cls)
        for c in chain:
            reader.read_class(c)
        for fn in reader.post_inits(chain):
            reader.read_post_init(fn)
        reader.read_instance(call)
    except SyntaxError as e:
        raise ConfigError(f"{path}:{e.lineno}: not valid Python: {e.msg}", hint="pass the old config/*.py file") from None
    except (RecursionError, MemoryError):  # the parser and the tree walks recurse once per nesting level
        raise ConfigError(f"{path}: nested too deeply to read", hint="pass the old config/*.py file: a config nests a few levels at most") from None
    return LegacyFile(cls.name, external or chain[0].name, external is not None, reader.values, reader.skipped)

