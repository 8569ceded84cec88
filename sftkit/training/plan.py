"""What ``sftkit train --dry-run`` shows: the resolved config and the real argument objects the trainer would
receive (TRL's SFTConfig/DPOConfig, peft's LoraConfig), built exactly as a run builds them, without a model."""

from __future__ import annotations

from typing import Any

from sftkit.config import RunConfig
from sftkit.training.args import (
    build_peft_config,
    build_trainer_config,
    model_load_args,
    padding_free_wanted,
    peft_args,
    trainer_args,
)

TRAINER_CLASSES = {"sft": "trl.SFTTrainer", "dpo": "trl.DPOTrainer"}


def training_plan(cfg: RunConfig) -> dict[str, Any]:
    """The plan as a dict; raises ConfigError when TRL or peft rejects an argument.

    Mixed precision needs hardware this machine may not have (a GPU for fp16, bf16 support): then the
    arguments are checked with it off and a note says so, instead of refusing a config meant for another machine.
    """
    notes: list[str] = []
    checked = cfg
    if (cfg.train.fp16 or cfg.train.bf16) and not _precision_available(cfg):
        which = "train.fp16" if cfg.train.fp16 else "train.bf16"
        notes.append(f"{which} needs hardware this machine lacks: the trainer arguments were checked with it off")
        checked = cfg.model_copy(update={"train": cfg.train.model_copy(update={"fp16": False, "bf16": False})})
    build_trainer_config(checked)
    build_peft_config(cfg)
    if padding_free_wanted(cfg):
        notes.append("padding-free batches: checked on the model at the start of the run (padded if not exact for it)")
    plan: dict[str, Any] = {
        "config": cfg.to_dict(),
        "trainer": {"class": TRAINER_CLASSES[cfg.trainer_type], "args": trainer_args(cfg)},
        "model_loading": model_load_args(cfg),
        "peft": peft_args(cfg),
    }
    if notes:
        plan["notes"] = notes
    return plan


def _precision_available(cfg: RunConfig) -> bool:
    """fp16 needs CUDA; bf16 needs a GPU that supports it, or a CPU run (train.use_cpu) on a bf16-capable CPU."""
    import torch

    if torch.cuda.is_available() and not cfg.train.use_cpu:
        return cfg.train.fp16 or torch.cuda.is_bf16_supported()
    return cfg.train.bf16 and cfg.train.use_cpu
