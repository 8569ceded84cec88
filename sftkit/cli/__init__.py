"""The `sftkit` command line. Each command lives in its own module; nothing heavy is imported here."""

from __future__ import annotations

from sftkit.cli._app import app
from sftkit.cli.config import config_app
from sftkit.cli.eval import eval_
from sftkit.cli.export import export
from sftkit.cli.generate import generate
from sftkit.cli.init import init
from sftkit.cli.prepare import prepare
from sftkit.cli.presets import presets_app
from sftkit.cli.train import train

app.command("init")(init)
app.command("prepare")(prepare)
app.command("train")(train)
app.command("eval")(eval_)
app.command("generate")(generate)
app.command("export")(export)
app.add_typer(presets_app, name="presets")
app.add_typer(config_app, name="config")


def main() -> None:
    app(prog_name="sftkit")
