"""The wizard's answers -> config keys, and the project file that keeps only what differs from the preset."""

from __future__ import annotations

from typing import Any

from sftkit.config import RunConfig
from sftkit.names import method_settings
from sftkit.projectfile import ProjectFile, diff_against
from sftkit.wizard.questions import TRACKIO_SPACE


def desired_values(answers: dict[str, Any], base: RunConfig) -> tuple[dict[str, Any], list[str]]:
    """Answers -> dotted config keys (``train.learning_rate``), plus notes about derived adjustments."""
    a = answers
    out: dict[str, Any] = {"trainer_type": a["trainer_type"], "model.name": a["model"]}
    notes: list[str] = []
    dataset = a.get("dataset")
    if dataset and dataset != base.data.train_file:
        out["data.dataset"] = dataset
        if base.data.train_file:
            out["data.train_file"] = None  # the preset's file is replaced, not combined
    out.update(method_settings(a["method"]))
    lr = a["learning_rate"]
    out["train.learning_rate"] = lr
    out["train.batch_size"] = a["batch_size"]
    out["train.gradient_accumulation_steps"] = a["gradient_accumulation_steps"]
    out["train.max_iters"] = a.get("max_iters")
    if a.get("max_iters") is None:
        out["train.num_train_epochs"] = a["num_train_epochs"]
    seq = a["max_seq_length"]
    out["model.max_seq_length"] = seq
    precision = a["precision"]
    out["train.bf16"] = precision == "bf16"
    out["train.fp16"] = precision == "fp16"
    if precision == "fp32" and base.model.flash_attention:
        out["model.flash_attention"] = False
        notes.append("model.flash_attention off: FlashAttention 2 runs in fp16 or bf16 on a CUDA GPU, and the precision is fp32")
    tracking = a["tracking"]
    if tracking == "none":
        out["tracking.enabled"] = False
    else:
        out["tracking.enabled"] = True
        out["tracking.backend"] = "trackio" if tracking == TRACKIO_SPACE else tracking
        out["tracking.trackio_space"] = a.get("trackio_space") if tracking == TRACKIO_SPACE else None
    out["train.output_dir"] = a["output_dir"]
    out["tracking.experiment_name"] = a.get("experiment_name")
    for key, value in a.items():
        if "." in key:  # one of the more settings, answered by its config key
            out[key] = value
    if a.get("train.warmup_ratio") and base.train.warmup_steps and "train.warmup_steps" not in a:
        out["train.warmup_steps"] = 0
        notes.append("train.warmup_steps 0: the warm-up is given as a ratio (train.warmup_ratio)")

    if base.train.min_lr and base.train.min_lr >= lr:
        ratio = base.train.min_lr / base.train.learning_rate
        min_lr = float(f"{lr * ratio:.3g}") if ratio < 1 else 0.0
        out["train.min_lr"] = min_lr
        notes.append(f"train.min_lr set to {min_lr:g} to stay below the learning rate (the preset's ratio)")
    if a["trainer_type"] in ("dpo", "kto"):
        section = a["trainer_type"]
        lengths = getattr(base, section)
        max_len = min(lengths.max_length, seq)
        max_prompt = lengths.max_prompt_length
        if max_prompt >= max_len:
            max_prompt = max_len // 2
        if (max_len, max_prompt) != (lengths.max_length, lengths.max_prompt_length):
            out[f"{section}.max_length"] = max_len
            out[f"{section}.max_prompt_length"] = max_prompt
            notes.append(f"{section}.max_length {max_len} and {section}.max_prompt_length {max_prompt} to fit {seq} tokens")
    if a["trainer_type"] == "kto" and base.kto.loss_type == "kto" and a["batch_size"] < 2:
        out["train.batch_size"] = 2
        notes.append("train.batch_size 2: KTO's KL term compares each row with another row of its batch")
    return out, notes


def build_project(answers: dict[str, Any], base: RunConfig) -> ProjectFile:
    """``extends: <preset>`` plus the answers' values that differ from the preset's resolved ``base``."""
    values, notes = desired_values(answers, base)
    return ProjectFile(answers["preset"], diff_against(values, base), notes)
