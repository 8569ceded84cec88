"""What ``sftkit train --dry-run`` shows: the resolved config and the real argument objects the trainer would
receive (TRL's SFTConfig/DPOConfig/KTOConfig, peft's LoraConfig, the tracker's callback and environment), built
exactly as a run builds them, without a model."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from sftkit.config import RunConfig
from sftkit.training.args import (
    build_peft_config,
    build_scheduler,
    build_trainer_config,
    model_load_args,
    padding_free_wanted,
    peft_args,
    pin_memory_useful,
    trainer_args,
)
from sftkit.training.memory import memory_plan
from sftkit.training.tracking import check_tracking

TRAINER_CLASSES = {"sft": "trl.SFTTrainer", "dpo": "trl.DPOTrainer", "kto": "trl.KTOTrainer"}


def training_plan(cfg: RunConfig, processes: int = 1) -> dict[str, Any]:
    """The plan as a dict; raises ConfigError when TRL, peft or the tracker rejects an argument (or the tracker's
    package is not installed). ``processes``: how many processes would train (the memory plan divides what they shard).

    Mixed precision needs hardware this machine may not have (a GPU for fp16, bf16 support): then the
    arguments are checked with it off and a note says so, instead of refusing a config meant for another machine.
    """
    from sftkit.training.hardware import with_kernels, with_precision

    asked = cfg
    cfg, precision = with_precision(cfg)  # train.precision and train.kernels as this machine resolves them
    cfg, kernels = with_kernels(cfg)
    notes: list[str] = []
    checked = cfg
    if (cfg.train.fp16 or cfg.train.bf16) and not _precision_available(cfg):
        which = precision["precision_chosen_from"]
        notes.append(f"{which} needs hardware this machine lacks: the trainer arguments were checked with it off")
        checked = cfg.model_copy(update={"train": cfg.train.model_copy(update={"fp16": False, "bf16": False})})
    if cfg.train.tf32 and not _tf32_available():
        notes.append("train.tf32 needs an Ampere or newer GPU, which this machine lacks: the trainer arguments were checked with it unset")
        checked = checked.model_copy(update={"train": checked.train.model_copy(update={"tf32": None})})
    from sftkit.modeling import quiet_transformers

    tracker_env = check_tracking(cfg)  # first: it imports transformers' tracker code with stdout kept for the plan
    with quiet_transformers():  # importing TRL and peft: their import-time notices are not the user's to act on
        trainer_config = build_trainer_config(checked)
        build_scheduler(cfg, trainer_config)
        build_peft_config(cfg)
    if padding_free_wanted(cfg):
        notes.append("padding-free batches: checked on the model at the start of the run (padded if not exact for it)")
    warnings = [w for w in (warmup_warning(cfg, _prepared_rows(cfg)),) if w]
    plan: dict[str, Any] = {
        "config": asked.to_dict(),
        # the precision and kernels this machine gives the run, and why (as the run records them in environment.json)
        "hardware": {**precision, **kernels},
        "trainer": {"class": TRAINER_CLASSES[cfg.trainer_type], "args": trainer_args(cfg, pin_memory=pin_memory_useful(cfg))},
        "model_loading": model_load_args(cfg),
        "peft": peft_args(cfg),
        # what the tracker reads from the environment during the run (its folder, project, server)
        "tracker_environment": tracker_env,
        # parameters, memory per process, the devices found, whether it fits and what would (sftkit.training.memory)
        "memory": memory_plan(cfg, processes),
    }
    if notes:
        plan["notes"] = notes
    if warnings:
        plan["warnings"] = warnings
    return plan


def _tf32_available() -> bool:
    from transformers.utils import is_torch_tf32_available

    return bool(is_torch_tf32_available())


def _precision_available(cfg: RunConfig) -> bool:
    """fp16 needs CUDA; bf16 needs a GPU that supports it, or a CPU run (train.use_cpu) on a bf16-capable CPU."""
    import torch

    if torch.cuda.is_available() and not cfg.train.use_cpu:
        return cfg.train.fp16 or torch.cuda.is_bf16_supported()
    return cfg.train.bf16 and cfg.train.use_cpu


# -- the warm-up against the length of the run --------------------------------------------------------


def total_steps(cfg: RunConfig, train_rows: int | None, world_size: int = 1) -> int | None:
    """The optimiser steps the run takes, as transformers counts them: ``train.max_iters``, else the epochs over
    ``train_rows`` rows split over ``world_size`` processes (None when training by epochs on an unknown count)."""
    t = cfg.train
    if t.max_iters:
        return t.max_iters
    if not train_rows:
        return None
    batches = math.ceil(math.ceil(train_rows / world_size) / t.batch_size)
    per_epoch = max(math.ceil(batches / t.gradient_accumulation_steps), 1)
    return math.ceil(t.num_train_epochs * per_epoch)


def warmup_of(cfg: RunConfig, total: int) -> int:
    """The warm-up steps of a ``total``-step run, as transformers counts them: ``train.warmup_steps``, or
    ``train.warmup_ratio`` of the total rounded up."""
    t = cfg.train
    return t.warmup_steps if t.warmup_steps else math.ceil(t.warmup_ratio * total)


def warmup_warning(cfg: RunConfig, train_rows: int | None = None, world_size: int = 1) -> str | None:
    """One line when the warm-up lasts as long as the whole run or longer: the learning rate then never reaches
    ``train.learning_rate`` (it climbs for the whole run). None otherwise, or when the run's length is not known."""
    t = cfg.train
    total = total_steps(cfg, train_rows, world_size)
    if total is None:
        return None
    warmup = warmup_of(cfg, total)
    if warmup < total or warmup == 0:
        return None
    key = "train.warmup_steps" if t.warmup_steps else "train.warmup_ratio"
    given = f"train.warmup_steps {warmup}" if t.warmup_steps else f"train.warmup_ratio {t.warmup_ratio:g}: {_steps(warmup)}"
    length = _steps(total) + ("" if t.max_iters else f" ({t.num_train_epochs:g} epochs of {train_rows} rows)")
    reached = f"{max(total - 1, 0) / warmup:.0%}"
    fix = f"--set train.warmup_steps={max(total // 10, 1) if total > 1 else 0}" if key == "train.warmup_steps" else "--set train.warmup_ratio=0"
    return (
        f"the warm-up ({given}) is not shorter than the whole run ({length}): the learning rate climbs for the whole "
        f"run and ends at about {reached} of train.learning_rate ({t.learning_rate:g}); shorten it, e.g. {fix}"
    )


def _steps(n: int) -> str:
    return "1 step" if n == 1 else f"{n} steps"


def _prepared_rows(cfg: RunConfig) -> int | None:
    """Training rows of the run's prepared data, when it has been prepared (`sftkit prepare`) and not packed:
    what an epoch-based run's length is counted in before the run starts."""
    if cfg.train.max_iters or cfg.data.packing:
        return None
    from sftkit.data.manifest import read_manifest
    from sftkit.data.prepare import default_prepared_dir

    splits = (read_manifest(Path(default_prepared_dir(cfg))) or {}).get("splits")
    rows = splits.get("train") if isinstance(splits, dict) else None
    return rows if isinstance(rows, int) and rows > 0 else None
