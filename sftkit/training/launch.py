"""How many processes run the training recipe: this one, or several under torchrun (rank 0 alone prints
and writes). :func:`launch` is what the Python API's ``train`` calls; each process runs
:func:`sftkit.training.pipeline.run_pipeline`.
"""

from __future__ import annotations

import json
import os
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
    """Create the run folder and prepare the data once here, then start torchrun on the run's own config file."""
    from sftkit.training.rundir import (
        FAILED,
        INTERRUPTED,
        read_state,
        run_dir_of,
        start_run_dir,
        write_state,
    )

    if p.node_rank == 0:
        run_dir, _ = start_run_dir(cfg, resume, overwrite)
        try:
            from sftkit.data.prepare import prepare_data
            from sftkit.modeling import tokenizer_for

            prepare_data(cfg, tokenizer=tokenizer_for(cfg))
        except BaseException as err:
            write_state(run_dir, FAILED, error=f"{type(err).__name__}: {err}")
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
    ]
    if console is not None:
        console.print(f"launching {p.nproc * p.nnodes} processes: {' '.join(cmd[2:8])}")
    code = subprocess.call(cmd)
    if code != 0:
        if p.node_rank == 0 and read_state(run_dir).get("state") not in (FAILED, INTERRUPTED):
            write_state(run_dir, FAILED, error=f"a process exited with code {code}")
        raise SftkitError(
            f"distributed run failed (exit code {code})",
            hint=f"see {run_dir / layout.TRAIN_LOG} and the output above",
            exit_code=code if code > 1 else 1,
        )
    metrics_path = run_dir / layout.FINAL_METRICS
    metrics = json.loads(metrics_path.read_text(encoding="utf-8")) if metrics_path.exists() else {}
    return TrainResult(Path(run_dir), Path(run_dir) / layout.MODEL, metrics)
