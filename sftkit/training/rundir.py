"""The run folder: never overwritten by accident, resumable only with a compatible config.

Its layout is declared in :mod:`sftkit.layout`. ``state.json`` records where the run stands: ``running``,
``failed`` (with the error), ``interrupted`` or ``finished``. A run that failed before writing its first
checkpoint or model holds nothing worth keeping, so the same command can start it again.
"""

from __future__ import annotations

import json
import platform
import shutil
from pathlib import Path
from typing import Any

import sftkit.layout as layout
from sftkit.config import RunConfig
from sftkit.errors import EXIT_USAGE, SftkitError
from sftkit.keys import SECTIONS
from sftkit.yamlio import atomic_write_text, dump_yaml, load_yaml

#: entries a fresh run folder may already hold (written by `sftkit prepare`)
PRE_RUN_ENTRIES = {layout.PREPARED}
RUNNING, FAILED, INTERRUPTED, FINISHED = "running", "failed", "interrupted", "finished"
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
    """True when the folder holds a run worth keeping (anything besides a prepared dataset, unless it is what a
    run that failed before its first checkpoint left behind)."""
    if not run_dir.is_dir():
        return False
    if not any(p.name not in PRE_RUN_ENTRIES for p in run_dir.iterdir()):
        return False
    return not restartable(run_dir)


def restartable(run_dir: Path) -> bool:
    """A run that failed before it wrote a checkpoint or a model: starting it again loses nothing."""
    state = read_state(run_dir)
    return state.get("state") == FAILED and not checkpoints(run_dir) and not (run_dir / layout.MODEL).exists()


def checkpoints(run_dir: Path) -> list[Path]:
    return sorted(p for p in run_dir.glob(f"{layout.CHECKPOINT_PREFIX}*") if p.is_dir())


def read_state(run_dir: Path) -> dict[str, Any]:
    try:
        data = json.loads((run_dir / layout.STATE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def write_state(run_dir: Path, state: str, **extra: Any) -> None:
    """Record where the run stands (``running``, ``failed``, ``interrupted``, ``finished``)."""
    from datetime import datetime, timezone

    data = {**read_state(run_dir), "state": state, "updated": datetime.now(timezone.utc).isoformat(timespec="seconds"), **extra}
    if state != FAILED:
        data.pop("error", None)
    write_json(run_dir / layout.STATE, data)


def start_run_dir(cfg: RunConfig, resume: str | None, overwrite: bool) -> tuple[Path, str | None]:
    """Create (or check) the run folder; return it and the checkpoint to resume from, if any."""
    run_dir = run_dir_of(cfg)
    if resume:
        checkpoint = find_checkpoint(cfg, run_dir, resume)
        write_state(run_dir, RUNNING)
        return run_dir, checkpoint
    if has_run(run_dir) and not overwrite:
        raise SftkitError(
            f"run folder {run_dir} already holds a run",
            hint="replace it (overwrite=True), continue it (resume='latest') or choose another train.output_dir",
            exit_code=EXIT_USAGE,
        )
    if run_dir.is_dir():  # an overwritten run, or what a failed start left: cleared, the prepared data kept
        for entry in run_dir.iterdir():
            if entry.name not in PRE_RUN_ENTRIES:
                shutil.rmtree(entry) if entry.is_dir() else entry.unlink()
    run_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(run_dir / layout.CONFIG, dump_yaml(cfg.to_dict()))
    write_state(run_dir, RUNNING)
    return run_dir, None


def find_checkpoint(cfg: RunConfig, run_dir: Path, resume: str) -> str:
    if resume != "latest":
        ckpt = Path(resume)
        if not (ckpt / "trainer_state.json").exists():
            raise SftkitError(f"{resume} is not a checkpoint folder (no trainer_state.json)", hint="pass a checkpoint-N folder", exit_code=EXIT_USAGE)
    else:
        from transformers.trainer_utils import get_last_checkpoint

        found = get_last_checkpoint(str(run_dir)) if run_dir.is_dir() else None
        if not found:
            hint = "start the run again without --resume (the same command, no --overwrite needed)" if restartable(run_dir) or not has_run(run_dir) else "start the run again without --resume, adding --overwrite"
            raise SftkitError(f"nothing to resume: no checkpoint in {run_dir}", hint=hint, exit_code=EXIT_USAGE)
        ckpt = Path(found)
    check_resumable(cfg, run_dir)
    return str(ckpt)


def check_resumable(cfg: RunConfig, run_dir: Path) -> None:
    saved_path = run_dir / layout.CONFIG
    if not saved_path.exists():
        raise SftkitError(f"{saved_path} is missing: cannot check that the run can be resumed", exit_code=EXIT_USAGE)
    saved, _ = load_yaml(saved_path)
    changed = [k for k in _diff(saved, cfg.to_dict()) if not k.startswith(RESUMABLE_CHANGES)]
    if changed:
        key = changed[0]
        raise SftkitError(
            f"cannot resume: {key} changed since the run started ({_get(saved, key)!r} -> {_get(cfg.to_dict(), key)!r})"
            + (f" and {len(changed) - 1} more key(s)" if len(changed) > 1 else ""),
            hint=f"use the run's own config: sftkit train --config {saved_path} --resume",
            exit_code=EXIT_USAGE,
        )


def _diff(a: dict[str, Any], b: dict[str, Any], prefix: str = "") -> list[str]:
    keys = []
    for k in sorted(set(a) | set(b)):
        va, vb = a.get(k), b.get(k)
        if isinstance(va, dict) and isinstance(vb, dict) and k in SECTIONS:
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
