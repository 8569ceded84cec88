"""Reading the schema in :mod:`sftkit.config`: every dotted key, its type as users read it, its default and
its documentation (``sftkit config keys``, ``--set`` parsing and completion, did-you-mean hints)."""

from __future__ import annotations

from typing import Any, Literal

from sftkit.config import RunConfig, Section


def all_keys() -> list[str]:
    """Every canonical dotted key (``train.learning_rate``, ...), in schema order."""
    keys: list[str] = []
    for name, info in RunConfig.model_fields.items():
        ann = info.annotation
        if isinstance(ann, type) and issubclass(ann, Section):
            keys.extend(f"{name}.{sub}" for sub in ann.model_fields)
        else:
            keys.append(name)
    return keys


def field_info(key: str) -> Any:
    """The pydantic FieldInfo of a dotted key (``train.learning_rate``), or None for an unknown key."""
    section, _, name = key.partition(".")
    info = RunConfig.model_fields.get(section)
    if info is None or not name:
        return info
    ann = info.annotation
    if not (isinstance(ann, type) and issubclass(ann, Section)):
        return None
    return ann.model_fields.get(name)


def type_members(annotation: Any) -> tuple[Any, ...]:
    """The members of a union (``str | None`` -> (str, NoneType)); a single type as a 1-tuple."""
    import types
    import typing

    origin = typing.get_origin(annotation)
    if origin is typing.Union or origin is types.UnionType:
        return typing.get_args(annotation)
    return (annotation,)


def is_text_key(key: str) -> bool:
    """True when a key's value is text (a string, optional string or choice of strings): ``--set`` takes it as written."""
    import typing

    info = field_info(key)
    if info is None:
        return False
    members = [a for a in type_members(info.annotation) if a is not type(None)]
    if not members:
        return False
    for a in members:
        if a is str:
            continue
        if typing.get_origin(a) is Literal and all(isinstance(v, str) for v in typing.get_args(a)):
            continue
        return False
    return True


def is_optional_key(key: str) -> bool:
    info = field_info(key)
    return info is not None and type(None) in type_members(info.annotation)


def type_text(key: str) -> str:
    """A key's type as users read it: ``int > 0``, ``float``, ``text``, ``one of: a, b``, ``list of text``..."""
    import typing

    info = field_info(key)
    if info is None:
        return "?"
    parts = []
    for a in type_members(info.annotation):
        if a is type(None):
            continue
        if typing.get_origin(a) is Literal:
            parts.append("one of: " + ", ".join(str(v) for v in typing.get_args(a)))
        elif typing.get_origin(a) is list:
            parts.append("list of text")
        elif typing.get_origin(a) is dict:
            parts.append("mapping")
        else:
            parts.append({str: "text", int: "integer", float: "number", bool: "true/false"}.get(a, getattr(a, "__name__", str(a))))
    bounds = [f"{op} {getattr(m, attr)}" for m in info.metadata for attr, op in (("gt", ">"), ("ge", ">="), ("lt", "<"), ("le", "<=")) if getattr(m, attr, None) is not None]
    text = " or ".join(parts)
    if bounds:
        text += " " + ", ".join(bounds)
    if type(None) in type_members(info.annotation):
        text += " (or null)"
    return text


def key_docs(section: str | None = None) -> list[dict[str, Any]]:
    """Every key (or a section's keys) with its type, default and doc, for ``sftkit config keys``."""
    out = []
    for key in all_keys():
        if section and key.split(".")[0] != section:
            continue
        info = field_info(key)
        if info is None or (isinstance(info.annotation, type) and issubclass(info.annotation, Section)):
            continue
        default = info.get_default(call_default_factory=True)
        out.append({"key": key, "type": type_text(key), "default": default, "doc": " ".join((info.description or "").split())})
    return out


#: the config's sections (``model``, ``data``, ``train``, ...), in schema order
SECTIONS = tuple(
    name
    for name, info in RunConfig.model_fields.items()
    if isinstance(info.annotation, type) and issubclass(info.annotation, Section)
)
