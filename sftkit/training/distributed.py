"""Named sharding setups (``train.distributed``), shipped as JSON files in ``sftkit/distributed/``, and what they
become in transformers' training arguments: ``fsdp`` + ``fsdp_config`` for FSDP, ``deepspeed`` for DeepSpeed.
Pure Python (no torch import): ``--dry-run`` shows the expansion.
"""

from __future__ import annotations

import importlib.util
import json
from importlib.resources import files
from typing import Any

from sftkit.config import RunConfig
from sftkit.errors import ConfigError

NAMES = ("fsdp", "zero2", "zero3")


def named_config(name: str) -> dict[str, Any]:
    """The shipped file for ``name``, parsed."""
    if name not in NAMES:
        raise ConfigError(f"train.distributed: unknown setup {name!r}", hint=f"one of {', '.join(NAMES)}")
    return json.loads(files("sftkit").joinpath("distributed", f"{name}.json").read_text(encoding="utf-8"))


def config_path(name: str) -> str:
    """Where the shipped file for ``name`` is (for ``deepspeed``, which transformers reads as a path or a dict)."""
    return str(files("sftkit").joinpath("distributed", f"{name}.json"))


def distributed_args(cfg: RunConfig) -> dict[str, Any]:
    """``fsdp``, ``fsdp_config`` and ``deepspeed`` for TrainingArguments: from ``train.distributed`` when set,
    else ``train.fsdp`` / ``train.deepspeed`` as given."""
    t = cfg.train
    name = t.distributed
    if name is None:
        return {"fsdp": t.fsdp or "", "deepspeed": t.deepspeed}
    if t.fsdp or t.deepspeed:
        other = "train.fsdp" if t.fsdp else "train.deepspeed"
        raise ConfigError(
            f"train.distributed={name} and {other} are both set",
            hint=f"keep one: the named setup (see --dry-run for what it expands to) or {other}",
        )
    setup = named_config(name)
    if "deepspeed" in setup:
        if importlib.util.find_spec("deepspeed") is None:
            raise ConfigError(
                f"train.distributed={name} needs DeepSpeed, which is not installed",
                hint="pip install deepspeed (on a machine with CUDA GPUs), or use --distributed fsdp",
            )
        return {"fsdp": "", "deepspeed": dict(setup["deepspeed"])}
    return {"fsdp": setup["fsdp"], "fsdp_config": dict(setup["fsdp_config"]), "deepspeed": None}
