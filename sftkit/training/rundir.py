"""The run folder: one process at a time, never overwritten by accident, resumable only from complete checkpoints.

Its layout is declared in :mod:`sftkit.layout`. ``state.json`` records where the run stands: ``running``,
``failed`` (with the error), ``interrupted`` or ``finished``, and when it started (for ``sftkit runs``). A run
that failed, was interrupted or was killed before writing its first complete checkpoint or model holds nothing
worth keeping, so the same command starts it again. A ``running`` state seen by a process that holds the
folder's lock was left by a process that died.

``--overwrite`` replaces only a folder that is an sftkit run, and only once the new run has something to show
for itself: the old run is moved into ``.replaced/`` and deleted after the new run's first complete checkpoint
(or its end); if the new run fails before that, the old run is put back.
"""

from __future__ import annotations

import json
import os
import platform
import re
import shutil
import socket
import sys
import time
from pathlib import Path
from typing import Any

import sftkit.layout as layout
from sftkit.config import RunConfig
from sftkit.errors import EXIT_USAGE, SftkitError
from sftkit.keys import SECTIONS
from sftkit.yamlio import atomic_write_text, dump_yaml, load_yaml

#: entries a fresh run folder may already hold (written by `sftkit prepare`) or that belong to no run
PRE_RUN_ENTRIES = {layout.PREPARED, layout.STOP}
RUNNING, FAILED, INTERRUPTED, FINISHED = "running", "failed", "interrupted", "finished"
#: state.json key of runs whose checkpoints count only with the completion marker (no run before the marker has it)
MARKS_CHECKPOINTS = "marks_checkpoints"
#: keys that may change between a run and its resumption; anything else changes what is trained
RESUMABLE_CHANGES = (
    "train.output_dir",
    "train.logging_steps",
    "train.save_steps",
    "train.eval_steps",
    "train.save_total_limit",
    "train.dataloader_num_workers",
    "train.threads",
    "train.eval_batch_size",
    "data.num_proc",
    "data.prepared_dir",
    "model.license",
    "tracking.",
)
_STEP = re.compile(rf"^{re.escape(layout.CHECKPOINT_PREFIX)}(\d+)$")


def run_dir_of(cfg: RunConfig) -> Path:
    return Path(cfg.train.output_dir)


# -- the lock ---------------------------------------------------------------------------------------


class RunLock:
    """An exclusive lock on a run folder for the whole run: ``flock`` on the folder itself.

    The kernel releases it when the holding process exits, however it exits, so a lock left by a killed process
    is simply taken over. While running, ``state.json`` records who holds it (pid, host, command) for the
    refusal message. A folder the lock created and nothing then wrote into is removed again on release.
    """

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = Path(run_dir)
        self.fd: int | None = None
        self.created = False

    def acquire(self) -> RunLock:
        try:
            import fcntl
        except ImportError:  # no flock on this platform: run unlocked
            return self
        try:
            self.created = not self.run_dir.exists()
            self.run_dir.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.run_dir, os.O_RDONLY)
        except OSError as e:
            raise SftkitError(
                f"cannot create the run folder {self.run_dir}: {e.strerror or e}",
                hint="choose a train.output_dir (--output-dir) you can write to",
                exit_code=EXIT_USAGE,
            ) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise SftkitError(
                f"run folder {self.run_dir} is in use by another sftkit process{self.holder()}",
                hint="wait for that run to finish or stop it (Ctrl-C), or choose another train.output_dir",
                exit_code=EXIT_USAGE,
            ) from None
        self.fd = fd
        return self

    def holder(self) -> str:
        state = read_state(self.run_dir)
        if "pid" not in state:
            return ""
        return f" (pid {state['pid']} on {state.get('host', '?')} since {state.get('updated', '?')}: {state.get('command', '?')})"

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)  # releases the flock
            self.fd = None
            if self.created:
                try:
                    self.run_dir.rmdir()  # only if empty: nothing was written
                except OSError:
                    pass

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


def holder_info() -> dict[str, Any]:
    """Who runs the run, for ``state.json`` while it is running."""
    return {"pid": os.getpid(), "host": socket.gethostname(), "command": " ".join(sys.argv)}


# -- what the folder holds --------------------------------------------------------------------------


def is_run_folder(run_dir: Path) -> bool:
    """Written by ``sftkit train``: it has a state file (or, from before state files, a config with results)."""
    if (run_dir / layout.STATE).is_file():
        return True
    return (run_dir / layout.CONFIG).is_file() and any((run_dir / n).exists() for n in (layout.MODEL, layout.METRICS, layout.TRAIN_LOG))


def foreign_entries(run_dir: Path) -> list[str]:
    """Entries of a folder that is not an sftkit run (nothing sftkit may delete)."""
    if not run_dir.is_dir() or is_run_folder(run_dir):
        return []
    return sorted(p.name for p in run_dir.iterdir() if p.name not in PRE_RUN_ENTRIES)


def has_run(run_dir: Path) -> bool:
    """True when the folder holds a run worth keeping: an sftkit run with a complete checkpoint or model, or one
    that finished or is still running elsewhere. A failed, interrupted or killed start is not worth keeping."""
    return is_run_folder(run_dir) and not restartable(run_dir)


def restartable(run_dir: Path) -> bool:
    """A run that stopped before it wrote a complete checkpoint or a model: starting it again loses nothing.

    ``running`` counts too: call this holding the folder's lock, and a ``running`` state is what a killed
    process left behind."""
    if read_state(run_dir).get("state") not in (FAILED, INTERRUPTED, RUNNING):
        return False
    return not complete_checkpoints(run_dir) and not (run_dir / layout.MODEL).exists()


def step_of(checkpoint: Path) -> int:
    m = _STEP.match(checkpoint.name)
    return int(m.group(1)) if m else -1


def checkpoints(run_dir: Path) -> list[Path]:
    """Every checkpoint-N folder, oldest step first (complete or not)."""
    if not run_dir.is_dir():
        return []
    return sorted((p for p in run_dir.iterdir() if _STEP.match(p.name) and p.is_dir()), key=step_of)


def is_complete(checkpoint: Path, legacy: bool = False) -> bool:
    """Written to the end: it holds the completion marker (``legacy``: a run from before the marker existed,
    whose checkpoints count when the trainer state, written last, is there)."""
    if (checkpoint / layout.CHECKPOINT_COMPLETE).exists():
        return True
    return legacy and (checkpoint / "trainer_state.json").exists()


def complete_checkpoints(run_dir: Path) -> list[Path]:
    found = checkpoints(run_dir)
    legacy = _legacy(run_dir, found)
    return [c for c in found if is_complete(c, legacy)]


def _legacy(run_dir: Path, found: list[Path]) -> bool:
    """The run predates the completion marker: its state does not say it marks checkpoints, and none of its
    checkpoints carries the marker. (A run that does mark them and was killed inside its first checkpoint write
    has no complete checkpoint, however much of the folder was written.)"""
    if read_state(run_dir).get(MARKS_CHECKPOINTS):
        return False
    return not any((c / layout.CHECKPOINT_COMPLETE).exists() for c in found)


def mark_complete(checkpoint: Path, step: int) -> None:
    """Flush every file of a written checkpoint to disk, then write the completion marker."""
    flush_tree(checkpoint)
    write_json(checkpoint / layout.CHECKPOINT_COMPLETE, {"step": step, "written": _now()})
    _fsync_dir(checkpoint)
    _fsync_dir(checkpoint.parent)


def rotate_checkpoints(run_dir: Path, limit: int | None, keep: str | None = None) -> None:
    """Keep the newest ``limit`` complete checkpoints (and ``keep``, the best one); delete older ones, and
    incomplete ones older than the newest complete checkpoint."""
    complete = complete_checkpoints(run_dir)
    if not complete:
        return
    newest = step_of(complete[-1])
    doomed = [c for c in checkpoints(run_dir) if c not in complete and step_of(c) < newest]
    if limit:
        doomed += [c for c in complete[:-limit] if not keep or Path(keep).resolve() != c.resolve()]
    for c in doomed:
        shutil.rmtree(c, ignore_errors=True)


# -- state ------------------------------------------------------------------------------------------


def read_state(run_dir: Path) -> dict[str, Any]:
    try:
        data = json.loads((run_dir / layout.STATE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def write_state(run_dir: Path, state: str, **extra: Any) -> None:
    """Record where the run stands (``running``, ``failed``, ``interrupted``, ``finished``)."""
    data = {**read_state(run_dir), "state": state, "updated": _now(), **extra}
    if state != FAILED:
        data.pop("error", None)
    if state != RUNNING:
        for key in holder_info():
            data.pop(key, None)
    write_json(run_dir / layout.STATE, data)


def record_end(run_dir: Path, state: str, **extra: Any) -> None:
    """:func:`write_state` for a run that is ending badly: a full disk must not hide the error that ended it."""
    try:
        write_state(run_dir, state, **extra)
    except OSError:
        pass


# -- starting -----------------------------------------------------------------------------------------


def start_run_dir(cfg: RunConfig, resume: str | None, overwrite: bool) -> tuple[Path, str | None, list[str]]:
    """Create (or check) the run folder; return it, the checkpoint to resume from (if any) and notes for the user.

    Call it holding the folder's :class:`RunLock`."""
    run_dir = run_dir_of(cfg)
    if resume and overwrite:
        raise SftkitError("--resume and --overwrite contradict each other", hint="continue the run (--resume) or replace it (--overwrite), not both", exit_code=EXIT_USAGE)
    if not os.access(run_dir, os.W_OK):
        raise SftkitError(f"cannot write to the run folder {run_dir}: permission denied", hint="choose a train.output_dir (--output-dir) you can write to", exit_code=EXIT_USAGE)
    notes = recover(run_dir)
    if resume:
        checkpoint, skipped = find_checkpoint(cfg, run_dir, resume)  # also: the config changes nothing it trained with
        if resume == "latest":
            check_not_finished(cfg, run_dir)
        notes += skipped + _new_length(cfg, run_dir, checkpoint)
        write_state(run_dir, RUNNING, **holder_info())
        return run_dir, checkpoint, notes
    foreign = foreign_entries(run_dir)
    if foreign:
        shown = ", ".join(foreign[:3]) + (f" and {len(foreign) - 3} more" if len(foreign) > 3 else "")
        raise SftkitError(
            f"{run_dir} is not an sftkit run folder (it holds {shown}); sftkit will not write into it or delete it",
            hint="choose another train.output_dir (--output-dir), or empty that folder yourself",
            exit_code=EXIT_USAGE,
        )
    if has_run(run_dir):
        if not overwrite:
            state = read_state(run_dir).get("state", "unknown")
            hint = "continue it (--resume), replace it (--overwrite) or choose another train.output_dir"
            if state == FINISHED:
                hint = f"{more_steps_hint(run_dir)}; or replace it (--overwrite)"
            raise SftkitError(f"run folder {run_dir} already holds a run ({state})", hint=hint, exit_code=EXIT_USAGE)
        _move_aside(run_dir)
        notes.append(f"the previous run in {run_dir} is kept in {run_dir / layout.REPLACED} until this one writes its first checkpoint")
    elif run_dir.is_dir():  # what a failed, interrupted or killed start left: nothing worth keeping
        _clear(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(run_dir / layout.CONFIG, dump_yaml(cfg.to_dict()))
    # `started` and MARKS_CHECKPOINTS stay through resumptions
    write_state(run_dir, RUNNING, started=_now(), **{MARKS_CHECKPOINTS: True}, **holder_info())
    return run_dir, None, notes


def recover(run_dir: Path) -> list[str]:
    """Tidy what a process killed mid-write left behind; return what was done, for the user."""
    notes: list[str] = []
    if not run_dir.is_dir():
        return notes
    (run_dir / layout.STOP).unlink(missing_ok=True)
    shutil.rmtree(run_dir / layout.MODEL_TMP, ignore_errors=True)
    old = run_dir / layout.MODEL_OLD
    if old.is_dir():
        if (run_dir / layout.MODEL).exists():
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(old, run_dir / layout.MODEL)
    if (run_dir / layout.REPLACED).is_dir() and settle_replaced(run_dir) == "restored":
        notes.append(f"an --overwrite of {run_dir} stopped before its first checkpoint: the previous run was put back")
    return notes


def settle_replaced(run_dir: Path) -> str | None:
    """The run an ``--overwrite`` moved aside: deleted once the new run has a complete checkpoint or a model,
    otherwise put back. Returns ``"deleted"``, ``"restored"`` or None (nothing aside)."""
    aside = run_dir / layout.REPLACED
    if not aside.is_dir():
        return None
    if complete_checkpoints(run_dir) or (run_dir / layout.MODEL).exists():
        shutil.rmtree(aside)
        return "deleted"
    _clear(run_dir)
    for entry in aside.iterdir():
        os.replace(entry, run_dir / entry.name)
    aside.rmdir()
    return "restored"


def discard_replaced(run_dir: Path) -> None:
    """The new run has a complete checkpoint: the run it replaces can go."""
    if (run_dir / layout.REPLACED).is_dir() and complete_checkpoints(run_dir):
        shutil.rmtree(run_dir / layout.REPLACED, ignore_errors=True)


def _move_aside(run_dir: Path) -> None:
    aside = run_dir / layout.REPLACED
    aside.mkdir()
    for entry in run_dir.iterdir():
        if entry.name not in PRE_RUN_ENTRIES and entry.name != layout.REPLACED:
            os.replace(entry, aside / entry.name)


def _clear(run_dir: Path) -> None:
    for entry in run_dir.iterdir():
        if entry.name not in PRE_RUN_ENTRIES and entry.name != layout.REPLACED:
            shutil.rmtree(entry) if entry.is_dir() and not entry.is_symlink() else entry.unlink()


# -- a finished run: more steps, or a new run from its model -------------------------------------------


def finished_steps(run_dir: Path) -> int | None:
    """The steps a finished run trained (None when the folder holds no finished run)."""
    state = read_state(run_dir)
    if state.get("state") != FINISHED or not (run_dir / layout.MODEL).exists():
        return None
    steps = state.get("steps")
    if isinstance(steps, int):
        return steps
    complete = complete_checkpoints(run_dir)
    return step_of(complete[-1]) if complete else 0


def more_steps_hint(run_dir: Path) -> str:
    """How to go on from a finished run: more steps in the same folder, or a new run starting from its model."""
    done = finished_steps(run_dir) or 0
    more = done + max(done // 2, 10)
    return (
        f"train it further: sftkit train --config {run_dir / layout.CONFIG} --resume --set train.max_iters={more} "
        f"(any number above {done}); or start a new run from its model: --set model.name={run_dir / layout.MODEL} "
        f"--output-dir {run_dir}-more"
    )


class AlreadyFinished(Exception):
    """``--resume`` of a run that finished, asking for no more steps than it trained: nothing to train. Not an
    error (a job that resumes on every restart may find its run done); :attr:`note` says so and how to go on."""

    def __init__(self, run_dir: Path, steps: int, note: str) -> None:
        super().__init__(note)
        self.run_dir, self.steps, self.note = run_dir, steps, note


def check_not_finished(cfg: RunConfig, run_dir: Path) -> None:
    """``--resume`` of a finished run trains only with a larger ``train.max_iters`` than the steps it trained;
    otherwise :class:`AlreadyFinished` is raised."""
    done = finished_steps(run_dir)
    if done is None or (cfg.train.max_iters or 0) > done:
        return
    asked = f"train.max_iters is {cfg.train.max_iters}" if cfg.train.max_iters else "the run trains by epochs"
    raise AlreadyFinished(run_dir, done, f"the run in {run_dir} already finished ({done} steps, {asked}): nothing more to train; {more_steps_hint(run_dir)}")


def _new_length(cfg: RunConfig, run_dir: Path, checkpoint: str) -> list[str]:
    """A resumed run given another ``train.max_iters``: record it in the run's config, and say what happens to
    the learning rate. transformers builds the schedule again for the new total and restores the optimiser and
    scheduler at the checkpoint's step: the first step after it still runs at the rate the old schedule had
    reached there, every later step at the new schedule's rate for that step."""
    saved, _ = load_yaml(run_dir / layout.CONFIG)
    before = _get(saved, "train.max_iters")
    now = cfg.train.max_iters
    if now == before or now is None:
        return []
    atomic_write_text(run_dir / layout.CONFIG, dump_yaml(cfg.to_dict()))
    state = json.loads((Path(checkpoint) / "trainer_state.json").read_text(encoding="utf-8"))
    step, planned = int(state.get("global_step", 0)), int(state.get("max_steps") or before or 0)
    was = f"{before}" if before is not None else f"unset ({planned} steps by epochs)"
    note = (
        f"train.max_iters {was} -> {now}: continuing from {Path(checkpoint).name} for {now - step} more steps; "
        f"the learning-rate schedule ({cfg.train.scheduler}) is computed again for {now} steps"
    )
    rates = _scheduled_lrs(cfg, [(planned, step), (now, step + 1), (now, now - 1)])
    if rates is None or now - step < 2:
        return [note]
    reached, following, last = rates
    return [
        (
            f"{note}: step {step + 1} runs at the rate the {planned}-step schedule had reached ({reached:.3g}), then each "
            f"step at the rate of a {now}-step run ({following:.3g} at step {step + 2}, {last:.3g} at step {now})"
        )
    ]


def _scheduled_lrs(cfg: RunConfig, points: list[tuple[int, int]]) -> list[float] | None:
    """For each ``(total, step)``: the learning rate the run's scheduler sets after ``step`` optimiser steps of a
    ``total``-step run (the rate step ``step + 1`` runs at), built as the trainer builds it. None if it cannot be."""
    try:
        from sftkit.modeling import quiet_transformers
        from sftkit.training.args import build_scheduler, build_trainer_config

        with quiet_transformers():
            config = build_trainer_config(cfg)
            schedulers = [(build_scheduler(cfg, config, total_steps=total), step) for total, step in points]
        return [cfg.train.learning_rate * scheduler.lr_lambdas[0](step) for scheduler, step in schedulers]
    except Exception:  # noqa: BLE001 - the figures only illustrate the note; the note stands without them
        return None


def find_checkpoint(cfg: RunConfig, run_dir: Path, resume: str) -> tuple[str, list[str]]:
    """The checkpoint to resume from and notes on what was skipped: ``resume`` is ``latest`` (the newest complete
    checkpoint; incomplete ones after it are removed) or a checkpoint folder."""
    notes: list[str] = []
    if resume != "latest":
        ckpt = Path(resume)
        if not (ckpt / "trainer_state.json").exists():
            raise SftkitError(f"{resume} is not a checkpoint folder (no trainer_state.json)", hint="pass a checkpoint-N folder", exit_code=EXIT_USAGE)
        if not is_complete(ckpt, legacy=_legacy(ckpt.parent, checkpoints(ckpt.parent))):
            raise SftkitError(f"{resume} is incomplete: the run stopped while writing it", hint="resume from the latest complete checkpoint: --resume", exit_code=EXIT_USAGE)
    else:
        complete = complete_checkpoints(run_dir)
        newest = step_of(complete[-1]) if complete else -1
        for c in checkpoints(run_dir):
            if c not in complete and step_of(c) > newest:
                shutil.rmtree(c, ignore_errors=True)
                notes.append(f"skipped {c.name}: incomplete (the run stopped while writing it); removed")
        if not complete:
            if restartable(run_dir) or not is_run_folder(run_dir):
                hint = f"start it again: the same command without --resume (nothing in {run_dir} is lost by that)"
            else:
                hint = "start the run again without --resume, adding --overwrite"
            raise SftkitError(f"nothing to resume: no complete checkpoint in {run_dir}", hint=hint, exit_code=EXIT_USAGE)
        ckpt = complete[-1]
    check_resumable(cfg, run_dir, _global_step(Path(ckpt)))
    return str(ckpt), notes


def _global_step(checkpoint: Path) -> int:
    try:
        return int(json.loads((checkpoint / "trainer_state.json").read_text(encoding="utf-8")).get("global_step", 0))
    except (OSError, ValueError, TypeError):
        return max(step_of(checkpoint), 0)


def check_resumable(cfg: RunConfig, run_dir: Path, step: int | None = None) -> None:
    """The config a run is resumed with changes nothing it trained with, beyond :data:`RESUMABLE_CHANGES` and a
    ``train.max_iters`` above ``step`` (the checkpoint's): more (or fewer, not yet trained) steps."""
    saved_path = run_dir / layout.CONFIG
    if not saved_path.exists():
        raise SftkitError(f"{saved_path} is missing: cannot check that the run can be resumed", exit_code=EXIT_USAGE)
    saved, _ = load_yaml(saved_path)
    changed = [k for k in _diff(saved, cfg.to_dict()) if not k.startswith(RESUMABLE_CHANGES)]
    if step is not None and cfg.train.max_iters and cfg.train.max_iters > step:
        changed = [k for k in changed if k != "train.max_iters"]
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


def flush_tree(folder: Path) -> None:
    """Every file under ``folder`` on disk (not only in the page cache), then the folder itself."""
    for f in folder.rglob("*"):
        if f.is_file():
            _fsync(f)
    _fsync_dir(folder)


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(path: Path) -> None:
    try:
        _fsync(path)
    except OSError:  # not every platform can open a folder
        pass
