"""Asking a person: the questionary prompts, the summary, and "write / change an answer / cancel"."""

from __future__ import annotations

import sys
from typing import Any, Callable

from sftkit.errors import SftkitError
from sftkit.names import hub_id
from sftkit.projectfile import ProjectFile, check_text, render
from sftkit.wizard.environment import hf_token_status
from sftkit.wizard.parse import show
from sftkit.wizard.questions import BY_KEY, TRACKIO_SPACE, Option
from sftkit.wizard.state import Prompter, Wizard

ACTIONS_OK = [Option("write", "Write it"), Option("change", "Change an answer"), Option("cancel", "Cancel")]
ACTIONS_BAD = [Option("change", "Change an answer"), Option("cancel", "Cancel")]


def run_interactive(w: Wizard, prompter: Prompter) -> ProjectFile | None:
    """Ask what was not given, then summary -> write / change an answer / cancel. None when cancelled."""
    from sftkit.console import console, escape

    w.ask_missing(prompter)
    while True:
        project = w.project()
        problems = check_text(render(project))
        show_summary(w, project)
        if problems:
            console.print("[bold red]This config would not resolve:[/]")
            for p in problems:
                console.print(f"  [red]•[/] {escape(str(p))}" + (f" [dim]({escape(p.hint)})[/]" if p.hint else ""))
        action = prompter.select("What now?", ACTIONS_BAD if problems else ACTIONS_OK, "change" if problems else "write")
        if action == "write":
            return project
        if action == "cancel":
            return None
        current = {**{q.key: w.default(q) for q in w.more()}, **w.answers}
        options = [Option(q.key, f"{q.label}: {show(current.get(q.key)) or '-'}") for q in [*w.active(), *w.more()]]
        key = prompter.select("Which answer?", options, options[0].value)
        w.ask(prompter, BY_KEY[key])
        w.ask_missing(prompter)


def show_summary(w: Wizard, project: ProjectFile) -> None:
    """The answers as a table (plus token status when the Hub is used), the notes, and what differs."""
    from rich.table import Table

    from sftkit.console import console, escape

    table = Table(title="sftkit init", title_justify="left", show_header=False, box=None, pad_edge=False)
    table.add_column(style="bold")
    table.add_column(overflow="fold")
    for label, value in w.summary_rows():
        table.add_row(label, escape(value))
    if _uses_hub(w.answers):
        table.add_row("HF token", hf_token_status())
    console.print(table)
    for note in project.notes:
        console.print(f"  [dim]{escape(note)}[/]")
    console.print(f"[dim]{project.changed()} value(s) differ from preset {project.extends!r}[/]")


def _uses_hub(answers: dict[str, Any]) -> bool:
    if any(isinstance(answers.get(key), str) and hub_id(answers[key]) for key in ("model", "dataset")):
        return True
    return answers.get("tracking") == TRACKIO_SPACE


class QuestionaryPrompter:
    """The real prompts (questionary). ``input``/``output`` are prompt_toolkit's, for tests and other streams.

    Prompts are written to stderr by default: stdout is for data. Ctrl-C raises KeyboardInterrupt.
    """

    def __init__(self, input: Any = None, output: Any = None) -> None:
        self.input = input
        self.output = output

    def _io(self) -> dict[str, Any]:
        if self.output is None:
            from prompt_toolkit.output import create_output

            self.output = create_output(stdout=sys.stderr)
        io = {"output": self.output}
        if self.input is not None:
            io["input"] = self.input
        return io

    def select(self, message: str, options: list[Option], default: str) -> str:
        import questionary

        choices = [questionary.Choice(o.title, value=o.value) for o in options]
        return _ask(questionary.select(message, choices=choices, default=default, **self._io()))

    def text(self, message: str, default: str, validate: Callable[[str], str | None]) -> str:
        import questionary

        def check(text: str) -> bool | str:
            error = validate(text)
            return True if error is None else error

        return _ask(questionary.text(message, default=default, validate=check, **self._io()))

    def confirm(self, message: str, default: bool) -> bool:
        import questionary

        return _ask(questionary.confirm(message, default=default, **self._io()))


def _ask(question: Any) -> Any:
    """Ask; Ctrl-C stays a KeyboardInterrupt (exit 130), input ending (Ctrl-D, closed pipe) is a clear error."""
    try:
        return question.unsafe_ask()
    except EOFError:
        raise SftkitError("the input ended before every question was answered: nothing was written") from None
