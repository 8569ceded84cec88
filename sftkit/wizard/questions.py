"""The wizard's questions, as data: what each sets, its choices, its default (mostly the preset's) and its notes.

An answer's key is also its name for the caller (``init_project(given={"learning_rate": 3e-4})``); the CLI
maps each key to the flag that gives it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, get_args

from sftkit.config import DataFormat, RunConfig, TrackingBackend, TrainerType
from sftkit.names import BUILTIN_TINY, LORA_8BIT, METHOD_HELP, METHODS, QLORA, method_of
from sftkit.wizard.environment import data_summary, hf_token_status, wandb_key_status
from sftkit.wizard.parse import (
    at_least,
    mapping,
    optional,
    parse_dataset,
    parse_model,
    parse_space,
    positive,
    required_text,
)

if TYPE_CHECKING:
    from sftkit.wizard.state import Wizard


@dataclass(frozen=True)
class Option:
    """One choice of a select question."""

    value: str
    title: str


@dataclass(frozen=True)
class Question:
    key: str
    """The answer this question sets (also its name in errors and in the summary's 'Change an answer' list)."""
    label: str
    """Short name shown in the summary table."""
    message: str
    """The question as asked."""
    default: Callable[["Wizard"], Any]
    options: Callable[["Wizard"], list[Option]] | None = None
    """Choices for a select question; None makes it a text question."""
    parse: Callable[[str], Any] = str
    """Typed text -> value; a ValueError's message is shown and the question asked again."""
    when: Callable[["Wizard"], bool] = lambda w: True
    note: Callable[["Wizard", Any], str | None] | None = None
    """A line shown after answering (e.g. the row count of a local data file)."""

    @property
    def is_select(self) -> bool:
        return self.options is not None


# -- choices ----------------------------------------------------------------------------------------

DEFAULT_TRAINER_TYPE: str = RunConfig.model_fields["trainer_type"].default
TRAINER_TYPE_HELP = {
    "sft": "SFT: supervised fine-tuning on examples",
    "dpo": "DPO: preference tuning on chosen/rejected pairs",
    "kto": "KTO: preference tuning on answers labelled desirable or undesirable",
}
TRAINER_TYPES: dict[str, str] = {t: TRAINER_TYPE_HELP.get(t, t) for t in get_args(TrainerType)}
METHOD_CHOICES: dict[str, str] = {m: f"{m}: {METHOD_HELP[m]}" for m in METHODS}
PRECISIONS = {
    "bf16": "bf16 mixed precision (Ampere or newer GPUs)",
    "fp16": "fp16 mixed precision (older CUDA GPUs)",
    "fp32": "fp32, no mixed precision (CPU, or when in doubt)",
}
#: trackio synced to a Hugging Face Space: tracking.backend trackio plus tracking.trackio_space
TRACKIO_SPACE = "trackio-space"
TRACKING_HELP = {
    "trackio": "trackio, local dashboard (`trackio show`)",
    TRACKIO_SPACE: "trackio, synced to a Hugging Face Space",
    "tensorboard": "TensorBoard, logs in the run folder",
    "wandb": "Weights & Biases",
    "none": "none (metrics.jsonl in the run folder only)",
}


def _tracking_choices() -> dict[str, str]:
    """The schema's tracking backends, with trackio synced to a Space right after trackio."""
    out: dict[str, str] = {}
    for backend in get_args(TrackingBackend):
        out[backend] = TRACKING_HELP.get(backend, backend)
        if backend == "trackio":
            out[TRACKIO_SPACE] = TRACKING_HELP[TRACKIO_SPACE]
    return out


TRACKING = _tracking_choices()
#: the preset a trainer type starts from when none is given
PREFERRED_PRESET = {"sft": "smollm3", "dpo": "smollm3-dpo", "kto": "smollm3"}
#: select answers -> their choices (checked when given rather than picked)
CHOICES = {"trainer_type": TRAINER_TYPES, "method": METHOD_CHOICES, "precision": PRECISIONS, "tracking": TRACKING}


def _options(choices: dict[str, str]) -> Callable[["Wizard"], list[Option]]:
    return lambda w: [Option(k, v) for k, v in choices.items()]


# -- defaults ---------------------------------------------------------------------------------------


def _preset_options(w: "Wizard") -> list[Option]:
    from sftkit.presets import describe

    trainer_type = w.answers.get("trainer_type", DEFAULT_TRAINER_TYPE)
    rows = [r for r in (describe(p) for p in w.presets().values()) if r["error"] is None]  # a broken preset is not offered
    rows.sort(key=lambda r: r["trainer_type"] != trainer_type)  # the chosen type's presets first, stable otherwise
    width = max((len(r["name"]) for r in rows), default=0)
    return [Option(r["name"], f"{r['name']:<{width}}  {r['trainer_type']}  {r['description']}") for r in rows]


def default_preset(w: "Wizard") -> str:
    """The preferred preset for the chosen trainer type, else the first of that type, else the first.

    On a machine without a CUDA GPU, when no model is given, a preset that trains on the CPU
    (:func:`cpu_preset`) instead: the preferred ones are set up for a GPU (SmolLM3-3B, fp16, flash attention)."""
    from sftkit.presets import describe

    names = list(w.presets())
    trainer_type = w.answers.get("trainer_type", DEFAULT_TRAINER_TYPE)
    if not _has_cuda(w) and w.answers.get("model") in (None, BUILTIN_TINY):
        cpu = cpu_preset(w, trainer_type)
        if cpu is not None:
            return cpu
    preferred = PREFERRED_PRESET.get(trainer_type)
    if preferred in names:
        return preferred
    for p in w.presets().values():
        if describe(p)["trainer_type"] == trainer_type:
            return p.name
    return names[0]


def _has_cuda(w: "Wizard") -> bool:
    """Whether the detected hardware is a CUDA GPU (the detection says fp32 only when there is none)."""
    return w.hardware()[0] != "fp32"


def cpu_preset(w: "Wizard", trainer_type: str) -> str | None:
    """A preset that trains on the CPU (``train.use_cpu``), of ``trainer_type`` when there is one; None if none."""
    from sftkit.presets import describe

    on_cpu = [name for name, p in w.presets().items() if describe(p)["error"] is None and w.base(name).train.use_cpu]
    same_type = [name for name in on_cpu if w.base(name).trainer_type == trainer_type]
    return (same_type or on_cpu or [None])[0]


def _default_method(w: "Wizard") -> str:
    lo = w.base().lora
    return method_of(lo.enabled, lo.load_in_4bit, lo.load_in_8bit)


def _default_tracking(w: "Wizard") -> str:
    tr = w.base().tracking
    if not tr.enabled or tr.backend == "none":
        return "none"
    if tr.backend == "trackio" and tr.trackio_space:
        return TRACKIO_SPACE
    return tr.backend


def _default_precision(w: "Wizard") -> str:
    if w.base().train.use_cpu:
        return "fp32"
    return w.hardware()[0]


# -- notes ------------------------------------------------------------------------------------------


def _data_note(w: "Wizard", value: Any) -> str | None:
    summary = data_summary(value) if isinstance(value, str) else None
    return f"{value}: {summary}" if summary else None


def _preset_note(w: "Wizard", value: Any) -> str | None:
    """Why the preset is the default one on a machine without a CUDA GPU (or what a GPU preset there becomes).
    The hardware is looked at (torch imported) only for a preset chosen for it or one that needs a GPU."""
    base = w.base(value)
    chosen_for_the_cpu = "preset" in w.defaulted and base.train.use_cpu
    needs = [key for key, on in (("train.fp16", base.train.fp16), ("model.flash_attention", base.model.flash_attention)) if on]
    if not (chosen_for_the_cpu or (needs and not base.train.use_cpu)) or _has_cuda(w):
        return None
    found = w.hardware()[1]
    if chosen_for_the_cpu:
        return f"preset {value}: {found}, so sftkit starts from a preset that trains on the CPU ({w.name('preset')} NAME picks another)"
    return f"preset {value} is set up for a CUDA GPU ({', '.join(needs)}); {found}: the precision defaults to fp32, without flash attention"


def _method_note(w: "Wizard", value: Any) -> str | None:
    if value in (QLORA, LORA_8BIT) and w.hardware()[0] == "fp32":
        return f"{value} needs a CUDA GPU with bitsandbytes; this machine has none (fine if you train elsewhere)"
    return None


def _precision_note(w: "Wizard", value: Any) -> str | None:
    if w.base().train.use_cpu:
        return None if value == "fp32" else "the preset trains on the CPU (train.use_cpu): mixed precision may be slow there"
    detected, found = w.hardware()
    if value != detected:
        return f"detected: {found} (suggests {detected})"
    return None


def _tracking_note(w: "Wizard", value: Any) -> str | None:
    if value == "wandb":
        return f"W&B key: {wandb_key_status()}"
    if value == TRACKIO_SPACE:
        return f"HF token (needed to sync to a Space): {hf_token_status()}"
    return None


# -- the questions, in the order they are asked -----------------------------------------------------

QUESTIONS: tuple[Question, ...] = (
    Question(
        "trainer_type", "trainer type", "Trainer type: SFT, DPO or KTO?",
        default=lambda w: w.preset_trainer_type() or DEFAULT_TRAINER_TYPE, options=_options(TRAINER_TYPES),
    ),
    Question("preset", "preset", "Start from which preset?", default=default_preset, options=_preset_options, note=_preset_note),
    Question(
        "model", "model", "Model (Hub id org/name or local folder)?",
        default=lambda w: w.base().model.name, parse=parse_model,
    ),
    Question(
        "dataset", "data", "Training data (file, folder or Hub dataset id)?",
        default=lambda w: w.base().data.dataset or w.base().data.train_file, parse=parse_dataset, note=_data_note,
    ),
    Question(
        "method", "method", "Training method: full fine-tuning, LoRA or QLoRA?",
        default=_default_method, options=_options(METHOD_CHOICES), note=_method_note,
    ),
    Question(
        "learning_rate", "learning rate", "Learning rate?",
        default=lambda w: w.base().train.learning_rate, parse=positive(float, "the learning rate", "2e-5"),
    ),
    Question(
        "batch_size", "batch size", "Batch size per device?",
        default=lambda w: w.base().train.batch_size, parse=positive(int, "the batch size", "8"),
    ),
    Question(
        "gradient_accumulation_steps", "grad accumulation", "Gradient accumulation steps?",
        default=lambda w: w.base().train.gradient_accumulation_steps, parse=positive(int, "gradient accumulation", "4"),
    ),
    Question(
        "max_iters", "max steps", "Training steps (leave empty to train by epochs)?",
        default=lambda w: w.base().train.max_iters, parse=optional(positive(int, "the number of steps", "1000")),
    ),
    Question(
        "num_train_epochs", "epochs", "Epochs?",
        default=lambda w: w.base().train.num_train_epochs, parse=positive(float, "the number of epochs", "3"),
        when=lambda w: w.answers.get("max_iters") is None,
    ),
    Question(
        "max_seq_length", "max length", "Longest sequence in tokens?",
        default=lambda w: w.base().model.max_seq_length, parse=positive(int, "the sequence length", "2048"),
    ),
    Question(
        "precision", "precision", "Precision?",
        default=_default_precision, options=_options(PRECISIONS), note=_precision_note,
    ),
    Question(
        "tracking", "tracking", "Experiment tracking?",
        default=_default_tracking, options=_options(TRACKING), note=_tracking_note,
    ),
    Question(
        "trackio_space", "trackio Space", "Hugging Face Space to sync to (user/space)?",
        default=lambda w: w.base().tracking.trackio_space, parse=parse_space,
        when=lambda w: w.answers.get("tracking") == TRACKIO_SPACE,
    ),
    Question(
        "output_dir", "output folder", "Run folder (checkpoints, logs, final model)?",
        default=lambda w: w.base().train.output_dir, parse=required_text("the run folder"),
    ),
    Question(
        "experiment_name", "experiment name", "Experiment name (empty: the run folder's name)?",
        default=lambda w: w.base().tracking.experiment_name, parse=optional(required_text("the experiment name")),
    ),
)
BY_KEY = {q.key: q for q in QUESTIONS}


# -- more settings -----------------------------------------------------------------------------------
# Not asked in the usual flow, so that the wizard stays short: offered under "Change an answer" in the summary,
# and given with `sftkit init --set KEY=VALUE`. Each sets the config key it is named by; its default is the
# preset's value, and only a value that differs from it is written.


def _preset_value(key: str) -> Callable[["Wizard"], Any]:
    section, _, name = key.partition(".")
    return lambda w: getattr(getattr(w.base(), section), name)


def _uses_lora(w: "Wizard") -> bool:
    return (w.answers.get("method") or _default_method(w)) != "full"


FORMATS: dict[str, str] = {f: f for f in get_args(DataFormat)}

MORE: tuple[Question, ...] = (
    Question("data.split", "data split", "Split of the data to train on?", default=_preset_value("data.split"), parse=required_text("the split")),
    Question("data.format", "data format", "Row format of the data (auto: detected from its columns)?", default=_preset_value("data.format"), options=_options(FORMATS)),
    Question(
        "data.field_map", "column renames", "Rename columns before the format is detected (e.g. question=instruction, answer=output)?",
        default=_preset_value("data.field_map"), parse=mapping("column renames", "question=instruction, answer=output", text_values=True),
    ),
    Question(
        "data.system_prompt", "system prompt", "System message for conversations that have none (empty: none)?",
        default=_preset_value("data.system_prompt"), parse=optional(required_text("the system message")),
    ),
    Question(
        "data.chat_template_kwargs", "template variables", "Chat template variables (e.g. enable_thinking=false, or reasoning_effort=low for gpt-oss)?",
        default=_preset_value("data.chat_template_kwargs"), parse=mapping("template variables", "enable_thinking=false"),
    ),
    Question(
        "data.max_rows", "max rows", "Train on at most this many rows (empty: all)?",
        default=_preset_value("data.max_rows"), parse=optional(positive(int, "the number of rows", "10000")),
    ),
    Question("train.min_lr", "min learning rate", "Learning rate the schedule ends at (0: zero)?", default=_preset_value("train.min_lr"), parse=at_least(float, 0, "the minimum learning rate", "1e-6")),
    Question("train.weight_decay", "weight decay", "Weight decay?", default=_preset_value("train.weight_decay"), parse=at_least(float, 0, "the weight decay", "0.01")),
    Question(
        "train.warmup_ratio", "warm-up ratio", "Warm-up as a fraction of all steps (0: by steps, train.warmup_steps)?",
        default=_preset_value("train.warmup_ratio"), parse=at_least(float, 0, "the warm-up ratio", "0.03", below=1),
    ),
    Question("lora.r", "LoRA rank", "LoRA rank?", default=_preset_value("lora.r"), parse=positive(int, "the LoRA rank", "16"), when=_uses_lora),
    Question("lora.alpha", "LoRA alpha", "LoRA alpha?", default=_preset_value("lora.alpha"), parse=positive(int, "the LoRA alpha", "32"), when=_uses_lora),
    Question("lora.dropout", "LoRA dropout", "LoRA dropout?", default=_preset_value("lora.dropout"), parse=at_least(float, 0, "the LoRA dropout", "0.05", below=1), when=_uses_lora),
    Question(
        "train.dataloader_num_workers", "data workers", "Worker processes loading batches?",
        default=_preset_value("train.dataloader_num_workers"), parse=at_least(int, 0, "the number of workers", "4"),
    ),
    Question("train.max_grad_norm", "max grad norm", "Gradient clipping norm (0: none)?", default=_preset_value("train.max_grad_norm"), parse=at_least(float, 0, "the gradient norm", "1.0")),
    Question("train.logging_steps", "logging steps", "Log every how many steps?", default=_preset_value("train.logging_steps"), parse=positive(int, "the logging steps", "10")),
    Question("train.eval_steps", "evaluation steps", "Evaluate every how many steps?", default=_preset_value("train.eval_steps"), parse=positive(int, "the evaluation steps", "100")),
    Question("train.save_steps", "save steps", "Save a checkpoint every how many steps?", default=_preset_value("train.save_steps"), parse=positive(int, "the save steps", "500")),
)
BY_KEY.update({q.key: q for q in MORE})
CHOICES["data.format"] = FORMATS
