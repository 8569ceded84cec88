"""Values of a Python config file computed from its syntax tree, never by running it.

An old config is a dataclass (with defaults, ``field(default_factory=...)``, a ``__post_init__`` that fills in
values and calls helper methods), an instance of one (``config = MyConfig(batch_size=2)``), an instance made by a
factory function, or one derived from another (``dataclasses.replace(base, ...)``, ``base.x = 1`` after it is
made), often with its class in a sibling file of the same ``config/`` folder (``from config.train_smollm3 import
SmolLM3Config``, ``from .base_config import BaseConfig``).

:class:`Loader` follows all of that over the files' syntax trees: a small interpreter that knows literals,
arithmetic, comparisons, f-strings, a few pure built-ins and string methods, ``os.getenv``/``os.environ.get``
(their default is the value, and the variable's name is kept), dataclass fields and ``replace``. Nothing else is
evaluated: a call it does not know (``os.system(...)``, ``open(...)``, ``print(...)``) is never made, an
expression that needs one is reported as not evaluated, and a field assigned under a condition it cannot decide
is reported as such. Loops are not run. The files are only read.
"""

from __future__ import annotations

import ast
import copy
import string
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: nested instantiations, factory calls and method calls followed (a config nests a few levels at most)
MAX_DEPTH = 16
#: the longest string, list or dict an expression may build
MAX_SIZE = 100_000
#: parent folders searched for an imported module (``config/train_x.py`` imports ``config.train_y``)
SEARCH_UP = 3


class NotStatic(Exception):
    """An expression whose value needs the code to run."""

    def __init__(
        self,
        node: ast.AST | None = None,
        why: str | None = None,
        missing: Missing | None = None,
    ) -> None:
        self.node = node
        self.why = why
        self.missing = missing
        super().__init__(self.reason)

    @property
    def reason(self) -> str:
        if self.why:
            return self.why
        return (
            "not evaluated: " + source(self.node)
            if self.node is not None
            else "not evaluated"
        )


@dataclass
class Value:
    """One field's final value in the old config, and where it was set."""

    name: str
    line: int
    value: Any = None
    skipped: str | None = None
    """Why the value could not be taken (it needs the code to run); None when it was."""
    path: Path | None = None
    """The file that set it (None: not set in a file, e.g. a known base class's default)."""
    env: str | None = None
    """The environment variable the old code read first (``os.getenv("LR", "2e-5")``): the value is its default."""
    assumed: bool = False
    """A default of a known base class whose file was not found: assumed, not read."""
    key: str | None = None
    """The key it was read under when that differs from ``name`` (a YAML file's ``training.save_steps``)."""
    stage: int = 0
    """When it was set while the object was made: a base class's default (its index in the chain, root first),
    then the call's arguments, then ``__post_init__``, then later changes. Of two old names for one setting, the
    one set last wins."""


@dataclass
class Skipped:
    """Something in the old config that is not carried over, with where it is and why."""

    name: str
    line: int
    reason: str
    path: Path | None = None

    def __str__(self) -> str:
        return f"line {self.line}: {self.name}: {self.reason}"


@dataclass
class Missing:
    """A name imported from a module that is not found next to the file."""

    name: str
    module: str
    level: int
    origin: Path
    looked: list[Path]

    def describe(self) -> str:
        dots = "." * self.level
        return f"{self.name} (from {dots}{self.module})"


@dataclass
class ClassRef:
    name: str
    module: Module | None
    node: ast.ClassDef | None = None
    builtin: dict[str, Any] | None = None
    """Defaults of a known base class used when its file is not found (no methods)."""


@dataclass
class FuncRef:
    name: str
    module: Module
    node: ast.FunctionDef


@dataclass(frozen=True)
class Stdlib:
    """A standard-library module or one of its attributes (``os``, ``os.getenv``, ``dataclasses.field``)."""

    qualname: str


@dataclass
class Obj:
    """An instance of a config class, field by field."""

    cls: ClassRef
    chain: list[ClassRef]
    fields: dict[str, Value] = field(default_factory=dict)
    extra: list[Skipped] = field(default_factory=list)
    """What made some values uncertain as a whole (``**kwargs`` that were not evaluated)."""
    missing_base: Missing | None = None
    stage: int = 0
    """The stage values set now get (see :attr:`Value.stage`)."""

    def set(self, value: Value) -> None:
        if not value.assumed:
            value.stage = self.stage
        else:
            value.stage = -1
        self.fields[value.name] = value

    def get(self, name: str, node: ast.AST | None = None) -> Any:
        v = self.fields.get(name)
        if v is None:
            raise NotStatic(
                node, why=f"not evaluated: {self.cls.name} has no field {name!r} here"
            )
        if v.skipped:
            raise NotStatic(node)
        return v.value

    def plain(self) -> dict[str, Any]:
        return {k: to_plain(v.value) for k, v in self.fields.items() if not v.skipped}


def _outer(error: NotStatic, node: ast.AST) -> NotStatic:
    """The error reported for a whole expression (``int(os.system(...))``), not the part that failed."""
    if error.why and not error.why.startswith("not evaluated: "):
        return error
    return NotStatic(node, missing=error.missing)


def to_plain(value: Any) -> Any:
    """A value with nested config objects turned into dicts of their fields."""
    if isinstance(value, Obj):
        return value.plain()
    if isinstance(value, dict):
        return {k: to_plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(to_plain(v) for v in value)
    return value


def source(node: ast.AST | None, limit: int = 60) -> str:
    if node is None:
        return ""
    try:
        text = ast.unparse(node)
    except Exception:  # noqa: BLE001 - only for messages
        text = type(node).__name__
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


_UNSET = object()


class _Unknown:
    """A variable whose value needs the code to run (and why)."""

    def __init__(self, node: ast.AST | None, error: NotStatic | None = None) -> None:
        self.node = node
        self.error = error


# --------------------------------------------------------------------------- modules


class Module:
    """One parsed file and the names its top level binds (computed once, on first use)."""

    def __init__(self, loader: Loader, path: Path, tree: ast.Module) -> None:
        self.loader = loader
        self.path = path
        self.tree = tree
        self.ns: dict[str, Any] = {}
        self.order: list[str] = []
        """Names bound to config objects at the top level, in the order they were (re)bound."""
        self._state = "new"

    def namespace(self) -> dict[str, Any]:
        if self._state == "new":
            self._state = "running"
            _Interp(self, self.ns, None, 0).run_top(self.tree.body)
            self._state = "done"
        return self.ns

    def lookup(self, name: str, node: ast.AST | None = None, depth: int = 0) -> Any:
        ns = self.namespace() if self._state != "running" else self.ns
        if name not in ns:
            raise NotStatic(
                node, why=f"not evaluated: {name!r} is not defined in {self.path.name}"
            )
        return self.loader.resolve(ns[name], node, depth)


@dataclass
class _ImportRef:
    module: str
    name: str | None
    level: int
    origin: Path


class Loader:
    """Parses files on demand and resolves what they import from each other (by path, never importing).

    ``known`` holds the defaults of base classes sftkit knows by name, used when their file is not found.
    """

    def __init__(self, known: dict[str, dict[str, Any]] | None = None) -> None:
        self.known = known or {}
        self.modules: dict[Path, Module] = {}

    def load(self, path: Path) -> Module:
        path = Path(path).resolve()
        if path not in self.modules:
            from sftkit.errors import ConfigError

            try:
                text = path.read_text(encoding="utf-8")
            except (UnicodeDecodeError, OSError) as e:
                why = (
                    "not UTF-8 text"
                    if isinstance(e, UnicodeDecodeError)
                    else e.strerror or str(e)
                )
                raise ConfigError(
                    f"{path}: cannot be read ({why})",
                    hint="the old config and the files it imports must be readable Python files",
                ) from None
            # parsed, never compiled to code or run
            self.modules[path] = Module(self, path, ast.parse(text, filename=str(path)))
        return self.modules[path]

    def find(
        self, origin: Path, dotted: str, level: int
    ) -> tuple[Path | None, list[Path]]:
        """The file a ``from <dotted> import ...`` in ``origin`` reads, and every place looked."""
        parts = [p for p in dotted.split(".") if p]
        looked: list[Path] = []
        if level:
            base = origin.parent
            for _ in range(level - 1):
                base = base.parent
            bases = [base]
        else:
            bases = [origin.parent]
            for _ in range(SEARCH_UP):
                bases.append(bases[-1].parent)
        candidates: list[Path] = []
        for base in bases:
            if parts:
                candidates += [
                    base.joinpath(*parts).with_suffix(".py"),
                    base.joinpath(*parts, "__init__.py"),
                ]
            else:
                candidates.append(base / "__init__.py")
        if (
            not level and len(parts) > 1
        ):  # the folder was copied elsewhere: config.train_x next to the file
            candidates.append(origin.parent / f"{parts[-1]}.py")
        for c in candidates:
            looked.append(c)
            if c.is_file():
                return c, looked
        return None, looked

    def resolve(self, binding: Any, node: ast.AST | None = None, depth: int = 0) -> Any:
        if isinstance(binding, _ImportRef):
            return self._import(binding, node, depth)
        if isinstance(binding, _Unknown):
            raise binding.error or NotStatic(binding.node or node)
        return binding

    def _import(self, ref: _ImportRef, node: ast.AST | None, depth: int) -> Any:
        root = ref.module.split(".")[0] if ref.module else ""
        if not ref.level and root in sys.stdlib_module_names:
            return Stdlib(f"{ref.module}.{ref.name}" if ref.name else ref.module)
        if ref.name is None:  # import a.b as x: the module itself
            path, looked = self.find(ref.origin, ref.module, ref.level)
            if path is None:
                raise NotStatic(
                    node,
                    missing=Missing(
                        ref.module, ref.module, ref.level, ref.origin, looked
                    ),
                )
            return self.load(path)
        path, looked = self.find(ref.origin, ref.module, ref.level)
        if path is not None:
            module = self.load(path)
            ns = module.namespace() if module._state != "running" else module.ns
            if ref.name in ns:
                return self.resolve(ns[ref.name], node, depth)
        sub, more = self.find(
            ref.origin,
            f"{ref.module}.{ref.name}" if ref.module else ref.name,
            ref.level,
        )
        if sub is not None:
            return self.load(sub)
        if ref.name in self.known:
            return ClassRef(ref.name, None, builtin=self.known[ref.name])
        raise NotStatic(
            node,
            missing=Missing(ref.name, ref.module, ref.level, ref.origin, looked + more),
        )


# --------------------------------------------------------------------------- the interpreter

_PURE_BUILTINS: dict[str, Callable[..., Any]] = {
    "int": int,
    "float": float,
    "str": str,
    "bool": bool,
    "len": len,
    "min": min,
    "max": max,
    "abs": abs,
    "round": round,
    "list": list,
    "tuple": tuple,
    "dict": dict,
    "set": set,
    "sorted": sorted,
    "sum": sum,
}
_STR_METHODS = {
    "lower",
    "upper",
    "strip",
    "lstrip",
    "rstrip",
    "split",
    "rsplit",
    "replace",
    "startswith",
    "endswith",
    "join",
    "title",
    "capitalize",
    "casefold",
    "count",
    "find",
    "splitlines",
    "format",
}
_DICT_METHODS = {"get", "copy", "keys", "values", "items"}
_MUTATORS = {
    "update",
    "append",
    "extend",
    "setdefault",
    "pop",
    "insert",
    "clear",
    "remove",
}
_ENV_CALLS = {"os.getenv", "os.environ.get"}
_BINOPS: dict[type, Callable[[Any, Any], Any]] = {
    ast.Add: lambda a, b: a + b,
    ast.Sub: lambda a, b: a - b,
    ast.Mult: lambda a, b: a * b,
    ast.Div: lambda a, b: a / b,
    ast.FloorDiv: lambda a, b: a // b,
    ast.Mod: lambda a, b: a % b,
    ast.Pow: lambda a, b: a**b,
}
_COMPARE: dict[type, Callable[[Any, Any], bool]] = {
    ast.Eq: lambda a, b: a == b,
    ast.NotEq: lambda a, b: a != b,
    ast.Lt: lambda a, b: a < b,
    ast.LtE: lambda a, b: a <= b,
    ast.Gt: lambda a, b: a > b,
    ast.GtE: lambda a, b: a >= b,
    ast.Is: lambda a, b: a is b,
    ast.IsNot: lambda a, b: a is not b,
    ast.In: lambda a, b: a in b,
    ast.NotIn: lambda a, b: a not in b,
}
_FAILS = (
    ValueError,
    TypeError,
    ArithmeticError,
    KeyError,
    IndexError,
    AttributeError,
    MemoryError,
)


def _size(value: Any) -> int:
    return len(value) if isinstance(value, (str, bytes, list, tuple, dict, set)) else 0


def _plain_data(value: Any) -> bool:
    if value is None or isinstance(value, (bool, int, float, complex, str, bytes)):
        return True
    if isinstance(value, (list, tuple, set)):
        return all(_plain_data(v) for v in value)
    if isinstance(value, dict):
        return all(_plain_data(k) and _plain_data(v) for k, v in value.items())
    return False


def _safe_format_spec(spec: str) -> bool:
    """No field access (``{0.__class__}``) and no huge widths in a format string or spec."""
    digits = 0
    for ch in spec:
        digits = digits + 1 if ch.isdigit() else 0
        if digits > 4:
            return False
    return True


class _Interp:
    """Runs a block of statements statically: ``module`` for names, ``local`` variables, ``obj`` as ``self``."""

    def __init__(
        self,
        module: Module,
        local: dict[str, Any],
        obj: Obj | None,
        depth: int,
        cls_index: int | None = None,
    ) -> None:
        self.module = module
        self.local = local
        self.obj = obj
        self.depth = depth
        self.cls_index = cls_index
        self.envs: list[str] = []
        self.touched_assumed = False
        self.result: Any = _UNSET

    # -- names ------------------------------------------------------------------------------------
    def name(self, node: ast.Name) -> Any:
        if node.id in self.local:
            return self.module.loader.resolve(self.local[node.id], node, self.depth)
        if node.id == "self" and self.obj is not None:
            return self.obj
        if self.local is not self.module.ns and node.id in (
            self.module.ns if self.module._state != "new" else self.module.namespace()
        ):
            return self.module.lookup(node.id, node, self.depth)
        if node.id in _PURE_BUILTINS:
            return ("builtin", node.id)
        raise NotStatic(node)

    # -- expressions ------------------------------------------------------------------------------
    def eval(self, node: ast.expr) -> Any:
        try:
            value = self._eval(node)
        except NotStatic:
            raise
        except _FAILS:
            raise NotStatic(node) from None
        except RecursionError:
            raise NotStatic(node, why="not evaluated: nested too deeply") from None
        if _size(value) > MAX_SIZE:
            raise NotStatic(node, why="not evaluated: the value is too large")
        return value

    def _eval(self, node: ast.expr) -> Any:
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, ast.Name):
            return self.name(node)
        if isinstance(node, (ast.List, ast.Tuple, ast.Set)):
            items: list[Any] = []
            for elt in node.elts:
                if isinstance(elt, ast.Starred):
                    items.extend(self._iterable(elt.value))
                else:
                    items.append(self.eval(elt))
            return {ast.List: list, ast.Tuple: tuple, ast.Set: set}[type(node)](items)
        if isinstance(node, ast.Dict):
            out: dict[Any, Any] = {}
            for k, v in zip(node.keys, node.values):
                if k is None:
                    spread = self.eval(v)
                    if not isinstance(spread, dict):
                        raise NotStatic(node)
                    out.update(spread)
                else:
                    out[self.eval(k)] = self.eval(v)
            return out
        if isinstance(node, ast.JoinedStr):
            return "".join(self._fstring_part(p) for p in node.values)
        if isinstance(node, ast.UnaryOp):
            operand = self.eval(node.operand)
            if isinstance(node.op, ast.Not):
                return not operand
            if (
                not isinstance(operand, (int, float, complex))
                or isinstance(operand, bool)
                and isinstance(node.op, ast.Invert)
            ):
                raise NotStatic(node)
            return {
                ast.USub: lambda x: -x,
                ast.UAdd: lambda x: +x,
                ast.Invert: lambda x: ~x,
            }[type(node.op)](operand)
        if isinstance(node, ast.BinOp):
            return self._binop(node)
        if isinstance(node, ast.BoolOp):
            result: Any = None
            for value_node in node.values:
                result = self.eval(value_node)
                if isinstance(node.op, ast.And) and not result:
                    return result
                if isinstance(node.op, ast.Or) and result:
                    return result
            return result
        if isinstance(node, ast.Compare):
            left = self.eval(node.left)
            for op, right_node in zip(node.ops, node.comparators):
                right = self.eval(right_node)
                if not _COMPARE[type(op)](left, right):
                    return False
                left = right
            return True
        if isinstance(node, ast.IfExp):
            return (
                self.eval(node.body) if self.eval(node.test) else self.eval(node.orelse)
            )
        if isinstance(node, ast.Attribute):
            return self._attribute(node)
        if isinstance(node, ast.Subscript):
            container = self.eval(node.value)
            if isinstance(container, Stdlib) and container.qualname == "os.environ":
                raise NotStatic(node)
            if not isinstance(container, (dict, list, tuple, str)):
                raise NotStatic(node)
            index = (
                self.eval(node.slice)
                if not isinstance(node.slice, ast.Slice)
                else self._slice(node.slice)
            )
            return container[index]
        if isinstance(node, ast.Call):
            return self._call(node)
        raise NotStatic(node)

    def _slice(self, node: ast.Slice) -> slice:
        part = lambda n: None if n is None else self.eval(n)
        return slice(part(node.lower), part(node.upper), part(node.step))

    def _iterable(self, node: ast.expr) -> list[Any]:
        value = self.eval(node)
        if not isinstance(value, (list, tuple, set, dict, str)):
            raise NotStatic(node)
        return list(value)

    def _fstring_part(self, part: ast.expr) -> str:
        if isinstance(part, ast.Constant):
            return str(part.value)
        assert isinstance(part, ast.FormattedValue)
        value = self.eval(part.value)
        if not _plain_data(value):
            raise NotStatic(part.value)
        if part.conversion == ord("r"):
            value = repr(value)
        elif part.conversion == ord("s"):
            value = str(value)
        elif part.conversion == ord("a"):
            value = ascii(value)
        spec = (
            "".join(self._fstring_part(p) for p in part.format_spec.values)
            if part.format_spec
            else ""
        )
        if not _safe_format_spec(spec):
            raise NotStatic(part)
        return format(value, spec)

    def _binop(self, node: ast.BinOp) -> Any:
        left, right = self.eval(node.left), self.eval(node.right)
        op = _BINOPS.get(type(node.op))
        if op is None or not (_plain_data(left) and _plain_data(right)):
            raise NotStatic(node)
        if (
            isinstance(node.op, ast.Pow)
            and isinstance(right, (int, float))
            and abs(right) > 1024
        ):
            raise NotStatic(node)
        if isinstance(node.op, ast.Mult):
            seq, times = (left, right) if _size(left) else (right, left)
            if (
                _size(seq)
                and isinstance(times, int)
                and _size(seq) * max(times, 0) > MAX_SIZE
            ):
                raise NotStatic(node, why="not evaluated: the value is too large")
        if isinstance(node.op, ast.Mod) and isinstance(left, (str, bytes)):
            raise NotStatic(node)  # %-formatting: not followed
        return op(left, right)

    def _attribute(self, node: ast.Attribute) -> Any:
        base = self.eval(node.value)
        if isinstance(base, Obj):
            v = base.fields.get(node.attr)
            if v is not None and v.assumed:
                self.touched_assumed = True
            if v is not None and v.env:
                self.envs.append(v.env)
            return base.get(node.attr, node)
        if isinstance(base, Stdlib):
            return Stdlib(f"{base.qualname}.{node.attr}")
        if isinstance(base, Module):
            return base.lookup(node.attr, node, self.depth)
        if isinstance(base, (str, dict)) and not node.attr.startswith("_"):
            allowed = _STR_METHODS if isinstance(base, str) else _DICT_METHODS
            if node.attr in allowed:
                return ("method", base, node.attr)
        raise NotStatic(node)

    def _args(self, node: ast.Call) -> tuple[list[Any], dict[str, Any]]:
        args: list[Any] = []
        for a in node.args:
            if isinstance(a, ast.Starred):
                args.extend(self._iterable(a.value))
            else:
                args.append(self.eval(a))
        kwargs: dict[str, Any] = {}
        for kw in node.keywords:
            if kw.arg is None:
                spread = self.eval(kw.value)
                if not isinstance(spread, dict):
                    raise NotStatic(kw.value)
                kwargs.update(spread)
            else:
                kwargs[kw.arg] = self.eval(kw.value)
        return args, kwargs

    def _call(self, node: ast.Call) -> Any:
        func = node.func
        if (
            isinstance(func, ast.Attribute)
            and isinstance(func.value, ast.Call)
            and isinstance(func.value.func, ast.Name)
            and func.value.func.id == "super"
        ):
            raise NotStatic(node)  # super().method() inside an expression: not followed
        callee = self.eval(func)
        if isinstance(callee, ClassRef):
            return self.instantiate(callee, node)
        if isinstance(callee, FuncRef):
            return self.call_function(callee, node)
        if isinstance(callee, Stdlib):
            return self._stdlib_call(callee.qualname, node)
        if isinstance(callee, tuple) and callee and callee[0] == "builtin":
            args, kwargs = self._args(node)
            if not all(_plain_data(a) for a in args) or not all(
                _plain_data(v) for v in kwargs.values()
            ):
                raise NotStatic(node)
            return _PURE_BUILTINS[callee[1]](*args, **kwargs)
        if isinstance(callee, tuple) and callee and callee[0] == "method":
            _, base, method = callee
            args, kwargs = self._args(node)
            if not all(_plain_data(a) for a in args) or not all(
                _plain_data(v) for v in kwargs.values()
            ):
                raise NotStatic(node)
            if method == "format":
                try:
                    fields = list(string.Formatter().parse(base))
                except ValueError:
                    raise NotStatic(node) from None
                for _, name, spec, _ in fields:
                    if (
                        name
                        and not name.replace("_", "").isalnum()
                        or spec
                        and not _safe_format_spec(spec)
                    ):
                        raise NotStatic(node)
            if (
                method == "replace"
                and len(args) >= 2
                and isinstance(args[1], str)
                and len(base) * max(len(args[1]), 1) > MAX_SIZE
            ):
                raise NotStatic(node, why="not evaluated: the value is too large")
            return getattr(base, method)(*args, **kwargs)
        raise NotStatic(node)

    def _stdlib_call(self, qualname: str, node: ast.Call) -> Any:
        if qualname in _ENV_CALLS:
            args, kwargs = self._args(node)
            name = args[0] if args else kwargs.get("key")
            if not isinstance(name, str):
                raise NotStatic(node)
            self.envs.append(name)
            return args[1] if len(args) > 1 else kwargs.get("default")
        if qualname == "dataclasses.field":
            return self.field_default(node)
        if qualname in ("dataclasses.replace", "copy.copy", "copy.deepcopy"):
            if not node.args:
                raise NotStatic(node)
            base = self.eval(node.args[0])
            if not isinstance(base, Obj):
                if qualname != "dataclasses.replace" and _plain_data(base):
                    return copy.deepcopy(base)
                raise NotStatic(node)
            new = Obj(
                base.cls,
                base.chain,
                copy.deepcopy(base.fields),
                list(base.extra),
                base.missing_base,
                base.stage + 1,
            )
            if qualname == "dataclasses.replace":
                self._apply_kwargs(new, node)
                new.stage += 1
                self._post_init(new)
                new.stage += 1
            return new
        raise NotStatic(node)

    def field_default(self, node: ast.Call) -> Any:
        """``field(default=...)`` or ``field(default_factory=...)``: the value the field starts with."""
        for kw in node.keywords:
            if kw.arg == "default":
                return self.eval(kw.value)
        for kw in node.keywords:
            if kw.arg == "default_factory":
                factory = kw.value
                if isinstance(factory, ast.Lambda):
                    if (
                        factory.args.args
                        or factory.args.posonlyargs
                        or factory.args.kwonlyargs
                    ):
                        raise NotStatic(factory)
                    return self.eval(factory.body)
                made = self.eval(factory)
                if (
                    isinstance(made, tuple)
                    and made
                    and made[0] == "builtin"
                    and made[1] in ("list", "dict", "set", "tuple")
                ):
                    return _PURE_BUILTINS[made[1]]()
                if isinstance(made, ClassRef):
                    return self.instantiate(made, None)
                if isinstance(made, FuncRef):
                    return self.call_function(made, None)
                raise NotStatic(factory)
        raise NotStatic(node, why="not evaluated: a field without a default")

    # -- objects ----------------------------------------------------------------------------------
    def _deeper(self, node: ast.AST | None) -> int:
        if self.depth + 1 > MAX_DEPTH:
            raise NotStatic(node, why="not evaluated: nested too deeply")
        return self.depth + 1

    def chain(self, cls: ClassRef) -> tuple[list[ClassRef], Missing | None]:
        """The class and its bases, root first (single inheritance as configs use it)."""
        chain = [cls]
        missing = None
        seen = {id(cls.node)}
        while chain[0].node is not None and len(chain) < MAX_DEPTH:
            top = chain[0]
            nxt = None
            for base in top.node.bases:  # type: ignore[union-attr]
                if isinstance(base, ast.Name) and base.id in ("object", "Generic"):
                    continue
                try:
                    ref = _Interp(
                        top.module, top.module.namespace(), None, self.depth
                    ).eval(base)  # type: ignore[union-attr]
                except NotStatic as e:
                    known = top.module.loader.known  # type: ignore[union-attr]
                    name = (
                        base.id
                        if isinstance(base, ast.Name)
                        else base.attr
                        if isinstance(base, ast.Attribute)
                        else ""
                    )
                    if (
                        name in known
                    ):  # a base sftkit knows by name, not imported or not found: its known defaults
                        nxt = ClassRef(name, None, builtin=known[name])
                        break
                    if e.missing is not None and missing is None:
                        missing = e.missing
                    continue
                if isinstance(ref, ClassRef) and id(ref.node) not in seen:
                    nxt = ref
                    break
            if nxt is None:
                break
            chain.insert(0, nxt)
            seen.add(id(nxt.node))
        return chain, missing

    def instantiate(self, cls: ClassRef, node: ast.Call | None) -> Obj:
        depth = self._deeper(node)
        chain, missing = self.chain(cls)
        obj = Obj(cls, chain, missing_base=missing)
        for index, ref in enumerate(chain):
            obj.stage = index
            if ref.builtin is not None:
                for name, value in ref.builtin.items():
                    obj.set(
                        Value(name, 0, copy.deepcopy(value), path=None, assumed=True)
                    )
                continue
            assert ref.node is not None and ref.module is not None
            scope: dict[str, Any] = {}
            body = _Interp(ref.module, scope, None, depth)
            body.local = dict(ref.module.namespace())
            for stmt in ref.node.body:
                target = value_node = None
                if isinstance(stmt, ast.AnnAssign) and isinstance(
                    stmt.target, ast.Name
                ):
                    target, value_node = stmt.target.id, stmt.value
                    if value_node is None:
                        if target not in obj.fields:
                            obj.set(
                                Value(target, stmt.lineno, None, path=ref.module.path)
                            )
                        continue
                    if _is_classvar(stmt.annotation):
                        continue
                elif (
                    isinstance(stmt, ast.Assign)
                    and len(stmt.targets) == 1
                    and isinstance(stmt.targets[0], ast.Name)
                ):
                    target, value_node = stmt.targets[0].id, stmt.value
                if target is None or value_node is None:
                    continue
                body.envs = []
                try:
                    value = body.eval(value_node)
                    if isinstance(value, (FuncRef, ClassRef, Stdlib, Module)) or (
                        isinstance(value, tuple)
                        and value[:1] in (("builtin",), ("method",))
                    ):
                        continue  # a method alias or a nested class, not a setting
                    obj.set(
                        Value(
                            target,
                            stmt.lineno,
                            value,
                            path=ref.module.path,
                            env=body.envs[0] if body.envs else None,
                        )
                    )
                    body.local[target] = value
                except NotStatic as e:
                    obj.set(
                        Value(
                            target,
                            stmt.lineno,
                            skipped=_outer(e, value_node).reason,
                            path=ref.module.path,
                        )
                    )
        obj.stage = len(chain)
        if node is not None:
            self._apply_kwargs(obj, node, depth)
        obj.stage = len(chain) + 1
        self._post_init(obj, depth)
        obj.stage = (
            len(chain) + 2
        )  # later changes: config.x = ..., replace(config, ...)
        return obj

    def _apply_kwargs(self, obj: Obj, node: ast.Call, depth: int | None = None) -> None:
        order = _field_order(obj)
        for i, arg in enumerate(node.args[1:] if self._is_replace(node) else node.args):
            name = order[i] if i < len(order) else f"<argument {i + 1}>"
            self._set_field(obj, name, arg, arg.lineno)
        for kw in node.keywords:
            if kw.arg is None:
                try:
                    spread = self.eval(kw.value)
                except NotStatic:
                    obj.extra.append(
                        Skipped(
                            "**kwargs",
                            kw.value.lineno,
                            "not evaluated: " + source(kw.value),
                            self.module.path,
                        )
                    )
                    continue
                if isinstance(spread, dict):
                    for k, v in spread.items():
                        obj.set(
                            Value(str(k), kw.value.lineno, v, path=self.module.path)
                        )
                continue
            self._set_field(obj, kw.arg, kw.value, kw.value.lineno)

    @staticmethod
    def _is_replace(node: ast.Call) -> bool:
        f = node.func
        return (isinstance(f, ast.Name) and f.id == "replace") or (
            isinstance(f, ast.Attribute) and f.attr == "replace"
        )

    def _set_field(self, obj: Obj, name: str, value_node: ast.expr, line: int) -> None:
        self.envs = []
        try:
            value = self.eval(value_node)
            obj.set(
                Value(
                    name,
                    line,
                    value,
                    path=self.module.path,
                    env=self.envs[0] if self.envs else None,
                )
            )
        except NotStatic as e:
            obj.set(
                Value(
                    name,
                    line,
                    skipped=_outer(e, value_node).reason,
                    path=self.module.path,
                )
            )

    def _post_init(self, obj: Obj, depth: int | None = None) -> None:
        self.run_method(
            obj,
            "__post_init__",
            len(obj.chain),
            [],
            {},
            depth if depth is not None else self.depth,
        )

    def run_method(
        self,
        obj: Obj,
        name: str,
        below: int,
        args: list[Any],
        kwargs: dict[str, Any],
        depth: int,
    ) -> Any:
        """Run method ``name`` of the first class at an index under ``below`` that defines it (``super()`` is below)."""
        for index in range(min(below, len(obj.chain)) - 1, -1, -1):
            ref = obj.chain[index]
            if ref.node is None:
                continue
            fn = next(
                (
                    s
                    for s in ref.node.body
                    if isinstance(s, ast.FunctionDef) and s.name == name
                ),
                None,
            )
            if fn is None:
                continue
            assert ref.module is not None
            if depth + 1 > MAX_DEPTH:
                return None
            local = _bind(
                fn, [obj, *args], kwargs, _Interp(ref.module, {}, None, depth)
            )
            interp = _Interp(ref.module, local, obj, depth + 1, cls_index=index)
            interp.block(fn.body)
            return None if interp.result is _UNSET else interp.result
        return None

    def call_function(self, ref: FuncRef, node: ast.Call | None) -> Any:
        depth = self._deeper(node)
        args, kwargs = self._args(node) if node is not None else ([], {})
        local = _bind(ref.node, args, kwargs, _Interp(ref.module, {}, None, depth))
        interp = _Interp(ref.module, local, None, depth)
        interp.block(ref.node.body)
        if interp.result is _UNSET:
            raise NotStatic(
                node,
                why="not evaluated: "
                + (source(node) if node is not None else ref.name)
                + " returns nothing it can read",
            )
        if isinstance(interp.result, NotStatic):
            raise interp.result
        return interp.result

    # -- statements -------------------------------------------------------------------------------
    def run_top(self, body: list[ast.stmt]) -> None:
        for stmt in body:
            if isinstance(stmt, (ast.Import, ast.ImportFrom)):
                self._bind_import(stmt)
            elif isinstance(stmt, ast.ClassDef):
                self.local[stmt.name] = ClassRef(stmt.name, self.module, stmt)
            elif isinstance(stmt, ast.FunctionDef):
                self.local[stmt.name] = FuncRef(stmt.name, self.module, stmt)
            elif isinstance(stmt, ast.Try):
                self.run_top(stmt.body)
                self.run_top(stmt.finalbody)
            elif isinstance(stmt, ast.If):
                taken = self.truth(stmt.test)
                if taken is not None:
                    self.run_top(stmt.body if taken else stmt.orelse)
            elif isinstance(stmt, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
                self.statement(stmt)
            elif isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Call):
                self._call_statement(
                    stmt.value
                )  # config.x.update(...) changes a field; print(...) is not run
            # everything else (loops, with) is not run

    def _bind_import(self, stmt: ast.Import | ast.ImportFrom) -> None:
        if isinstance(stmt, ast.Import):
            for alias in stmt.names:
                if alias.asname:
                    self.local[alias.asname] = _ImportRef(
                        alias.name, None, 0, self.module.path
                    )
                else:
                    root = alias.name.split(".")[0]
                    self.local[root] = _ImportRef(root, None, 0, self.module.path)
            return
        for alias in stmt.names:
            if alias.name == "*":
                continue
            self.local[alias.asname or alias.name] = _ImportRef(
                stmt.module or "", alias.name, stmt.level, self.module.path
            )

    def truth(self, test: ast.expr) -> bool | None:
        """The condition's value, or None when it cannot be told without running the code (or rests on a
        base class's default that was assumed, not read; a plain ``is None`` check on one is told)."""
        self.touched_assumed = False
        try:
            value = bool(self.eval(test))
        except NotStatic:
            return None
        if self.touched_assumed and not _is_none_check(test):
            return None
        return value

    def block(self, body: list[ast.stmt]) -> bool:
        """Run statements; True when a ``return`` (or ``raise``) ended the block."""
        for stmt in body:
            if self.statement(stmt):
                return True
        return False

    def statement(self, stmt: ast.stmt) -> bool:
        if isinstance(stmt, ast.Return):
            try:
                self.result = self.eval(stmt.value) if stmt.value is not None else None
            except NotStatic as e:
                self.result = e
            return True
        if isinstance(stmt, ast.Raise):
            return True
        if isinstance(stmt, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            self._assign(stmt)
        elif isinstance(stmt, ast.If):
            taken = self.truth(stmt.test)
            if taken is None:
                self._uncertain(
                    stmt,
                    f"set under a condition that needs the code to run ({source(stmt.test, 40)}): not evaluated",
                )
                return False
            return self.block(stmt.body if taken else stmt.orelse)
        elif isinstance(stmt, ast.Try):
            ended = self.block(stmt.body)
            return self.block(stmt.finalbody) or ended
        elif isinstance(stmt, ast.With):
            return self.block(stmt.body)
        elif isinstance(stmt, (ast.For, ast.While, ast.AsyncFor)):
            self._uncertain(stmt, "set inside a loop: not evaluated")
        elif isinstance(stmt, (ast.Import, ast.ImportFrom)):
            self._bind_import(stmt)
        elif isinstance(stmt, ast.FunctionDef):
            self.local[stmt.name] = FuncRef(stmt.name, self.module, stmt)
        elif isinstance(stmt, ast.Delete):
            for target in stmt.targets:
                holder = self._holder(target)
                if holder is not None:
                    obj, name = holder
                    obj.set(
                        Value(
                            name,
                            stmt.lineno,
                            skipped="deleted in the code: not evaluated",
                            path=self.module.path,
                        )
                    )
        elif isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Call):
            self._call_statement(stmt.value)
        return False

    def _holder(self, target: ast.expr) -> tuple[Obj, str] | None:
        """(object, field) for ``self.x`` / ``config.x`` targets."""
        if isinstance(target, ast.Attribute):
            try:
                base = self.eval(target.value)
            except NotStatic:
                return None
            if isinstance(base, Obj):
                return base, target.attr
        return None

    def _assign(self, stmt: ast.Assign | ast.AnnAssign | ast.AugAssign) -> None:
        if isinstance(stmt, ast.AnnAssign) and stmt.value is None:
            return
        targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
        value_node = stmt.value
        assert value_node is not None
        if isinstance(stmt, ast.AugAssign):
            value_node = ast.BinOp(
                left=_load(stmt.target), op=stmt.op, right=stmt.value
            )
            ast.copy_location(value_node, stmt)
        self.envs = []
        try:
            value: Any = self.eval(value_node)
            error: NotStatic | None = None
        except NotStatic as e:
            value, error = (
                None,
                _outer(e, stmt.value if stmt.value is not None else value_node),
            )
        for target in targets:
            self._store(target, value, error, stmt.lineno)

    def _store(
        self, target: ast.expr, value: Any, error: NotStatic | None, line: int
    ) -> None:
        if isinstance(target, ast.Name):
            self.local[target.id] = _Unknown(error.node, error) if error else value
            if not error and isinstance(value, Obj) and self.local is self.module.ns:
                self.module.order.append(target.id)
            return
        holder = self._holder(target)
        if holder is not None:
            obj, name = holder
            if error:
                obj.set(Value(name, line, skipped=error.reason, path=self.module.path))
            else:
                obj.set(
                    Value(
                        name,
                        line,
                        value,
                        path=self.module.path,
                        env=self.envs[0] if self.envs else None,
                    )
                )
            return
        if isinstance(target, ast.Subscript):
            inner = self._holder(target.value)
            if inner is not None:
                obj, name = inner
                current = obj.fields.get(name)
                try:
                    key = self.eval(target.slice)
                except NotStatic:
                    key, error = None, error or NotStatic(target)
                if (
                    current is None
                    or current.skipped
                    or not isinstance(current.value, dict)
                    or error
                ):
                    reason = (
                        error.reason if error else f"not evaluated: {source(target)}"
                    )
                    obj.set(Value(name, line, skipped=reason, path=self.module.path))
                else:
                    updated = dict(current.value)
                    updated[key] = value
                    obj.set(Value(name, line, updated, path=self.module.path))
                return
            if isinstance(target.value, ast.Name) and isinstance(
                self.local.get(target.value.id), dict
            ):
                try:
                    self.local[target.value.id] = {
                        **self.local[target.value.id],
                        self.eval(target.slice): value,
                    }
                except NotStatic:
                    self.local[target.value.id] = _Unknown(target)
                if error:
                    self.local[target.value.id] = _Unknown(error.node)
            return
        if isinstance(target, (ast.Tuple, ast.List)):
            for elt in target.elts:
                self._store(elt, None, error or NotStatic(target), line)

    def _uncertain(self, stmt: ast.stmt, reason: str) -> None:
        """Every field (and local) assigned somewhere inside ``stmt`` becomes unknown, with ``reason``."""
        for node in ast.walk(stmt):
            targets: list[ast.expr] = []
            if isinstance(node, ast.Assign):
                targets = node.targets
            elif isinstance(
                node, (ast.AnnAssign, ast.AugAssign, ast.For, ast.AsyncFor)
            ):
                targets = [node.target]
            elif (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in _MUTATORS
            ):
                targets = [node.func.value]
            for target in targets:
                base = target.value if isinstance(target, ast.Subscript) else target
                holder = self._holder(base)
                if holder is not None:
                    obj, name = holder
                    obj.set(
                        Value(
                            name,
                            getattr(node, "lineno", 0),
                            skipped=reason,
                            path=self.module.path,
                        )
                    )
                elif isinstance(base, ast.Name):
                    self.local[base.id] = _Unknown(base)

    def _call_statement(self, call: ast.Call) -> None:
        func = call.func
        if not isinstance(func, ast.Attribute):
            return  # print(...), validate(...): not run
        if (
            isinstance(func.value, ast.Call)
            and isinstance(func.value.func, ast.Name)
            and func.value.func.id == "super"
        ):
            if self.obj is not None and self.cls_index is not None:
                try:
                    args, kwargs = self._args(call)
                except NotStatic:
                    args, kwargs = [], {}
                self.run_method(
                    self.obj, func.attr, self.cls_index, args, kwargs, self.depth
                )
            return
        if (
            isinstance(func.value, ast.Name)
            and func.value.id == "self"
            and self.obj is not None
        ):
            try:
                args, kwargs = self._args(call)
            except NotStatic:
                args, kwargs = [], {}
            self.run_method(
                self.obj, func.attr, len(self.obj.chain), args, kwargs, self.depth
            )
            return
        if func.attr in _MUTATORS:
            holder = self._holder(func.value)
            if holder is None:
                if isinstance(func.value, ast.Name) and isinstance(
                    self.local.get(func.value.id), (dict, list)
                ):
                    self.local[func.value.id] = _Unknown(call)
                return
            obj, name = holder
            current = obj.fields.get(name)
            try:
                args, kwargs = self._args(call)
                if (
                    current is None
                    or current.skipped
                    or not isinstance(current.value, (dict, list))
                ):
                    raise NotStatic(call)
                updated = copy.deepcopy(current.value)
                getattr(updated, func.attr)(*args, **kwargs)
                obj.set(Value(name, call.lineno, updated, path=self.module.path))
            except (NotStatic, *_FAILS):
                obj.set(
                    Value(
                        name,
                        call.lineno,
                        skipped="not evaluated: " + source(call),
                        path=self.module.path,
                    )
                )


def _load(target: ast.expr) -> ast.expr:
    """The target of ``x += 1`` read as an expression."""
    node = copy.deepcopy(target)
    for sub in ast.walk(node):
        if hasattr(sub, "ctx"):
            sub.ctx = ast.Load()
    return node


def _bind(
    fn: ast.FunctionDef, args: list[Any], kwargs: dict[str, Any], interp: _Interp
) -> dict[str, Any]:
    """Parameters of ``fn`` bound to the call's arguments, or their defaults (unknown when neither)."""
    params = [*fn.args.posonlyargs, *fn.args.args]
    local: dict[str, Any] = {}
    defaults = fn.args.defaults
    first_default = len(params) - len(defaults)
    for i, p in enumerate(params):
        if i < len(args):
            local[p.arg] = args[i]
        elif p.arg in kwargs:
            local[p.arg] = kwargs[p.arg]
        elif i >= first_default:
            try:
                local[p.arg] = interp.eval(defaults[i - first_default])
            except NotStatic as e:
                local[p.arg] = _Unknown(e.node)
        else:
            local[p.arg] = _Unknown(None)
    for p, d in zip(fn.args.kwonlyargs, fn.args.kw_defaults):
        if p.arg in kwargs:
            local[p.arg] = kwargs[p.arg]
        elif d is not None:
            try:
                local[p.arg] = interp.eval(d)
            except NotStatic as e:
                local[p.arg] = _Unknown(e.node)
        else:
            local[p.arg] = _Unknown(None)
    return local


def _field_order(obj: Obj) -> list[str]:
    """Dataclass field order: annotated names, root class first."""
    order: list[str] = []
    for ref in obj.chain:
        if ref.builtin is not None:
            order += [n for n in ref.builtin if n not in order]
            continue
        assert ref.node is not None
        for stmt in ref.node.body:
            named = isinstance(stmt, ast.AnnAssign) and isinstance(
                stmt.target, ast.Name
            )
            if (
                named
                and not _is_classvar(stmt.annotation)
                and stmt.target.id not in order
            ):  # type: ignore[union-attr]
                order.append(stmt.target.id)  # type: ignore[union-attr]
    return order


def _is_classvar(annotation: ast.expr) -> bool:
    node = annotation.value if isinstance(annotation, ast.Subscript) else annotation
    return (isinstance(node, ast.Name) and node.id == "ClassVar") or (
        isinstance(node, ast.Attribute) and node.attr == "ClassVar"
    )


def _is_none_check(test: ast.expr) -> bool:
    """``x is None`` / ``x is not None`` (and ``and``/``or``/``not`` of them)."""
    if isinstance(test, ast.BoolOp):
        return all(_is_none_check(v) for v in test.values)
    if isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not):
        return _is_none_check(test.operand)
    return (
        isinstance(test, ast.Compare)
        and len(test.ops) == 1
        and isinstance(test.ops[0], (ast.Is, ast.IsNot))
        and isinstance(test.comparators[0], ast.Constant)
        and test.comparators[0].value is None
    )


def instantiate_class(module: Module, cls: ClassRef) -> Obj:
    """An instance of ``cls`` made with no arguments."""
    return _Interp(module, module.namespace(), None, 0).instantiate(cls, None)


def call_factory(module: Module, fn: FuncRef) -> Any:
    """What a factory function defined in ``module`` returns when called with no arguments."""
    return _Interp(module, module.namespace(), None, 0).call_function(fn, None)
