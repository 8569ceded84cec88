"""The one progress helper (sftkit.progress): plain lines off a terminal, a live line on one, nothing without a console."""

from __future__ import annotations

import io
import sys
import threading
import time

import pytest
from rich.console import Console

from sftkit import progress
from sftkit.errors import ConfigError


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def _console(stream: io.StringIO) -> Console:
    return Console(file=stream, highlight=False, soft_wrap=True, width=200)


def _wait_for_lines(stream: io.StringIO, n: int, timeout: float = 10.0) -> list[str]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        lines = stream.getvalue().splitlines()
        if len(lines) >= n:
            return lines
        time.sleep(0.01)
    return stream.getvalue().splitlines()


def test_off_a_terminal_a_long_step_prints_counted_lines_then_done(monkeypatch):
    monkeypatch.setenv(progress.INTERVAL_ENV, "0.05")
    out = io.StringIO()
    with progress.task(_console(out), "generating answers", total=10, unit="answers") as shown:
        shown.advance(3)
        lines = _wait_for_lines(out, 1)
        shown.advance(7)
    lines = out.getvalue().splitlines()
    first = next(line for line in lines if "3/10" in line)
    assert first.startswith("generating answers: 3/10 answers (30%), elapsed 0:00:00, eta "), lines
    assert lines[-1].startswith("generating answers: done, 10/10 answers in 0:00:0"), lines
    assert not any("\x1b[" in line for line in lines)  # plain text for logs


def test_a_step_without_a_count_says_it_is_still_running(monkeypatch):
    monkeypatch.setenv(progress.INTERVAL_ENV, "0.05")
    out = io.StringIO()
    with progress.task(_console(out), "merging"):
        _wait_for_lines(out, 2)  # nothing advances: lines keep coming anyway
    lines = out.getvalue().splitlines()
    assert lines[0] == "merging: elapsed 0:00:00" and lines[-1] == "merging: done in 0:00:00", lines


def test_a_quick_step_prints_nothing_so_an_error_stays_the_first_line():
    out = io.StringIO()
    with progress.task(_console(out), "loading the model", total=5, unit="rows") as shown:
        shown.advance(5)
    assert out.getvalue() == ""  # shorter than the interval (10 s)


def test_a_failed_step_does_not_say_done(monkeypatch):
    monkeypatch.setenv(progress.INTERVAL_ENV, "0.05")
    out = io.StringIO()
    with pytest.raises(RuntimeError), progress.task(_console(out), "checking the export"):
        _wait_for_lines(out, 1)
        raise RuntimeError("boom")
    assert out.getvalue() and "done" not in out.getvalue()


def test_work_deep_inside_a_step_counts_into_it_and_outside_into_nothing():
    outside = progress.current()
    outside.expect(3)
    outside.advance(3)  # no step showing: nothing happens, nothing fails
    with progress.task(None, "preparing data", unit="rows") as shown:
        assert progress.current() is shown
        progress.current().expect(40)
        progress.current().expect(2)  # e.g. the validation rows after the training rows
        progress.current().advance(42)
        assert (shown.total, shown.done) == (42, 42)
    assert progress.current() is not shown


def test_threads_have_their_own_current_step():
    seen = []
    with progress.task(None, "generating", unit="responses") as shown:
        worker = threading.Thread(target=lambda: seen.append(progress.current() is shown))
        worker.start()
        worker.join()
    assert seen == [False]


def test_on_a_terminal_a_live_line_that_leaves_stdout_alone():
    out = _Terminal()
    before = sys.stdout  # pytest's capture: not a terminal, like a pipe
    with progress.task(_console(out), "generating", total=4, unit="responses") as shown:
        assert sys.stdout is before  # responses written to stdout go to the pipe unchanged
        shown.advance(4)
    assert "generating" in out.getvalue()  # drawn on the terminal (and cleared: transient)


def test_the_interval_comes_from_the_environment(monkeypatch):
    monkeypatch.delenv(progress.INTERVAL_ENV, raising=False)
    assert progress.interval_seconds() == progress.INTERVAL == 10.0
    monkeypatch.setenv(progress.INTERVAL_ENV, "30")
    assert progress.interval_seconds() == 30.0
    for bad in ("soon", "0", "-5", "inf"):
        monkeypatch.setenv(progress.INTERVAL_ENV, bad)
        with pytest.raises(ConfigError) as err:
            progress.interval_seconds()
        assert progress.INTERVAL_ENV in err.value.message and err.value.hint


def test_durations_read_as_clock_times():
    assert progress.duration(0) == "0:00:00"
    assert progress.duration(65.9) == "0:01:05"
    assert progress.duration(3 * 3600 + 1) == "3:00:01"
