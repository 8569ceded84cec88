"""What the old SmolLM3 configs held by default, and where each of their fields goes in sftkit."""

from __future__ import annotations

from typing import Any

#: ``SmolLM3Config`` (config/train_smollm3.py) as the old project shipped it, after its ``__post_init__``.
LEGACY_BASE: dict[str, Any] = {
    "trainer_type": "sft",
    "model_name": "HuggingFaceTB/SmolLM3-3B",
    "max_seq_length": 4096,
    "use_flash_attention": True,
    "use_gradient_checkpointing": True,
    "batch_size": 4,
    "gradient_accumulation_steps": 4,
    "learning_rate": 2e-5,
    "weight_decay": 0.01,
    "warmup_steps": 100,
    "max_iters": 1000,
    "eval_interval": 100,
    "log_interval": 10,
    "save_interval": 500,
    "optimizer": "adamw_torch",
    "beta1": 0.9,
    "beta2": 0.95,
    "eps": 1e-8,
    "scheduler": "cosine",
    "min_lr": 1e-6,
    "fp16": True,
    "bf16": False,
    "ddp_backend": "nccl",
    "ddp_find_unused_parameters": False,
    "save_steps": 500,
    "eval_steps": 100,
    "logging_steps": 10,
    "save_total_limit": 3,
    "eval_strategy": "steps",
    "metric_for_best_model": "eval_loss",
    "greater_is_better": False,
    "load_best_model_at_end": True,
    "data_dir": "my_dataset",
    "train_file": "train.json",
    "validation_file": None,
    "test_file": None,
    "use_chat_template": True,
    "chat_template_kwargs": {"add_generation_prompt": True, "no_think_system_message": True},
    "enable_tracking": True,
    "trackio_url": None,
    "trackio_token": None,
    "log_artifacts": True,
    "log_metrics": True,
    "log_config": True,
    "experiment_name": None,
    "hf_token": None,
    "dataset_repo": None,
    "monitoring_mode": "both",
}

#: ``SmolLM3DPOConfig`` (config/train_smollm3_dpo.py) on top of the base, after its ``__post_init__``.
LEGACY_DPO_BASE: dict[str, Any] = {
    **LEGACY_BASE,
    "trainer_type": "dpo",
    "beta": 0.1,
    "max_prompt_length": 2048,
    "max_length": 4096,
    "dpo_beta": 0.1,
    "dpo_loss_type": "sigmoid",
    "dpo_alpha": 0.5,
    "ref_model_name": None,
    "ref_model_peft_config": None,
    "preference_dataset_format": "dpo",
    "preference_dataset_text_field": "text",
    "preference_dataset_prompt_field": "prompt",
    "preference_dataset_chosen_field": "chosen",
    "preference_dataset_rejected_field": "rejected",
    "dpo_gradient_checkpointing": True,
    "dpo_gradient_checkpointing_kwargs": {"use_reentrant": False},
    "dpo_precompute_ref_log_probs": False,
    "dpo_peft_config": {"r": 16, "lora_alpha": 32, "lora_dropout": 0.1, "bias": "none", "task_type": "CAUSAL_LM"},
}

BASE_CLASSES = {"SmolLM3Config": ("smollm3", LEGACY_BASE), "SmolLM3DPOConfig": ("smollm3-dpo", LEGACY_DPO_BASE)}

#: old flat name -> sftkit key, for values that carry over unchanged
DIRECT: dict[str, str] = {
    "trainer_type": "trainer_type",
    "model_name": "model.name",
    "max_seq_length": "model.max_seq_length",
    "use_flash_attention": "model.flash_attention",
    "use_gradient_checkpointing": "model.gradient_checkpointing",
    "trust_remote_code": "model.trust_remote_code",
    "batch_size": "train.batch_size",
    "eval_batch_size": "train.eval_batch_size",
    "gradient_accumulation_steps": "train.gradient_accumulation_steps",
    "learning_rate": "train.learning_rate",
    "weight_decay": "train.weight_decay",
    "warmup_steps": "train.warmup_steps",
    "warmup_ratio": "train.warmup_ratio",
    "max_iters": "train.max_iters",
    "num_train_epochs": "train.num_train_epochs",
    "save_total_limit": "train.save_total_limit",
    "optimizer": "train.optimizer",
    "beta1": "train.beta1",
    "beta2": "train.beta2",
    "eps": "train.eps",
    "scheduler": "train.scheduler",
    "min_lr": "train.min_lr",
    "fp16": "train.fp16",
    "bf16": "train.bf16",
    "seed": "train.seed",
    "max_grad_norm": "train.max_grad_norm",
    "group_by_length": "train.group_by_length",
    "dataloader_num_workers": "train.dataloader_num_workers",
    "load_best_model_at_end": "train.load_best_model_at_end",
    "metric_for_best_model": "train.metric_for_best_model",
    "dataset_name": "data.dataset",
    "dataset_split": "data.split",
    "dataset_config": "data.config_name",
    "enable_tracking": "tracking.enabled",
    "trackio_url": "tracking.trackio_url",
    "trackio_space": "tracking.trackio_space",
    "experiment_name": "tracking.experiment_name",
    "dpo_loss_type": "dpo.loss_type",
    "max_prompt_length": "dpo.max_prompt_length",
    "max_length": "dpo.max_length",
}

#: several old names for one sftkit key; when they disagree the transformers-style name (last) wins
ALIASES: dict[str, tuple[str, ...]] = {
    "train.eval_steps": ("eval_interval", "eval_steps"),
    "train.logging_steps": ("log_interval", "logging_steps"),
    "train.save_steps": ("save_interval", "save_steps"),
    "dpo.beta": ("beta", "dpo_beta"),
}

#: handled together below (data format and files, reference model, LoRA)
GROUPED = {
    "input_field", "target_field", "filter_bad_entries", "bad_entry_field",
    "data_dir", "train_file", "validation_file", "ref_model_name", "dpo_peft_config",
    "use_lora", "lora_r", "lora_alpha", "lora_dropout",
}

SECRETS = {"trackio_token", "hf_token", "wandb_api_key", "api_key", "token"}

#: old settings sftkit has no key for, and why
NO_EQUIVALENT: dict[str, str] = {
    "ddp_backend": "distributed settings are `sftkit train --nproc/--nnodes` options",
    "ddp_find_unused_parameters": "distributed settings are `sftkit train` options",
    "eval_strategy": "sftkit evaluates every train.eval_steps when there is validation data",
    "greater_is_better": "derived from train.metric_for_best_model",
    "use_chat_template": "sftkit uses the tokenizer's chat template (data.template)",
    "chat_template_kwargs": "set data.template or model.chat_template instead",
    "log_artifacts": "the run folder always keeps metrics and the final model",
    "log_metrics": "metrics are always logged",
    "log_config": "the resolved config is always saved in the run folder",
    "dataloader_pin_memory": "no sftkit setting",
    "dataloader_prefetch_factor": "no sftkit setting",
    "monitoring_mode": "choose tracking.backend",
    "dataset_repo": "no sftkit setting (push results with `sftkit export`)",
    "test_file": "evaluate with `sftkit eval`",
}


def is_secret(name: str) -> bool:
    """A token, key or password: never written to a file."""
    lowered = name.lower()
    return lowered in SECRETS or lowered.endswith(("_token", "_api_key", "_password", "_secret"))
