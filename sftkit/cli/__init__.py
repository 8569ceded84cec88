"""The `sftkit` command line. Each command lives in its own module; nothing heavy is imported here.

Start-up time is part of the interface (``sftkit --help`` should feel instant; shell completion runs
``sftkit presets list --names``): ``app`` is built on first use, ``sftkit --version`` answers without
building it, the command modules import only typer at the top, and help screens are drawn without the parts
of rich they never use (``_startup``). ``benchmarks/startup.py`` measures it.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import typer

    app: typer.Typer

__all__ = ["app", "main"]


def _build_app() -> "typer.Typer":
    from sftkit.cli._app import SftkitCommand, app
    from sftkit.cli.completion import completion
    from sftkit.cli.config import config_app
    from sftkit.cli.eval import eval_
    from sftkit.cli.export import export
    from sftkit.cli.generate import generate
    from sftkit.cli.init import init
    from sftkit.cli.prepare import prepare
    from sftkit.cli.presets import presets_app
    from sftkit.cli.runs import runs_app
    from sftkit.cli.train import train

    app.command("init", cls=SftkitCommand)(init)
    app.command("prepare", cls=SftkitCommand)(prepare)
    app.command("train", cls=SftkitCommand)(train)
    app.command("eval", cls=SftkitCommand)(eval_)
    app.command("generate", cls=SftkitCommand)(generate)
    app.command("export", cls=SftkitCommand)(export)
    app.add_typer(runs_app, name="runs")
    app.add_typer(presets_app, name="presets")
    app.add_typer(config_app, name="config")
    app.command("completion", cls=SftkitCommand)(completion)
    return app


def __getattr__(name: str) -> Any:
    if name == "app":
        built = _build_app()
        globals()["app"] = built  # built once: later lookups find it without coming here
        return built
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def main() -> None:
    if sys.argv[1:] in (["--version"], ["-V"]):
        # the whole answer, as the app's eager --version option gives it, without importing typer and the commands
        from sftkit.version import __version__

        sys.stdout.write(f"sftkit {__version__}\n")
        sys.stdout.flush()
        return
    from sftkit.cli import _startup

    _startup.install()  # help screens and usage errors without rich.markdown and rich.traceback
    __getattr__("app")(prog_name="sftkit")
