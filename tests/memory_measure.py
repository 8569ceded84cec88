"""Measuring a real training run's peak memory against the memory plan it printed (tests/integration and
tests/realmodel share this): the run is a grandchild of a small wrapper process, whose RUSAGE_CHILDREN then holds
the training process's peak resident size alone."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

UNITS = {"B": 1, "KiB": 1024, "MiB": 1024**2, "GiB": 1024**3}

WRAPPER = (
    "import resource, subprocess, sys\n"
    "done = subprocess.run(sys.argv[1:], capture_output=True, text=True)\n"
    "sys.stderr.write(done.stderr)\n"
    "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024)\n"
    "sys.exit(done.returncode)\n"
)


def train_and_measure(run: Path, sets: list[str]) -> tuple[int, int, str]:
    """Train the tiny preset with ``sets`` into ``run``; return (peak resident bytes, planned total bytes, stderr)."""
    args = [sys.executable, "-m", "sftkit", "train", "--preset", "tiny", "--output-dir", str(run)]
    for s in sets:
        args += ["--set", s]
    env = {"OMP_NUM_THREADS": "1", **os.environ}
    done = subprocess.run([sys.executable, "-c", WRAPPER, *args], capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    return int(done.stdout.strip().splitlines()[-1]), planned_total(run / "train.log"), done.stderr


def planned_total(log: Path) -> int:
    """The plan's total per process, from the plan train.log keeps."""
    line = next(line for line in log.read_text(encoding="utf-8").splitlines() if "per process:" in line)
    value, unit = re.search(r"= ([\d.]+) (B|KiB|MiB|GiB)$", line).groups()
    return int(float(value) * UNITS[unit])
