"""Benchmark: start-up time of `sftkit --help`, `sftkit --version` and `sftkit train --help` against `trl --help`.

Each command runs as a whole process (the console scripts next to this Python: the venv's ``sftkit`` and
``trl``), output to /dev/null, ``COLUMNS=100``; its wall time is measured from spawn to exit. The commands are
interleaved (one run of each, in turn, the order rotating, ``--repeats`` times, after one discarded warm-up
run each) since the machine is shared; the median and the fastest run are reported, with ``python -c pass``
as the floor every Python command pays.

sftkit's bytecode is compiled first (``compileall``, as ``pip install`` does), so a checkout with
``PYTHONDONTWRITEBYTECODE=1`` is measured as an installed sftkit would run (``--no-compile`` measures it as it
is). ``python -X importtime -m sftkit --help 2> imports.txt`` shows where the time goes.

    python benchmarks/startup.py                 # 20 repeats, a markdown table
    python benchmarks/startup.py --repeats 40 --json
    git archive HEAD~3 sftkit | tar -x -C /tmp/old && python benchmarks/startup.py --baseline /tmp/old
                                                 # also an older sftkit (the folder holding its package)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from _common import package_version

ROOT = Path(__file__).resolve().parents[1]


def script(name: str) -> str:
    """The console script ``name`` of this Python's environment (else the one on PATH)."""
    here = Path(sys.executable).parent / name
    found = str(here) if here.exists() else shutil.which(name)
    if not found:
        raise SystemExit(f"`{name}` not found next to {sys.executable} or on PATH")
    return found


def commands(baseline: str | None) -> dict[str, tuple[list[str], dict[str, str]]]:
    """name -> (argv, extra environment)."""
    sftkit, trl = script("sftkit"), script("trl")
    cmds = {
        "sftkit --help": ([sftkit, "--help"], {}),
        "sftkit --version": ([sftkit, "--version"], {}),
        "sftkit train --help": ([sftkit, "train", "--help"], {}),
        "trl --help": ([trl, "--help"], {}),
        "python -c pass": ([sys.executable, "-c", "pass"], {}),
    }
    if baseline:
        old = {"PYTHONPATH": os.pathsep.join([baseline, *filter(None, [os.environ.get("PYTHONPATH")])])}
        for name in ("sftkit --help", "sftkit --version", "sftkit train --help"):
            cmds[f"{name} (baseline)"] = (cmds[name][0], old)
    return cmds


def run_once(cmd: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    proc = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    elapsed = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stderr.decode(errors='replace')}")
    return elapsed


def machine() -> dict:
    return {
        "cpus": os.cpu_count(),
        "affinity": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "python": platform.pythonpackage_version(),
        "load_before": _load(),
        "versions": {name: package_version(name) for name in ("sftkit", "typer", "rich", "trl")},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--no-compile", action="store_true", help="do not compile sftkit's bytecode first")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument("--baseline", metavar="DIR", help="also measure the sftkit package in DIR (DIR/sftkit), e.g. an older checkout")
    args = parser.parse_args()

    if args.baseline and not (Path(args.baseline) / "sftkit" / "__init__.py").is_file():
        raise SystemExit(f"--baseline: no sftkit package in {args.baseline}")
    if not args.no_compile:
        import compileall

        for folder in [ROOT, *([Path(args.baseline)] if args.baseline else [])]:
            compileall.compile_dir(str(folder / "sftkit"), quiet=1)
    cmds = commands(args.baseline)
    env = {**os.environ, "COLUMNS": "100"}
    info = machine()
    for cmd, extra in cmds.values():  # warm-up: the file cache, not counted
        run_once(cmd, {**env, **extra})
    times: dict[str, list[float]] = {name: [] for name in cmds}
    names = list(cmds)
    for r in range(args.repeats):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            cmd, extra = cmds[name]
            times[name].append(run_once(cmd, {**env, **extra}))
    info["load_after"] = _load()
    trl_median = statistics.median(times["trl --help"])
    rows = [
        {
            "command": name,
            "median_ms": round(statistics.median(t) * 1000, 1),
            "min_ms": round(min(t) * 1000, 1),
            "vs_trl_help": round(statistics.median(t) / trl_median, 2),
        }
        for name, t in times.items()
    ]
    result = {"repeats": args.repeats, "bytecode_compiled": not args.no_compile, "baseline": args.baseline, "machine": info, "results": rows}
    if args.json:
        print(json.dumps(result, indent=2))
        return
    m = info
    versions = ", ".join(f"{k} {v}" for k, v in m["versions"].items())
    print(
        f"{args.repeats} interleaved runs of each command (whole process, COLUMNS=100, output to /dev/null); "
        f"sftkit bytecode {'compiled' if result['bytecode_compiled'] else 'as found'}"
        + (f"; (baseline): the sftkit package in {args.baseline}" if args.baseline else "")
    )
    print(
        f"machine: {m['processor']}, {m['cpus']} CPUs ({m['affinity']} usable), {m['platform']}, Python {m['python']}; {versions}; "
        f"load average {m['load_before']} before, {m['load_after']} after"
    )
    print()
    print("| command | median ms | min ms | median vs `trl --help` |")
    print("|---|---:|---:|---:|")
    for r in rows:
        print(f"| `{r['command']}` | {r['median_ms']} | {r['min_ms']} | {r['vs_trl_help']:.2f}x |")


def _load() -> list[float] | None:
    return [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None


if __name__ == "__main__":
    main()
