"""The typed run configuration: every setting sftkit understands, each documented once, next to it.

A :class:`RunConfig` is built by :func:`sftkit.resolve.resolve_config` from schema defaults, a preset chain,
a project file, ``--set key=value`` overrides and named flags. Every command reads this one object.
Field docstrings below are the documentation: ``sftkit config keys`` prints them (through :mod:`sftkit.keys`). Cross-field rules live in :meth:`RunConfig.problems` and name the key to change.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr

from sftkit.errors import Problem

TrainerType = Literal["sft", "dpo", "kto"]
#: weight dtypes a model can be loaded or exported in (``auto``: the checkpoint's own or the precision's)
Dtype = Literal["auto", "float32", "bfloat16", "float16"]
TrackingBackend = Literal["trackio", "tensorboard", "wandb", "none"]
Scheduler = Literal[
    "cosine",
    "linear",
    "constant",
    "constant_with_warmup",
    "cosine_with_restarts",
    "polynomial",
    "inverse_sqrt",
    "warmup_stable_decay",
    "cosine_with_min_lr",
    "cosine_warmup_with_min_lr",
    "reduce_lr_on_plateau",
    "greedy",
]
"""transformers' ``SchedulerType`` names (``lr_scheduler_type``)."""
#: schedulers that can end at ``train.min_lr`` instead of zero
MIN_LR_SCHEDULERS = ("cosine", "cosine_with_min_lr", "cosine_warmup_with_min_lr")
#: schedulers that end at a floor they must be given: ``train.min_lr`` or ``train.scheduler_kwargs.min_lr_rate``
FLOOR_SCHEDULERS = ("cosine_with_min_lr", "cosine_warmup_with_min_lr")
#: ``data.chat_template_kwargs`` that are arguments of ``apply_chat_template`` itself, which sftkit sets
CHAT_TEMPLATE_CALL_ARGS = (
    "messages", "conversation", "tools", "documents", "chat_template", "add_generation_prompt", "continue_final_message",
    "tokenize", "padding", "truncation", "max_length", "return_tensors", "return_dict", "return_assistant_tokens_mask",
    "tokenizer_kwargs",
)
#: ``ddp_backend`` values transformers accepts
DdpBackend = Literal["nccl", "gloo", "mpi", "xccl", "hccl", "cncl", "mccl"]
DataFormat = Literal[
    "auto",
    "alpaca",
    "instruction",
    "prompt_completion",
    "qa",
    "messages",
    "sharegpt",
    "text",
    "openhermes",
    "squad",
    "self_instruct",
    "dpo",
    "sharegpt_dpo",
    "hh",
    "chosen_rejected",
    "kto",
    "sharegpt_kto",
]


#: ``-``, which many tools read as stdin: not a data source sftkit takes (it reads its data more than once:
#: to detect the format, to fingerprint it for reuse, to prepare it)
STDIN = "-"
STDIN_MESSAGE = "'-' (stdin) cannot be used as data: sftkit reads its data more than once"
STDIN_HINT = "save the rows to a file and pass its path instead, e.g. `... > rows.jsonl`, then --data rows.jsonl"


class Section(BaseModel):
    """Base for config sections: unknown keys are errors, docstrings under fields are the docs."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True, validate_default=True, allow_inf_nan=False)


class ModelConfig(Section):
    name: str | None = None
    """Model to fine-tune: a Hub id (``HuggingFaceTB/SmolLM3-3B``), a local folder, a ``.gguf`` file, or ``builtin:tiny`` (a ~1M-parameter model sftkit builds offline). A run's ``model/`` folder starts a new run from what that run produced (a LoRA adapter is merged into its base model first)."""

    revision: str | None = None
    """Hub revision (branch, tag or commit) of the model."""

    tokenizer: str | None = None
    """Tokenizer to use when it differs from the model's own (Hub id or folder)."""

    trust_remote_code: bool = False
    """Allow model code from the Hub to run. Only set this for repositories you trust."""

    dtype: Dtype = "auto"
    """Weights dtype when loading: ``auto`` uses bf16/fp16 when that precision is on, else float32."""

    flash_attention: bool = False
    """Use FlashAttention 2 (``attn_implementation=flash_attention_2``); needs a CUDA GPU and the flash-attn package."""

    gradient_checkpointing: bool = False
    """Recompute activations in the backward pass to save memory (slower steps)."""

    max_seq_length: int = Field(2048, gt=0)
    """Longest tokenised training sequence for SFT; longer rows are truncated or dropped (``data.too_long``)."""

    chat_template: str | None = None
    """A Jinja chat template (string or path to a ``.jinja`` file) that replaces the tokenizer's own."""

    license: str | None = None
    """License stated in the fine-tuned model's card, as the Hub names licenses (``apache-2.0``, ``mit``, ``other``);
    default: the one the base model's card or config states, else ``other``."""


class DataConfig(Section):
    dataset: str | None = None
    """Training data: a local file (JSONL, JSON, CSV, Parquet, ``.txt`` for continued pre-training, optionally ``.gz``), a folder saved by ``datasets``, a Hub dataset id, ``builtin:tiny``, or an entry of a LLaMA-Factory registry, ``path/to/dataset_info.json#name`` (its file, formatting, columns and tags)."""

    config_name: str | None = None
    """Hub dataset configuration (subset) name."""

    train_file: str | None = None
    """Alternative to ``data.dataset`` for a local training file."""

    validation_file: str | None = None
    """A separate local validation file."""

    split: str = "train"
    """Split to train on (Hub datasets, saved folders, JSON objects of splits)."""

    validation_split: str | None = None
    """Split to evaluate on, when the source has one (e.g. ``validation`` or ``test``)."""

    validation_fraction: float = Field(0.0, ge=0.0, lt=1.0)
    """Fraction of training rows carved out (seeded by ``train.seed``) for validation when no validation data is given."""

    text_split: Literal["line", "paragraph"] = "line"
    """How a ``.txt`` file is cut into documents (raw text for continued pre-training): ``line``, one document per
    line, or ``paragraph``, one per block of lines separated by blank lines. Blank lines are never documents."""

    format: DataFormat = "auto"
    """Row format; ``auto`` detects it from the columns. Force one when detection picks wrong."""

    field_map: dict[str, str] = Field(default_factory=dict)
    """Rename source columns before format detection, e.g. ``{question_text: instruction, answer_text: output}``."""

    template: str = "auto"
    """How rows become text: ``auto`` (the tokenizer's chat template, else ``chatml``), ``chat``, ``chatml``, ``alpaca``, ``arabic``, or a custom string with ``{instruction}``, ``{input}`` and ``{response}`` (without ``{response}``, the response follows the string)."""

    response_marker: str | None = None
    """Text that starts the response in a custom template; everything up to and including it is masked from the loss."""

    system_prompt: str | None = None
    """A system message added to every conversation that has none."""

    chat_template_kwargs: dict[str, Any] = Field(default_factory=dict)
    """Variables the chat template is rendered with, e.g. ``{enable_thinking: false}`` (SmolLM3's and Qwen3's no-think
    mode) or ``{reasoning_effort: low}`` (gpt-oss). Used wherever sftkit renders the chat template (``prepare``,
    ``eval``, ``generate``) and kept as defaults in the saved model's template. Chat templates only."""

    completion_only_loss: bool = True
    """Train only on the response tokens (and EOS), masking the prompt. Set false to train on everything."""

    packing: bool = False
    """Pack several rows into each sequence of ``model.max_seq_length`` tokens; attention never crosses row boundaries."""

    drop_duplicates: bool = True
    """Drop exact duplicate rows (counted in the manifest)."""

    arabic_normalize: bool = False
    """Normalise Arabic text: strip diacritics and tatweel, unify alef, yaa and taa-marbuta forms."""

    too_long: Literal["truncate", "drop"] = "truncate"
    """What to do with rows longer than the maximum length: truncate them or drop them (both counted)."""

    skip_invalid: bool = False
    """Skip rows that cannot be read or formatted (listed with the error in the prepared folder's ``dropped.jsonl``, reason ``invalid``) instead of failing."""

    max_rows: int | None = Field(None, gt=0)
    """Use at most this many training rows (after cleaning), e.g. for a quick trial run; the rows left over are counted as ``capped`` in the manifest, not listed as dropped."""

    num_proc: int | None = Field(None, gt=0)
    """Processes for tokenisation (default: one)."""

    prepared_dir: str | None = None
    """Where the prepared dataset is written; default ``<train.output_dir>/prepared``."""

    formatting_func: str | None = None
    """A custom row formatter ``module:function`` or ``path/to/file.py:function`` (row -> text or messages) used instead of the built-in formats."""


class TrainConfig(Section):
    output_dir: str = "runs/sftkit"
    """Run folder for checkpoints, logs, metrics and the final model."""

    batch_size: int = Field(8, gt=0)
    """Per-device training batch size."""

    eval_batch_size: int | None = Field(None, gt=0)
    """Per-device evaluation batch size (default: ``train.batch_size``)."""

    gradient_accumulation_steps: int = Field(1, gt=0)
    """Micro-batches accumulated per optimiser step."""

    learning_rate: float = Field(2e-5, gt=0)
    """Peak learning rate."""

    weight_decay: float = Field(0.0, ge=0)
    """AdamW weight decay."""

    warmup_steps: int = Field(0, ge=0)
    """Linear warm-up steps. Use this or ``train.warmup_ratio``, not both."""

    warmup_ratio: float = Field(0.0, ge=0.0, lt=1.0)
    """Warm-up as a fraction of all training steps. Use this or ``train.warmup_steps``, not both."""

    max_iters: int | None = Field(None, gt=0)
    """Total optimiser steps. When set it overrides ``train.num_train_epochs``. Raised above the steps a finished run trained, ``--resume`` trains that run further."""

    num_train_epochs: float = Field(1.0, gt=0)
    """Passes over the training data (used when ``train.max_iters`` is not set)."""

    save_steps: int = Field(500, gt=0)
    """Save a checkpoint every N steps."""

    eval_steps: int = Field(500, gt=0)
    """Evaluate on the validation split every N steps (when there is one)."""

    logging_steps: int = Field(10, gt=0)
    """Log loss, learning rate and grad norm every N steps."""

    save_total_limit: int | None = Field(None, gt=0)
    """Keep at most this many checkpoints (oldest deleted first; the best is kept when selecting it)."""

    optimizer: str = "adamw_torch_fused"
    """Optimiser name as transformers knows it (``adamw_torch_fused``, the default as in transformers: one kernel
    for all parameters; ``adamw_torch``, ``paged_adamw_8bit``, ...)."""

    beta1: float = Field(0.9, gt=0, lt=1)
    """Adam beta1."""

    beta2: float = Field(0.999, gt=0, lt=1)
    """Adam beta2."""

    eps: float = Field(1e-8, gt=0)
    """Adam epsilon."""

    scheduler: Scheduler = "cosine"
    """Learning-rate schedule after warm-up, as transformers names it (``cosine``, ``linear``, ``cosine_with_min_lr``, ...)."""

    scheduler_kwargs: dict[str, Any] = Field(default_factory=dict)
    """Extra arguments of the schedule as transformers takes them (``lr_scheduler_kwargs``): ``num_cycles``
    (``cosine_with_restarts``), ``lr_end`` and ``power`` (``polynomial``), ``min_lr_rate`` (``cosine_with_min_lr``:
    the floor as a fraction of the learning rate), ``num_decay_steps`` (``warmup_stable_decay``), ...
    ``sftkit train --dry-run`` builds the schedule with them."""

    min_lr: float = Field(0.0, ge=0)
    """Learning rate the cosine schedules end at (0 decays to zero)."""

    fp16: bool = False
    """Mixed precision in float16 (CUDA). Not together with ``train.bf16``."""

    bf16: bool = False
    """Mixed precision in bfloat16 (Ampere or newer GPUs, recent CPUs). Not together with ``train.fp16``."""

    precision: Literal["auto", "bf16", "fp16", "fp32"] = "auto"
    """Training precision. ``auto`` (default): bf16 on a CUDA GPU that supports it, fp16 on an older GPU, float32 on
    the CPU; the choice and its reason are recorded in the run's environment.json and shown by ``--dry-run``.
    ``train.bf16`` or ``train.fp16`` set to true take precedence (then leave this at ``auto`` or the same)."""

    kernels: Literal["auto", "liger", "none"] = "auto"
    """Fused training kernels. ``liger``: Liger's kernels (RMSNorm, RoPE, SwiGLU; needs a CUDA GPU and the
    ``liger-kernel`` package); ``auto`` (default): Liger on a CUDA GPU when the package is installed and has kernels
    for the model's architecture, else none (the reason is recorded in environment.json); ``none``: the model's own."""

    seed: int = 42
    """Random seed for initialisation, shuffling, dropout and the validation split."""

    max_grad_norm: float = Field(1.0, ge=0)
    """Gradient clipping norm (0 disables clipping)."""

    group_by_length: bool = False
    """Batch rows of similar length together to waste less padding (ignored with ``data.packing``: an error)."""

    padding_free: bool | None = None
    """SFT batches without padding: the rows of a batch concatenated, positions restarting at each row, so no token
    attends across rows and no padding is computed. Unset (default): on wherever it is exact for the model,
    which is checked at the start of the run (otherwise padded, with a note); ``false``: pad every batch to its
    longest row. Packed data (``data.packing``) is padding-free already."""

    threads: int | None = Field(None, ge=1)
    """CPU threads for torch per process. Unset (default): chosen from the cores this process may use, the
    processes per node and the machine's current load (a busy shared machine gets fewer); the choice and its
    reason are recorded in the run's environment.json. ``OMP_NUM_THREADS``, when set, is used as given."""

    dataloader_num_workers: int = Field(0, ge=0)
    """Worker processes loading batches."""

    load_best_model_at_end: bool = False
    """Keep the checkpoint with the best ``train.metric_for_best_model`` as the final model (needs validation data)."""

    metric_for_best_model: str = "eval_loss"
    """Metric for best-model selection; lower is better for losses, higher for anything else."""

    greater_is_better: bool | None = None
    """Whether a higher ``train.metric_for_best_model`` is better. Unset: lower is better for a metric with ``loss``
    in its name, higher for anything else."""

    use_cpu: bool = False
    """Train on the CPU even when a GPU is present."""

    fsdp: str | None = None
    """Fully sharded data parallel options as transformers takes them (e.g. ``full_shard auto_wrap``); multi-GPU runs."""

    deepspeed: str | None = None
    """Path to a DeepSpeed JSON config; multi-GPU runs."""

    distributed: Literal["fsdp", "zero2", "zero3"] | None = None
    """A named sharding setup shipped with sftkit (``sftkit/distributed/NAME.json``): ``fsdp`` (FSDP2, full
    sharding, GPUs or CPU processes), ``zero2`` / ``zero3`` (DeepSpeed ZeRO, GPUs, needs ``pip install deepspeed``).
    ``--dry-run`` shows what it expands to. Instead of ``train.fsdp`` / ``train.deepspeed``."""

    ddp_backend: DdpBackend | None = None
    """Process-group backend of a multi-process run (``--nproc``). Unset: ``nccl`` on GPUs, ``gloo`` on CPUs."""

    ddp_find_unused_parameters: bool | None = None
    """Let DDP look for parameters that got no gradient in a step (slower; needed only by models that skip some).
    Unset: transformers' choice (off with gradient checkpointing)."""

    tf32: bool | None = None
    """TensorFloat-32 matrix multiplications (Ampere or newer GPUs). Unset: torch's default."""


class LoraConfig(Section):
    enabled: bool = False
    """Train LoRA adapters instead of all weights."""

    r: int = Field(16, gt=0)
    """LoRA rank."""

    alpha: int = Field(32, gt=0)
    """LoRA scaling numerator (scale = alpha / r)."""

    dropout: float = Field(0.05, ge=0, lt=1)
    """Dropout on the LoRA input."""

    target_modules: list[str] | Literal["all-linear"] = "all-linear"
    """Module names to adapt (e.g. ``[q_proj, v_proj]``) or ``all-linear``."""

    load_in_4bit: bool = False
    """QLoRA: load the base model in 4-bit through bitsandbytes."""

    load_in_8bit: bool = False
    """Load the base model in 8-bit through bitsandbytes."""

    quant_type: Literal["nf4", "fp4"] = "nf4"
    """4-bit quantisation data type."""

    double_quant: bool = True
    """Quantise the 4-bit quantisation constants too (saves ~0.4 bit per weight)."""


class DpoConfig(Section):
    beta: float = 0.1
    """Strength of the pull towards the reference model (higher stays closer)."""

    loss_type: str = "sigmoid"
    """DPO loss: ``sigmoid`` (original DPO), ``ipo``, ``hinge``, ``robust``, ``apo_zero``, ... as TRL names them."""

    max_prompt_length: int = Field(512, gt=0)
    """Prompts are truncated (keeping their end) to this many tokens."""

    max_length: int = Field(1024, gt=0)
    """Longest prompt + response in tokens."""

    ref_model: str | None = None
    """A separate reference model; default: the starting model itself (with LoRA: the base with adapters disabled)."""

    label_smoothing: float = Field(0.0, ge=0, lt=0.5)
    """Probability that a preference label is flipped (robust DPO)."""


class KtoConfig(Section):
    beta: float = 0.1
    """Strength of the pull towards the reference model (higher stays closer)."""

    loss_type: Literal["kto", "apo_zero_unpaired"] = "kto"
    """KTO loss as TRL names it: ``kto`` (the KTO paper, with its KL reference point: needs ``train.batch_size`` of 2
    or more and rows read in a fixed order) or ``apo_zero_unpaired`` (unpaired APO-zero, no KL term)."""

    desirable_weight: float = Field(1.0, gt=0)
    """Weight of the loss on rows labelled desirable (``label: true``). With unequal counts, keep
    ``desirable_weight x desirable rows / (undesirable_weight x undesirable rows)`` between 1 and 4/3 (the KTO paper)."""

    undesirable_weight: float = Field(1.0, gt=0)
    """Weight of the loss on rows labelled undesirable (``label: false``)."""

    max_prompt_length: int = Field(512, gt=0)
    """Prompts are truncated (keeping their end) to this many tokens."""

    max_length: int = Field(1024, gt=0)
    """Longest prompt + response in tokens."""

    ref_model: str | None = None
    """A separate reference model; default: the starting model itself (with LoRA: the base with adapters disabled)."""


class TrackingConfig(Section):
    enabled: bool = True
    """Log metrics to an experiment tracker (besides the run folder's ``metrics.jsonl``)."""

    backend: TrackingBackend = "trackio"
    """Tracker: ``trackio`` (local-first dashboard), ``tensorboard``, ``wandb`` or ``none``."""

    project: str = "sftkit"
    """Project name in the tracker."""

    experiment_name: str | None = None
    """Run name in the tracker (default: the run folder's name)."""

    trackio_space: str | None = None
    """A Hugging Face Space id to sync trackio runs to (``user/space``)."""

    trackio_url: str | None = None
    """URL of a self-hosted trackio server."""


class RunConfig(Section):
    trainer_type: TrainerType = "sft"
    """``sft`` (supervised fine-tuning), ``dpo`` (direct preference optimisation on chosen/rejected pairs) or ``kto``
    (Kahneman-Tversky optimisation on answers labelled desirable or undesirable)."""

    model: ModelConfig = Field(default_factory=ModelConfig)
    data: DataConfig = Field(default_factory=DataConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    lora: LoraConfig = Field(default_factory=LoraConfig)
    dpo: DpoConfig = Field(default_factory=DpoConfig)
    kto: KtoConfig = Field(default_factory=KtoConfig)
    tracking: TrackingConfig = Field(default_factory=TrackingConfig)

    _formatting_func_trusted: bool = PrivateAttr(default=False)

    def trusting_formatting_func(self, trust: bool = True) -> RunConfig:
        """A copy whose ``data.formatting_func`` may be imported and run: what ``--trust-formatting-func`` (or
        ``trust_formatting_func=True``) gives. Not a config key: never read from a file nor saved, so a config,
        a run folder's included, cannot allow its own code."""
        copy = self.model_copy()
        copy._formatting_func_trusted = trust
        return copy

    @property
    def formatting_func_trusted(self) -> bool:
        """Whether the user allowed ``data.formatting_func`` to run (see :meth:`trusting_formatting_func`)."""
        return self._formatting_func_trusted

    def problems(self, complete: bool = True) -> list[Problem]:
        """Cross-field rules. Each problem names the key(s) to change.

        ``complete=False`` checks a partial config (a preset that leaves the model or the data to the user):
        only "no model" and "no data" are not problems then.
        """
        out: list[Problem] = []
        t, lo, d = self.train, self.lora, self.dpo
        if t.fp16 and t.bf16:
            out.append(Problem("fp16 and bf16 are both on", key="train.fp16, train.bf16", hint="set one of them to false"))
        for flag in ("bf16", "fp16"):
            if getattr(t, flag) and t.precision not in ("auto", flag):
                out.append(
                    Problem(
                        f"train.{flag} is on but train.precision is {t.precision}",
                        key=f"train.precision, train.{flag}",
                        hint=f"set train.precision=auto (or {flag}) or train.{flag}=false",
                    )
                )
        if t.warmup_steps and t.warmup_ratio:
            out.append(
                Problem(
                    "warm-up is given twice",
                    key="train.warmup_steps, train.warmup_ratio",
                    hint="set train.warmup_steps=0 or train.warmup_ratio=0",
                )
            )
        if t.min_lr and t.scheduler not in MIN_LR_SCHEDULERS:
            out.append(
                Problem(
                    f"min_lr is only honoured by the cosine schedules ({', '.join(MIN_LR_SCHEDULERS)}), not {t.scheduler!r}",
                    key="train.min_lr",
                    hint="set train.scheduler=cosine or train.min_lr=0",
                )
            )
        if t.min_lr >= t.learning_rate:
            out.append(
                Problem(
                    f"min_lr ({t.min_lr:g}) must be below learning_rate ({t.learning_rate:g})",
                    key="train.min_lr",
                    hint="lower train.min_lr",
                )
            )
        out += self._schedule_problems()
        if t.group_by_length and self.data.packing:
            out.append(
                Problem(
                    "group_by_length has no effect on packed data",
                    key="train.group_by_length",
                    hint="set train.group_by_length=false or data.packing=false",
                )
            )
        if lo.load_in_4bit and lo.load_in_8bit:
            out.append(
                Problem("4-bit and 8-bit loading are both on", key="lora.load_in_4bit, lora.load_in_8bit", hint="pick one")
            )
        if (lo.load_in_4bit or lo.load_in_8bit) and not lo.enabled:
            out.append(
                Problem(
                    "a quantised base model can only be fine-tuned through LoRA adapters",
                    key="lora.enabled",
                    hint="set lora.enabled=true (QLoRA) or turn quantisation off",
                )
            )
        if self.trainer_type == "dpo":
            if d.beta <= 0:
                out.append(Problem(f"beta must be > 0, got {d.beta:g}", key="dpo.beta", hint="0.1 is the usual value"))
            if d.max_length > self.model.max_seq_length:
                out.append(
                    Problem(
                        f"dpo.max_length ({d.max_length}) exceeds model.max_seq_length ({self.model.max_seq_length})",
                        key="dpo.max_length",
                        hint="lower dpo.max_length or raise model.max_seq_length",
                    )
                )
            if d.max_prompt_length >= d.max_length:
                out.append(
                    Problem(
                        f"max_prompt_length ({d.max_prompt_length}) leaves no room for a response in max_length ({d.max_length})",
                        key="dpo.max_prompt_length",
                        hint="lower dpo.max_prompt_length",
                    )
                )
        if self.trainer_type == "kto":
            out += self._kto_problems()
        if not self.model.name and complete:
            out.append(Problem("no model is set", key="model.name", hint="set model.name to a Hub id or a local folder, or start from a preset"))
        if self.data.dataset and self.data.train_file:
            out.append(
                Problem("both data.dataset and data.train_file are set", key="data.train_file", hint="keep one of them")
            )
        elif not (self.data.dataset or self.data.train_file) and complete:
            out.append(
                Problem("no training data is set", key="data.dataset", hint="set data.dataset to a file, a folder, a Hub dataset id or builtin:tiny")
            )
        for key, value in (("data.dataset", self.data.dataset), ("data.train_file", self.data.train_file), ("data.validation_file", self.data.validation_file)):
            if value == STDIN:
                out.append(Problem(STDIN_MESSAGE, key=key, hint=STDIN_HINT))
        validation = [k for k, v in self.validation_sources().items() if v]
        if len(validation) > 1:
            out.append(
                Problem(
                    f"validation data is given {len(validation)} ways ({', '.join(validation)})",
                    key=", ".join(validation),
                    hint="keep one of data.validation_file, data.validation_split and data.validation_fraction",
                )
            )
        if t.load_best_model_at_end and not self.has_validation:
            out.append(
                Problem(
                    "best-model selection needs validation data",
                    key="train.load_best_model_at_end",
                    hint="set data.validation_fraction (e.g. 0.05), data.validation_file or data.validation_split",
                )
            )
        return out

    def _kto_problems(self) -> list[Problem]:
        """The rules of ``trainer_type: kto`` (TRL's KTOTrainer would refuse these or train on a wrong KL term)."""
        out: list[Problem] = []
        k, t = self.kto, self.train
        if k.beta <= 0:
            out.append(Problem(f"beta must be > 0, got {k.beta:g}", key="kto.beta", hint="0.1 is the usual value"))
        if k.max_length > self.model.max_seq_length:
            out.append(
                Problem(
                    f"kto.max_length ({k.max_length}) exceeds model.max_seq_length ({self.model.max_seq_length})",
                    key="kto.max_length",
                    hint="lower kto.max_length or raise model.max_seq_length",
                )
            )
        if k.max_prompt_length >= k.max_length:
            out.append(
                Problem(
                    f"max_prompt_length ({k.max_prompt_length}) leaves no room for a response in max_length ({k.max_length})",
                    key="kto.max_prompt_length",
                    hint="lower kto.max_prompt_length",
                )
            )
        if k.loss_type == "kto" and t.batch_size < 2:
            out.append(
                Problem(
                    f"KTO's KL term is estimated from the other rows of a batch: train.batch_size must be 2 or more, got {t.batch_size}",
                    key="train.batch_size",
                    hint="set train.batch_size=2 or more (lower train.gradient_accumulation_steps to keep the effective batch), "
                    "or kto.loss_type=apo_zero_unpaired, which has no KL term",
                )
            )
        if k.loss_type == "kto" and t.group_by_length:
            out.append(
                Problem(
                    "KTO's KL term pairs each row with its neighbours in a fixed-order batch; grouping by length would break that",
                    key="train.group_by_length",
                    hint="set train.group_by_length=false (or kto.loss_type=apo_zero_unpaired)",
                )
            )
        return out

    def _schedule_problems(self) -> list[Problem]:
        """The learning-rate schedule's floor and the chat template's variables."""
        out: list[Problem] = []
        t, kwargs = self.train, self.train.scheduler_kwargs
        if "min_lr" in kwargs:
            out.append(Problem("the schedule's floor is train.min_lr", key="train.scheduler_kwargs", hint="move min_lr out of train.scheduler_kwargs into train.min_lr"))
        if t.min_lr and kwargs.get("min_lr_rate") is not None:
            out.append(
                Problem(
                    "the schedule's floor is given twice: train.min_lr and train.scheduler_kwargs.min_lr_rate",
                    key="train.min_lr, train.scheduler_kwargs",
                    hint="keep one: train.min_lr=0, or remove min_lr_rate",
                )
            )
        if t.scheduler in FLOOR_SCHEDULERS and not t.min_lr and kwargs.get("min_lr_rate") is None and "min_lr" not in kwargs:
            out.append(
                Problem(
                    f"the {t.scheduler} schedule needs the learning rate it ends at",
                    key="train.min_lr",
                    hint="set train.min_lr (e.g. 1e-6) or train.scheduler_kwargs={min_lr_rate: 0.1}",
                )
            )
        if t.scheduler == "reduce_lr_on_plateau" and not self.has_validation:
            out.append(
                Problem(
                    "reduce_lr_on_plateau lowers the learning rate when the validation loss stops improving: it needs validation data",
                    key="train.scheduler",
                    hint="set data.validation_fraction (e.g. 0.05), data.validation_file or data.validation_split",
                )
            )
        reserved = sorted(set(self.data.chat_template_kwargs) & set(CHAT_TEMPLATE_CALL_ARGS))
        if reserved:
            out.append(
                Problem(
                    f"{', '.join(reserved)} {'is an argument' if len(reserved) == 1 else 'are arguments'} of apply_chat_template "
                    "that sftkit sets itself, not a template variable",
                    key="data.chat_template_kwargs",
                    hint=f"remove {', '.join(reserved)} from data.chat_template_kwargs",
                )
            )
        return out

    def validation_sources(self) -> dict[str, Any]:
        """The three ways validation data can be given, by key (at most one may be set)."""
        d = self.data
        return {"data.validation_file": d.validation_file, "data.validation_split": d.validation_split, "data.validation_fraction": d.validation_fraction}

    @property
    def has_validation(self) -> bool:
        return any(self.validation_sources().values())

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")
