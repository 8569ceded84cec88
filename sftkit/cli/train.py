"""`sftkit train`."""

# No `from __future__ import annotations` here: typer reads the parameters' annotations, and string annotations
# would be compiled and evaluated (twice) each time the help is built; as objects they cost nothing more.

import json
import os
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from sftkit.cli.options import (
    TRUST_FLAG,
    ConfigOpt,
    JsonOpt,
    OutputDirOpt,
    OverwriteOpt,
    PresetOpt,
    SetOpt,
    TrainerTypeOpt,
    TrustFormattingFuncOpt,
    load_config,
    naming_flags,
)


def train(
    preset: PresetOpt = None,
    config: ConfigOpt = None,
    set_: SetOpt = None,
    trainer_type: TrainerTypeOpt = None,
    output_dir: OutputDirOpt = None,
    dry_run: Annotated[
        bool,
        typer.Option("--dry-run", help="Resolve the config and build the trainer's real arguments (no model is loaded); print them; train nothing."),
    ] = False,
    as_json: JsonOpt = False,
    resume: Annotated[bool, typer.Option("--resume", help="Continue from the latest checkpoint in the run folder (a finished run: for the steps a larger train.max_iters adds).")] = False,
    resume_from: Annotated[
        Optional[Path], typer.Option("--resume-from", help="Continue from this checkpoint folder.", file_okay=False)
    ] = None,
    overwrite: OverwriteOpt = False,
    nproc: Annotated[int, typer.Option("--nproc", min=1, help="Processes per node (DDP through torchrun).")] = 1,
    nnodes: Annotated[int, typer.Option("--nnodes", min=1, help="Number of nodes.")] = 1,
    node_rank: Annotated[int, typer.Option("--node-rank", min=0, help="This node's rank.")] = 0,
    master_addr: Annotated[str, typer.Option("--master-addr", help="Rank-0 node address.")] = "127.0.0.1",
    master_port: Annotated[int, typer.Option("--master-port", help="Rank-0 node port.")] = 29500,
    fsdp: Annotated[Optional[str], typer.Option("--fsdp", help="FSDP options (train.fsdp), e.g. 'full_shard auto_wrap'.")] = None,
    deepspeed: Annotated[Optional[Path], typer.Option("--deepspeed", help="A DeepSpeed JSON config (train.deepspeed).", dir_okay=False)] = None,
    distributed: Annotated[
        Optional[str],
        typer.Option("--distributed", metavar="fsdp|zero2|zero3", help="A named sharding setup shipped with sftkit (train.distributed); --dry-run shows what it expands to."),
    ] = None,
    trust_formatting_func: TrustFormattingFuncOpt = False,
) -> None:
    """Fine-tune a model (SFT, DPO or KTO) from a preset or project file."""
    from sftkit import api
    from sftkit.console import console, stdout_write

    flags = {
        "--trainer-type": ("trainer_type", trainer_type.lower() if trainer_type else None),
        "--output-dir": ("train.output_dir", str(output_dir) if output_dir else None),
        "--fsdp": ("train.fsdp", fsdp),
        "--deepspeed": ("train.deepspeed", str(deepspeed) if deepspeed else None),
        "--distributed": ("train.distributed", distributed),
    }
    resolved = load_config(preset, config, set_, flags)
    if dry_run:
        _print_plan(resolved, api.plan(resolved.config, processes=nproc * nnodes), as_json)
        return
    cfg = resolved.config
    if int(os.environ.get("RANK", "0")) == 0:
        console.print(_announcement(cfg))
    with naming_flags({"overwrite=True": "--overwrite", "resume='latest'": "--resume", "another train.output_dir": "another --output-dir", **TRUST_FLAG}):
        result = api.train(
            cfg,
            trust_formatting_func=trust_formatting_func,
            resume=str(resume_from) if resume_from else ("latest" if resume else None),
            overwrite=overwrite,
            progress="live" if console.is_terminal else True,
            nproc=nproc,
            nnodes=nnodes,
            node_rank=node_rank,
            master_addr=master_addr,
            master_port=master_port,
        )
    from sftkit.cli.runs import curve_on_terminal

    curve_on_terminal(result.run_dir, console)  # the loss curve, on a terminal only
    for line in _summary(cfg, result):
        console.print(line)
    if as_json:
        payload = {"run_dir": str(result.run_dir), "model_dir": str(result.model_dir), "metrics": result.metrics}
        stdout_write(json.dumps(payload, indent=2) + "\n")


def _announcement(cfg: Any) -> str:
    from sftkit.card import method_of

    steps = f"{cfg.train.max_iters} steps" if cfg.train.max_iters else f"{cfg.train.num_train_epochs:g} epochs"
    return (
        f"[bold]sftkit train[/]: {cfg.trainer_type.upper()} ({method_of(cfg)}) of {cfg.model.name} on "
        f"{cfg.data.dataset or cfg.data.train_file}, {steps} -> {cfg.train.output_dir}"
    )


def _summary(cfg: Any, result: Any) -> list[str]:
    from sftkit import layout

    m = result.metrics
    parts = [f"{k} {m[k]:.4f}" for k in ("train_loss", "eval_loss") if isinstance(m.get(k), (int, float))]
    lines = [f"[green]done[/]: model in {result.model_dir}" + (f" ({', '.join(parts)})" if parts else "")]
    if (result.run_dir / layout.LOSS_PLOT).is_file():
        lines.append(f"loss curve: {result.run_dir / layout.LOSS_PLOT}   |   sftkit runs show {result.run_dir}")
    tr = cfg.tracking
    if tr.enabled and tr.backend == "trackio":
        lines.append(f"dashboard: trackio show --project {tr.project}")
    elif tr.enabled and tr.backend == "tensorboard":
        lines.append(f"dashboard: tensorboard --logdir {result.run_dir / layout.TENSORBOARD}")
    lines.append(f"next: sftkit eval {result.run_dir}   |   sftkit generate {result.run_dir} \"your prompt\"")
    return lines


def _print_plan(resolved: Any, plan: dict[str, Any], as_json: bool) -> None:
    from sftkit.console import console, stdout_write
    from sftkit.yamlio import dump_yaml

    if as_json:
        stdout_write(json.dumps({**plan, "sources": resolved.sources}, indent=2, ensure_ascii=False) + "\n")
        return
    from sftkit.training.memory import plan_lines

    notes, warnings, memory = plan.pop("notes", []), plan.pop("warnings", []), plan.pop("memory", None)
    stdout_write(dump_yaml(plan))
    if memory is not None:  # in words (as YAML comments: the output stays YAML); --json gives the numbers
        stdout_write("".join(f"# {line}\n" for line in plan_lines(memory)))
    for note in notes:
        console.print(f"[yellow]note:[/] {note}")
    for warning in warnings:
        console.print(f"[bold yellow]warning:[/] {warning}")
    origins = list(dict.fromkeys(layer.origin for layer in resolved.layers if layer.data))
    console.print(f"[dim]resolved from: {' < '.join(['defaults', *origins])} (dry run: TRL and peft accepted every argument; nothing trained)[/]")
