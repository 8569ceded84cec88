"""Progress for people, on stderr: the one helper every step that can take more than a few seconds uses
(preparing data, eval's loss and generation passes, generate's batches, export's merge and check).

``with task(console, "generating answers", total=200, unit="answers") as t: ... t.advance(32)``

- on a terminal: a rich progress line (a spinner, and with a known amount of work a bar, the count and the
  time to go), gone when the step ends; data written to stdout meanwhile (``sftkit generate`` on a terminal) is shown
  above it;
- elsewhere (a log file, a pipe, CI): plain lines, never redrawn: one every :data:`INTERVAL` seconds
  (``SFTKIT_PROGRESS_INTERVAL`` sets another) while the step runs, whether or not the work advanced (what it
  is, the count, the time spent and to go), and one when it ends if it ran that long. A step shorter than that
  prints nothing, so a quick command's stderr holds only what it has to say (an error stays the first line);
- without a console: nothing (library code prints only when asked).

Code deep inside a step reports through :func:`current` instead of being handed the task: ``prepare``'s
encoding loop counts its rows into whatever step is showing (none: nothing happens).
"""

from __future__ import annotations

import contextlib
import sys
import threading
import time
from collections.abc import Iterator
from contextvars import ContextVar
from datetime import timedelta
from typing import Any

#: seconds between two plain progress lines (stderr not a terminal); ``SFTKIT_PROGRESS_INTERVAL`` overrides it
INTERVAL = 10.0
INTERVAL_ENV = "SFTKIT_PROGRESS_INTERVAL"


def interval_seconds() -> float:
    """Seconds between two plain progress lines: ``$SFTKIT_PROGRESS_INTERVAL``, else :data:`INTERVAL`."""
    import os

    text = os.environ.get(INTERVAL_ENV, "").strip()
    if not text:
        return INTERVAL
    try:
        seconds = float(text)
    except ValueError:
        seconds = -1.0
    if not 0 < seconds < float("inf"):
        from sftkit.errors import ConfigError

        raise ConfigError(
            f"{INTERVAL_ENV}={text!r} is not a number of seconds above 0",
            hint=f"set it to e.g. 30, or unset it (default {INTERVAL:g})",
        )
    return seconds


def duration(seconds: float) -> str:
    """``0:01:05``: hours, minutes and seconds."""
    return str(timedelta(seconds=int(max(seconds, 0))))


class Task:
    """One step's progress; see the module docstring. Without a console every method does nothing."""

    def __init__(
        self,
        console: Any,
        description: str,
        total: int | None = None,
        unit: str = "",
        interval: float | None = None,
    ) -> None:
        self.console = console
        self.description = description
        self.total = total
        self.unit = unit
        self.interval = interval
        self.done = 0
        self.started = time.perf_counter()
        self._live: Any = None
        self._task_id: Any = None
        self._stop = threading.Event()
        self._ticker: threading.Thread | None = None
        self._lines = 0  # plain lines printed while running

    # -- reporting -----------------------------------------------------------------------------------
    def expect(self, n: int) -> None:
        """``n`` more units of work are to come (the total grows: e.g. the validation rows after the training rows)."""
        self.total = (self.total or 0) + n
        if self._live is not None:
            self._live.update(self._task_id, total=self.total)

    def advance(self, n: int = 1) -> None:
        self.done += n
        if self._live is not None:
            self._live.update(self._task_id, completed=self.done)

    # -- showing -------------------------------------------------------------------------------------
    def start(self) -> Task:
        self.started = time.perf_counter()
        if self.console is None:
            return self
        from sftkit.console import writes_to_tty

        if writes_to_tty(self.console):
            self._start_live()
        else:
            if self.interval is None:
                self.interval = interval_seconds()
            self._ticker = threading.Thread(target=self._tick, name="sftkit-progress", daemon=True)
            self._ticker.start()
        return self

    def stop(self, failed: bool = False) -> None:
        """End the display; a step that printed progress lines says it is done (unless it ``failed``: the error says)."""
        self._stop.set()
        if self._ticker is not None:
            self._ticker.join()
            self._ticker = None
            if self._lines and not failed:  # it ran long enough to report on: say that it ended
                counted = f", {self._count()}" if self.unit else ""
                self._print(f"{self.description}: done{counted} in {duration(self.elapsed)}")
        if self._live is not None:
            self._live.stop()
            self._live = None

    @property
    def elapsed(self) -> float:
        return time.perf_counter() - self.started

    def line(self) -> str:
        """The plain progress line for now: ``generating answers: 64/200 answers (32%), elapsed 0:00:20, eta 0:00:42``
        (the words of ``train``'s progress lines)."""
        parts = [self._count()] if self.unit else []
        if self.total and self.unit:
            parts[0] += f" ({self.done / self.total:.0%})"
        parts.append(f"elapsed {duration(self.elapsed)}")
        if self.total and self.done and self.done < self.total:
            parts.append(f"eta {duration(self.elapsed / self.done * (self.total - self.done))}")
        return f"{self.description}: " + ", ".join(parts)

    def _count(self) -> str:
        return f"{self.done}/{self.total} {self.unit}" if self.total else f"{self.done} {self.unit}"

    def _tick(self) -> None:
        assert self.interval is not None
        while not self._stop.wait(self.interval):
            self._lines += 1
            self._print(self.line())

    def _print(self, text: str) -> None:
        self.console.print(text, markup=False, highlight=False, soft_wrap=True)

    def _start_live(self) -> None:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            SpinnerColumn,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        columns: list[Any] = [SpinnerColumn(), TextColumn("{task.description}")]
        if self.unit:
            columns += [
                BarColumn(bar_width=24),
                MofNCompleteColumn(),
                TextColumn(self.unit),
                TimeElapsedColumn(),
                TextColumn("eta"),
                TimeRemainingColumn(),
            ]
        else:
            columns.append(TimeElapsedColumn())
        # data written to stdout goes above the progress line when both are this terminal; to a pipe it goes as is
        to_screen = bool(getattr(sys.stdout, "isatty", lambda: False)())
        self._live = Progress(
            *columns,
            console=self.console,
            transient=True,
            redirect_stdout=to_screen,
            redirect_stderr=False,
        )
        self._live.start()
        self._task_id = self._live.add_task(self.description, total=self.total, completed=self.done)


class _Nothing(Task):
    """The task when nothing is showing: what :func:`current` returns outside a step."""

    def __init__(self) -> None:
        super().__init__(None, "")


_current: ContextVar[Task | None] = ContextVar("sftkit_progress", default=None)


def current() -> Task:
    """The step showing now (in this thread or task), or one that shows nothing."""
    return _current.get() or _Nothing()


@contextlib.contextmanager
def task(console: Any, description: str, *, total: int | None = None, unit: str = "") -> Iterator[Task]:
    """Show a step's progress while the block runs (see the module docstring); ``unit`` names what is counted
    (``rows``, ``answers``); without one the step is shown as running, with its time."""
    shown = Task(console, description, total, unit).start()
    token = _current.set(shown)
    failed = True
    try:
        yield shown
        failed = False
    finally:
        _current.reset(token)
        shown.stop(failed)
