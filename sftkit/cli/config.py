"""`sftkit config keys`: every config key with its type, default and documentation."""

# No `from __future__ import annotations` here: typer reads the parameters' annotations, and string annotations
# would be compiled and evaluated (twice) each time the help is built; as objects they cost nothing more.

import json
from typing import Annotated, Optional

import typer

from sftkit.cli._app import SftkitCommand, SftkitSubgroup
from sftkit.cli.options import JsonOpt

config_app = typer.Typer(cls=SftkitSubgroup, help="Read about the config keys.", no_args_is_help=True)


def _complete_sections(incomplete: str) -> list[str]:
    from sftkit.keys import SECTIONS

    return [s for s in (*SECTIONS, "trainer_type") if s.startswith(incomplete)]


@config_app.command("keys", cls=SftkitCommand)
def keys(
    section: Annotated[
        Optional[str],
        typer.Argument(help="Only this section (model, data, train, lora, dpo, tracking).", autocompletion=_complete_sections, show_default=False),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """List config keys with their type, default and documentation (what `--set KEY=VALUE` and sftkit.yaml take)."""
    from sftkit import api
    from sftkit.console import stdout_write

    rows = api.config_keys(section)
    if as_json:
        stdout_write(json.dumps(rows, indent=2, ensure_ascii=False, default=str) + "\n")
        return
    out = []
    for row in rows:
        default = json.dumps(row["default"], ensure_ascii=False, default=str)
        out.append(f"{row['key']}  ({row['type']}; default {default})\n    {row['doc'].replace('``', '`')}\n")
    stdout_write("\n".join(out))
