"""Model cards and run metadata: one home for the pieces the run's card (``sftkit train``) and the export's
card (``sftkit export``) share: Hub metadata (built with huggingface_hub's ``ModelCardData``: license, base
model, datasets, tags, evaluation results as ``model-index``), tables, a usage snippet that runs as written, the
framework versions, the trainer-kind wording, and the run metadata (``sft_metadata.json``)."""

from __future__ import annotations

import json
import math
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from sftkit import layout, names
from sftkit.config import RunConfig
from sftkit.names import hub_id
from sftkit.version import __version__

#: what each trainer type is called in a model card
KINDS = {
    "sft": "supervised fine-tuning (SFT)",
    "dpo": "direct preference optimisation (DPO)",
    "kto": "Kahneman-Tversky optimisation (KTO)",
}
#: the license a card states when neither the config nor the base model says (the Hub's word for "see the card")
UNKNOWN_LICENSE = "other"
#: evaluation figures that describe the evaluation run, not the model (left out of the card's results)
_NOT_RESULTS = (
    "runtime",
    "samples_per_second",
    "steps_per_second",
    "tokens",
    "num_tokens",
    "epoch",
)
#: the prompt of the usage snippet
EXAMPLE_PROMPT = "Hello! Who are you?"


def table(title: str, header: str, rows: list[tuple[str, Any]]) -> list[str]:
    """A markdown section with a two-column table (rows with a None value are left out)."""
    return [
        f"## {title}",
        "",
        f"| {header} | value |",
        "|---|---|",
        *[f"| {k} | {v} |" for k, v in rows if v is not None],
        "",
    ]


def method_of(cfg: RunConfig) -> str:
    """``full``, ``lora``, ``qlora`` or ``lora-8bit`` (the names in :mod:`sftkit.names`)."""
    return names.method_of(
        cfg.lora.enabled, cfg.lora.load_in_4bit, cfg.lora.load_in_8bit
    )


# -- run metadata ---------------------------------------------------------------------------------


def metadata(
    cfg: RunConfig, data: Any, metrics: dict[str, Any], started: float, steps: int
) -> dict[str, Any]:
    """``sft_metadata.json``: what was trained, on what, how, and the final figures."""
    manifest = getattr(data, "manifest", {}) or {}
    preference = (
        getattr(cfg, cfg.trainer_type, None) if cfg.trainer_type != "sft" else None
    )
    return {
        "sftkit_version": __version__,
        "trainer_type": cfg.trainer_type,
        "method": method_of(cfg),
        "model": cfg.model.name,
        "model_revision": cfg.model.revision,
        "license": license_of(cfg.model.name, cfg.model.revision, cfg.model.license),
        "dataset": cfg.data.dataset or cfg.data.train_file,
        "data_format": manifest.get("format"),
        # the template as configured (what generate/eval re-apply) and what it resolved to
        "template": cfg.data.template,
        "template_resolved": (manifest.get("template") or {}).get("name")
        if isinstance(manifest.get("template"), dict)
        else manifest.get("template"),
        "response_marker": cfg.data.response_marker,
        "system_prompt": cfg.data.system_prompt,
        "chat_template_kwargs": cfg.data.chat_template_kwargs or None,
        "completion_only_loss": cfg.data.completion_only_loss,
        "packing": cfg.data.packing,
        "max_length": cfg.model.max_seq_length
        if preference is None
        else getattr(preference, "max_length", None),
        "max_prompt_length": getattr(preference, "max_prompt_length", None),
        "lora": cfg.lora.model_dump() if cfg.lora.enabled else None,
        "dpo": cfg.dpo.model_dump() if cfg.trainer_type == "dpo" else None,
        **(
            {cfg.trainer_type: preference.model_dump()}
            if preference is not None and cfg.trainer_type != "dpo"
            else {}
        ),
        "rows": rows_of(data),
        "validation_data": validation_data(cfg, data),
        # desirable / undesirable rows
        **({"labels": manifest.get("labels")} if cfg.trainer_type == "kto" else {}),
        "steps": steps,
        "seed": cfg.train.seed,
        "training_seconds": round(time.time() - started, 1),
        "completed_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "metrics": {k: v for k, v in metrics.items() if isinstance(v, (int, float))},
    }


def rows_of(data: Any) -> dict[str, int | None]:
    """The rows trained on and evaluated on: the prepared splits themselves (the manifest's ``splits`` when the
    datasets are not at hand). ``rows_kept`` would count the rows a validation fraction carved out twice."""
    splits = (getattr(data, "manifest", {}) or {}).get("splits") or {}
    out: dict[str, int | None] = {}
    for split in ("train", "validation"):
        dataset = getattr(data, split, None)
        out[split] = (
            len(dataset) if dataset is not None else (splits.get(split) or None)
        )
    return out


def validation_data(cfg: RunConfig, data: Any) -> dict[str, str] | None:
    """Where the evaluation rows came from (for the card's results), None without validation data."""
    if getattr(data, "validation", None) is None:
        return None
    d = cfg.data
    if d.validation_file:
        return {"dataset": _dataset_label(d.validation_file), "split": "validation"}
    source = _dataset_label(d.dataset or d.train_file)
    if d.validation_split:
        return {"dataset": source, "split": d.validation_split}
    return {
        "dataset": source,
        "split": f"{d.split} (held-out {d.validation_fraction:g})",
    }


def _dataset_label(name: str | None) -> str:
    """A dataset as a card names it: its Hub id, a built-in's name, or a local file's name (not its whole path)."""
    if not name:
        return "-"
    if hub_id(name) or names.is_builtin(name):
        return hub_id(name) or name
    return Path(name).name


# -- the license ----------------------------------------------------------------------------------


def license_of(
    model: str | None, revision: str | None = None, configured: str | None = None
) -> str:
    """The fine-tuned model's license: ``model.license`` when set, else the one the base model's card (its
    README.md metadata) or config.json states, else ``other``. A Hub base is read from the local cache, or from the
    Hub when it is reachable; nothing else is downloaded."""
    if configured:
        return configured
    return base_license(model, revision) or UNKNOWN_LICENSE


def base_license(model: str | None, revision: str | None = None) -> str | None:
    """The license a base model's own card or config states, None when it states none or cannot be read."""
    if not model or names.is_builtin(model):
        return None
    card, config = _base_files(model, revision)
    if card is not None:
        try:
            from huggingface_hub import ModelCard

            found = ModelCard.load(card, ignore_metadata_errors=True).data.license
        except Exception:  # noqa: BLE001 - an unreadable card states nothing
            found = None
        if isinstance(found, str) and found:
            return found
    if config is not None:
        try:
            found = json.loads(Path(config).read_text(encoding="utf-8")).get("license")
        except (OSError, ValueError, AttributeError):
            found = None
        if isinstance(found, str) and found:
            return found
    return None


def _base_files(model: str, revision: str | None) -> tuple[Path | None, Path | None]:
    """The base model's README.md and config.json on this machine (fetched from the Hub when reachable)."""
    local = Path(model).expanduser()
    if local.exists():
        folder = local if local.is_dir() else local.parent
        return _existing(folder / layout.CARD), _existing(folder / "config.json")
    repo = hub_id(model)
    if repo is None:
        return None, None
    revision = revision or (model.partition("@")[2] or None)
    return _hub_file(repo, layout.CARD, revision), _hub_file(
        repo, "config.json", revision
    )


def _existing(path: Path) -> Path | None:
    return path if path.is_file() else None


def _hub_file(repo: str, filename: str, revision: str | None) -> Path | None:
    import huggingface_hub

    from sftkit.hub import local_only

    try:
        cached = huggingface_hub.try_to_load_from_cache(
            repo, filename, revision=revision
        )
        if isinstance(cached, str):
            return Path(cached)
        if cached is None and not local_only():
            return Path(
                huggingface_hub.hf_hub_download(repo, filename, revision=revision)
            )
    except Exception:  # noqa: BLE001 - no such file, no network: the card states no license from it
        return None
    return None


# -- the cards ------------------------------------------------------------------------------------


def model_card(cfg: RunConfig, meta: dict[str, Any]) -> str:
    """The card of a run (its ``README.md`` and ``model/README.md``); its snippet loads the run's ``model/``."""
    location = str(Path(cfg.train.output_dir).absolute() / layout.MODEL)
    tags = _tags(
        meta.get("trainer_type") or cfg.trainer_type,
        ["lora", "peft"] if cfg.lora.enabled else [],
    )
    front = card_data(
        meta,
        "peft" if cfg.lora.enabled else "transformers",
        tags,
        cfg.tracking.experiment_name or Path(cfg.train.output_dir).name,
    )
    base = hub_id(cfg.model.name)
    rows = [
        ("method", meta["method"]),
        ("base model", cfg.model.name),
        ("dataset", meta.get("dataset") or "-"),
        ("template", meta.get("template")),
        ("max length", meta.get("max_length")),
        ("steps", meta.get("steps")),
        ("learning rate", cfg.train.learning_rate),
        (
            "batch size x accumulation",
            f"{cfg.train.batch_size} x {cfg.train.gradient_accumulation_steps}",
        ),
        ("seed", cfg.train.seed),
    ]
    body = [
        f"# {cfg.tracking.experiment_name or 'Fine-tuned model'}",
        "",
        f"This model was trained with [sftkit](https://pypi.org/project/sftkit/) {__version__} by {KINDS.get(cfg.trainer_type, cfg.trainer_type)}"
        + (
            f" of [{base}](https://huggingface.co/{base})."
            if base
            else f" of {cfg.model.name}."
        ),
        "",
        *table("Training", "setting", rows),
        *_results(meta),
        *usage(location, adapter=cfg.lora.enabled),
        *_versions(
            [
                "transformers",
                "trl",
                *(["peft"] if cfg.lora.enabled else []),
                "torch",
                "datasets",
                "tokenizers",
            ]
        ),
    ]
    return _render(front, body)


def export_card(
    meta: dict[str, Any], export_info: dict[str, Any], location: str = "PATH"
) -> str:
    """The card of an exported (merged) model; ``location``: where its snippet loads it from (the export folder,
    or the Hub id it is pushed to)."""
    base = meta.get("model")
    hub_base = hub_id(base)
    trainer = meta.get("trainer_type") or "sft"
    tags = _tags(trainer, ["merged-lora"] if export_info.get("merged_lora") else [])
    front = card_data(meta, "transformers", tags, Path(location).name or "model")
    kind = KINDS.get(trainer, trainer)
    origin = (
        f" of [{hub_base}](https://huggingface.co/{hub_base})"
        if hub_base
        else (f" of {base}" if base else "")
    )
    merged = (
        " The LoRA adapter is merged into the base weights, so the model loads without peft."
        if export_info.get("merged_lora")
        else ""
    )
    rows = [
        ("method", meta.get("method")),
        ("base model", base),
        ("dataset", meta.get("dataset")),
        ("template", meta.get("template")),
        ("max length", meta.get("max_length")),
        ("steps", meta.get("steps")),
        ("seed", meta.get("seed")),
        (
            "lora",
            ", ".join(
                f"{k}={meta['lora'][k]}"
                for k in ("r", "alpha", "dropout")
                if k in meta["lora"]
            )
            if meta.get("lora")
            else None,
        ),
        ("exported dtype", export_info.get("dtype")),
        (
            "largest logit difference vs. un-merged",
            _fmt(export_info.get("max_abs_logit_diff")),
        ),
    ]
    body = [
        "# Fine-tuned model",
        "",
        f"Trained with [sftkit](https://pypi.org/project/sftkit/) by {kind}{origin}.{merged}",
        "",
        *table("Training", "setting", rows),
        *_results(meta),
        *usage(location, adapter=False),
        *_versions(["transformers", "torch", "tokenizers"]),
    ]
    return _render(front, body)


def card_data(
    meta: dict[str, Any], library: str, tags: list[str], model_name: str
) -> Any:
    """The Hub metadata (huggingface_hub's ``ModelCardData``) of a card: license, base model and datasets when
    they are Hub ids, tags, and the evaluation results as ``model-index``."""
    from huggingface_hub import ModelCardData

    base, dataset = meta.get("model"), meta.get("dataset")
    results = eval_results(meta)
    return ModelCardData(
        license=meta.get("license") or license_of(base, meta.get("model_revision")),
        library_name=library,
        base_model=hub_id(base),
        datasets=[hub_id(dataset)] if hub_id(dataset) else None,
        tags=tags,
        pipeline_tag="text-generation",
        model_name=model_name if results else None,
        eval_results=results or None,
    )


def eval_results(meta: dict[str, Any]) -> list[Any]:
    """The final evaluation figures as huggingface_hub ``EvalResult`` objects (``model-index`` in the card)."""
    from huggingface_hub import EvalResult

    where = meta.get("validation_data") or {
        "dataset": _dataset_label(meta.get("dataset")),
        "split": "validation",
    }
    out = []
    for key, value in (meta.get("metrics") or {}).items():
        name = key.removeprefix("eval_")
        if (
            not key.startswith("eval_")
            or name in _NOT_RESULTS
            or not isinstance(value, (int, float))
            or not math.isfinite(value)
        ):
            continue
        out.append(
            EvalResult(
                task_type="text-generation",
                dataset_type=where["dataset"],
                dataset_name=where["dataset"],
                dataset_split=where["split"],
                metric_type=name,
                metric_name=key,
                metric_value=value,
            )
        )
    return out


def usage(location: str, adapter: bool) -> list[str]:
    """The card's "Use" section: Python that runs as written (transformers, or peft for an adapter) on the model at
    ``location``, rendering the prompt with the chat template the model was trained with, and the sftkit command."""
    path = json.dumps(location)
    if adapter:
        imports = [
            "from peft import AutoPeftModelForCausalLM",
            "from transformers import AutoTokenizer",
        ]
        load = "model = AutoPeftModelForCausalLM.from_pretrained(path)"
    else:
        imports = ["from transformers import AutoModelForCausalLM, AutoTokenizer"]
        load = "model = AutoModelForCausalLM.from_pretrained(path)"
    return [
        "## Use",
        "",
        "```python",
        *imports,
        "",
        f"path = {path}  # this folder (or its Hub id once uploaded)",
        "tokenizer = AutoTokenizer.from_pretrained(path)",
        load,
        f'messages = [{{"role": "user", "content": {json.dumps(EXAMPLE_PROMPT)}}}]',
        'inputs = tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt", return_dict=True)',
        "output = model.generate(**inputs, max_new_tokens=64)",
        'print(tokenizer.decode(output[0][inputs["input_ids"].shape[1] :], skip_special_tokens=True))',
        "```",
        "",
        f'or with sftkit: `sftkit generate {location} "your prompt"`.',
        "",
    ]


def _tags(trainer_type: str, extra: list[str]) -> list[str]:
    return ["sftkit", "trl", trainer_type, *extra]


def _results(meta: dict[str, Any]) -> list[str]:
    metrics = {
        k: v
        for k, v in (meta.get("metrics") or {}).items()
        if k == "train_loss"
        or (k.startswith("eval_") and k.removeprefix("eval_") not in _NOT_RESULTS)
    }
    return (
        table("Results", "metric", [(k, _fmt(v)) for k, v in metrics.items()])
        if metrics
        else []
    )


def _versions(packages: list[str]) -> list[str]:
    """The "Framework versions" section: sftkit and the libraries the model was made and is loaded with."""
    from importlib.metadata import PackageNotFoundError, version

    lines = ["## Framework versions", "", f"- sftkit: {__version__}"]
    for name in packages:
        try:
            lines.append(f"- {name}: {version(name)}")
        except PackageNotFoundError:
            continue
    return [*lines, ""]


def _render(data: Any, body: list[str]) -> str:
    """The card's text, through huggingface_hub's ``ModelCard`` (which checks that the metadata parses)."""
    from huggingface_hub import ModelCard

    return str(ModelCard("\n".join(["---", data.to_yaml(), "---", "", *body])))


def _fmt(value: Any) -> Any:
    if isinstance(value, float):
        return f"{value:.4g}"
    return value
