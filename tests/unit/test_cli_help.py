"""Every command's --help: a flag (--json, --resume, --help) reads as a flag, with no value type after it."""

from __future__ import annotations

import pytest


def _commands() -> list[list[str]]:
    """The argv (before --help) of the root and every command and subcommand, found by walking the real app."""
    import typer

    from sftkit.cli import app

    found: list[list[str]] = []

    def walk(command, path: list[str]) -> None:
        found.append(path)
        for name, sub in getattr(command, "commands", {}).items():
            walk(sub, [*path, name])

    walk(typer.main.get_command(app), [])
    return found


COMMANDS = _commands()


def test_the_walk_finds_every_command():
    names = {" ".join(argv) for argv in COMMANDS}
    assert {"", "init", "prepare", "train", "eval", "generate", "export", "presets list", "config keys"} <= names


@pytest.mark.parametrize("argv", COMMANDS, ids=lambda argv: " ".join(argv) or "sftkit")
def test_flags_show_no_value_type(runner, monkeypatch, argv):
    from sftkit.cli import app

    monkeypatch.setenv("COLUMNS", "200")
    result = runner.invoke(app, [*argv, "--help"])
    assert result.exit_code == 0, result.output
    assert "<bool>" not in result.output, result.output
    assert "--help" in result.output
    help_row = next(line for line in result.output.splitlines() if "--help" in line and "Show this message" in line)
    assert "<" not in help_row  # no type at all for a flag
    if argv == ["train"]:
        assert "<str>" in result.output  # options that take a value keep their type
