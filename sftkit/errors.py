"""The one exception type sftkit raises for problems a user can fix.

Library code raises :class:`SftkitError`; only the CLI entry point turns it into a red line, a hint and
an exit code. Nothing else in sftkit prints errors.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

#: exit code for usage and configuration errors (as click uses for bad usage)
EXIT_USAGE = 2
#: exit code for a run that failed for another reason (data, model, hardware)
EXIT_FAILURE = 1
#: exit code after Ctrl-C / SIGTERM
EXIT_INTERRUPTED = 130


@dataclass
class Problem:
    """One thing wrong with a config: where it is, which key, and what is wrong."""

    message: str
    key: str | None = None
    where: str | None = None
    hint: str | None = None

    def __str__(self) -> str:
        parts = [p for p in (self.where, self.key) if p]
        prefix = ": ".join(parts)
        return f"{prefix}: {self.message}" if prefix else self.message


class SftkitError(Exception):
    """A problem the user can fix: a one-line message, an optional hint, and the exit code to use."""

    def __init__(
        self,
        message: str,
        hint: str | None = None,
        exit_code: int = EXIT_FAILURE,
        problems: list[Problem] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.exit_code = exit_code
        self.problems = problems or []


class ConfigError(SftkitError):
    """The configuration (preset, project file, --set, flags) is invalid. Exit code 2."""

    def __init__(self, message: str, hint: str | None = None, problems: list[Problem] | None = None) -> None:
        super().__init__(message, hint=hint, exit_code=EXIT_USAGE, problems=problems)

    @classmethod
    def from_problems(cls, problems: list[Problem]) -> "ConfigError":
        if len(problems) == 1:
            p = problems[0]
            return cls(str(p), hint=p.hint, problems=problems)
        return cls(f"{len(problems)} problems in the config", problems=problems)


class DataError(SftkitError):
    """Input data cannot be read or used (bad file, bad row, unknown format)."""


class InterruptedRun(SftkitError):
    """A run was stopped by Ctrl-C or SIGTERM after saving what it could."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message, hint=hint, exit_code=EXIT_INTERRUPTED)


def disk_full(err: BaseException, path: str | Path) -> bool:
    """Did ``err`` come from a full disk (or quota)? Libraries wrap the OSError (torch, safetensors), so the
    message and the free space left under ``path`` count too."""
    import errno
    import shutil

    if isinstance(err, OSError) and err.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    text = str(err)
    if any(s in text for s in ("No space left", "StorageFull", "os error 28", "Disk quota")):
        return True
    try:
        return shutil.disk_usage(path).free < 1 << 20
    except OSError:
        return False


@contextlib.contextmanager
def partial_output(partial: Path, what: str, hint: str, *, remove: bool = True, error: type[SftkitError] = SftkitError) -> Iterator[None]:
    """Around writing ``partial`` (a temporary or not yet complete output): if the writing fails, remove it
    (``remove``), and a full disk becomes one line, "disk full while writing WHAT", with ``hint``."""
    import shutil

    try:
        yield
    except Exception as err:
        full = disk_full(err, partial.parent)  # before removing the partial output frees the space
        if remove:
            shutil.rmtree(partial, ignore_errors=True)
        if full:
            raise error(f"disk full while writing {what}", hint=hint) from None
        raise
