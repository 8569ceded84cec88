"""Rich renderings of prepared rows that show the loss mask: masked text dim, trained text bold green."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.console import Group
from rich.markup import escape
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from sftkit.data.drops import Note
from sftkit.data.tokenize import IGNORE_INDEX
from sftkit.layout import DROPPED

MASKED = "dim"
TRAINED = "bold green"
REJECTED = "bold red"


def _runs(ids: list[int], flags: list[bool]) -> list[tuple[list[int], bool]]:
    runs: list[tuple[list[int], bool]] = []
    for token, flag in zip(ids, flags, strict=True):
        if runs and runs[-1][1] == flag:
            runs[-1][0].append(token)
        else:
            runs.append(([token], flag))
    return runs


def sft_example(row: dict[str, Any], tokenizer: Any, index: int) -> Panel:
    ids, labels = row["input_ids"], row["labels"]
    text = Text()
    for run, trained in _runs(ids, [label != IGNORE_INDEX for label in labels]):
        text.append(tokenizer.decode(run, skip_special_tokens=False), style=TRAINED if trained else MASKED)
    trained_n = sum(1 for label in labels if label != IGNORE_INDEX)
    return Panel(text, title=f"example {index}", subtitle=f"{len(ids)} tokens, {trained_n} trained", title_align="left")


def dpo_example(row: dict[str, Any], tokenizer: Any, index: int) -> Panel:
    def decode(ids: list[int]) -> str:
        return tokenizer.decode(ids, skip_special_tokens=False)

    body = Group(
        Text(decode(row["prompt_ids"]), style=MASKED),
        Text("chosen:", style="bold"),
        Text(decode(row["chosen_ids"]), style=TRAINED),
        Text("rejected:", style="bold"),
        Text(decode(row["rejected_ids"]), style=REJECTED),
    )
    sizes = f"prompt {len(row['prompt_ids'])}, chosen {len(row['chosen_ids'])}, rejected {len(row['rejected_ids'])} tokens"
    return Panel(body, title=f"pair {index}", subtitle=sizes, title_align="left")


def kto_example(row: dict[str, Any], tokenizer: Any, index: int) -> Panel:
    desirable = bool(row["label"])
    body = Group(
        Text(tokenizer.decode(row["prompt_ids"], skip_special_tokens=False), style=MASKED),
        Text("desirable:" if desirable else "undesirable:", style="bold"),
        Text(tokenizer.decode(row["completion_ids"], skip_special_tokens=False), style=TRAINED if desirable else REJECTED),
    )
    sizes = f"prompt {len(row['prompt_ids'])}, completion {len(row['completion_ids'])} tokens"
    return Panel(body, title=f"example {index} ({'desirable' if desirable else 'undesirable'})", subtitle=sizes, title_align="left")


def examples(dataset: Any, tokenizer: Any, n: int, trainer_type: str) -> list[Panel]:
    """Panels for the first ``n`` rows of a prepared dataset."""
    render = {"dpo": dpo_example, "kto": kto_example}.get(trainer_type, sft_example)
    return [render(dataset[i], tokenizer, i) for i in range(min(n, len(dataset)))]


def legend(trainer_type: str) -> Text:
    text = Text("legend: ")
    text.append("masked (no loss)", style=MASKED)
    text.append("  ")
    trained = {"dpo": "chosen (trained)", "kto": "desirable (trained)"}.get(trainer_type, "trained on")
    text.append(trained, style=TRAINED)
    if trainer_type in ("dpo", "kto"):
        text.append("  ")
        text.append("rejected" if trainer_type == "dpo" else "undesirable (trained away from)", style=REJECTED)
    return text


def summary_table(manifest: dict[str, Any], path: str, reused: bool) -> Table:
    """The end-of-run summary: counts, drops by reason (and where they are listed), the max_rows cap, truncation, token lengths."""
    table = Table(title="prepared data" + (" (reused)" if reused else ""), show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column()
    template = manifest.get("template") or {}
    table.add_row("folder", path)
    table.add_row("format", f"{manifest.get('format')}  [dim](template {template.get('name')})[/]")
    if manifest.get("format_reason"):
        table.add_row("", f"[dim]{escape(manifest['format_reason'])}[/]")
    table.add_row("rows in", str(manifest.get("rows_in")))
    table.add_row("kept", f"[green]{manifest.get('rows_kept')}[/]")
    for reason, n in (manifest.get("dropped") or {}).items():
        table.add_row(f"  dropped: {reason}", f"[yellow]{n}[/]")
    for code, n in (manifest.get("notes") or {}).items():
        note = Note._value2member_map_.get(code)
        table.add_row(f"  note: {code}", f"{n}" + (f" [dim]({escape(note.explanation)})[/]" if note else ""))
    val = manifest.get("validation") or {}
    if manifest.get("dropped") or val.get("dropped"):
        table.add_row("", f"[dim]each with its reason in {Path(path) / (manifest.get('files') or {}).get('dropped', DROPPED)}[/]")
    if manifest.get("capped"):
        settings = manifest.get("settings") or {}
        table.add_row("  capped", f"{manifest['capped']} [dim](not used: over data.max_rows={settings.get('max_rows')})[/]")
    table.add_row("truncated", f"{manifest.get('truncated')} ({manifest.get('truncated_pct')}%)")
    splits = manifest.get("splits") or {}
    table.add_row("splits", ", ".join(f"{k} {v}" for k, v in splits.items()))
    lengths = manifest.get("token_lengths") or {}
    if lengths:
        table.add_row("tokens / row", "  ".join(f"{k} {v}" for k, v in lengths.items()))
    table.add_row("trained tokens", str(manifest.get("trained_tokens")))
    labels = manifest.get("labels")
    if labels:
        table.add_row("labels", f"{labels['desirable']} desirable, {labels['undesirable']} undesirable")
    if val.get("rows_in") is not None:
        extra = "".join(f", {n} dropped {r}" for r, n in (val.get("dropped") or {}).items())
        table.add_row("validation", f"{val.get('rows_kept')} of {val.get('rows_in')} kept{extra}")
    return table
