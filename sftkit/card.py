"""Model cards and run metadata: one home for the pieces the run's card (``sftkit train``) and the export's
card (``sftkit export``) share: Hub front matter, tables, the trainer-kind wording, run metadata."""

from __future__ import annotations

import time
from datetime import datetime, timezone
from typing import Any

from sftkit import names
from sftkit.config import RunConfig
from sftkit.names import hub_id
from sftkit.version import __version__

#: what each trainer type is called in a model card
KINDS = {"sft": "supervised fine-tuning (SFT)", "dpo": "direct preference optimisation (DPO)"}


def front_matter(library: str, base: str | None, dataset: str | None, tags: list[str]) -> list[str]:
    """The YAML header the Hub reads: library, base model and dataset (when they are Hub ids), tags."""
    lines = ["---", f"library_name: {library}"]
    if hub_id(base):
        lines.append(f"base_model: {base}")
    if hub_id(dataset):
        lines += ["datasets:", f"- {dataset}"]
    return lines + ["tags:", *[f"- {t}" for t in tags], "pipeline_tag: text-generation", "---", ""]


def table(title: str, header: str, rows: list[tuple[str, Any]]) -> list[str]:
    """A markdown section with a two-column table (rows with a None value are left out)."""
    return [f"## {title}", "", f"| {header} | value |", "|---|---|", *[f"| {k} | {v} |" for k, v in rows if v is not None], ""]


def method_of(cfg: RunConfig) -> str:
    """``full``, ``lora``, ``qlora`` or ``lora-8bit`` (the names in :mod:`sftkit.names`)."""
    return names.method_of(cfg.lora.enabled, cfg.lora.load_in_4bit, cfg.lora.load_in_8bit)


def metadata(cfg: RunConfig, data: Any, metrics: dict[str, Any], started: float, steps: int) -> dict[str, Any]:
    manifest = getattr(data, "manifest", {}) or {}
    return {
        "sftkit_version": __version__,
        "trainer_type": cfg.trainer_type,
        "method": method_of(cfg),
        "model": cfg.model.name,
        "model_revision": cfg.model.revision,
        "dataset": cfg.data.dataset or cfg.data.train_file,
        "data_format": manifest.get("format"),
        # the template as configured (what generate/eval re-apply) and what it resolved to
        "template": cfg.data.template,
        "template_resolved": (manifest.get("template") or {}).get("name") if isinstance(manifest.get("template"), dict) else manifest.get("template"),
        "response_marker": cfg.data.response_marker,
        "system_prompt": cfg.data.system_prompt,
        "completion_only_loss": cfg.data.completion_only_loss,
        "packing": cfg.data.packing,
        "max_length": cfg.model.max_seq_length if cfg.trainer_type == "sft" else cfg.dpo.max_length,
        "max_prompt_length": cfg.dpo.max_prompt_length if cfg.trainer_type == "dpo" else None,
        "lora": cfg.lora.model_dump() if cfg.lora.enabled else None,
        "dpo": cfg.dpo.model_dump() if cfg.trainer_type == "dpo" else None,
        "rows": {"train": manifest.get("rows_kept"), "validation": manifest.get("validation_rows")},
        "steps": steps,
        "seed": cfg.train.seed,
        "training_seconds": round(time.time() - started, 1),
        "completed_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "metrics": {k: v for k, v in metrics.items() if isinstance(v, (int, float))},
    }


def model_card(cfg: RunConfig, meta: dict[str, Any]) -> str:
    base = hub_id(cfg.model.name)
    tags = ["sftkit", "trl", cfg.trainer_type] + (["lora", "peft"] if cfg.lora.enabled else [])
    dataset = meta.get("dataset")
    front = front_matter("peft" if cfg.lora.enabled else "transformers", base, dataset, tags)
    rows = [
        ("method", meta["method"]),
        ("base model", cfg.model.name),
        ("dataset", dataset or "-"),
        ("template", meta.get("template")),
        ("max length", meta.get("max_length")),
        ("steps", meta.get("steps")),
        ("learning rate", cfg.train.learning_rate),
        ("batch size x accumulation", f"{cfg.train.batch_size} x {cfg.train.gradient_accumulation_steps}"),
        ("seed", cfg.train.seed),
    ]
    metric_rows = [(k, f"{v:.4f}" if isinstance(v, float) else v) for k, v in meta["metrics"].items() if k.startswith(("eval_", "train_loss"))]
    body = [
        f"# {cfg.tracking.experiment_name or 'Fine-tuned model'}",
        "",
        f"This model was trained with [sftkit](https://pypi.org/project/sftkit/) {__version__} by {KINDS[cfg.trainer_type]}"
        + (f" of [{base}](https://huggingface.co/{base})." if base else "."),
        "",
        *table("Training", "setting", rows),
    ]
    if metric_rows:
        body += table("Results", "metric", metric_rows)
    body += [
        "## Use",
        "",
        "```python",
        "from transformers import AutoModelForCausalLM, AutoTokenizer" if not cfg.lora.enabled else "from peft import AutoPeftModelForCausalLM",
        "",
        "model = AutoModelForCausalLM.from_pretrained(PATH)" if not cfg.lora.enabled else "model = AutoPeftModelForCausalLM.from_pretrained(PATH)",
        "```",
        "",
        "or with sftkit: `sftkit generate PATH \"your prompt\"`.",
        "",
    ]
    return "\n".join(front + body)


def export_card(meta: dict[str, Any], export_info: dict[str, Any]) -> str:
    """A model card for an exported (merged) model: Hub front matter, training settings and results, usage."""
    base = meta.get("model")
    hub_base = hub_id(base)
    trainer = meta.get("trainer_type") or "sft"
    tags = ["sftkit", "trl", trainer] + (["merged-lora"] if export_info.get("merged_lora") else [])
    dataset = meta.get("dataset")
    front = front_matter("transformers", base, dataset, tags)
    kind = KINDS.get(trainer, trainer)
    origin = f" of [{hub_base}](https://huggingface.co/{hub_base})" if hub_base else (f" of {base}" if base else "")
    merged = " The LoRA adapter is merged into the base weights, so the model loads without peft." if export_info.get("merged_lora") else ""
    rows = [
        ("method", meta.get("method")),
        ("base model", base),
        ("dataset", dataset),
        ("template", meta.get("template")),
        ("max length", meta.get("max_length")),
        ("steps", meta.get("steps")),
        ("seed", meta.get("seed")),
        ("lora", ", ".join(f"{k}={meta['lora'][k]}" for k in ("r", "alpha", "dropout") if k in meta["lora"]) if meta.get("lora") else None),
        ("exported dtype", export_info.get("dtype")),
        ("largest logit difference vs. un-merged", _fmt(export_info.get("max_abs_logit_diff"))),
    ]
    body = [
        "# Fine-tuned model",
        "",
        f"Trained with [sftkit](https://pypi.org/project/sftkit/) by {kind}{origin}.{merged}",
        "",
        *table("Training", "setting", rows),
    ]
    metrics = {k: v for k, v in (meta.get("metrics") or {}).items() if k.startswith(("eval_", "train_loss"))}
    if metrics:
        body += table("Results", "metric", [(k, _fmt(v)) for k, v in metrics.items()])
    body += [
        "## Use",
        "",
        "```python",
        "from transformers import AutoModelForCausalLM, AutoTokenizer",
        "",
        'tokenizer = AutoTokenizer.from_pretrained("PATH")',
        'model = AutoModelForCausalLM.from_pretrained("PATH")',
        'messages = [{"role": "user", "content": "Hello!"}]',
        "inputs = tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors=\"pt\", return_dict=True)",
        "print(tokenizer.decode(model.generate(**inputs, max_new_tokens=64)[0][inputs['input_ids'].shape[1]:], skip_special_tokens=True))",
        "```",
        "",
        'or with sftkit: `sftkit generate PATH "your prompt"` (the training metadata next to the weights tells it the template).',
        "",
    ]
    return "\n".join(front + body)


def _fmt(value: Any) -> Any:
    if isinstance(value, float):
        return f"{value:.4g}"
    return value
