"""The Typer app and the one place where errors become a red line and an exit code."""

from __future__ import annotations

import os
from typing import Annotated, Any

import typer
from typer._click import ClickException  # typer ships its own click
from typer.core import TyperGroup

from sftkit.errors import EXIT_FAILURE, EXIT_INTERRUPTED, SftkitError
from sftkit.version import __version__


class SftkitGroup(TyperGroup):
    """Runs a subcommand; turns SftkitError into one red line plus a hint, other errors too unless --debug."""

    def list_commands(self, ctx: typer.Context) -> list[str]:
        return list(self.commands)  # keep the order commands were added in (the flow), not alphabetical

    def invoke(self, ctx: typer.Context) -> Any:
        from sftkit.console import (
            console,
            debug_enabled,
            escape,
            print_error,
            print_line,
        )

        try:
            return super().invoke(ctx)
        except SftkitError as err:
            if debug_enabled():
                raise
            print_error(err)
            raise SystemExit(err.exit_code) from None
        except KeyboardInterrupt:
            console.print("[yellow]interrupted[/]")
            raise SystemExit(EXIT_INTERRUPTED) from None
        except (typer.Exit, typer.Abort, ClickException, SystemExit):
            raise
        except Exception as err:  # noqa: BLE001 - the last line of defence, shown in one line
            if debug_enabled():
                raise
            if isinstance(err, OSError) and err.filename is not None:
                # a path that could not be read or written (a folder under a file, no permission, a full disk): name it
                paths = " -> ".join(str(f) for f in (err.filename, err.filename2) if f is not None)
                print_line(f"[bold red]error:[/] cannot access {escape(paths)}: {escape(err.strerror or type(err).__name__)}")
                print_line("[dim]hint: check the path and its permissions (--debug shows where it happened)[/]")
            else:
                print_line(f"[bold red]error:[/] unexpected {type(err).__name__}: {escape(str(err).splitlines()[0] if str(err) else '')}")
                print_line("[dim]hint: run again with --debug (or SFTKIT_DEBUG=1) for the full traceback[/]")
            raise SystemExit(EXIT_FAILURE) from None


app = typer.Typer(
    cls=SftkitGroup,
    name="sftkit",
    help="Fine-tune causal language models: SFT and DPO, full, LoRA or QLoRA, from one resolved config.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"sftkit {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", "-V", help="Show the version and exit.", callback=_version, is_eager=True)
    ] = False,
    debug: Annotated[bool, typer.Option("--debug", help="Show full tracebacks for errors.")] = False,
) -> None:
    """Fine-tune causal language models: SFT and DPO, full, LoRA or QLoRA, from one resolved config."""
    if debug:
        os.environ["SFTKIT_DEBUG"] = "1"
