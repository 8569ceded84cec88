"""Names that several commands share, declared once: where a model or dataset lives, the built-in tiny
model, and the training method names.

"Is this a local path or a Hub id?" is answered here and nowhere else:

- :func:`is_builtin`: ``builtin:tiny`` (the model and task sftkit builds offline);
- :func:`is_local`: a built-in, or a path that exists;
- :func:`looks_like_path`: text written as a path (``./x``, ``/x``, ``~/x``, ``a/b/c``, ``x.jsonl``) even when
  nothing is there, so a typo becomes "not found" instead of a Hub download attempt;
- :func:`hub_id`: text shaped ``org/name`` (optionally ``@revision``) that is not local.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

BUILTIN_PREFIX = "builtin:"
#: the offline model and task sftkit builds itself
BUILTIN_TINY = "builtin:tiny"
BUILTINS = (BUILTIN_TINY,)

_HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$")
#: suffixes that mark a file name (data, weights, templates), never a Hub repository
FILE_SUFFIXES = (
    ".jsonl", ".ndjson", ".json", ".csv", ".tsv", ".parquet", ".txt", ".gz", ".arrow",
    ".gguf", ".safetensors", ".bin", ".jinja", ".yaml", ".yml", ".py",
)


def is_builtin(name: str) -> bool:
    return name.startswith(BUILTIN_PREFIX)


def is_local(name: str) -> bool:
    """A built-in, or a path that exists on this machine."""
    return is_builtin(name) or Path(name).expanduser().exists()


def looks_like_path(name: str) -> bool:
    """Written as a path (whether or not it exists): never to be sent to the Hub."""
    return (
        name.startswith((".", "/", "~"))
        or name.count("/") > 1
        or "\\" in name
        or (os.sep != "/" and os.sep in name)
        or name.lower().endswith(FILE_SUFFIXES)
    )


def hub_id(name: str | None) -> str | None:
    """``name`` (without an ``@revision``) when it is shaped like a Hub repository id and is not local."""
    if not name or is_local(name) or looks_like_path(name):
        return None
    repo = name.partition("@")[0]
    return repo if _HUB_ID.match(repo) else None


# -- training methods -------------------------------------------------------------------------------

#: the methods, as configs, cards, metadata, presets and the wizard all name them
FULL, LORA, QLORA, LORA_8BIT = "full", "lora", "qlora", "lora-8bit"
METHODS = (FULL, LORA, QLORA, LORA_8BIT)
METHOD_HELP = {
    FULL: "all weights trained",
    LORA: "LoRA adapters on a frozen base",
    QLORA: "LoRA adapters on a 4-bit base (bitsandbytes)",
    LORA_8BIT: "LoRA adapters on an 8-bit base (bitsandbytes)",
}


def method_of(lora_enabled: bool, load_in_4bit: bool = False, load_in_8bit: bool = False) -> str:
    """The method name for a LoRA section's settings."""
    if not lora_enabled:
        return FULL
    if load_in_4bit:
        return QLORA
    if load_in_8bit:
        return LORA_8BIT
    return LORA


def method_settings(method: str) -> dict[str, bool]:
    """The ``lora.*`` settings a method name stands for (inverse of :func:`method_of`)."""
    return {
        "lora.enabled": method != FULL,
        "lora.load_in_4bit": method == QLORA,
        "lora.load_in_8bit": method == LORA_8BIT,
    }
