"""Start a run: in this process, or under torchrun for several processes (only rank 0 prints and writes)."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

from sftkit.errors import SftkitError
from sftkit.resolve import Resolved


def run_training(
    resolved: Resolved,
    *,
    resume: str | None = None,
    overwrite: bool = False,
    nproc: int = 1,
    nnodes: int = 1,
    node_rank: int = 0,
    master_addr: str = "127.0.0.1",
    master_port: int = 29500,
) -> dict[str, Any] | None:
    from sftkit.console import console

    cfg = resolved.config
    if nproc * nnodes > 1 and "LOCAL_RANK" not in os.environ:
        return _launch_torchrun(resolved, resume, overwrite, nproc, nnodes, node_rank, master_addr, master_port)
    from sftkit.api import train

    _announce(cfg)
    result = train(cfg, resume=resume, overwrite=overwrite, progress="live" if console.is_terminal else True)
    if int(os.environ.get("RANK", "0")) == 0:
        _summarise(cfg, result)
    return {"run_dir": str(result.run_dir), "model_dir": str(result.model_dir), "metrics": result.metrics}


def _announce(cfg) -> None:
    from sftkit.console import console
    from sftkit.training.card import method_of

    if int(os.environ.get("RANK", "0")) != 0:
        return
    steps = f"{cfg.train.max_iters} steps" if cfg.train.max_iters else f"{cfg.train.num_train_epochs:g} epochs"
    console.print(
        f"[bold]sftkit train[/]: {cfg.trainer_type.upper()} ({method_of(cfg)}) of {cfg.model.name} on "
        f"{cfg.data.dataset or cfg.data.train_file}, {steps} -> {cfg.train.output_dir}"
    )


def _summarise(cfg, result) -> None:
    from sftkit.console import console

    m = result.metrics
    parts = [f"{k} {m[k]:.4f}" for k in ("train_loss", "eval_loss") if isinstance(m.get(k), (int, float))]
    console.print(f"[green]done[/]: model in {result.model_dir}" + (f" ({', '.join(parts)})" if parts else ""))
    tr = cfg.tracking
    if tr.enabled and tr.backend == "trackio":
        console.print(f"dashboard: trackio show --project {tr.project}")
    elif tr.enabled and tr.backend == "tensorboard":
        console.print(f"dashboard: tensorboard --logdir {result.run_dir / 'tensorboard'}")
    console.print(f"next: sftkit eval {result.run_dir}   |   sftkit generate {result.run_dir} \"your prompt\"")


def _launch_torchrun(resolved, resume, overwrite, nproc, nnodes, node_rank, master_addr, master_port):
    """Prepare data once here, then start torchrun on the run's own config file."""
    from sftkit.console import console
    from sftkit.modeling import tokenizer_for
    from sftkit.training.rundir import CONFIG_NAME, start_run_dir

    cfg = resolved.config
    if node_rank == 0:
        run_dir, _ = start_run_dir(cfg, resume, overwrite)
        from sftkit.data.prepare import prepare_data

        prepare_data(cfg, tokenizer=tokenizer_for(cfg))
    else:
        from pathlib import Path

        run_dir = Path(cfg.train.output_dir)
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        f"--nproc_per_node={nproc}",
        f"--nnodes={nnodes}",
        f"--node_rank={node_rank}",
        f"--master_addr={master_addr}",
        f"--master_port={master_port}",
        "-m",
        "sftkit.training.worker",
        str(run_dir / CONFIG_NAME),
        "--resume" if resume else "--fresh",
        resume or "",
    ]
    console.print(f"launching {nproc * nnodes} processes: {' '.join(cmd[2:8])}")
    code = subprocess.call(cmd)
    if code != 0:
        raise SftkitError(f"distributed run failed (exit code {code})", hint=f"see {run_dir / 'train.log'} and the output above", exit_code=code if code > 1 else 1)
    from sftkit.training.rundir import MODEL_DIR

    return {"run_dir": str(run_dir), "model_dir": str(run_dir / MODEL_DIR)}
