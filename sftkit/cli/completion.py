"""`sftkit completion bash|zsh|fish`: the shell completion script of the installed sftkit."""

# No `from __future__ import annotations` here: typer reads the parameters' annotations, and string annotations
# would be compiled and evaluated (twice) each time the help is built; as objects they cost nothing more.

from typing import Annotated, Literal

import typer

Shell = Literal["bash", "zsh", "fish"]


def completion(
    shell: Annotated[
        Shell,
        typer.Argument(help="bash, zsh or fish.", metavar="SHELL", show_default=False),
    ],
    install: Annotated[
        bool,
        typer.Option(
            "--install",
            help="Write the script where the shell loads completions from, instead of printing it.",
        ),
    ] = False,
) -> None:
    """Print the completion script for your shell: commands, options, preset names, --set keys.

    [dim]bash: sftkit completion bash > ~/.local/share/bash-completion/completions/sftkit (or --install);
    zsh: sftkit completion zsh > ~/.zfunc/_sftkit; fish: sftkit completion fish --install.[/]
    """
    from sftkit import api
    from sftkit.console import console, escape, stdout_write

    if install:
        path, then = api.install_completion(shell)
        console.print(f"wrote {escape(str(path))}")
        console.print(f"[dim]{escape(then)}[/]")
        return
    stdout_write(api.completion_script(shell))
