"""`sftkit export`."""

# No `from __future__ import annotations` here: typer reads the parameters' annotations, and string annotations
# would be compiled and evaluated (twice) each time the help is built; as objects they cost nothing more.

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from sftkit.cli._facts import EXPORT_TOLERANCE as DEFAULT_TOLERANCE
from sftkit.cli._facts import Dtype, ExportFormat, GGUFQuant
from sftkit.cli.options import JsonOpt, OverwriteOpt, RunOrModelArg, naming_flags


def export(
    model: RunOrModelArg,
    output: Annotated[Path, typer.Option("--output", "-o", help="Folder to create (it must not exist, or be empty).", file_okay=False, show_default=False)],
    dtype: Annotated[
        Dtype,
        typer.Option("--dtype", help="Weights dtype; auto: the base model's own (float32 when unknown)."),
    ] = "auto",
    max_shard_size: Annotated[str, typer.Option("--max-shard-size", help="Largest safetensors file, e.g. 2GB or 500MB.")] = "5GB",
    overwrite: OverwriteOpt = False,
    no_check: Annotated[bool, typer.Option("--no-check", help="Skip loading the export back and comparing its logits.")] = False,
    tolerance: Annotated[
        Optional[float],
        typer.Option(
            "--tolerance",
            min=0.0,
            help=f"Largest logit difference a float32 export may have from the un-merged model (default {DEFAULT_TOLERANCE:g}); "
            "for gguf/ollama the largest mean KL divergence from the Hugging Face export (default: per --quant).",
        ),
    ] = None,
    format: Annotated[
        ExportFormat,
        typer.Option("--format", help="hf: a Hugging Face folder; gguf: one GGUF file (llama.cpp, LM Studio); ollama: the GGUF and a Modelfile."),
    ] = "hf",
    quant: Annotated[
        Optional[GGUFQuant], typer.Option("--quant", help="GGUF weights (gguf/ollama only; default f16). Smaller: llama.cpp's llama-quantize on the f16 file.")
    ] = None,
    push_to_hub: Annotated[
        Optional[str], typer.Option("--push-to-hub", help="Then upload it to this Hub repository in one commit (token from HF_TOKEN or `hf auth login`).", metavar="REPO")
    ] = None,
    public: Annotated[bool, typer.Option("--public", help="Create the Hub repository public (default: private).")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Export a run as a standalone model folder: LoRA merged, safetensors, tokenizer, model card; checked."""
    from sftkit import api
    from sftkit.console import console, escape, stdout_write

    flags = {"max_shard_size": "--max-shard-size", "push_to_hub": "--push-to-hub", "overwrite=True": "--overwrite", "dtype": "--dtype", "quant": "--quant"}
    with naming_flags(flags):
        result = api.export_model(
            model,
            output,
            dtype=dtype,
            max_shard_size=max_shard_size,
            overwrite=overwrite,
            check=not no_check,
            tolerance=tolerance,
            push_to_hub=push_to_hub,
            public=public,
            progress=True,
            format=format,
            quant=quant,
        )
    what = "LoRA adapter merged into its base model" if result.merged else "full model"
    console.print(f"exported {escape(model)} to {escape(str(result.path))} ({what}, {result.dtype}, {len(result.files)} files)")
    if format != "hf":
        from sftkit.gguf import summary

        for line in summary(result):
            console.print(escape(line))
    elif result.max_abs_diff is not None:
        limit = f" (tolerance {result.tolerance:g})" if result.tolerance is not None else " (not held to a tolerance in this dtype)"
        console.print(f"checked: largest logit difference from the un-merged model {result.max_abs_diff:.3g}{limit}")
    if result.hub_url:
        visibility = "public" if public else "private"
        console.print(f"uploaded to {result.hub_url} ({visibility})")
    if as_json:
        stdout_write(json.dumps(result.as_dict(), indent=2) + "\n")
    else:
        stdout_write(f"{result.path}\n")
