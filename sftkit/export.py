"""Exporting a run as a standalone Hugging Face model folder (LoRA adapters merged), checked, optionally pushed.

:func:`export`, top to bottom:

1. refuse an existing non-empty output folder (unless ``overwrite``) and, when pushing, an unreachable Hub
   or a missing login, before anything is loaded;
2. load the run (base + adapter for LoRA) in float32 and compute reference logits on a few prompts;
3. merge the adapter into the base weights (``merge_and_unload``) and cast to the requested dtype;
4. save safetensors shards, the tokenizer with its chat template, the generation config, the training
   metadata and a model card into a temporary folder next to the output;
5. load that folder with plain transformers (no peft) and compare its logits with the reference: the
   largest absolute difference is reported, and above ``tolerance`` a float32 export fails;
6. rename the folder into place (a failure at any step leaves nothing behind), then push it in one commit.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import typing
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from sftkit import layout
from sftkit.config import Dtype
from sftkit.console import status
from sftkit.errors import EXIT_USAGE, SftkitError
from sftkit.generation import LoadedModel, load
from sftkit.modeling import quiet_transformers
from sftkit.version import __version__
from sftkit.yamlio import check_writable, follow_umask

DTYPES = typing.get_args(Dtype)
#: default largest absolute logit difference accepted between a float32 export and the un-merged model
DEFAULT_TOLERANCE = 1e-3
#: prompts the export is checked on (rendered with the run's template)
CHECK_PROMPTS = ("Hello! Who are you?", "Write one sentence about the sea.", "What is the capital of France?")


@dataclass
class ExportResult:
    path: Path
    """The exported folder."""
    source: str
    merged: bool
    """True when a LoRA adapter was merged into its base model."""
    dtype: str
    files: list[str] = field(default_factory=list)
    max_abs_diff: float | None = None
    """Largest absolute logit difference between the export and the un-merged model (None: not checked)."""
    tolerance: float | None = None
    """The limit ``max_abs_diff`` was held to (None for bfloat16/float16 exports: reported only)."""
    hub_url: str | None = None

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["path"] = str(self.path)
        return out


def export(
    target: str,
    output: str | Path,
    *,
    dtype: str = "auto",
    max_shard_size: str = "5GB",
    overwrite: bool = False,
    check: bool = True,
    tolerance: float | None = DEFAULT_TOLERANCE,
    push_to_hub: str | None = None,
    public: bool = False,
    device: str | None = None,
    console: Any = None,
    format: str = "hf",
    quant: str | None = None,
) -> ExportResult:
    """Export ``target`` (a run, model folder or Hub id) to ``output``; see the module docstring.

    ``format``: ``hf`` (this module), ``gguf`` or ``ollama`` (:mod:`sftkit.gguf`, quantised as ``quant``; ``tolerance``
    None: the quantisation's own). ``tolerance`` None for ``hf``: :data:`DEFAULT_TOLERANCE`.
    """
    if format != "hf":
        if dtype != "auto":
            raise SftkitError(f"dtype applies to Hugging Face exports, not {format}", hint="GGUF weights are chosen with quant (f16, bf16, q8_0 or f32)", exit_code=EXIT_USAGE)
        from sftkit.gguf import export_gguf

        return export_gguf(  # type: ignore[return-value] - the same fields, and the check's own
            target, output, format=format, quant=quant, overwrite=overwrite, check=check, tolerance=tolerance,
            push_to_hub=push_to_hub, public=public, device=device, console=console,
        )  # fmt: skip
    if quant is not None:
        raise SftkitError("quant applies to GGUF exports only", hint="add --format gguf (or ollama)", exit_code=EXIT_USAGE)
    tolerance = DEFAULT_TOLERANCE if tolerance is None else tolerance
    out = Path(output).expanduser()
    if dtype not in DTYPES:
        raise SftkitError(f"unknown dtype {dtype!r}", hint=f"use one of {', '.join(DTYPES)}", exit_code=EXIT_USAGE)
    _check_output(out, overwrite)
    _check_shard_size(max_shard_size)
    if push_to_hub:
        _check_hub(push_to_hub)
    with status(console, f"loading {target}…"):
        loaded = load(target, dtype="float32", device=device)
    if out.resolve() == Path(str(loaded.info.model_dir)).resolve():
        raise SftkitError("the output folder is the model folder being exported", hint="choose another output folder")
    inputs = _check_inputs(loaded) if check else []
    reference = _logits(loaded.model, inputs) if check else []
    torch_dtype = _target_dtype(dtype, loaded)
    with status(console, "merging…"):
        model, merged = _merged(loaded)
    model.to(torch_dtype)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        with status(console, f"saving to {out}…"), quiet_transformers():
            model.save_pretrained(str(tmp), max_shard_size=max_shard_size)
            loaded.tokenizer.save_pretrained(str(tmp))
        dtype_name = str(torch_dtype).removeprefix("torch.")
        result = ExportResult(out, target, merged, dtype_name)
        if check:
            with status(console, "checking the export…"):
                result.max_abs_diff = _check_export(tmp, inputs, reference)
            result.tolerance = tolerance if dtype_name == "float32" else None
            if result.tolerance is not None and result.max_abs_diff > tolerance:
                raise SftkitError(
                    f"the exported model's logits differ from the un-merged model's by {result.max_abs_diff:.3g} (tolerance {tolerance:g})",
                    hint="nothing was written; report this with --debug output, or raise the tolerance if the difference is expected",
                )
        _write_metadata(tmp, loaded, result, push_to_hub or str(out.absolute()))
        result.files = sorted(p.name for p in tmp.iterdir())
        _usual_permissions(tmp)
        _move_into_place(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if push_to_hub:
        with status(console, f"uploading to {push_to_hub}…"):
            result.hub_url = _push(out, push_to_hub, public)
    return result


# --------------------------------------------------------------------------- checks before any work


def _check_output(out: Path, overwrite: bool) -> None:
    if out.exists() and not out.is_dir():
        raise SftkitError(f"{out} exists and is a file", hint="choose another output folder")
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise SftkitError(f"{out} exists and is not empty", hint="choose another output folder, or replace it (overwrite=True)")
    check_writable(out, hint="choose another output folder")


def _check_shard_size(size: str) -> None:
    from transformers.utils.hub import convert_file_size_to_int

    try:
        convert_file_size_to_int(size)
    except ValueError:
        raise SftkitError(f"max_shard_size {size!r} is not a size", hint="use a number and a unit, e.g. 2GB or 500MB", exit_code=EXIT_USAGE) from None


def _check_hub(repo: str) -> None:
    import huggingface_hub
    from huggingface_hub.utils import validate_repo_id

    from sftkit import hub

    try:
        validate_repo_id(repo)
    except Exception as e:  # noqa: BLE001 - HFValidationError, one line is enough
        raise SftkitError(f"push_to_hub {repo!r} is not a valid repository id ({e})", hint="use NAME or ORG/NAME", exit_code=EXIT_USAGE) from None
    if not hub.hub_reachable():
        raise SftkitError(
            "cannot push to the Hugging Face Hub: it is not reachable (offline, or HF_HUB_OFFLINE=1)",
            hint="export without push_to_hub now; upload later with `hf upload REPO DIR` once online",
        )
    if not huggingface_hub.get_token():
        raise SftkitError("cannot push to the Hugging Face Hub: not logged in", hint="run `hf auth login` or set HF_TOKEN")


# --------------------------------------------------------------------------- merging and checking


def _merged(loaded: LoadedModel) -> tuple[Any, bool]:
    model = loaded.model
    if hasattr(model, "merge_and_unload"):
        return model.merge_and_unload(), True
    return model, False


def _target_dtype(dtype: str, loaded: LoadedModel) -> Any:
    """``auto``: the dtype the weights were published in (the base model's config), float32 when unknown."""
    import torch

    if dtype != "auto":
        return getattr(torch, dtype)
    from transformers import AutoConfig

    from sftkit.hub import local_only
    from sftkit.modeling import resolve_model_path
    from sftkit.names import is_local

    info = loaded.info
    name = info.base_model if info.is_adapter else str(info.model_dir)
    try:
        source, gguf = resolve_model_path(name) if name else (None, None)
        if source is None or gguf:
            return torch.float32
        with quiet_transformers():
            config = AutoConfig.from_pretrained(source, local_files_only=not is_local(name) and local_only())
    except (OSError, ValueError, SftkitError):
        return torch.float32
    recorded = getattr(config, "dtype", None) or getattr(config, "torch_dtype", None)
    if isinstance(recorded, str):
        recorded = getattr(torch, recorded, None)
    return recorded if recorded in (torch.float32, torch.bfloat16, torch.float16) else torch.float32


def _check_inputs(loaded: LoadedModel) -> list[Any]:
    """Token ids of the check prompts, rendered with the run's template."""
    tok = loaded.tokenizer
    return [tok(loaded.render(p), return_tensors="pt", add_special_tokens=False)["input_ids"] for p in CHECK_PROMPTS]


def _logits(model: Any, inputs: list[Any]) -> list[Any]:
    import torch

    with torch.inference_mode():
        return [model(input_ids=ids.to(model.device)).logits.float().cpu() for ids in inputs]


def _check_export(folder: Path, inputs: list[Any], reference: list[Any]) -> float:
    """Load the export with plain transformers (float32) and return the largest absolute logit difference."""
    import torch
    from transformers import AutoModelForCausalLM

    if (folder / "adapter_config.json").exists():
        raise SftkitError("the export still holds an adapter instead of merged weights")
    with quiet_transformers():
        model = AutoModelForCausalLM.from_pretrained(str(folder), dtype=torch.float32).eval()
    got = _logits(model, inputs)
    del model
    return max(float((a - b).abs().max()) for a, b in zip(reference, got, strict=True))


# --------------------------------------------------------------------------- writing


def _usual_permissions(folder: Path) -> None:
    """Temp folders and files are private (0700/0600); an export is meant to be shared: apply the umask instead."""
    follow_umask(folder)


def _move_into_place(tmp: Path, out: Path) -> None:
    old = None
    if out.exists():
        old = out.with_name(f".{out.name}.old-{os.getpid()}")
        os.rename(out, old)
    try:
        os.rename(tmp, out)
    except BaseException:
        if old is not None:
            os.rename(old, out)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _write_metadata(folder: Path, loaded: LoadedModel, result: ExportResult, location: str) -> None:
    """The run metadata and the model card; ``location``: where the card's snippet loads the model from."""
    meta = dict(loaded.info.metadata)
    info = {
        "sftkit_version": __version__,
        "source": result.source,
        "merged_lora": result.merged,
        "dtype": result.dtype,
        "max_abs_logit_diff": result.max_abs_diff,
        "tolerance": result.tolerance,
    }
    if meta:
        name = layout.metadata_name(meta.get("trainer_type") or "sft")
        (folder / name).write_text(json.dumps({**meta, "export": info}, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    from sftkit.card import export_card

    (folder / layout.CARD).write_text(export_card(meta, info, location), encoding="utf-8")  # the folder as a whole is renamed into place


# --------------------------------------------------------------------------- saving as loaded

#: keys a fine-tuning script may read from ``sft_metadata.json`` under other names, and sftkit's key for each
METADATA_ALIASES = {
    "training_method": "trainer_type",
    "instruction_template": "template",
    "response_template": "response_marker",
    "max_seq_length": "max_length",
    "model_name": "model",
    "dataset_path": "dataset",
    "training_completed_at": "completed_at",
}


def save(loaded: LoadedModel, output: str | Path | None = None, *, overwrite: bool = False) -> Path:
    """Save a loaded model as it is (a LoRA adapter stays an adapter), its tokenizer as loaded (a run's carries
    the chat template it trained with), its model card and its run metadata (``sft_metadata.json``, with the
    template it is used with), written to a temporary folder and renamed into place; returns the folder.

    ``output`` None: the folder it was loaded from, when that already holds it with its metadata (nothing is
    written). The metadata also carries its values under the names in :data:`METADATA_ALIASES`.
    """
    info = loaded.info
    source = Path(info.model_dir) if info.is_local else None
    if output is None:
        if source is not None and any((source / name).exists() for name in layout.METADATA_NAMES):
            return source
        raise SftkitError(
            f"{info.model_dir} is not a folder sftkit saved, so save_model needs a folder to save to",
            hint="name one: save_model('models/my-model')",
            exit_code=EXIT_USAGE,
        )
    out = Path(output).expanduser()
    if source is not None and (out.resolve() == source.resolve() or out.resolve() in source.resolve().parents):
        raise SftkitError(f"{out} holds the model folder being saved ({source})", hint="choose another output folder", exit_code=EXIT_USAGE)
    _check_output(out, overwrite)
    meta = {
        **loaded.info.metadata,
        "template": loaded.template,
        "response_marker": loaded.response_marker,
        "system_prompt": loaded.system_prompt,
    }
    meta.setdefault("sftkit_version", __version__)
    if not info.is_local:
        meta.setdefault("model", str(info.model_dir))
    for alias, key in METADATA_ALIASES.items():
        meta.setdefault(alias, meta.get(key) or ("sft" if key == "trainer_type" else None))
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        with quiet_transformers():
            loaded.model.save_pretrained(str(tmp))
            loaded.tokenizer.save_pretrained(str(tmp))
        name = layout.metadata_name(meta.get("trainer_type") or "sft")
        (tmp / name).write_text(json.dumps(meta, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        if source is not None and (source / layout.CARD).is_file():
            shutil.copyfile(source / layout.CARD, tmp / layout.CARD)
        _usual_permissions(tmp)
        _move_into_place(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


# --------------------------------------------------------------------------- the Hub


def _push(folder: Path, repo: str, public: bool) -> str:
    import huggingface_hub

    try:
        url = huggingface_hub.create_repo(repo, private=not public, exist_ok=True, repo_type="model")
        repo_id = getattr(url, "repo_id", None) or repo
        huggingface_hub.upload_folder(
            repo_id=repo_id,
            folder_path=str(folder),
            repo_type="model",
            commit_message=f"Upload model exported with sftkit {__version__}",
        )
    except Exception as e:  # noqa: BLE001 - HfHubHTTPError and network errors: one line, the export stays on disk
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise SftkitError(f"uploading to {repo} failed: {first}", hint=f"the export is complete in {folder}; retry with `hf upload {repo} {folder}`") from None
    return f"https://huggingface.co/{repo_id}"



__all__ = ["DEFAULT_TOLERANCE", "METADATA_ALIASES", "ExportResult", "export", "save"]
