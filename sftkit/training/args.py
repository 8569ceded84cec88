"""RunConfig -> keyword arguments of TRL's SFTConfig / DPOConfig / KTOConfig, peft's LoraConfig and model loading,
and the real argument objects built from them.

The ``*_args`` functions are pure Python (no torch, no TRL import). :func:`build_trainer_config` and
:func:`build_peft_config` build the objects the trainer receives; ``sftkit train --dry-run`` builds the very
same objects (without loading a model), so an argument the installed TRL or peft rejects fails the dry run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sftkit.config import RunConfig
from sftkit.training.distributed import distributed_args


def tracking_args(cfg: RunConfig) -> dict[str, Any]:
    tr = cfg.tracking
    if not tr.enabled or tr.backend == "none":
        return {"report_to": "none"}
    out: dict[str, Any] = {
        "report_to": tr.backend,
        "run_name": tr.experiment_name or Path(cfg.train.output_dir).name,
    }
    if tr.backend == "trackio":
        out["project"] = tr.project
        if tr.trackio_space:
            out["trackio_space_id"] = tr.trackio_space
    return out


def scheduler_args(cfg: RunConfig) -> dict[str, Any]:
    """``lr_scheduler_type`` and ``lr_scheduler_kwargs``: ``cosine`` with a ``train.min_lr`` is transformers'
    ``cosine_with_min_lr``; the cosine schedules with a floor get ``train.min_lr`` as their ``min_lr``."""
    from sftkit.config import FLOOR_SCHEDULERS

    t = cfg.train
    name = "cosine_with_min_lr" if t.scheduler == "cosine" and t.min_lr > 0 else t.scheduler
    kwargs = dict(t.scheduler_kwargs)
    if name in FLOOR_SCHEDULERS and t.min_lr > 0:
        kwargs["min_lr"] = t.min_lr
    return {"lr_scheduler_type": name, "lr_scheduler_kwargs": kwargs} if kwargs else {"lr_scheduler_type": name}


def padding_free_wanted(cfg: RunConfig) -> bool:
    """SFT without packing, and ``train.padding_free`` not turned off (whether it is exact for the model is
    checked when the model is loaded: :func:`sftkit.training.batching.padding_free_is_exact`)."""
    return cfg.trainer_type == "sft" and not cfg.data.packing and cfg.train.padding_free is not False


def trainer_args(
    cfg: RunConfig,
    has_eval: bool | None = None,
    ddp_backend: str | None = None,
    padding_free: bool | None = None,
    train_rows: int | None = None,
    pin_memory: bool = False,
) -> dict[str, Any]:
    """Keyword arguments for SFTConfig (trainer_type sft), DPOConfig (dpo) or KTOConfig (kto). ``padding_free``: the decision for
    this model (default: what the config asks for); ``train_rows``: the number of training rows, when known;
    ``pin_memory``: whether this machine has an accelerator to copy batches to (:func:`pin_memory_useful`)."""
    t = cfg.train
    if has_eval is None:
        has_eval = cfg.has_validation
    args: dict[str, Any] = {
        "output_dir": t.output_dir,
        "per_device_train_batch_size": t.batch_size,
        "per_device_eval_batch_size": t.eval_batch_size or t.batch_size,
        "gradient_accumulation_steps": t.gradient_accumulation_steps,
        "learning_rate": t.learning_rate,
        "weight_decay": t.weight_decay,
        # transformers reads a float in [0, 1) as a ratio of the total steps
        "warmup_steps": t.warmup_ratio if t.warmup_ratio else t.warmup_steps,
        "max_steps": t.max_iters if t.max_iters else -1,
        "num_train_epochs": t.num_train_epochs,
        "optim": t.optimizer,
        "adam_beta1": t.beta1,
        "adam_beta2": t.beta2,
        "adam_epsilon": t.eps,
        **scheduler_args(cfg),
        "fp16": t.fp16,
        "bf16": t.bf16,
        "seed": t.seed,
        "data_seed": t.seed,
        "max_grad_norm": t.max_grad_norm,
        "train_sampling_strategy": "group_by_length" if t.group_by_length and not cfg.data.packing else "random",
        "dataloader_num_workers": t.dataloader_num_workers,
        # pinned host memory only speeds copies to an accelerator; without one torch warns that it goes unused
        "dataloader_pin_memory": pin_memory,
        "activation_checkpointing": cfg.model.gradient_checkpointing,
        "logging_steps": t.logging_steps,
        "logging_first_step": True,
        "save_strategy": "steps",
        "save_steps": t.save_steps,
        "save_total_limit": t.save_total_limit,
        "eval_strategy": "steps" if has_eval else "no",
        "eval_steps": t.eval_steps if has_eval else None,
        "load_best_model_at_end": t.load_best_model_at_end and has_eval,
        "metric_for_best_model": t.metric_for_best_model if t.load_best_model_at_end else None,
        "use_cpu": t.use_cpu,
        **distributed_args(cfg),  # train.distributed, or train.fsdp / train.deepspeed as given
        "disable_tqdm": True,
        "model_init_kwargs": None,
        # tokens/s in the progress line and metrics.jsonl count real tokens, not padding
        "include_num_input_tokens_seen": "non_padding",  # "all" for padding-free batches: see below
        # a NaN/inf loss must reach the NaN guard, not be filtered out of the logged mean
        "logging_nan_inf_filter": False,
        "ddp_backend": t.ddp_backend or ddp_backend,
        "ddp_find_unused_parameters": t.ddp_find_unused_parameters,
        "tf32": t.tf32,
        # Liger's layer kernels (train.kernels, resolved to liger or none for the hardware and the model first)
        "use_liger_kernel": t.kernels == "liger",
        **tracking_args(cfg),
    }
    if t.load_best_model_at_end:
        args["greater_is_better"] = t.greater_is_better if t.greater_is_better is not None else "loss" not in t.metric_for_best_model
    if cfg.trainer_type == "sft":
        if padding_free is None:
            padding_free = padding_free_wanted(cfg)
        args.update(
            {
                "max_length": cfg.model.max_seq_length,
                "packing": cfg.data.packing,
                # sftkit tokenises and masks the data itself (see `sftkit prepare`); TRL uses our
                # completion_mask as it is, so the loss mask is the one the preview showed
                "completion_only_loss": cfg.data.completion_only_loss,
            }
        )
        if padding_free and not cfg.data.packing:
            # rows are already cut to model.max_seq_length by `sftkit prepare`; TRL wants no max_length here
            # every token of a padding-free batch is real; "non_padding" would also drop those equal to the pad
            # token (often the end-of-turn token)
            args.update({"padding_free": True, "max_length": None, "include_num_input_tokens_seen": "all"})
    elif cfg.trainer_type == "kto":
        k = cfg.kto
        args.update(
            {
                "beta": k.beta,
                "loss_type": k.loss_type,
                "desirable_weight": k.desirable_weight,
                "undesirable_weight": k.undesirable_weight,
                "max_length": k.max_length,
                "precompute_ref_log_probs": precompute_reference(cfg, train_rows),
            }
        )
        if k.loss_type == "kto":
            # the KL reference point of each row is another row of its batch (TRL pairs them in a fixed order);
            # the training rows are shuffled once instead (seeded by train.seed, see trainers.kto_trainer_class)
            args["train_sampling_strategy"] = "sequential"
    else:
        d = cfg.dpo
        args.update(
            {
                "beta": d.beta,
                "loss_type": [d.loss_type],
                "max_length": d.max_length,
                "label_smoothing": d.label_smoothing,
                "precompute_ref_log_probs": precompute_reference(cfg, train_rows),
            }
        )
    return args


def precompute_reference(cfg: RunConfig, train_rows: int | None) -> bool:
    """DPO's (and KTO's) reference log-probabilities computed once, before training, when the run sees every training row at
    least once: the frozen reference then costs one forward per row instead of one per row per epoch, and TRL
    keeps no reference model in memory. A run shorter than an epoch computes them as it goes (fewer rows)."""
    if train_rows is None:
        return False
    t = cfg.train
    if not t.max_iters:
        return True
    import os

    seen = t.max_iters * t.batch_size * t.gradient_accumulation_steps * int(os.environ.get("WORLD_SIZE", "1"))
    return seen >= train_rows


def pin_memory_useful(cfg: RunConfig) -> bool:
    """Pinned data-loader memory: for a run on an accelerator (torch's own test, as its DataLoader makes it)."""
    if cfg.train.use_cpu:
        return False
    import torch

    accelerator = getattr(torch, "accelerator", None)
    return bool(accelerator.is_available()) if accelerator is not None else torch.cuda.is_available()


def model_load_args(cfg: RunConfig) -> dict[str, Any]:
    """What ``from_pretrained`` receives (quantisation shown symbolically; built with torch later)."""
    m, lo = cfg.model, cfg.lora
    out: dict[str, Any] = {
        "pretrained_model_name_or_path": m.name,
        "revision": m.revision,
        "trust_remote_code": m.trust_remote_code,
        "dtype": resolved_dtype(cfg),
    }
    if m.flash_attention:
        out["attn_implementation"] = "flash_attention_2"
    if lo.load_in_4bit:
        out["quantization_config"] = {
            "load_in_4bit": True,
            "bnb_4bit_quant_type": lo.quant_type,
            "bnb_4bit_use_double_quant": lo.double_quant,
            "bnb_4bit_compute_dtype": resolved_dtype(cfg),
        }
    elif lo.load_in_8bit:
        out["quantization_config"] = {"load_in_8bit": True}
    return out


def peft_args(cfg: RunConfig) -> dict[str, Any] | None:
    lo = cfg.lora
    if not lo.enabled:
        return None
    return {
        "r": lo.r,
        "lora_alpha": lo.alpha,
        "lora_dropout": lo.dropout,
        "target_modules": lo.target_modules,
        "bias": "none",
        "task_type": "CAUSAL_LM",
    }


def resolved_dtype(cfg: RunConfig) -> str:
    if cfg.model.dtype != "auto":
        return cfg.model.dtype
    # fp16 mixed precision keeps float32 master weights (the grad scaler refuses fp16 parameters)
    return "bfloat16" if cfg.train.bf16 else "float32"


def build_trainer_config(
    cfg: RunConfig,
    has_eval: bool | None = None,
    ddp_backend: str | None = None,
    padding_free: bool | None = None,
    train_rows: int | None = None,
) -> Any:
    """TRL's SFTConfig / DPOConfig / KTOConfig for this run (imports TRL; loads no model)."""
    from sftkit.errors import ConfigError

    if cfg.trainer_type == "sft":
        from trl import SFTConfig as config_cls
    elif cfg.trainer_type == "kto":
        from trl import KTOConfig as config_cls
    else:
        from trl import DPOConfig as config_cls
    args = trainer_args(
        cfg, has_eval=has_eval, ddp_backend=ddp_backend, padding_free=padding_free, train_rows=train_rows, pin_memory=pin_memory_useful(cfg)
    )
    try:
        return config_cls(**args)
    except (TypeError, ValueError) as e:
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise ConfigError(f"TRL's {config_cls.__name__} rejects these settings: {first}", hint="change the key it names (see --dry-run for every argument)") from None


def build_scheduler(cfg: RunConfig, trainer_config: Any, total_steps: int | None = None) -> Any:
    """The learning-rate schedule the trainer will make from ``trainer_config``, built for real on a stand-in
    optimizer (one parameter), so that a schedule or ``train.scheduler_kwargs`` transformers rejects fails before
    the run. ``total_steps``: the run's length when known (else ``train.max_iters``, else 1000)."""
    import torch
    from transformers.optimization import get_scheduler

    from sftkit.errors import ConfigError

    args = trainer_config
    steps = total_steps or (args.max_steps if args.max_steps and args.max_steps > 0 else 1000)
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=args.learning_rate)
    try:
        return get_scheduler(
            args.lr_scheduler_type,
            optimizer=optimizer,
            num_warmup_steps=args.get_warmup_steps(steps),
            num_training_steps=steps,
            scheduler_specific_kwargs=dict(args.lr_scheduler_kwargs or {}),
        )
    except (TypeError, ValueError) as e:
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise ConfigError(
            f"transformers rejects the learning-rate schedule {cfg.train.scheduler!r} with {scheduler_args(cfg).get('lr_scheduler_kwargs', {})}: {first}",
            hint="check train.scheduler, train.scheduler_kwargs and train.min_lr",
        ) from None


def build_peft_config(cfg: RunConfig) -> Any:
    """peft's LoraConfig for this run, or None without LoRA."""
    from sftkit.errors import ConfigError

    kwargs = peft_args(cfg)
    if kwargs is None:
        return None
    from peft import LoraConfig

    try:
        return LoraConfig(**kwargs)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"peft's LoraConfig rejects these settings: {str(e).splitlines()[0]}", hint="check the lora.* keys") from None
