"""The run folder: never overwritten by accident, resumable only with a compatible config."""

from __future__ import annotations

import json
import platform
import shutil
from pathlib import Path
from typing import Any

from sftkit.config import RunConfig
from sftkit.errors import SftkitError
from sftkit.yamlio import atomic_write_text, dump_yaml, load_yaml

CONFIG_NAME = "sftkit.yaml"
MODEL_DIR = "model"
#: entries a fresh run folder may already hold (written by `sftkit prepare`)
PRE_RUN_ENTRIES = {"prepared"}
#: keys that may change between a run and its resumption; anything else changes what is trained
RESUMABLE_CHANGES = (
    "train.output_dir",
    "train.logging_steps",
    "train.save_steps",
    "train.eval_steps",
    "train.save_total_limit",
    "train.dataloader_num_workers",
    "train.eval_batch_size",
    "data.num_proc",
    "data.prepared_dir",
    "tracking.",
)


def run_dir_of(cfg: RunConfig) -> Path:
    return Path(cfg.train.output_dir)


def has_run(run_dir: Path) -> bool:
    """True when the folder holds a run (anything besides a prepared dataset)."""
    return run_dir.is_dir() and any(p.name not in PRE_RUN_ENTRIES for p in run_dir.iterdir())


def start_run_dir(cfg: RunConfig, resume: str | None, overwrite: bool) -> tuple[Path, str | None]:
    """Create (or check) the run folder; return it and the checkpoint to resume from, if any."""
    run_dir = run_dir_of(cfg)
    if resume:
        return run_dir, find_checkpoint(cfg, run_dir, resume)
    if has_run(run_dir):
        if not overwrite:
            raise SftkitError(
                f"run folder {run_dir} already holds a run",
                hint="pass --overwrite to replace it, --resume to continue it, or --output-dir for a new folder",
                exit_code=2,
            )
        for entry in run_dir.iterdir():
            if entry.name not in PRE_RUN_ENTRIES:
                shutil.rmtree(entry) if entry.is_dir() else entry.unlink()
    run_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(run_dir / CONFIG_NAME, dump_yaml(cfg.to_dict()))
    return run_dir, None


def find_checkpoint(cfg: RunConfig, run_dir: Path, resume: str) -> str:
    if resume != "latest":
        ckpt = Path(resume)
        if not (ckpt / "trainer_state.json").exists():
            raise SftkitError(f"{resume} is not a checkpoint folder (no trainer_state.json)", hint="pass a checkpoint-N folder", exit_code=2)
    else:
        from transformers.trainer_utils import get_last_checkpoint

        found = get_last_checkpoint(str(run_dir)) if run_dir.is_dir() else None
        if not found:
            raise SftkitError(f"nothing to resume: no checkpoint in {run_dir}", hint="start the run without --resume", exit_code=2)
        ckpt = Path(found)
    check_resumable(cfg, run_dir)
    return str(ckpt)


def check_resumable(cfg: RunConfig, run_dir: Path) -> None:
    saved_path = run_dir / CONFIG_NAME
    if not saved_path.exists():
        raise SftkitError(f"{saved_path} is missing: cannot check that the run can be resumed", exit_code=2)
    saved, _ = load_yaml(saved_path)
    changed = [k for k in _diff(saved, cfg.to_dict()) if not k.startswith(RESUMABLE_CHANGES)]
    if changed:
        key = changed[0]
        raise SftkitError(
            f"cannot resume: {key} changed since the run started ({_get(saved, key)!r} -> {_get(cfg.to_dict(), key)!r})"
            + (f" and {len(changed) - 1} more key(s)" if len(changed) > 1 else ""),
            hint=f"use the run's own config: sftkit train --config {saved_path} --resume",
            exit_code=2,
        )


def _diff(a: dict[str, Any], b: dict[str, Any], prefix: str = "") -> list[str]:
    keys = []
    for k in sorted(set(a) | set(b)):
        va, vb = a.get(k), b.get(k)
        if isinstance(va, dict) and isinstance(vb, dict) and k in ("model", "data", "train", "lora", "dpo", "tracking"):
            keys += _diff(va, vb, f"{prefix}{k}.")
        elif va != vb:
            keys.append(f"{prefix}{k}")
    return keys


def _get(d: dict[str, Any], dotted: str) -> Any:
    for part in dotted.split("."):
        d = d.get(part) if isinstance(d, dict) else None
    return d


def environment(device: str, world_size: int) -> dict[str, Any]:
    import importlib.metadata as md

    import torch

    def version(name: str) -> str | None:
        try:
            return md.version(name)
        except md.PackageNotFoundError:
            return None

    env: dict[str, Any] = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "packages": {n: version(n) for n in ("sftkit", "torch", "transformers", "trl", "peft", "datasets", "accelerate", "bitsandbytes")},
        "device": device,
        "world_size": world_size,
        "cpu_threads": torch.get_num_threads(),
    }
    if device == "cuda":
        env["gpu"] = torch.cuda.get_device_name()
        env["cuda"] = torch.version.cuda
    return env


def write_json(path: Path, data: Any) -> None:
    atomic_write_text(path, json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n")
