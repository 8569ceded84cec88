"""`sftkit train`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from sftkit.cli.options import ConfigOpt, JsonOpt, OutputDirOpt, PresetOpt, SetOpt, TrainerTypeOpt, load_config


def train(
    preset: PresetOpt = None,
    config: ConfigOpt = None,
    set_: SetOpt = None,
    trainer_type: TrainerTypeOpt = None,
    output_dir: OutputDirOpt = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Resolve and print the full config and the trainer arguments; train nothing.")
    ] = False,
    as_json: JsonOpt = False,
    resume: Annotated[bool, typer.Option("--resume", help="Continue from the latest checkpoint in the run folder.")] = False,
    resume_from: Annotated[
        Optional[Path], typer.Option("--resume-from", help="Continue from this checkpoint folder.", file_okay=False)
    ] = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace an existing run folder.")] = False,
    nproc: Annotated[int, typer.Option("--nproc", min=1, help="Processes per node (DDP through torchrun).")] = 1,
    nnodes: Annotated[int, typer.Option("--nnodes", min=1, help="Number of nodes.")] = 1,
    node_rank: Annotated[int, typer.Option("--node-rank", min=0, help="This node's rank.")] = 0,
    master_addr: Annotated[str, typer.Option("--master-addr", help="Rank-0 node address.")] = "127.0.0.1",
    master_port: Annotated[int, typer.Option("--master-port", help="Rank-0 node port.")] = 29500,
    fsdp: Annotated[Optional[str], typer.Option("--fsdp", help="FSDP options (train.fsdp), e.g. 'full_shard auto_wrap'.")] = None,
    deepspeed: Annotated[Optional[Path], typer.Option("--deepspeed", help="A DeepSpeed JSON config (train.deepspeed).", dir_okay=False)] = None,
) -> None:
    """Fine-tune a model (SFT or DPO) from a preset or project file."""
    flags = {
        "--trainer-type": ("trainer_type", trainer_type.lower() if trainer_type else None),
        "--output-dir": ("train.output_dir", str(output_dir) if output_dir else None),
        "--fsdp": ("train.fsdp", fsdp),
        "--deepspeed": ("train.deepspeed", str(deepspeed) if deepspeed else None),
    }
    resolved = load_config(preset, config, set_, flags)
    if dry_run:
        _print_plan(resolved, as_json)
        return
    from sftkit.training.launch import run_training

    result = run_training(
        resolved,
        resume=str(resume_from) if resume_from else ("latest" if resume else None),
        overwrite=overwrite,
        nproc=nproc,
        nnodes=nnodes,
        node_rank=node_rank,
        master_addr=master_addr,
        master_port=master_port,
    )
    if as_json and result is not None:
        from sftkit.console import stdout_write

        stdout_write(json.dumps(result, indent=2) + "\n")


def _print_plan(resolved, as_json: bool) -> None:
    from sftkit.console import console, stdout_write
    from sftkit.training.args import model_load_args, peft_args, trainer_args
    from sftkit.yamlio import dump_yaml

    cfg = resolved.config
    plan = {
        "config": cfg.to_dict(),
        "trainer": {
            "class": "trl.SFTTrainer" if cfg.trainer_type == "sft" else "trl.DPOTrainer",
            "args": trainer_args(cfg),
        },
        "model_loading": model_load_args(cfg),
        "peft": peft_args(cfg),
    }
    if as_json:
        plan["sources"] = resolved.sources
        stdout_write(json.dumps(plan, indent=2, ensure_ascii=False) + "\n")
        return
    stdout_write(dump_yaml(plan))
    origins = list(dict.fromkeys(layer.origin for layer in resolved.layers if layer.data))
    console.print(f"[dim]resolved from: {' < '.join(['defaults', *origins])} (dry run: nothing trained)[/]")
