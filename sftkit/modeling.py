"""Loading tokenizers and models from a Hub id, a local folder, a .gguf file or ``builtin:tiny``."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from sftkit.errors import SftkitError
from sftkit.names import BUILTIN_TINY, is_local, looks_like_path

__all__ = [
    "BUILTIN_TINY",
    "cache_dir",
    "is_adapter_folder",
    "is_local",
    "load_tokenizer",
    "quiet_transformers",
    "resolve_model_path",
    "tokenizer_for",
    "weights_problem",
]


def cache_dir() -> Path:
    """sftkit's own cache (the built tiny model, ...): $SFTKIT_CACHE or ~/.cache/sftkit."""
    base = os.environ.get("SFTKIT_CACHE") or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "sftkit"
    return Path(base)


def resolve_model_path(name: str) -> tuple[str, str | None]:
    """(what from_pretrained gets, gguf file name or None) for a model name as the config gives it."""
    if name == BUILTIN_TINY:
        from sftkit.tiny import ensure_tiny_model

        return str(ensure_tiny_model(cache_dir() / "tiny")), None
    path = Path(name).expanduser()
    if path.suffix == ".gguf":
        if not path.is_file():
            raise SftkitError(f"GGUF file not found: {name}", hint="check the path to the .gguf file")
        return str(path.parent), path.name
    if looks_like_path(name) and not path.exists():
        raise SftkitError(f"model folder not found: {name}", hint="check the path, or use a Hub id like org/name")
    return (str(path) if path.exists() else name), None


#: the weights a model folder holds: one file, or the index of a sharded set (what from_pretrained looks for)
WEIGHTS_FILES = ("model.safetensors", "pytorch_model.bin", "model.safetensors.index.json", "pytorch_model.bin.index.json")
#: the weights an adapter folder holds
ADAPTER_WEIGHTS_FILES = ("adapter_model.safetensors", "adapter_model.bin")


def is_adapter_folder(path: str | Path) -> bool:
    """A local LoRA adapter folder (a LoRA run's ``model/``): adapter weights and config, no model config of its own."""
    folder = Path(path).expanduser()
    return folder.is_dir() and (folder / "adapter_config.json").is_file() and not (folder / "config.json").is_file()


def weights_problem(folder: str | Path) -> SftkitError | None:
    """Why a local model (or adapter) folder's weights cannot be loaded, as one clear error: there are none,
    a shard its index names is missing, or a safetensors file is corrupt or truncated. None otherwise
    (not a folder, or the weights look fine: the failure is elsewhere). Only called once loading failed."""
    import json

    folder = Path(folder).expanduser()
    if not folder.is_dir():
        return None
    adapter = is_adapter_folder(folder)
    expected = ADAPTER_WEIGHTS_FILES if adapter else WEIGHTS_FILES
    present = [name for name in expected if (folder / name).is_file()]
    if not present:
        return SftkitError(
            f"{folder} has no {'adapter ' if adapter else ''}weights: expected {', '.join(expected[:-1])} or {expected[-1]}",
            hint="copy the weights files into the folder too, or pass the folder that holds them",
        )
    for index in (name for name in present if name.endswith(".index.json")):
        try:
            shards = set(json.loads((folder / index).read_text(encoding="utf-8"))["weight_map"].values())
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return SftkitError(f"{folder / index} is not a valid weights index", hint="copy or download the model again")
        missing = sorted(s for s in shards if not (folder / s).is_file())
        if missing:
            more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
            return SftkitError(f"{folder}: the shard {missing[0]}{more} named by {index} is missing", hint="copy or download the model again")
    from safetensors import safe_open

    for path in sorted(folder.glob("*.safetensors")):
        try:
            with safe_open(str(path), framework="pt"):
                pass
        except Exception as e:  # noqa: BLE001 - SafetensorError and OSError: the file is unusable either way
            detail = str(e).splitlines()[0] if str(e) else type(e).__name__
            return SftkitError(f"{path} is corrupt or truncated ({detail})", hint="copy or download the model again")
    return None


def load_tokenizer(
    name: str,
    revision: str | None = None,
    trust_remote_code: bool = False,
    chat_template: str | None = None,
) -> Any:
    """A fast tokenizer with a pad token; ``chat_template`` (Jinja text or a file path) replaces its own."""
    from transformers import AutoTokenizer

    from sftkit.hub import local_only, offline_error

    source, gguf = resolve_model_path(name)
    kwargs: dict[str, Any] = {"revision": revision, "trust_remote_code": trust_remote_code}
    if gguf:
        kwargs["gguf_file"] = gguf
    if not is_local(name):
        kwargs["local_files_only"] = local_only()
    try:
        tok = AutoTokenizer.from_pretrained(source, **kwargs)
    except (OSError, ValueError) as e:
        if is_local(name):
            raise SftkitError(f"could not load a tokenizer from {name}: {str(e).splitlines()[0]}") from None
        raise offline_error("tokenizer", name, e) from None
    if chat_template:
        tpath = Path(chat_template).expanduser()
        tok.chat_template = tpath.read_text(encoding="utf-8") if tpath.is_file() else chat_template
    if tok.pad_token is None:
        if tok.eos_token is None:
            raise SftkitError(f"tokenizer {name} has neither a pad nor an eos token", hint="set one in its tokenizer_config.json")
        tok.pad_token = tok.eos_token
    return tok


def tokenizer_for(cfg: Any) -> Any:
    """The tokenizer a RunConfig trains with."""
    m = cfg.model
    return load_tokenizer(m.tokenizer or m.name, m.revision if not m.tokenizer else None, m.trust_remote_code, m.chat_template)


class quiet_transformers:
    """Keep transformers' progress bars ("Loading weights"), info chatter and deprecation notices (from inside
    transformers and peft, not the user's to act on) off the user's terminal."""

    def __enter__(self) -> "quiet_transformers":
        import warnings

        import transformers

        self._warnings = warnings.catch_warnings()
        self._warnings.__enter__()
        warnings.simplefilter("ignore", FutureWarning)
        # bitsandbytes, imported on the way, warns on CPUs with AVX512-BF16 that an optional kernel package is
        # missing; nothing sftkit uses needs it
        import logging

        logging.getLogger("bitsandbytes.backends.cpu.ops").setLevel(logging.ERROR)

        self._level = transformers.logging.get_verbosity()
        self._bars = transformers.utils.logging.is_progress_bar_enabled()
        transformers.logging.set_verbosity_error()
        transformers.utils.logging.disable_progress_bar()
        return self

    def __exit__(self, *exc: object) -> bool:
        import transformers

        transformers.logging.set_verbosity(self._level)
        if self._bars:
            transformers.utils.logging.enable_progress_bar()
        self._warnings.__exit__(*exc)
        return False
