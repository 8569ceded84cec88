"""`sftkit init`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal, Optional

import typer

from sftkit.cli.options import OutputDirOpt, PresetOpt
from sftkit.errors import ConfigError

PANEL = "Answers (each one skips its question)"


def init(
    preset: PresetOpt = None,
    method: Annotated[
        Optional[Literal["sft", "dpo"]], typer.Option("--method", help="sft or dpo.", rich_help_panel=PANEL)
    ] = None,
    model: Annotated[
        Optional[str], typer.Option("--model", "-m", help="Hub id (org/name) or local folder.", rich_help_panel=PANEL)
    ] = None,
    data: Annotated[
        Optional[str],
        typer.Option("--data", "-d", help="Training data: a file, a folder or a Hub dataset id.", rich_help_panel=PANEL),
    ] = None,
    lora: Annotated[bool, typer.Option("--lora", help="Train LoRA adapters.", rich_help_panel=PANEL)] = False,
    qlora: Annotated[bool, typer.Option("--qlora", help="LoRA on a 4-bit base (CUDA).", rich_help_panel=PANEL)] = False,
    full: Annotated[bool, typer.Option("--full", help="Train every weight.", rich_help_panel=PANEL)] = False,
    lr: Annotated[Optional[float], typer.Option("--lr", help="Learning rate.", rich_help_panel=PANEL)] = None,
    batch_size: Annotated[
        Optional[int], typer.Option("--batch-size", help="Per-device batch size.", rich_help_panel=PANEL)
    ] = None,
    grad_accum: Annotated[
        Optional[int], typer.Option("--grad-accum", help="Gradient accumulation steps.", rich_help_panel=PANEL)
    ] = None,
    max_iters: Annotated[
        Optional[int], typer.Option("--max-iters", help="Training steps.", rich_help_panel=PANEL)
    ] = None,
    epochs: Annotated[
        Optional[float], typer.Option("--epochs", help="Train by epochs instead of steps.", rich_help_panel=PANEL)
    ] = None,
    max_seq_length: Annotated[
        Optional[int], typer.Option("--max-seq-length", help="Longest sequence in tokens.", rich_help_panel=PANEL)
    ] = None,
    precision: Annotated[
        Optional[Literal["bf16", "fp16", "fp32"]],
        typer.Option("--precision", help="Default: detected from the GPU (fp32 without one).", rich_help_panel=PANEL),
    ] = None,
    tracking: Annotated[
        Optional[Literal["trackio", "trackio-space", "tensorboard", "wandb", "none"]],
        typer.Option("--tracking", help="Experiment tracker.", rich_help_panel=PANEL),
    ] = None,
    trackio_space: Annotated[
        Optional[str], typer.Option("--trackio-space", help="Sync trackio to this Space (user/space).", rich_help_panel=PANEL)
    ] = None,
    output_dir: OutputDirOpt = None,
    experiment_name: Annotated[
        Optional[str], typer.Option("--experiment-name", help="Run name in the tracker.", rich_help_panel=PANEL)
    ] = None,
    config_path: Annotated[
        Path, typer.Option("--config-path", help="Where to write the project file.", dir_okay=False)
    ] = Path("sftkit.yaml"),
    yes: Annotated[
        bool, typer.Option("--yes", "-y", help="Ask nothing: take the preset's value for every answer no flag gives.")
    ] = False,
    force: Annotated[bool, typer.Option("--force", "-f", help="Replace an existing project file.")] = False,
    train: Annotated[bool, typer.Option("--train", help="Start `sftkit train` once the file is written.")] = False,
    from_legacy: Annotated[
        Optional[Path],
        typer.Option(
            "--from-legacy",
            help="Convert an old SmolLM3 config .py file instead of asking (the file is read, never run).",
            dir_okay=False,
        ),
    ] = None,
) -> None:
    """Create sftkit.yaml: a few questions (or flags), a summary, then the next commands."""
    from sftkit.console import console

    adapters = [name for name, on in (("lora", lora), ("qlora", qlora), ("full", full)) if on]
    if len(adapters) > 1:
        raise ConfigError("--lora, --qlora and --full exclude each other", hint="pass one of them")
    given = {
        "method": method,
        "preset": preset,
        "model": model,
        "dataset": data,
        "adapter": adapters[0] if adapters else None,
        "learning_rate": lr,
        "batch_size": batch_size,
        "gradient_accumulation_steps": grad_accum,
        "max_iters": max_iters,
        "num_train_epochs": epochs,
        "max_seq_length": max_seq_length,
        "precision": precision,
        "tracking": tracking,
        "trackio_space": trackio_space,
        "output_dir": str(output_dir) if output_dir else None,
        "experiment_name": experiment_name,
    }
    given = {k: v for k, v in given.items() if v is not None}
    if from_legacy is not None:
        if given:
            raise ConfigError("--from-legacy takes no other answers", hint="convert first, then edit the written file")
        _convert(from_legacy, config_path, force, yes)
    else:
        from sftkit.wizard import init_project

        result = init_project(given, config_path, yes=yes, force=force, train=train)
        if result.project is None:
            console.print("[yellow]cancelled: nothing was written[/]")
            raise typer.Exit(1)
        for note in result.project.notes:
            console.print(f"[dim]{note}[/]")
        console.print(f"[green]wrote[/] {config_path} (extends {result.project.preset})")
        if result.start_training:
            _start_training(config_path)
            return
    console.print("next:")
    from sftkit.wizard import next_commands

    for line in next_commands(config_path):
        console.print(f"  {line}", highlight=False, markup=False)
    if from_legacy is not None and train:
        _start_training(config_path)


def _convert(source: Path, path: Path, force: bool, yes: bool) -> None:
    import sys

    from sftkit.console import console, escape
    from sftkit.legacy import convert_legacy, write_conversion
    from sftkit.presets import display_path
    from sftkit.wizard import QuestionaryPrompter, may_write

    conv = convert_legacy(source)
    ask = not yes and sys.stdin.isatty()
    if not may_write(path, force=force, prompter=QuestionaryPrompter() if ask else None):
        console.print("[yellow]cancelled: nothing was written[/]")
        raise typer.Exit(1)
    write_conversion(conv, path)
    console.print(
        f"[green]wrote[/] {escape(str(path))} from {escape(conv.class_name)}: extends {conv.extends}, "
        f"{len(conv.mapped)} value(s) mapped, {conv.same_as_base} equal to the old defaults (already in the preset)"
    )
    for note in conv.notes:
        console.print(f"[dim]note: {escape(note)}[/]")
    if conv.skipped:
        console.print(f"[yellow]{len(conv.skipped)} field(s) not carried over:[/]")
        shown = display_path(source)
        for item in conv.skipped:
            # one unwrapped line per field, so file:line stays whole (editors and grep can use it)
            console.print(f"  {escape(shown)}:{item.line}: {escape(item.name)}: {escape(item.reason)}", soft_wrap=True)


def _start_training(path: Path) -> None:
    import subprocess

    from sftkit.console import console
    from sftkit.wizard import train_command

    command = train_command(path)
    console.print(f"[bold]starting:[/] sftkit train --config {path}", highlight=False)
    code = subprocess.call(command)
    if code:
        raise typer.Exit(code)
