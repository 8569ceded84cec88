"""The one console for people: everything human-readable goes to stderr; stdout is for data."""

from __future__ import annotations

import os
import sys

from rich.console import Console

from sftkit.errors import SftkitError


def _make_console() -> Console:
    # rich honours NO_COLOR itself; we only make sure the console writes to stderr. Off a terminal (a log file,
    # a pipe, CI) lines are never wrapped, so one error stays one line that grep and log readers can use.
    made = Console(stderr=True, highlight=False, soft_wrap=False)
    made.soft_wrap = not writes_to_tty(made)
    return made


def writes_to_tty(out: Console) -> bool:
    """Whether ``out`` writes to a real terminal now. Not rich's ``is_terminal``: FORCE_COLOR (set by many CI
    systems) or TTY_COMPATIBLE make that True on a pipe, where wrapping at 80 columns would split one error
    into several log lines."""
    isatty = getattr(out.file, "isatty", None)
    try:
        return bool(isatty and isatty())
    except ValueError:  # a closed stream
        return False


def print_line(text: str) -> None:
    """One line on stderr (markup allowed), never wrapped unless stderr is a real terminal: errors and hints."""
    console.print(text, soft_wrap=not writes_to_tty(console))


console = _make_console()


def status(console_or_none: Console | None, text: str):
    """A step shown while it runs (:func:`sftkit.progress.task`: a spinner on a terminal, plain lines elsewhere)
    when a console is given, else nothing: library code prints only when asked."""
    from sftkit.progress import task

    return task(console_or_none, text.removesuffix("…"))


def debug_enabled() -> bool:
    """True when tracebacks were asked for with --debug or SFTKIT_DEBUG=1."""
    return os.environ.get("SFTKIT_DEBUG", "").lower() in {"1", "true", "yes", "on"}


def print_error(err: SftkitError) -> None:
    """Show an SftkitError as one red line per problem, plus a dim hint."""
    if err.problems and len(err.problems) > 1:
        print_line(f"[bold red]error:[/] {escape(err.message)}:")
        for p in err.problems:
            print_line(f"  [red]•[/] {escape(str(p))}")
            if p.hint:
                print_line(f"    [dim]hint: {escape(p.hint)}[/]")
    else:
        print_line(f"[bold red]error:[/] {escape(err.message)}")
    if err.hint:
        print_line(f"[dim]hint: {escape(err.hint)}[/]")


def escape(text: str) -> str:
    from rich.markup import escape as _escape

    return _escape(text)


def stdout_write(text: str) -> None:
    """Write data to stdout; a closed pipe (`| head`) ends the program quietly."""
    try:
        sys.stdout.write(text)
        sys.stdout.flush()
    except BrokenPipeError:
        _silence_broken_pipe()


def _silence_broken_pipe() -> None:
    # Redirect stdout to devnull so Python's shutdown flush does not raise again, then exit quietly.
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass
    raise SystemExit(0)
