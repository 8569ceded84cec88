"""Typed text -> a checked answer. A parser raises ValueError with a message shown as-is, then asks again."""

from __future__ import annotations

from typing import Any, Callable

from sftkit.names import BUILTINS, hub_id, is_builtin, is_local, looks_like_path


def _model_or_data(text: str, what: str, empty: str) -> str:
    name = text.strip()
    if not name:
        raise ValueError(empty)
    if is_builtin(name):
        if name not in BUILTINS:
            raise ValueError(f"the built-in {what}s are: {', '.join(BUILTINS)}")
        return name
    if is_local(name):
        return name
    if looks_like_path(name):
        raise ValueError(f"no such file or folder: {name}")
    if hub_id(name) is None:
        raise ValueError(f"{name!r} is not a local file or folder and does not look like a Hub {what} id (org/name)")
    return name


def parse_model(text: str) -> str:
    """A model: ``builtin:tiny``, an existing local folder or file, or a Hub id shaped ``org/name``."""
    return _model_or_data(text, "model", "enter a Hub id (org/name) or a local folder")


def parse_dataset(text: str) -> str:
    """Training data: ``builtin:tiny``, an existing local file or folder, or a Hub dataset id ``org/name``."""
    return _model_or_data(text, "dataset", "enter a data file, a folder or a Hub dataset id (org/name)")


def parse_space(text: str) -> str:
    """A Hugging Face Space id ``user/space-name``."""
    name = text.strip()
    if hub_id(name) != name:
        raise ValueError("a Space id looks like user/space-name")
    return name


def positive(kind: type, what: str, example: str) -> Callable[[str], Any]:
    """A parser for a number above 0 (``int`` or ``float``)."""

    def parse(text: str) -> Any:
        try:
            value = kind(str(text).strip())
        except ValueError:
            raise ValueError(f"{what} must be a positive {'whole ' if kind is int else ''}number, e.g. {example}") from None
        if value <= 0:
            raise ValueError(f"{what} must be above 0, e.g. {example}")
        return value

    return parse


def optional(parse: Callable[[str], Any]) -> Callable[[str], Any]:
    """``parse``, except that empty text means None."""

    def wrapped(text: str) -> Any:
        return None if not str(text).strip() else parse(text)

    return wrapped


def required_text(what: str) -> Callable[[str], str]:
    """A parser for one non-empty line."""

    def parse(text: str) -> str:
        value = str(text).strip()
        if not value:
            raise ValueError(f"{what} cannot be empty")
        if "\n" in value:
            raise ValueError(f"{what} must be one line")
        return value

    return parse


def show(value: Any) -> str:
    """A value as the wizard shows and pre-fills it (what its parsers read back)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, dict):
        return ", ".join(f"{k}={_flow(v)}" for k, v in value.items())
    return str(value)


def _flow(value: Any) -> str:
    """A mapping's value as ``key=value`` text shows it: plain text as it is, anything else as JSON (which YAML
    reads back: true, 0.1, "text, with commas", [a, b])."""
    import json

    if isinstance(value, str) and value.strip() == value and value and not any(c in value for c in ",=[]{}'\"\n:#"):
        from sftkit.yamlio import parse_scalar

        if parse_scalar(value) == value:
            return value
    return json.dumps(value, ensure_ascii=False)


def at_least(kind: type, low: float, what: str, example: str, below: float | None = None) -> Callable[[str], Any]:
    """A parser for a number >= ``low`` (and < ``below`` when given): a weight decay, a warm-up fraction."""

    def parse(text: str) -> Any:
        try:
            value = kind(str(text).strip())
        except ValueError:
            raise ValueError(f"{what} must be a {'whole ' if kind is int else ''}number, e.g. {example}") from None
        if value < low or (below is not None and value >= below):
            raise ValueError(f"{what} must be at least {low:g}" + (f" and below {below:g}" if below is not None else "") + f", e.g. {example}")
        return value

    return parse


def mapping(what: str, example: str, text_values: bool = False) -> Callable[[str], dict[str, Any]]:
    """A parser for ``key=value, key=value`` (empty: none); values are read as YAML unless ``text_values``."""

    def parse(text: str) -> dict[str, Any]:
        from sftkit.yamlio import parse_scalar

        out: dict[str, Any] = {}
        for part in [p.strip() for p in _pairs(str(text)) if p.strip()]:
            key, sep, value = part.partition("=")
            if not sep or not key.strip():
                raise ValueError(f"{what}: write key=value pairs separated by commas, e.g. {example}")
            out[key.strip()] = value.strip() if text_values else parse_scalar(value.strip())
        return out

    return parse


def _pairs(text: str) -> list[str]:
    """``a=1, b='x, y', c=[1, 2]`` -> the three pairs: commas inside quotes and brackets do not split."""
    parts, current, depth, quote = [], "", 0, ""
    for ch in text:
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch in "[{":
            depth += 1
        elif ch in "]}":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(current)
            current = ""
            continue
        current += ch
    return [*parts, current]
