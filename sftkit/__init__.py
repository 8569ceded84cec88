"""sftkit: fine-tune causal language models (SFT, DPO and KTO, full, LoRA or QLoRA) from one resolved config.

The Python API (see ``docs/api.md``) is importable from here; nothing heavy is imported until it is used::

    import sftkit
    cfg = sftkit.load_config(preset="tiny")
    run = sftkit.train(cfg)
"""

from __future__ import annotations

from typing import Any

from sftkit.version import __version__

_API = ("load_config", "prepare", "train", "evaluate", "load", "export_model", "Model", "plan", "config_keys", "list_runs", "show_run", "compare_runs")
_ERRORS = ("SftkitError", "ConfigError", "DataError", "InterruptedRun")
__all__ = [*_API, *_ERRORS, "RunConfig", "__version__"]


def __getattr__(name: str) -> Any:
    if name in _API:
        from sftkit import api

        return getattr(api, name)
    if name in _ERRORS:
        from sftkit import errors

        return getattr(errors, name)
    if name == "RunConfig":
        from sftkit.config import RunConfig

        return RunConfig
    raise AttributeError(f"module 'sftkit' has no attribute {name!r}")
