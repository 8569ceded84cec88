"""`sftkit runs list|show|compare`: what the run folders hold, and loss curves in the terminal."""

# No `from __future__ import annotations` here: typer reads the parameters' annotations, and string annotations
# would be compiled and evaluated (twice) each time the help is built; as objects they cost nothing more.

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from sftkit.cli._app import SftkitCommand, SftkitSubgroup
from sftkit.cli.options import JsonOpt

runs_app = typer.Typer(
    cls=SftkitSubgroup,
    help="List, show and compare training runs.",
    no_args_is_help=True,
)

RunArg = Annotated[
    str,
    typer.Argument(
        help="A run folder (runs/x), or the name of one in runs/.",
        metavar="RUN",
        show_default=False,
    ),
]
#: figures `runs compare` leaves out of its table (they are in its --json)
QUIET_FIGURES = (
    "total_flos",
    "epoch",
    "eval_runtime",
    "eval_samples_per_second",
    "eval_tokens",
    "train_steps_per_second",
)
#: how each state is coloured
STATE_STYLE = {
    "finished": "green",
    "running": "cyan",
    "failed": "red",
    "interrupted": "yellow",
    "killed": "yellow",
}


@runs_app.command("list", cls=SftkitCommand)
def list_runs(
    folder: Annotated[
        Path,
        typer.Argument(help="The folder that holds the run folders.", metavar="DIR"),
    ] = Path("runs"),
    as_json: JsonOpt = False,
) -> None:
    """List the runs in a folder: state, steps, last train and eval loss, start and duration."""
    from sftkit import api
    from sftkit.console import console, escape, stdout_write

    rows = api.list_runs(folder)
    if as_json:
        stdout_write(json.dumps(rows, indent=2, ensure_ascii=False) + "\n")
        return
    if not rows:
        console.print(f"no runs in {escape(str(folder))}")
        return
    from rich.table import Table

    table = Table(title=f"runs in {escape(str(folder))}", title_justify="left")
    for name, justify in (
        ("run", "left"),
        ("state", "left"),
        ("steps", "right"),
        ("loss", "right"),
        ("eval loss", "right"),
        ("started", "left"),
        ("duration", "right"),
    ):
        wide = min(30, max(len(r["name"]) for r in rows)) if name == "run" else None
        table.add_column(
            name,
            justify=justify,
            no_wrap=name != "run",
            overflow="fold",
            min_width=wide,
        )
    for r in rows:
        table.add_row(
            escape(r["name"]),
            _state(r["state"]),
            _steps(r),
            _num(r["loss"]),
            _num(r["eval_loss"]),
            _when(r["started"]),
            _duration(r["duration_seconds"]),
        )
    _out().print(table)


@runs_app.command("show", cls=SftkitCommand)
def show_run(
    run: RunArg,
    as_json: JsonOpt = False,
    image: Annotated[
        bool,
        typer.Option(
            "--image",
            help="Also draw the loss curve into RUN/loss.png (needs matplotlib: pip install 'sftkit\\[plot]').",
        ),
    ] = False,
) -> None:
    """Show one run: state, steps, losses, settings, files, and its loss curve (train and eval loss against steps)."""
    from sftkit import api
    from sftkit.console import console, escape, stdout_write

    info = api.show_run(run, image=image)
    if image:
        console.print(f"wrote {escape(info['loss_plot'])}")
    if as_json:
        stdout_write(json.dumps(info, indent=2, ensure_ascii=False) + "\n")
        return
    out = _out()
    what = ", ".join(str(x) for x in (info["trainer_type"], info["method"]) if x)
    out.print(
        f"[bold]{escape(info['path'])}[/]  {_state(info['state'])}"
        + (f"  ({escape(what)})" if what else "")
    )
    rows = [
        ("model", info["model"]),
        ("data", info["dataset"]),
        ("learning rate", info["learning_rate"]),
        ("steps", _steps(info)),
        (
            "loss",
            _num(info["loss"])
            + (
                ""
                if info["train_loss"] is None
                else f" (last logged; mean over the run {_num(info['train_loss'])})"
            ),
        ),
        (
            "eval loss",
            _num(info["eval_loss"])
            + (
                ""
                if info["best_eval_loss"] is None
                else f" (best {_num(info['best_eval_loss'])} at step {info['best_eval_step']})"
            ),
        ),
        (
            "started",
            _when(info["started"])
            + (
                f" (took {_duration(info['duration_seconds'])})"
                if info["duration_seconds"] is not None
                else ""
            ),
        ),
        ("checkpoints", ", ".join(info["checkpoints"]) or "-"),
        ("model folder", info["model_dir"]),
        ("loss curve", info["loss_plot"]),
        ("error", info["error"]),
    ]
    for label, value in rows:
        if value not in (None, "", "-") or label in ("loss", "eval loss", "steps"):
            out.print(f"  {label:<13} {escape(str(value))}", soft_wrap=True)
    print_curve(info["history"], out, height=12)


@runs_app.command("compare", cls=SftkitCommand)
def compare_runs(
    runs: Annotated[
        list[str],
        typer.Argument(
            help="Two run folders or more (or names of runs in runs/).",
            metavar="RUN...",
            show_default=False,
        ),
    ],
    as_json: JsonOpt = False,
) -> None:
    """Compare runs: the config keys that differ (from each run's sftkit.yaml) and their figures side by side."""
    from sftkit import api
    from sftkit.console import escape, stdout_write

    report = api.compare_runs(runs)
    if as_json:
        stdout_write(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
        return
    from rich.table import Table

    names = [r["name"] for r in report["runs"]]
    if len(set(names)) < len(names):
        names = [r["path"] for r in report["runs"]]
    out = _out()
    if report["config"]:
        table = Table(title="config: what differs", title_justify="left")
        table.add_column("key", no_wrap=True)
        for name in names:
            table.add_column(escape(name), overflow="fold")
        for key, values in report["config"].items():
            table.add_row(key, *(escape(_value(v)) for v in values))
        out.print(table)
    else:
        out.print("config: the same (train.output_dir aside)")
    table = Table(title="figures", title_justify="left")
    table.add_column("", no_wrap=True)
    for name in names:
        table.add_column(escape(name), justify="right", overflow="fold")
    for key, values in report["metrics"].items():
        if key in QUIET_FIGURES:
            continue
        if key == "state":
            cells = [_state(v) for v in values]
        elif key == "duration_seconds":
            key, cells = "duration", [_duration(v) for v in values]
        else:
            cells = [_num(v) for v in values]
        table.add_row(key, *cells)
    out.print(table)
    from sftkit.plots import COLORS, loss_series

    series = []
    for i, (name, history) in enumerate(zip(names, report["history"])):
        for s in loss_series(history["train"], history["eval"]):
            s.label, s.color = f"{name} {s.label}", COLORS[i % len(COLORS)]
            series.append(s)
    _print_chart(series, out, height=12)


# -- shared with `sftkit train` -----------------------------------------------------------------------


def curve_on_terminal(run_dir: Path, console: Any) -> None:
    """At the end of `sftkit train`: the run's loss curve, compact, where ``console`` is a terminal (in a log
    file or CI output the run folder's loss.png and `sftkit runs show` have it). A curve that cannot be drawn is
    a one-line note: the run itself is done."""
    from sftkit.console import escape, writes_to_tty

    if not writes_to_tty(console):
        return
    try:
        from sftkit import api

        print_curve(api.show_run(run_dir)["history"], console, height=8)
    except Exception as err:  # noqa: BLE001 - a picture is not worth failing a finished run for
        console.print(
            f"[dim]note: no loss curve: {escape(type(err).__name__)}: {escape(str(err).splitlines()[0] if str(err) else '')}[/]"
        )


def print_curve(history: dict[str, Any], out: Any, height: int = 10) -> None:
    """A run's loss curve (``history`` as :func:`sftkit.api.show_run` gives it) on ``out``, a rich console."""
    from sftkit.plots import loss_series

    _print_chart(loss_series(history["train"], history["eval"]), out, height)


def _print_chart(series: list, out: Any, height: int) -> None:
    from rich.text import Text

    from sftkit.plots import chart

    text = chart(
        series,
        width=max(20, min(out.width - 16, 72)),
        height=height,
        color=out.color_system is not None and not out.no_color,
    )
    if text:
        out.print(Text.from_ansi(text), soft_wrap=True)
    else:
        out.print("[dim]no loss logged yet[/]")


def _out() -> Any:
    """Listings are the command's output: stdout (people's messages go to stderr). Into a file or a pipe, tables
    are as wide as their content (up to 160 columns, or $COLUMNS), not cut at 80."""
    import os
    import sys

    from rich.console import Console

    piped = not (hasattr(sys.stdout, "isatty") and sys.stdout.isatty())
    return Console(
        highlight=False, width=160 if piped and not os.environ.get("COLUMNS") else None
    )


def _state(state: str) -> str:
    style = STATE_STYLE.get(state)
    return f"[{style}]{state}[/]" if style else state


def _steps(row: dict[str, Any]) -> str:
    return (
        f"{row['steps']}/{row['max_steps']}"
        if row.get("max_steps")
        else str(row["steps"])
    )


def _num(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4f}" if 1e-3 <= abs(value) < 1e5 else f"{value:.4g}"
    return str(value)


def _value(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def _when(iso: Any) -> str:
    if not iso:
        return "-"
    from datetime import datetime

    return datetime.fromisoformat(iso).astimezone().strftime("%Y-%m-%d %H:%M")


def _duration(seconds: Any) -> str:
    """``0:03:12``, ``2d 4:05:06``."""
    if seconds is None:
        return "-"
    days, rest = divmod(int(max(seconds, 0)), 86400)
    clock = f"{rest // 3600}:{rest % 3600 // 60:02d}:{rest % 60:02d}"
    return f"{days}d {clock}" if days else clock
