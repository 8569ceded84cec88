"""``data.formatting_func``: the user's own function turns each row into an example instead of a known format."""

from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path
from typing import Any, Callable

from sftkit.data.drops import InvalidRow
from sftkit.data.normalize import dpo_example, to_messages
from sftkit.errors import ConfigError


def require_trust(spec: str, trusted: bool) -> None:
    """The one rule before ``data.formatting_func`` is imported: only when the user allowed it, on the command
    line (``--trust-formatting-func``) or in a Python call (``trust_formatting_func=True``), never because a config
    says so: a config file, or a run folder someone sent, must not make sftkit run code."""
    if not trusted:
        raise ConfigError(
            f"data.formatting_func is {spec!r}: sftkit imports and runs that code only when you allow it",
            hint="pass trust_formatting_func=True if you trust that code (or remove data.formatting_func from the config)",
        )


def load_formatting_func(spec: str, *, trusted: bool) -> Callable[[dict[str, Any]], Any]:
    """``module:function`` or ``path/to/file.py:function`` -> the function (``data.formatting_func``).

    ``trusted``: the user allowed it (see :func:`require_trust`); without it nothing is imported.
    """
    require_trust(spec, trusted)
    target, sep, name = spec.rpartition(":")
    if not sep or not target or not name:
        raise ConfigError(f"data.formatting_func {spec!r} should be module:function or file.py:function")
    try:
        if target.endswith(".py"):
            path = Path(target).expanduser()
            if not path.is_file():
                raise ConfigError(f"data.formatting_func: file not found: {target}")
            module_spec = importlib.util.spec_from_file_location(f"sftkit_user_formatter_{path.stem}", path)
            assert module_spec and module_spec.loader
            module = importlib.util.module_from_spec(module_spec)
            sys.modules[module_spec.name] = module
            module_spec.loader.exec_module(module)
        else:
            module = importlib.import_module(target)
    except ImportError as e:
        raise ConfigError(f"data.formatting_func: cannot import {target!r} ({e})") from None
    fn = getattr(module, name, None)
    if not callable(fn):
        raise ConfigError(f"data.formatting_func: {target!r} has no function {name!r}")
    return fn


def formatting_func_source(spec: str, *, trusted: bool) -> str:
    """Text identifying the formatter's code, for the cache fingerprint: its module file and its own source.

    A function defined in a notebook has no module file; its source (or, failing that, its byte code)
    still changes the fingerprint when it is edited, so a stale prepared dataset is never reused.
    """
    import inspect

    fn = load_formatting_func(spec, trusted=trusted)  # first: find_spec below imports a dotted name's parent packages
    target = spec.rpartition(":")[0]
    path = Path(target).expanduser() if target.endswith(".py") else None
    if path is None:
        try:
            spec_ = importlib.util.find_spec(target)
        except (ImportError, ValueError):
            spec_ = None
        origin = getattr(spec_, "origin", None) if spec_ else None
        path = Path(origin) if origin else None
    parts = [path.read_text(encoding="utf-8") if path and path.is_file() else spec]
    try:
        parts.append(inspect.getsource(fn))
    except (OSError, TypeError):
        code = getattr(fn, "__code__", None)
        parts.append(repr((code.co_code, code.co_consts, code.co_names)) if code else repr(fn))
    return "\n".join(parts)


def normalize_custom(row: Any, fn: Callable[[dict[str, Any]], Any], trainer_type: str) -> list[dict[str, Any]]:
    """Run ``data.formatting_func`` on a row: text -> raw text example; a list of turns -> a conversation;
    a dict -> a canonical example (``{"prompt", "chosen", "rejected"}`` for DPO)."""
    try:
        out = fn(row)
    except Exception as e:  # noqa: BLE001 - user code: any failure makes the row invalid
        raise InvalidRow(f"data.formatting_func failed: {type(e).__name__}: {e}") from None
    if trainer_type == "dpo":
        if not isinstance(out, dict) or not {"prompt", "chosen", "rejected"} <= set(out):
            raise InvalidRow("for DPO, data.formatting_func must return {prompt, chosen, rejected}")
        return dpo_example(out)
    if isinstance(out, str):
        return [{"text": out}]
    if isinstance(out, list):
        return [{"messages": to_messages(out, "formatting_func result")}]
    if isinstance(out, dict) and "messages" in out:
        return [{"messages": to_messages(out["messages"], "messages")}]
    raise InvalidRow(f"data.formatting_func returned {type(out).__name__}; expected text or a list of turns")
