"""The Typer app and the one place where errors become a red line and an exit code."""

# No `from __future__ import annotations` here: typer reads the parameters' annotations, and string annotations
# would be compiled and evaluated (twice) each time the help is built; as objects they cost nothing more.

import os
from typing import Annotated, Any

import typer
from typer._click import ClickException  # typer ships its own click
from typer.core import TyperCommand, TyperGroup

from sftkit.errors import EXIT_FAILURE, EXIT_INTERRUPTED, SftkitError
from sftkit.version import __version__


class _NoneNeedsNoAdapter:
    """Stands for a parameter's typer coercion until a value needs it.

    typer coerces every parameter's value through a pydantic ``TypeAdapter`` it builds on first use, also a
    value that was not given (None), which comes back as None (``()`` for a list) without being looked at.
    Building that adapter imports pydantic: about a third of ``sftkit train --help`` (the root's ``--help``
    is such a None) and of ``sftkit presets list --names`` (shell completion). None is answered here as typer
    answers it; any other value gets typer's own coercion, built then.
    """

    def __init__(self, owner: Any) -> None:
        self.owner = owner

    def coerce(self, value: Any, param: Any, ctx: Any) -> Any:
        if value is None:
            return () if param.multiple or param.nargs == -1 else None
        self.owner._runtime_param = None
        return self.owner.get_runtime_param().coerce(value, param=param, ctx=ctx)


def _defer_coercion(params: list[Any]) -> list[Any]:
    for param in params:
        # only where typer is the version this was written for: a parameter that builds its coercion lazily
        if getattr(param, "_runtime_param", 0) is None and hasattr(param, "get_runtime_param"):
            param._runtime_param = _NoneNeedsNoAdapter(param)
        _no_flag_type(param)
    return params


def _no_flag_type(param: Any) -> None:
    """A flag (``--json``, ``--resume``, ``--help``) takes no value, so its help row shows no type. typer's rich
    help draws every option's type, flags included (``--json <bool>``), which reads as if a value were expected;
    its plain help leaves flags out, as this does."""
    if getattr(param, "is_flag", False) and not getattr(param, "count", False) and hasattr(param, "display_type_rich"):
        param.display_type_rich = lambda ctx: None


class SftkitCommand(TyperCommand):
    """A command whose parameters build typer's coercion only for values that need it (see _NoneNeedsNoAdapter)."""

    def get_params(self, ctx: typer.Context) -> list[Any]:
        return _defer_coercion(super().get_params(ctx))


class SftkitSubgroup(TyperGroup):
    """A group of commands (``sftkit presets``, ``sftkit config``), with parameters as SftkitCommand's."""

    def get_params(self, ctx: typer.Context) -> list[Any]:
        return _defer_coercion(super().get_params(ctx))


class SftkitGroup(SftkitSubgroup):
    """Runs a subcommand; turns SftkitError into one red line plus a hint, other errors too unless --debug."""

    def list_commands(self, ctx: typer.Context) -> list[str]:
        return list(self.commands)  # keep the order commands were added in (the flow), not alphabetical

    def invoke(self, ctx: typer.Context) -> Any:
        # sftkit.console (rich's console) is imported when there is something to show: not for `train --help`
        try:
            return super().invoke(ctx)
        except SftkitError as err:
            from sftkit.console import debug_enabled, print_error

            if debug_enabled():
                raise
            print_error(err)
            raise SystemExit(err.exit_code) from None
        except KeyboardInterrupt:
            from sftkit.console import console

            console.print("[yellow]interrupted[/]")
            raise SystemExit(EXIT_INTERRUPTED) from None
        except (typer.Exit, typer.Abort, ClickException, SystemExit):
            raise
        except Exception as err:  # noqa: BLE001 - the last line of defence, shown in one line
            from sftkit.console import debug_enabled, escape, print_line

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
    help="Fine-tune causal language models: SFT, DPO and KTO, full, LoRA or QLoRA, from one resolved config.",
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
    """Fine-tune causal language models: SFT, DPO and KTO, full, LoRA or QLoRA, from one resolved config."""
    if debug:
        os.environ["SFTKIT_DEBUG"] = "1"
