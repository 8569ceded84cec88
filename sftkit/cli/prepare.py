"""`sftkit prepare`."""

# No `from __future__ import annotations` here: typer reads the parameters' annotations, and string annotations
# would be compiled and evaluated (twice) each time the help is built; as objects they cost nothing more.

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from sftkit.cli.options import (
    TRUST_FLAG,
    ConfigOpt,
    JsonOpt,
    PresetOpt,
    SetOpt,
    TrainerTypeOpt,
    TrustFormattingFuncOpt,
    load_config,
    naming_flags,
)


def prepare(
    preset: PresetOpt = None,
    config: ConfigOpt = None,
    set_: SetOpt = None,
    data: Annotated[
        Optional[str],
        typer.Option("--data", "-d", help="Training data: a file, a save_to_disk folder, a Hub id or builtin:tiny (data.dataset)."),
    ] = None,
    tokenizer: Annotated[
        Optional[str], typer.Option("--tokenizer", help="Tokenizer folder or Hub id, when not the model's own (model.tokenizer).")
    ] = None,
    format_: Annotated[
        Optional[str], typer.Option("--format", "-f", help="Row format instead of auto-detection (data.format), e.g. alpaca, sharegpt, dpo.")
    ] = None,
    template: Annotated[
        Optional[str],
        typer.Option("--template", help="auto, chat, chatml, alpaca, arabic or a string with {instruction} and {response} (data.template)."),
    ] = None,
    output: Annotated[
        Optional[Path], typer.Option("--output", "-o", help="Prepared folder (data.prepared_dir; default <output_dir>/prepared).", file_okay=False)
    ] = None,
    trainer_type: TrainerTypeOpt = None,
    skip_invalid: Annotated[
        bool, typer.Option("--skip-invalid", help="Skip unusable rows instead of failing; they are listed in dropped.jsonl (data.skip_invalid).")
    ] = False,
    preview: Annotated[
        int, typer.Option("--preview", min=0, metavar="N", help="Show N prepared examples with the trained-on part highlighted.")
    ] = 0,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Prepare again even when a matching prepared folder exists.")] = False,
    trust_formatting_func: TrustFormattingFuncOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Read, clean and tokenise the training data into a reusable prepared folder.

    Every row not used is listed in the folder's dropped.jsonl with its reason (duplicate, too_long, invalid...),
    an explanation, its file:line and the row itself.
    """
    flags = {
        "--data": ("data.dataset", data),
        "--tokenizer": ("model.tokenizer", tokenizer),
        "--format": ("data.format", format_),
        "--template": ("data.template", template),
        "--output": ("data.prepared_dir", str(output) if output else None),
        "--skip-invalid": ("data.skip_invalid", True if skip_invalid else None),
        "--trainer-type": ("trainer_type", trainer_type.lower() if trainer_type else None),
    }
    resolved = load_config(preset, config, set_, flags)
    cfg = resolved.config
    from sftkit import api
    from sftkit.console import console, escape, stdout_write
    from sftkit.data.prepare import summary
    from sftkit.data.sources import has_split

    origin = resolved.sources.get("data.validation_split", "")
    if data and cfg.data.validation_split and not origin.startswith("--") and has_split(data, cfg.data.validation_split) is False:
        console.print(f"[dim]note: {data} has no {cfg.data.validation_split!r} split; data.validation_split from {origin} is not used[/]")
        cfg = cfg.model_copy(update={"data": cfg.data.model_copy(update={"validation_split": None})})
    from sftkit.progress import task

    flags = {"data.skip_invalid=true": "data.skip_invalid=true (--skip-invalid)", **TRUST_FLAG}
    with naming_flags(flags), task(console, "preparing data", unit="rows"):  # the rows are counted as they are encoded
        prepared = api.prepare(cfg, overwrite=overwrite, trust_formatting_func=trust_formatting_func)
    for note in prepared.notes:
        console.print(f"[dim]note: {escape(note)}[/]")
    if prepared.reused:
        console.print(f"[dim]reusing {prepared.path}: sources, tokenizer and settings are unchanged (--overwrite prepares again)[/]")
    elif prepared.changed:
        console.print(f"[dim]prepared again: changed {', '.join(prepared.changed)}[/]")
    if preview:
        from sftkit.data.preview import examples, legend

        console.print(legend(cfg.trainer_type))
        for panel in examples(prepared.train, prepared.tokenizer, preview, cfg.trainer_type):
            console.print(panel)
    from sftkit.data.preview import summary_table

    console.print(summary_table(prepared.manifest, str(prepared.path), prepared.reused))
    if as_json:
        stdout_write(json.dumps(summary(prepared), indent=2, ensure_ascii=False) + "\n")
