"""A pause point for fault-injection tests: a test kills the process while it waits mid-write.

``SFTKIT_TEST_PAUSE=NAME[:N]`` makes the N-th (default first) call of :func:`pause_point` with that name create
``<folder>/.paused-NAME`` and wait until the file is removed. Without the variable it costs one dictionary lookup.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

_seen: dict[str, int] = {}


def pause_point(name: str, folder: str | Path) -> None:
    wanted = os.environ.get("SFTKIT_TEST_PAUSE")
    if not wanted:
        return
    target, _, nth = wanted.partition(":")
    if target != name:
        return
    _seen[name] = _seen.get(name, 0) + 1
    if _seen[name] != int(nth or 1):
        return
    flag = Path(folder) / f".paused-{name}"
    flag.write_text(str(os.getpid()), encoding="utf-8")
    while flag.exists():
        time.sleep(0.05)
