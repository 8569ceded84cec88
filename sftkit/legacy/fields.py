"""What the old configs held by default, which family a config belongs to, and where each old field goes.

Three families of old configs are known:

- ``smollm3``: the SmolLM3 project's dataclasses (``SmolLM3Config``, ``SmolLM3DPOConfig`` and their subclasses),
  trained by its ``src/train.py`` (the ``smollm3`` / ``smollm3-dpo`` presets hold their defaults);
- ``gpt-oss``: the same project's GPT-OSS dataclasses (``GPTOSS...Config``), trained by its
  ``scripts/training/train_gpt_oss.py``;
- ``arabic``: the Arabic Qwen fine-tuning library's ``BaseConfig`` and its ``SFTConfig`` / ``DPOConfig`` (every
  value an environment variable with a default), and its YAML files with ``model:``/``training:``/``lora:``
  sections.

Any other dataclass is read with the same field names (they follow transformers' ``TrainingArguments``).
"""

from __future__ import annotations

from typing import Any

#: ``SmolLM3Config`` (config/train_smollm3.py) as the old project shipped it, after its ``__post_init__``: used
#: when a config builds on it and the file is not next to it.
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
    "chat_template_kwargs": {
        "add_generation_prompt": True,
        "no_think_system_message": True,
    },
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
    "dpo_peft_config": {
        "r": 16,
        "lora_alpha": 32,
        "lora_dropout": 0.1,
        "bias": "none",
        "task_type": "CAUSAL_LM",
    },
}

#: base classes known by name: their defaults when their file is not found next to the config
KNOWN_BASES: dict[str, dict[str, Any]] = {
    "SmolLM3Config": LEGACY_BASE,
    "SmolLM3DPOConfig": LEGACY_DPO_BASE,
}

#: the preset each family's configs are written on top of (None: on sftkit's own defaults)
PRESETS = {"smollm3": {"sft": "smollm3", "dpo": "smollm3-dpo"}}

#: the system message the SmolLM3 project's data loader (src/data.py) put before every conversation without
#: one, with and without ``chat_template_kwargs["no_think_system_message"]``
SMOLLM3_SYSTEM = "Tu es TonicIA, un assistant francophone rigoureux et bienveillant."
SMOLLM3_SYSTEM_NO_THINK = (
    "Tu es TonicIA , un assistant francophone rigoureux et bienveillant. /no_think"
)

#: what the SmolLM3 project's src/data.py did with a Hub dataset that has no validation and test splits:
#: 1% of the training rows held out for validation (and 1% for test), seed 42
SMOLLM3_VALIDATION_FRACTION = 0.01

#: fields each family's old training script read; a carried value outside these was written in the file but
#: not used by that script (said once, in a note)
READ_BY_OLD_SCRIPT: dict[str, frozenset[str]] = {
    "smollm3": frozenset(
        [
            "batch_size",
            "bf16",
            "fp16",
            "dataloader_num_workers",
            "dataloader_pin_memory",
            "dataloader_prefetch_factor",
            "ddp_backend",
            "ddp_find_unused_parameters",
            "eval_steps",
            "eval_strategy",
            "gradient_accumulation_steps",
            "greater_is_better",
            "learning_rate",
            "load_best_model_at_end",
            "logging_steps",
            "max_iters",
            "metric_for_best_model",
            "optimizer",
            "save_steps",
            "save_total_limit",
            "scheduler",
            "use_flash_attention",
            "use_gradient_checkpointing",
            "warmup_steps",
            "weight_decay",
            "max_grad_norm",
            "group_by_length",
            "data_dir",
            "dataset_name",
            "enable_tracking",
            "experiment_name",
            "trackio_url",
            "bad_entry_field",
            "filter_bad_entries",
            "monitoring_mode",
            "sample_seed",
            "sample_size",
            "trainer_type",
            "dataset_repo",
            "model_name",
            "max_seq_length",
            "input_field",
            "target_field",
            "dataset_split",
        ]
    ),
    "gpt-oss": frozenset(
        [
            "add_eos_token",
            "answer_prefix",
            "bad_entry_field",
            "bad_prompt_field",
            "bad_response_field",
            "batch_size",
            "chosen_field",
            "concatenate_fields",
            "dataloader_num_workers",
            "dataloader_pin_memory",
            "dataloader_prefetch_factor",
            "dataset_config",
            "dataset_format",
            "dataset_name",
            "dataset_num_proc",
            "dataset_split",
            "developer_message",
            "dpo_beta",
            "enable_tracking",
            "eval_accumulation_steps",
            "eval_batch_size",
            "eval_ratio",
            "eval_steps",
            "eval_strategy",
            "field_separator",
            "filter_bad_entries",
            "gradient_accumulation_steps",
            "group_by_length",
            "input_field",
            "learning_rate",
            "logging_steps",
            "lr_scheduler_kwargs",
            "max_grad_norm",
            "max_length",
            "max_samples",
            "max_seq_length",
            "max_steps",
            "min_length",
            "min_lr",
            "model_name",
            "num_train_epochs",
            "optimizer",
            "packing",
            "push_to_hub",
            "question_field",
            "reason_prefix",
            "reasoning_field",
            "rejected_field",
            "remove_unused_columns",
            "response_field",
            "save_steps",
            "save_strategy",
            "save_total_limit",
            "scheduler",
            "system_message",
            "target_field",
            "test_ratio",
            "trackio_url",
            "trainer_type",
            "use_gradient_checkpointing",
            "use_harmony_format",
            "warmup_ratio",
            "warmup_steps",
            "weight_decay",
            "fp16",
            "bf16",
            "tf32",
            "lora_config",
            "use_lora",
            "quantization_config",
            "use_quantization",
            "model_kwargs",
        ]
    ),
}

#: old flat name -> sftkit key, for values that carry over unchanged
DIRECT: dict[str, str] = {
    "model_name": "model.name",
    "tokenizer_name": "model.tokenizer",
    "max_seq_length": "model.max_seq_length",
    "use_flash_attention": "model.flash_attention",
    "trust_remote_code": "model.trust_remote_code",
    "eval_batch_size": "train.eval_batch_size",
    "gradient_accumulation_steps": "train.gradient_accumulation_steps",
    "learning_rate": "train.learning_rate",
    "weight_decay": "train.weight_decay",
    "num_train_epochs": "train.num_train_epochs",
    "save_total_limit": "train.save_total_limit",
    "optimizer": "train.optimizer",
    "fp16": "train.fp16",
    "bf16": "train.bf16",
    "tf32": "train.tf32",
    "seed": "train.seed",
    "max_grad_norm": "train.max_grad_norm",
    "group_by_length": "train.group_by_length",
    "dataloader_num_workers": "train.dataloader_num_workers",
    "metric_for_best_model": "train.metric_for_best_model",
    "output_dir": "train.output_dir",
    "dataset_name": "data.dataset",
    "dataset_split": "data.split",
    "dataset_config": "data.config_name",
    "validation_split": "data.validation_split",
    "packing": "data.packing",
    "dataset_num_proc": "data.num_proc",
    "enable_tracking": "tracking.enabled",
    "trackio_url": "tracking.trackio_url",
    "trackio_space": "tracking.trackio_space",
    "experiment_name": "tracking.experiment_name",
    "dpo_loss_type": "dpo.loss_type",
    "loss_type": "dpo.loss_type",
    "label_smoothing": "dpo.label_smoothing",
}

#: several old names for one value; when they disagree the last (transformers-style) name wins
ALIASES: dict[str, tuple[str, ...]] = {
    "train.eval_steps": ("eval_interval", "eval_steps"),
    "train.logging_steps": ("log_interval", "logging_steps"),
    "train.save_steps": ("save_interval", "save_steps"),
    "train.batch_size": ("train_batch_size", "batch_size"),
    "train.beta1": ("adam_beta1", "beta1"),
    "train.beta2": ("adam_beta2", "beta2"),
    "train.eps": ("adam_epsilon", "eps"),
    "model.gradient_checkpointing": (
        "gradient_checkpointing",
        "use_gradient_checkpointing",
    ),
    "train.max_iters": ("max_iters", "max_steps"),
    "dpo.beta": ("beta", "dpo_beta"),
    "dpo.ref_model": ("ref_model_path", "ref_model_name"),
}

#: any value (in :data:`EQUIVALENT`)
ANY = "<any value>"

#: old settings whose value means what sftkit does anyway (value -> why); any other value is listed as not carried
EQUIVALENT: dict[str, tuple[tuple[Any, ...], str]] = {
    "log_artifacts": (
        (True,),
        "the run folder always keeps the checkpoints, metrics and final model",
    ),
    "log_metrics": (
        (True,),
        "metrics are always logged (metrics.jsonl, and the tracker)",
    ),
    "log_config": ((True,), "the resolved config is always saved in the run folder"),
    "dataloader_pin_memory": (
        (True,),
        "sftkit pins data-loader memory whenever there is an accelerator",
    ),
    "dataloader_prefetch_factor": (
        (2, None),
        "torch's default: 2 batches ahead per worker",
    ),
    "remove_unused_columns": (
        (True, False),
        "sftkit passes the trainer only the columns it trains on",
    ),
    "length_column_name": (
        ("length",),
        "sftkit groups by the token length it computed itself",
    ),
    "low_cpu_mem_usage": (
        (True,),
        "transformers loads weights with low CPU memory by default",
    ),
    "use_cache": ((False,), "the KV cache is off while training"),
    "shuffle_data": ((True,), "the trainer shuffles the training rows every epoch"),
    "mlm": ((False,), "causal language modelling, as sftkit trains"),
    "push_to_hub": ((False,), "sftkit pushes only on `sftkit export --push-to-hub`"),
    "hub_private_repo": (
        (False, True),
        "`sftkit export --push-to-hub` creates private repositories unless --public",
    ),
    "save_strategy": (("steps",), "checkpoints every train.save_steps"),
    "logging_strategy": (("steps",), "logs every train.logging_steps"),
    "eval_delay": ((0, 0.0), "evaluation starts at the first train.eval_steps"),
    "log_level": (
        ("info", "passive", "warning"),
        "sftkit's log (train.log) is its own",
    ),
    "do_train": ((True,), "sftkit train trains"),
    "do_eval": ((True,), "sftkit evaluates when there is validation data"),
    "torch_compile": ((False,), "sftkit does not compile the model"),
    "truncation": (
        (True,),
        "rows longer than model.max_seq_length are truncated (data.too_long)",
    ),
    "concatenate_fields": (
        (True,),
        "prompt and answer are one training text, as sftkit builds it",
    ),
    "add_eos_token": ((True,), "every training text ends with the EOS token"),
    "dpo_gradient_checkpointing_kwargs": (
        ({"use_reentrant": False},),
        "non-reentrant checkpointing, TRL's default",
    ),
    "dpo_precompute_ref_log_probs": (
        (False, True),
        "sftkit computes the reference log-probabilities once when the run covers the data",
    ),
    "preference_dataset_format": (
        ("dpo",),
        "prompt/chosen/rejected rows, which sftkit reads as the dpo format",
    ),
    "preference_dataset_prompt_field": (("prompt",), "the dpo format's prompt column"),
    "preference_dataset_chosen_field": (("chosen",), "the dpo format's chosen column"),
    "preference_dataset_rejected_field": (
        ("rejected",),
        "the dpo format's rejected column",
    ),
    "preference_dataset_text_field": (("text",), "not used by the dpo format"),
    "overwrite_output_dir": (
        (True, False),
        "`sftkit train --overwrite` replaces an old run (keeping it until the new one has a checkpoint)",
    ),
    "model_type": ((ANY,), "transformers reads the model type from the model"),
    "force_use_ref_model": (
        (False,),
        "the reference is the starting model unless dpo.ref_model names another",
    ),
    "save_only_model": (
        (False,),
        "checkpoints keep the optimizer state, so --resume continues exactly",
    ),
    "reasoning_languages": ((ANY,), "informational: not a training setting"),
    "primary_language": ((ANY,), "informational: not a training setting"),
    "domain_focus": ((ANY,), "informational: not a training setting"),
    "language": ((ANY,), "informational: not a training setting"),
    "device": (("auto", "cuda", None), "sftkit trains on the GPU when there is one"),
    "mixed_precision": ((None,), "train.bf16 / train.fp16"),
}

#: old settings sftkit has no key for, and why
NO_EQUIVALENT: dict[str, str] = {
    "ddp_backend": "sftkit chooses the process-group backend (nccl on GPUs, gloo on CPUs); set train.ddp_backend to force one",
    "use_chat_template": "sftkit renders rows with the tokenizer's chat template (data.template)",
    "dataloader_pin_memory": "sftkit pins data-loader memory whenever there is an accelerator",
    "dataloader_prefetch_factor": "no sftkit setting (torch's default: 2 batches ahead per worker)",
    "monitoring_mode": "choose tracking.backend",
    "dataset_repo": "sftkit does not log metrics to a Hub dataset (push results with `sftkit export --push-to-hub`)",
    "test_file": "sftkit holds out no test data: evaluate on it with `sftkit eval RUN --data FILE`",
    "test_ratio": "sftkit holds out no test rows (they are trained on): evaluate on other data with `sftkit eval RUN --data FILE`",
    "eval_accumulation_steps": "sftkit's evaluation keeps only the loss, nothing to accumulate",
    "save_only_model": "sftkit checkpoints keep the optimizer state so that --resume continues exactly",
    "generation_config": "sampling is given to `sftkit generate` / `sftkit eval` on the command line",
    "hub_model_id": "push with `sftkit export RUN --output DIR --push-to-hub REPO`",
    "logging_dir": "TensorBoard logs go to the run folder (tensorboard/)",
    "max_memory_per_gpu": "no sftkit setting (the model is placed on the training device)",
    "early_stopping_patience": "sftkit has no early stopping: set train.max_iters, or keep the best checkpoint (train.load_best_model_at_end)",
    "early_stopping_threshold": "sftkit has no early stopping",
    "max_eval_samples": "no sftkit setting (the validation data is used whole)",
    "sample_seed": "sftkit keeps the first data.max_rows rows, no random sample",
    "dpo_alpha": "no sftkit setting",
    "dpo_gradient_checkpointing": "model.gradient_checkpointing covers DPO too",
    "ref_model_peft_config": "no sftkit setting (the reference is the base model with adapters off, or dpo.ref_model)",
    "force_use_ref_model": "no sftkit setting (a separate reference model is dpo.ref_model)",
    "device_id": "choose the GPU with CUDA_VISIBLE_DEVICES",
    "cuda_visible_devices": "choose the GPU with CUDA_VISIBLE_DEVICES",
    "torch_cuda_arch_list": "a build setting, not a training one",
    "max_memory_mb": "no sftkit setting",
    "attention_dropout": "a model config value, not a training setting",
    "torch_compile": "sftkit does not compile the model",
    "min_length": "a filter on characters sftkit does not have (data.too_long works on tokens)",
    "max_completion_length": "SFT in sftkit bounds whole rows by model.max_seq_length",
    "model_path": "use model.name for a local folder",
}

SECRETS = {"trackio_token", "hf_token", "wandb_api_key", "api_key", "token"}

#: keys of ``chat_template_kwargs`` that are not template variables: what they did, for the note
TEMPLATE_CALL_KWARGS: dict[str, str] = {
    "add_generation_prompt": "sftkit adds the generation prompt only where one is due (generate, eval), never after a training answer",
    "tokenize": "sftkit tokenises the rendered text itself",
    "no_think_system_message": "the /no_think system message is data.system_prompt",
    "auto_insert_role": "no such variable in the chat template: sftkit names each message's role",
}

#: YAML sections of the Arabic library's config files (``configs/qwen3_config.yaml``): dotted key -> old flat name.
#: Where two keys name one value the first one listed is used (the others are checked against it).
YAML_KEYS: dict[str, str] = {
    "model.name": "model_name",
    "model.model_type": "model_type",
    "model.tokenizer_name": "tokenizer_name",
    "model.trust_remote_code": "trust_remote_code",
    "model.torch_dtype": "torch_dtype",
    "model.attn_implementation": "attn_implementation",
    "sft.max_seq_length": "max_seq_length",
    "model.max_length": "max_seq_length",
    "sft.packing": "packing",
    "training.output_dir": "output_dir",
    "training.overwrite_output_dir": "overwrite_output_dir",
    "training.do_train": "do_train",
    "training.do_eval": "do_eval",
    "training.per_device_train_batch_size": "batch_size",
    "training.per_device_eval_batch_size": "eval_batch_size",
    "training.gradient_accumulation_steps": "gradient_accumulation_steps",
    "training.learning_rate": "learning_rate",
    "training.weight_decay": "weight_decay",
    "training.adam_beta1": "beta1",
    "training.adam_beta2": "beta2",
    "training.adam_epsilon": "eps",
    "training.max_grad_norm": "max_grad_norm",
    "training.optim": "optimizer",
    "training.lr_scheduler_type": "scheduler",
    "training.lr_scheduler_kwargs": "lr_scheduler_kwargs",
    "training.warmup_ratio": "warmup_ratio",
    "training.warmup_steps": "warmup_steps",
    "training.num_train_epochs": "num_train_epochs",
    "training.max_steps": "max_steps",
    "training.evaluation_strategy": "eval_strategy",
    "training.eval_strategy": "eval_strategy",
    "training.eval_steps": "eval_steps",
    "training.save_strategy": "save_strategy",
    "checkpointing.save_strategy": "save_strategy",
    "training.save_steps": "save_steps",
    "checkpointing.save_steps": "save_steps",
    "training.save_total_limit": "save_total_limit",
    "checkpointing.save_total_limit": "save_total_limit",
    "training.load_best_model_at_end": "load_best_model_at_end",
    "checkpointing.load_best_model_at_end": "load_best_model_at_end",
    "training.metric_for_best_model": "metric_for_best_model",
    "training.greater_is_better": "greater_is_better",
    "training.logging_strategy": "logging_strategy",
    "training.logging_steps": "logging_steps",
    "training.report_to": "report_to",
    "training.fp16": "fp16",
    "training.bf16": "bf16",
    "training.tf32": "tf32",
    "training.gradient_checkpointing": "gradient_checkpointing",
    "optimization.gradient_checkpointing": "gradient_checkpointing",
    "training.dataloader_pin_memory": "dataloader_pin_memory",
    "optimization.dataloader_pin_memory": "dataloader_pin_memory",
    "training.dataloader_num_workers": "dataloader_num_workers",
    "optimization.dataloader_num_workers": "dataloader_num_workers",
    "optimization.prefetch_factor": "dataloader_prefetch_factor",
    "training.seed": "seed",
    "environment.seed": "seed",
    "training.early_stopping_patience": "early_stopping_patience",
    "training.early_stopping_threshold": "early_stopping_threshold",
    "optimization.torch_compile": "torch_compile",
    "optimization.use_cache": "use_cache",
    "optimization.use_flash_attention": "use_flash_attention",
    "optimization.attention_dropout": "attention_dropout",
    "dpo.beta": "beta",
    "dpo.max_length": "max_length",
    "dpo.max_prompt_length": "max_prompt_length",
    "data.train_file": "train_file",
    "data.validation_file": "validation_file",
    "data.test_file": "test_file",
    "data.preprocessing_num_workers": "dataset_num_proc",
    "data.max_train_samples": "max_samples",
    "data.max_eval_samples": "max_eval_samples",
    "data.language": "language",
    "data.text_column": "text_column",
    "lora.enabled": "use_lora",
    "lora.r": "lora_r",
    "lora.alpha": "lora_alpha",
    "lora.dropout": "lora_dropout",
    "lora.target_modules": "lora_target_modules",
    "lora.bias": "lora_bias",
    "lora.task_type": "lora_task_type",
    "quantization.enabled": "use_quantization",
    "environment.device": "device",
    "environment.device_id": "device_id",
    "environment.mixed_precision": "mixed_precision",
    "environment.cuda_visible_devices": "cuda_visible_devices",
    "environment.torch_cuda_arch_list": "torch_cuda_arch_list",
    "environment.max_memory_mb": "max_memory_mb",
    "monitoring.wandb.enabled": "wandb_enabled",
    "monitoring.wandb.project": "wandb_project",
    "monitoring.wandb.entity": "wandb_entity",
    "monitoring.tensorboard.enabled": "tensorboard_enabled",
    "monitoring.tensorboard.log_dir": "logging_dir",
}
#: YAML sections whose keys are gathered into one value (``quantization:`` -> ``quantization_config``)
YAML_GROUPS = {"quantization": "quantization_config"}
#: YAML sections of training methods sftkit has no trainer for (their keys are listed as not carried)
YAML_METHOD_SECTIONS = ("kto", "ipo", "cpo", "orpo", "simpo", "ppo", "grpo")
#: sections of sampling/evaluation options (listed as not carried: sftkit takes them on the command line)
YAML_EVALUATION_SECTIONS = ("evaluation",)

#: training methods sftkit trains, by the words old config class names use
METHOD_WORDS = {
    "SFT": "sft",
    "DPO": "dpo",
    "KTO": "kto",
    "IPO": "ipo",
    "CPO": "cpo",
    "ORPO": "orpo",
    "SimPO": "simpo",
    "PPO": "ppo",
    "GRPO": "grpo",
}


def is_secret(name: str, value: object = None) -> bool:
    """A token, key or password (by its name, and a text value or none): never written to a file.
    ``add_eos_token: True`` is a switch, not a token."""
    lowered = name.lower()
    named = lowered in SECRETS or lowered.endswith(
        ("_token", "_api_key", "_password", "_secret")
    )
    return named and (value is None or isinstance(value, str))
