"""The whole of ``sftkit init`` short of printing: check what is given, ask the rest (or not), write the file."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from sftkit.errors import ConfigError
from sftkit.projectfile import ProjectFile, check_text, may_write, render, write_project
from sftkit.wizard.interactive import QuestionaryPrompter, run_interactive, show_summary
from sftkit.wizard.state import Prompter, Wizard, namer


@dataclass
class InitResult:
    path: Path
    project: ProjectFile | None
    """None when the user cancelled (nothing written)."""
    start_training: bool = False


def no_terminal(names: Mapping[str, str] | None = None) -> ConfigError:
    return ConfigError(
        "sftkit init asks questions, but there is no terminal to ask them on (stdin is not a TTY)",
        hint=f"pass {namer(names)('yes')} to take the preset's value for every answer not given",
    )


def init_project(
    given: dict[str, Any],
    path: Path,
    *,
    yes: bool = False,
    overwrite: bool = False,
    train: bool = False,
    prompter: Prompter | None = None,
    interactive: bool | None = None,
    hardware: tuple[str, str] | None = None,
    names: Mapping[str, str] | None = None,
) -> InitResult:
    """Check ``given`` answers, ask the others (or, with ``yes``, take their defaults) and write ``path``.

    ``interactive`` defaults to whether stdin is a terminal; without one and without ``yes`` this fails at
    once instead of waiting for answers that cannot come. ``names`` says what the caller calls each answer
    and ``yes``/``overwrite``/``path`` (the CLI: its flags), so that errors name what the user typed.
    """
    if interactive is None:
        interactive = prompter is not None or sys.stdin.isatty()
    if not yes and not interactive:
        raise no_terminal(names)
    path = Path(path)
    w = Wizard(given, hardware=hardware, names=names)  # given answers are checked before any question is asked
    if not yes:
        prompter = prompter or QuestionaryPrompter()
    if not may_write(path, overwrite=overwrite, confirm=None if yes else prompter.confirm, names=names):
        return InitResult(path, None)
    if yes:
        w.accept_defaults()
        project = w.project()
        problems = check_text(render(project))
        if problems:
            raise ConfigError.from_problems(problems)
        show_summary(w, project)
    else:
        project = run_interactive(w, prompter)
        if project is None:
            return InitResult(path, None)
    write_project(path, render(project, header=_header(path)))
    start = train
    if interactive and not yes and not train:
        start = bool(prompter and prompter.confirm("Start training now?", False))
    return InitResult(path, project, start)


def _header(path: Path) -> list[str]:
    return [
        "sftkit project file, written by `sftkit init`.",
        f"Check the full config: sftkit train --config {path} --dry-run",
    ]
