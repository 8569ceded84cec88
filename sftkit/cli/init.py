"""`sftkit init`."""

# No `from __future__ import annotations` here: typer reads the parameters' annotations, and string annotations
# would be compiled and evaluated (twice) each time the help is built; as objects they cost nothing more.

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from sftkit.cli._facts import CONFIG_FILE as CONFIG
from sftkit.cli._facts import PRECISIONS, TRACKING
from sftkit.cli.options import OutputDirOpt, PresetOpt, TrainerTypeOpt
from sftkit.errors import ConfigError
from sftkit.names import FULL, LORA, METHODS, QLORA

PANEL = "Answers (each one skips its question)"

#: the flag that gives each wizard answer, and the other flags the wizard's errors may name
FLAGS = {
    "trainer_type": "--trainer-type",
    "preset": "--preset",
    "model": "--model",
    "dataset": "--data",
    "method": "--method",
    "learning_rate": "--lr",
    "batch_size": "--batch-size",
    "gradient_accumulation_steps": "--grad-accum",
    "max_iters": "--max-iters",
    "num_train_epochs": "--epochs",
    "max_seq_length": "--max-seq-length",
    "precision": "--precision",
    "tracking": "--tracking",
    "trackio_space": "--trackio-space",
    "output_dir": "--output-dir",
    "experiment_name": "--experiment-name",
    "yes": "--yes",
    "overwrite": "--overwrite",
    "path": "--config-path",
}


def init(
    preset: PresetOpt = None,
    trainer_type: TrainerTypeOpt = None,
    model: Annotated[
        Optional[str], typer.Option("--model", "-m", help="Hub id (org/name) or local folder.", rich_help_panel=PANEL)
    ] = None,
    data: Annotated[
        Optional[str],
        typer.Option("--data", "-d", help="Training data: a file, a folder or a Hub dataset id.", rich_help_panel=PANEL),
    ] = None,
    method: Annotated[
        Optional[str], typer.Option("--method", help=f"Training method: {', '.join(METHODS)}.", rich_help_panel=PANEL)
    ] = None,
    lora: Annotated[bool, typer.Option("--lora", help="Same as --method lora.", rich_help_panel=PANEL)] = False,
    qlora: Annotated[bool, typer.Option("--qlora", help="Same as --method qlora.", rich_help_panel=PANEL)] = False,
    full: Annotated[bool, typer.Option("--full", help="Same as --method full.", rich_help_panel=PANEL)] = False,
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
        Optional[str],
        typer.Option(
            "--precision",
            help=f"{', '.join(PRECISIONS)}. Default: detected from the GPU (fp32 without one).",
            rich_help_panel=PANEL,
        ),
    ] = None,
    tracking: Annotated[
        Optional[str],
        typer.Option("--tracking", help=f"Experiment tracker: {', '.join(TRACKING)}.", rich_help_panel=PANEL),
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
    ] = Path(CONFIG),
    yes: Annotated[
        bool, typer.Option("--yes", "-y", help="Ask nothing: take the preset's value for every answer no flag gives.")
    ] = False,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace an existing project file.")] = False,
    train: Annotated[bool, typer.Option("--train", help="Start `sftkit train` once the file is written.")] = False,
    sets: Annotated[
        Optional[list[str]],
        typer.Option(
            "--set",
            help="One of the more settings the summary offers, by its key: KEY=VALUE (data.split, data.format, "
            "data.system_prompt, train.warmup_ratio, lora.r, train.save_steps, ...). Repeatable.",
            rich_help_panel=PANEL,
            metavar="KEY=VALUE",
        ),
    ] = None,
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

    given = {
        "trainer_type": trainer_type.lower() if trainer_type else None,
        "preset": preset,
        "model": model,
        "dataset": data,
        "method": _method(method, lora, qlora, full),
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
    names = dict(FLAGS)
    for item in sets or []:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError(f"--set: expected KEY=VALUE, got {item!r}", hint="e.g. --set train.warmup_ratio=0.03")
        given[key] = raw
        names[key] = f"--set {key}"
    if sets:
        from sftkit.wizard.questions import MORE

        unknown = [k for k in given if "." in k and k not in {q.key for q in MORE}]
        if unknown:
            raise ConfigError(
                f"--set {unknown[0]}: not one of the settings `sftkit init` takes",
                hint=f"init takes: {', '.join(q.key for q in MORE)}; set any other key in the written file or with `sftkit train --set`",
            )
    if from_legacy is not None:
        if given:
            raise ConfigError("--from-legacy takes no other answers", hint="convert first, then edit the written file")
        _convert(from_legacy, config_path, overwrite, yes)
    else:
        from sftkit.wizard.command import init_project

        result = init_project(given, config_path, yes=yes, overwrite=overwrite, train=train, names=names)
        if result.project is None:
            console.print("[yellow]cancelled: nothing was written[/]")
            raise typer.Exit(1)
        for note in result.project.notes:
            console.print(f"[dim]{note}[/]")
        console.print(f"[green]wrote[/] {config_path} (extends {result.project.extends})")
        if result.start_training:
            _start_training(config_path)
            return
    console.print("next:")
    for line in (f"sftkit prepare --config {config_path}", f"sftkit train --config {config_path}"):
        console.print(f"  {line}", highlight=False, markup=False)
    if from_legacy is not None and train:
        _start_training(config_path)


def _method(method: str | None, lora: bool, qlora: bool, full: bool) -> str | None:
    """--method, or the one shorthand given (--lora, --qlora, --full); giving two different ones is an error."""
    picked = {name for name, on in ((LORA, lora), (QLORA, qlora), (FULL, full)) if on}
    if method:
        picked.add(method.lower())
    if len(picked) > 1:
        raise ConfigError(
            f"--method, --lora, --qlora and --full give different methods ({', '.join(sorted(picked))})",
            hint="pass one of them",
        )
    return picked.pop() if picked else None


def _convert(source: Path, path: Path, overwrite: bool, yes: bool) -> None:
    from sftkit.console import console, escape
    from sftkit.legacy.convert import convert_legacy, where, write_conversion
    from sftkit.projectfile import may_write
    from sftkit.wizard.interactive import QuestionaryPrompter

    conv = convert_legacy(source)
    confirm = QuestionaryPrompter().confirm if not yes and sys.stdin.isatty() else None
    if not may_write(path, overwrite=overwrite, confirm=confirm, names=FLAGS):
        console.print("[yellow]cancelled: nothing was written[/]")
        raise typer.Exit(1)
    write_conversion(conv, path)
    written = sum(1 for status in conv.accounted.values() if status == "mapped")
    base = f"extends {conv.extends}" if conv.extends else "on sftkit's defaults"
    console.print(
        f"[green]wrote[/] {escape(str(path))} from {escape(conv.class_name)}: {base}, {written} setting(s) carried over, "
        f"{conv.same_as_base} already what {'the preset holds or ' if conv.extends else ''}sftkit does"
    )
    for note in conv.notes:
        console.print(f"[dim]note: {escape(note)}[/]")
    if conv.skipped:
        console.print(f"[yellow]{len(conv.skipped)} field(s) not carried over (also listed in {escape(str(path))}):[/]")
        for item in conv.skipped:
            # one unwrapped line per field, so file:line stays whole (editors and grep can use it)
            console.print(f"  {escape(where(item, conv.source))}: {escape(item.name)}: {escape(item.reason)}", soft_wrap=True)


def _start_training(path: Path) -> None:
    import subprocess

    from sftkit.console import console

    console.print(f"[bold]starting:[/] sftkit train --config {path}", highlight=False)
    code = subprocess.call([sys.executable, "-m", "sftkit", "train", "--config", str(path)])
    if code:
        raise typer.Exit(code)
