"""Loading tokenizers and models from a Hub id, a local folder, a .gguf file or ``builtin:tiny``."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from sftkit.errors import SftkitError
from sftkit.names import BUILTIN_TINY, is_local, looks_like_path

__all__ = ["BUILTIN_TINY", "cache_dir", "is_local", "load_tokenizer", "quiet_transformers", "resolve_model_path", "tokenizer_for"]


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
