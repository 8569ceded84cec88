"""How many processes run the training recipe: this one, or several under torchrun (rank 0 alone prints
and writes). :func:`launch` is what the Python API's ``train`` calls; each process runs
:func:`sftkit.training.pipeline.run_pipeline`.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sftkit.layout as layout
from sftkit.config import RunConfig
from sftkit.errors import SftkitError
from sftkit.training.pipeline import TrainResult


@dataclass
class Processes:
    """Where the run's processes go: ``nproc`` per node on ``nnodes`` nodes (1 x 1: this process)."""

    nproc: int = 1
    nnodes: int = 1
    node_rank: int = 0
    master_addr: str = "127.0.0.1"
    master_port: int = 29500

    @property
    def distributed(self) -> bool:
        return self.nproc * self.nnodes > 1


def launch(
    cfg: RunConfig,
    *,
    resume: str | None = None,
    overwrite: bool = False,
    processes: Processes | None = None,
    console: Any | None = None,
    live: bool = False,
) -> TrainResult:
    """Run the training recipe in this process, or start torchrun for several."""
    processes = processes or Processes()
    if processes.distributed and "LOCAL_RANK" not in os.environ:
        return _launch_torchrun(cfg, resume, overwrite, processes, console)
    from sftkit.training.pipeline import run_pipeline

    return run_pipeline(cfg, resume=resume, overwrite=overwrite, console=console, live=live)


def _launch_torchrun(cfg: RunConfig, resume: str | None, overwrite: bool, p: Processes, console: Any | None) -> TrainResult:
    """Hold the run folder's lock, create it and prepare the data once here, then run torchrun on the run's own
    config file, in its own session: Ctrl-C and SIGTERM reach this process, which asks every rank to stop at the
    same step (through the folder's stop file) and, on a second signal, kills them all."""
    import contextlib

    from sftkit.training.rundir import RunLock, run_dir_of, settle_replaced

    run_dir = run_dir_of(cfg)
    with RunLock(run_dir) if p.node_rank == 0 else contextlib.nullcontext():
        try:
            return _run_torchrun(cfg, resume, overwrite, p, console)
        finally:
            if p.node_rank == 0:
                settle_replaced(run_dir)


def _run_torchrun(cfg: RunConfig, resume: str | None, overwrite: bool, p: Processes, console: Any | None) -> TrainResult:
    from sftkit.errors import InterruptedRun
    from sftkit.training.rundir import (
        FAILED,
        INTERRUPTED,
        complete_checkpoints,
        read_state,
        record_end,
        run_dir_of,
        start_run_dir,
    )

    if p.node_rank == 0:
        from sftkit.training.pipeline import finished_already
        from sftkit.training.rundir import AlreadyFinished

        try:
            run_dir, _, notes = start_run_dir(cfg, resume, overwrite)
        except AlreadyFinished as done:
            return finished_already(done, console)
        for note in notes:
            if console is not None:
                console.print(f"[dim]note: {note}[/]")
        try:
            from sftkit.data.prepare import prepare_data
            from sftkit.modeling import tokenizer_for

            prepare_data(cfg, tokenizer=tokenizer_for(cfg))
        except KeyboardInterrupt:
            record_end(run_dir, INTERRUPTED)
            raise InterruptedRun("interrupted while preparing the data", hint="start it again with the same command (nothing is lost)") from None
        except BaseException as err:
            record_end(run_dir, FAILED, error=f"{type(err).__name__}: {err}")
            raise
    else:
        run_dir = run_dir_of(cfg)
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        f"--nproc_per_node={p.nproc}",
        f"--nnodes={p.nnodes}",
        f"--node_rank={p.node_rank}",
        f"--master_addr={p.master_addr}",
        f"--master_port={p.master_port}",
        "-m",
        "sftkit.training.worker",
        str(run_dir / layout.CONFIG),
        "--resume" if resume else "--fresh",
        resume or "",
        *(["--trust-formatting-func"] if cfg.formatting_func_trusted else []),
    ]
    if console is not None:
        console.print(f"launching {p.nproc * p.nnodes} processes: {' '.join(cmd[2:8])}")
    from sftkit.training.batching import choose_threads

    threads, _ = choose_threads(cfg.train.threads, p.nproc)  # torchrun would give each process one thread
    code, stopped = _supervise(cmd, run_dir / layout.STOP, console, {**os.environ, "OMP_NUM_THREADS": str(threads)})
    if stopped:
        if p.node_rank == 0:
            record_end(run_dir, INTERRUPTED)
        done = complete_checkpoints(run_dir)
        hint = (
            f"resume with: sftkit train --config {run_dir / layout.CONFIG} --resume --nproc {p.nproc}"
            if done
            else "start it again with the same command (it stopped before its first checkpoint: nothing is lost)"
        )
        raise InterruptedRun(f"stopped by {stopped}" + (f"; checkpoint saved in {done[-1]}" if done else ""), hint=hint)
    if code != 0:
        if p.node_rank == 0 and read_state(run_dir).get("state") not in (FAILED, INTERRUPTED):
            record_end(run_dir, FAILED, error=f"a process exited with code {code}")
        raise SftkitError(
            f"distributed run failed (exit code {code})",
            hint=f"see {run_dir / layout.TRAIN_LOG} and the output above",
            exit_code=code if code > 1 else 1,
        )
    metrics_path = run_dir / layout.FINAL_METRICS
    metrics = json.loads(metrics_path.read_text(encoding="utf-8")) if metrics_path.exists() else {}
    return TrainResult(Path(run_dir), Path(run_dir) / layout.MODEL, metrics)


def _supervise(cmd: list[str], stop_file: Path, console: Any | None, env: dict[str, str]) -> tuple[int, str | None]:
    """Run torchrun and wait. The first Ctrl-C/SIGTERM writes the stop file (every rank stops after the same
    step and saves a checkpoint); a second kills torchrun, and with it every worker (they die with their parent).
    Returns the exit code and the signal that stopped the run, if any."""
    proc = subprocess.Popen(cmd, start_new_session=True, preexec_fn=die_with_parent, env=env)
    stopped: list[str] = []

    def handle(signum, frame):
        name = signal.Signals(signum).name
        if not stopped:
            stopped.append(name)
            stop_file.write_text(name, encoding="utf-8")
            if console is not None:
                console.print(f"[yellow]{name}: every process stops after the current step and saves a checkpoint (again to abort)[/]")
        else:
            _kill(proc)

    previous = {sig: signal.signal(sig, handle) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        while True:
            try:
                code = proc.wait()
                break
            except InterruptedError:
                continue
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if proc.poll() is None:
            _kill(proc)
        stop_file.unlink(missing_ok=True)
    return code, stopped[0] if stopped else None


def _kill(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    proc.wait()


def die_with_parent() -> None:
    """In a child process (Linux): die with SIGKILL when the parent dies, so no worker outlives the launcher."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:
        pass
