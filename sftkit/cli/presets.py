"""`sftkit presets list|show`: the presets found on disk."""

# No `from __future__ import annotations` here: typer reads the parameters' annotations, and string annotations
# would be compiled and evaluated (twice) each time the help is built; as objects they cost nothing more.

import json
from typing import Annotated

import typer

from sftkit.cli._app import SftkitCommand, SftkitSubgroup
from sftkit.cli.options import JsonOpt, _complete_presets

presets_app = typer.Typer(cls=SftkitSubgroup, help="List and inspect presets.", no_args_is_help=True)


@presets_app.command("list", cls=SftkitCommand)
def list_presets(
    as_json: JsonOpt = False,
    names: Annotated[bool, typer.Option("--names", help="Only the names, one per line.")] = False,
) -> None:
    """List every preset (built-in and user folders) with a one-line description."""
    from sftkit import api
    from sftkit.console import console, escape, stdout_write

    rows = api.list_presets()
    if names:
        stdout_write("".join(f"{r['name']}\n" for r in rows))
        return
    if as_json:
        stdout_write(json.dumps(rows, indent=2, ensure_ascii=False) + "\n")
        return
    from rich.table import Table

    table = Table(title="sftkit presets", title_justify="left")
    table.add_column("name", no_wrap=True)
    table.add_column("trainer", no_wrap=True)
    table.add_column("method", no_wrap=True)
    table.add_column("model", overflow="fold")
    table.add_column("description", overflow="fold", ratio=1)
    for r in rows:
        name = r["name"] + (" [dim](user)[/]" if r["source"] == "user" else "")
        if r["error"]:
            table.add_row(name, "-", "-", "-", f"[red]broken:[/] {escape(r['error'])}")
            continue
        table.add_row(name, r["trainer_type"], r["method"], r["model"] or "-", escape(str(r["description"] or "")))
    from rich.console import Console

    Console().print(table)  # a listing is the command's output: stdout
    for r in rows:  # a broken preset also gets one whole line on stderr, where problems go (the table may wrap it)
        if r["error"]:
            console.print(f"[yellow]warning:[/] preset {escape(r['name'])} is broken: {escape(r['error'])}", soft_wrap=True)


@presets_app.command("show", cls=SftkitCommand)
def show_preset(
    name: Annotated[str, typer.Argument(help="Preset name.", autocompletion=_complete_presets)],
    as_json: JsonOpt = False,
) -> None:
    """Show a preset fully resolved (with everything it extends), and where each value comes from."""
    from sftkit import api
    from sftkit.console import stdout_write
    from sftkit.yamlio import dump_yaml

    info = api.show_preset(name)
    payload = {k: info[k] for k in ("name", "description", "extends", "path", "config", "sources")}
    if as_json:
        stdout_write(json.dumps(payload, indent=2, ensure_ascii=False) + "\n")
        return
    header = f"# {name}: {info['description']}\n# file: {info['path']}\n"
    if info["extends"]:
        header += f"# extends: {info['extends']}\n"
    stdout_write(header + dump_yaml(payload["config"]))
