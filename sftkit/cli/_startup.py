"""Help screens without the parts of rich they never use.

typer draws help and usage errors with ``typer.rich_utils``, whose imports include ``rich.markdown`` (and
with it markdown-it) and ``rich.traceback`` (pygments, through ``rich.syntax``): about a third of the time
``sftkit --help`` takes. sftkit uses neither: its help is ``rich_markup_mode="rich"``, not markdown, and
typer's pretty tracebacks are off (``pretty_exceptions_enable=False``).

:func:`install` (called by the ``sftkit`` entry point, and when the app is built) arranges that when
``typer.rich_utils`` is imported, its ``Markdown`` and ``Traceback`` names are stand-ins that import the real
class the first time they are used: ``Markdown(...)`` builds a real ``rich.markdown.Markdown``, an
``isinstance`` check or a class attribute (``Traceback.from_exception``) asks the real class. What is drawn is
unchanged (``tests/unit/test_cli_startup.py`` compares every help screen with and without it).

Nothing else is touched: the stand-ins exist only inside ``typer.rich_utils``; any other import of
``rich.markdown`` or ``rich.traceback`` gets the real module. Where rich has already been imported in full,
or a future typer imports these modules differently, the real modules are used.
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import Any

TARGET = "typer.rich_utils"
#: module -> the names typer.rich_utils imports from it
DEFERRED = {"rich.markdown": ("Markdown",), "rich.traceback": ("Traceback",)}


def _stand_in(module: str, name: str) -> type:
    """A class that stands for ``module.name`` and imports it on first real use."""

    def real() -> Any:
        return getattr(importlib.import_module(module), name)

    class _Deferred(type):
        def __getattr__(cls, attr: str) -> Any:
            return getattr(real(), attr)

        def __instancecheck__(cls, obj: Any) -> bool:
            return isinstance(obj, real())

        def __subclasscheck__(cls, sub: type) -> bool:
            return issubclass(sub, real())

    def __new__(cls: type, *args: Any, **kwargs: Any) -> Any:  # noqa: N807 - builds the real object
        return real()(*args, **kwargs)

    return _Deferred(name, (), {"__new__": __new__, "__module__": module, "__qualname__": name, "__doc__": f"Stands for {module}.{name}, imported on first use."})


class _Loader:
    """Runs ``typer.rich_utils`` with stand-in modules for the rich modules it does not need (anything else
    is the real loader's: ``get_source`` for tracebacks, ...)."""

    def __init__(self, real: Any) -> None:
        self.real = real

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)

    def create_module(self, spec: Any) -> Any:
        return self.real.create_module(spec)

    def exec_module(self, module: types.ModuleType) -> None:
        stubs = {}
        for name, names in DEFERRED.items():
            if name in sys.modules:
                continue  # already imported: typer gets the real one
            stub = types.ModuleType(name)
            for attr in names:
                setattr(stub, attr, _stand_in(name, attr))
            stubs[name] = stub
        sys.modules.update(stubs)
        try:
            self.real.exec_module(module)
        finally:
            for name, stub in stubs.items():
                if sys.modules.get(name) is stub:
                    del sys.modules[name]


class _Finder:
    """A meta path finder (importlib.abc.MetaPathFinder, not imported: that costs more than it saves)."""

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> Any:
        if fullname != TARGET:
            return None
        uninstall()  # once: ask the other finders, as the import system would have, without coming back here
        for finder in sys.meta_path:
            find = getattr(finder, "find_spec", None)
            spec = find(fullname, path, target) if find is not None else None
            if spec is not None:
                break
        else:
            return None
        if spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        spec.loader = _Loader(spec.loader)
        return spec


_FINDER = _Finder()


def install() -> None:
    """Defer rich.markdown and rich.traceback in typer.rich_utils, unless it is already imported."""
    if TARGET in sys.modules or _FINDER in sys.meta_path:
        return
    sys.meta_path.insert(0, _FINDER)


def uninstall() -> None:
    if _FINDER in sys.meta_path:
        sys.meta_path.remove(_FINDER)
