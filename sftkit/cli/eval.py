"""`sftkit eval`."""

# No `from __future__ import annotations` here: typer reads the parameters' annotations, and string annotations
# would be compiled and evaluated (twice) each time the help is built; as objects they cost nothing more.

import json
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from sftkit.cli.options import (
    TRUST_FLAG,
    JsonOpt,
    RunOrModelArg,
    TemplateOpt,
    TrustFormattingFuncOpt,
    naming_flags,
)

#: metrics shown as percentages
_FRACTIONS = ("exact_match", "contains", "eval_preference_accuracy")


def eval_(
    model: RunOrModelArg,
    data: Annotated[
        Optional[str],
        typer.Option("--data", "-d", help="Evaluate on this data (file, save_to_disk folder or Hub id) instead of the run's validation split."),
    ] = None,
    split: Annotated[Optional[str], typer.Option("--split", help="Split of --data (Hub datasets, saved folders, JSON objects of splits).")] = None,
    compare: Annotated[
        Optional[str],
        typer.Option(
            "--compare",
            help="Also evaluate this base model (Hub id, folder, builtin:tiny; 'base': the model the run started from) and show both side by side.",
            metavar="BASE",
        ),
    ] = None,
    template: TemplateOpt = None,
    batch_size: Annotated[Optional[int], typer.Option("--batch-size", "-b", min=1, help="Rows per batch (default: the run's eval batch size).")] = None,
    max_new_tokens: Annotated[
        Optional[int], typer.Option("--max-new-tokens", min=1, help="Generation budget for answers (default: longest reference + 16 tokens).")
    ] = None,
    no_generate: Annotated[bool, typer.Option("--no-generate", help="Skip generating answers (exact match, contains, chrF, BLEU).")] = False,
    output: Annotated[
        Optional[Path], typer.Option("--output", "-o", help="Write the results JSON here (default: <run>/eval/<name>.json).", dir_okay=False)
    ] = None,
    trust_formatting_func: TrustFormattingFuncOpt = False,
    harness: Annotated[
        Optional[str],
        typer.Option(
            "--harness",
            help="Run lm-evaluation-harness tasks instead (names or task YAML files, comma-separated; needs the lm-eval package).",
            metavar="TASK[,TASK...]",
        ),
    ] = None,
    num_fewshot: Annotated[Optional[int], typer.Option("--num-fewshot", min=0, help="Few-shot examples per harness prompt (default: each task's own).")] = None,
    limit: Annotated[Optional[int], typer.Option("--limit", min=1, help="Score only the first N rows of each harness task.")] = None,
    no_chat_template: Annotated[
        bool, typer.Option("--no-chat-template", help="Give harness prompts as plain text instead of in the trained chat format.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Measure a run: loss, perplexity and, where rows have reference answers, exact match, chrF and BLEU (or lm-evaluation-harness tasks)."""
    from sftkit import api
    from sftkit.console import console, escape, stdout_write

    _check_harness_flags(harness, data, split, no_generate, max_new_tokens, num_fewshot, limit, no_chat_template)
    with naming_flags({"batch_size": "--batch-size", **TRUST_FLAG}):
        result = api.evaluate(
            model,
            data=data,
            split=split,
            compare=compare,
            template=template,
            batch_size=batch_size,
            max_new_tokens=max_new_tokens,
            generate=not no_generate,
            output=output,
            trust_formatting_func=trust_formatting_func,
            progress=True,
            harness=harness,
            num_fewshot=num_fewshot,
            limit=limit,
            chat_template=not no_chat_template,
        )
    if as_json:
        stdout_write(json.dumps(result.as_dict(predictions=False), indent=2, ensure_ascii=False) + "\n")
    else:
        stdout_write(_table_text(result))
    if result.path is not None:
        console.print(f"[dim]results and predictions written to {escape(str(result.path))}[/]")


def _check_harness_flags(harness: Any, data: Any, split: Any, no_generate: bool, max_new_tokens: Any, num_fewshot: Any, limit: Any, no_chat_template: bool) -> None:
    """The options of sftkit's own measures and those of harness tasks do not mix."""
    from sftkit.errors import EXIT_USAGE, SftkitError

    if harness is None and (num_fewshot is not None or limit is not None or no_chat_template):
        raise SftkitError("--num-fewshot, --limit and --no-chat-template apply to harness tasks", hint="name the tasks: --harness TASK[,TASK...]", exit_code=EXIT_USAGE)
    mine = [flag for flag, given in (("--data", data), ("--split", split), ("--no-generate", no_generate), ("--max-new-tokens", max_new_tokens)) if given]
    if harness is not None and mine:
        raise SftkitError(f"{mine[0]} applies to sftkit's own measures, not to --harness tasks", hint="run them as two commands", exit_code=EXIT_USAGE)


def _table_text(result: Any) -> str:
    """The results table as text for stdout (colours only on a terminal; NO_COLOR honoured by rich)."""
    from rich.console import Console
    from rich.table import Table

    title = f"{result.model} on {result.data} ({result.rows} rows)"
    table = Table()
    table.add_column("metric")
    base = result.base
    if base is not None:
        table.add_column(f"base: {base.model}", justify="right")
        table.add_column("fine-tuned", justify="right")
        table.add_column("change", justify="right")
    else:
        table.add_column("value", justify="right")
    for key, value in result.metrics.items():
        if base is None:
            table.add_row(key, _fmt(key, value))
            continue
        before = base.metrics.get(key)
        change = _fmt(key, value - before, sign=True) if isinstance(before, (int, float)) and "runtime" not in key and "per_second" not in key else ""
        table.add_row(key, _fmt(key, before), _fmt(key, value), change)
    out = Console(highlight=False, soft_wrap=False)
    with out.capture() as captured:
        out.print(title, markup=False)
        out.print(table)
    return captured.get()


def _fmt(key: str, value: Any, sign: bool = False) -> str:
    if value is None:
        return "-"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:+,}" if sign else f"{value:,}"
    if key in _FRACTIONS:
        spec = ".1%"
    elif "runtime" in key:
        spec = ".3f"
    elif "per_second" in key or abs(value) >= 1000:
        spec = ",.1f"
    elif key in ("chrf", "bleu"):
        spec = ".2f"
    else:
        spec = ".4f"
    return format(value, ("+" if sign else "") + spec)
