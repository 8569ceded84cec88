"""``data.formatting_func``: the user's own function turns each row into an example instead of a known format."""

from __future__ import annotations

import importlib
import importlib.util
import sys
import weakref
from pathlib import Path
from typing import Any, Callable

from sftkit.data.drops import InvalidRow
from sftkit.data.normalize import dpo_example, kto_example, to_messages
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
    import tokenize

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
    except (OSError, TypeError, SyntaxError, tokenize.TokenError):  # no source, or a file that does not hold it (exec'd code)
        code = getattr(fn, "__code__", None)
        parts.append(repr((code.co_code, code.co_consts, code.co_names)) if code else repr(fn))
    return "\n".join(parts)


#: the columns a function written for ``datasets.map(batched=True)`` returns, by trainer type
BATCH_KEYS = {"sft": ("text", "messages"), "dpo": ("prompt", "chosen", "rejected"), "kto": ("prompt", "completion", "label")}

#: how each formatting function was found to be called: True for the batched shape, False for one row
_CALL_SHAPE: weakref.WeakKeyDictionary[Any, bool] = weakref.WeakKeyDictionary()


def normalize_custom(row: Any, fn: Callable[[dict[str, Any]], Any], trainer_type: str) -> list[dict[str, Any]]:
    """Run ``data.formatting_func`` on a row: text -> raw text example; a list of turns (or ``{"messages": [...]}``,
    ``{"text": "..."}``) -> a conversation (raw text); a dict -> a canonical example (``{"prompt", "chosen",
    "rejected"}`` for DPO).

    A function written for ``datasets.map(batched=True)`` takes ``{column: [values]}`` and returns
    ``{"text": [...]}`` (or ``{"messages": [...]}``; ``{"prompt": [...], "chosen": [...], "rejected": [...]}``
    for DPO, ``{"prompt": [...], "completion": [...], "label": [...]}`` for KTO): one that fails on a single row, or returns ``{"text": [...]}`` for it, is called again on the row
    as a batch of one, and from then on always so; each text of what it returns is one example.
    """
    shape = _shape(fn)
    if shape is None and isinstance(row, dict):
        try:
            out, failure = fn(row), None
        except Exception as e:  # noqa: BLE001 - user code: any failure makes the row invalid (unless it is batched)
            out, failure = None, e
        if failure is None and not _looks_batched(out, trainer_type):
            _remember(fn, False)
            return _examples(out, trainer_type)
        batched = _try(fn, {k: [v] for k, v in row.items()})
        if _is_batch(batched, trainer_type):
            _remember(fn, True)
            return _batch_examples(batched, trainer_type)
        if failure is not None:
            raise InvalidRow(f"data.formatting_func failed: {type(failure).__name__}: {failure}") from None
        return _examples(out, trainer_type)
    if shape and isinstance(row, dict):
        out = _call(fn, {k: [v] for k, v in row.items()})
        if not _is_batch(out, trainer_type):
            keys = ", ".join(repr(k) for k in BATCH_KEYS.get(trainer_type, ()))
            raise InvalidRow(f"data.formatting_func (called on a batch) returned {type(out).__name__}; expected a dict of lists ({keys})")
        return _batch_examples(out, trainer_type)
    return _examples(_call(fn, row), trainer_type)


def _call(fn: Callable[[Any], Any], arg: Any) -> Any:
    try:
        return fn(arg)
    except Exception as e:  # noqa: BLE001 - user code: any failure makes the row invalid
        raise InvalidRow(f"data.formatting_func failed: {type(e).__name__}: {e}") from None


def _try(fn: Callable[[Any], Any], arg: Any) -> Any:
    try:
        return fn(arg)
    except Exception:  # noqa: BLE001 - a probe: the function is not a batched one
        return None


def _shape(fn: Any) -> bool | None:
    try:
        return _CALL_SHAPE.get(fn)
    except TypeError:  # not weak-referenceable: found out again for each row
        return None


def _remember(fn: Any, batched: bool) -> None:
    try:
        _CALL_SHAPE[fn] = batched
    except TypeError:
        pass


def _looks_batched(out: Any, trainer_type: str) -> bool:
    """A single row's result that only a batched function gives: ``{"text": [...]}`` (SFT), or DPO columns of
    lists of texts."""
    if not isinstance(out, dict):
        return False
    if trainer_type in ("dpo", "kto"):
        answers = ("chosen", "rejected") if trainer_type == "dpo" else ("completion",)
        return any(isinstance(out.get(k), list) and all(isinstance(v, str) for v in out[k]) for k in answers)
    return isinstance(out.get("text"), list)


def _is_batch(out: Any, trainer_type: str) -> bool:
    """``out`` is what a batched function returns for a batch of one: a dict of equally long lists."""
    keys = BATCH_KEYS.get(trainer_type, ())
    present = [k for k in keys if k in out] if isinstance(out, dict) else []
    if not present or (trainer_type != "sft" and len(present) < len(keys)):
        return False
    lengths = {len(out[k]) if isinstance(out[k], list) else -1 for k in present}
    return len(lengths) == 1 and -1 not in lengths


def _batch_examples(out: dict[str, Any], trainer_type: str) -> list[dict[str, Any]]:
    if trainer_type != "sft":
        keys = BATCH_KEYS[trainer_type]
        return [ex for values in zip(*(out[k] for k in keys), strict=True) for ex in _examples(dict(zip(keys, values, strict=True)), trainer_type)]
    key = "text" if "text" in out else "messages"
    return [ex for value in out[key] for ex in _examples(value if key == "text" else {"messages": value}, trainer_type)]


def _examples(out: Any, trainer_type: str) -> list[dict[str, Any]]:
    if trainer_type == "dpo":
        if not isinstance(out, dict) or not {"prompt", "chosen", "rejected"} <= set(out):
            raise InvalidRow("for DPO, data.formatting_func must return {prompt, chosen, rejected}")
        return dpo_example(out)
    if trainer_type == "kto":  # {prompt, completion, label}, or a preference pair (unpaired by the reader)
        if isinstance(out, dict) and {"prompt", "chosen", "rejected"} <= set(out):
            return dpo_example(out)
        if not isinstance(out, dict) or not {"prompt", "completion", "label"} <= set(out):
            raise InvalidRow("for KTO, data.formatting_func must return {prompt, completion, label} (or {prompt, chosen, rejected})")
        return kto_example(out)
    if isinstance(out, str):
        return [{"text": out}]
    if isinstance(out, list):
        return [{"messages": to_messages(out, "formatting_func result")}]
    if isinstance(out, dict) and "messages" in out:
        return [{"messages": to_messages(out["messages"], "messages")}]
    if isinstance(out, dict) and isinstance(out.get("text"), str):
        return [{"text": out["text"]}]
    raise InvalidRow(
        f"data.formatting_func returned {type(out).__name__}; expected text, a list of turns or {{'messages': [...]}}"
        " (a function for batches takes {column: [values]} and returns {'text': [...]})"
    )
