"""Benchmark: `sftkit generate` over 64 prompts from stdin, batched (--batch-size 16) vs one prompt at a time (--batch-size 1).

Each setting runs the real command in a fresh process (`python -m sftkit generate MODEL --batch-size B --stats`)
with the prompts on stdin, ``--repeats`` times; the fastest run counts (the machine is shared, so slower runs
measure the neighbours). Reported per setting:

- generation tokens/s: new tokens / seconds inside ``model.generate`` (from ``--stats``);
- end-to-end tokens/s: new tokens / wall time of the whole command (start-up and model loading included);

and whether greedy outputs are identical across batch sizes (they must be).

    python benchmarks/generate_batching.py                      # builtin:tiny, untrained: every answer is long
    python benchmarks/generate_batching.py runs/tiny --max-new-tokens 16
    python benchmarks/generate_batching.py --json > results.json

Results are written up in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import time

from _common import package_version

STATS = re.compile(r"(\d+) responses, (\d+) new tokens in ([\d.]+) s of generation")


def prompts(n: int) -> list[str]:
    """``n`` prompts of the tiny task, of a few different lengths (so batches carry some left padding)."""
    from sftkit import tiny

    rows = tiny.heldout_rows(n, seed=11)
    return [r["instruction"] if i % 4 else f"{r['instruction']} (please answer with the word in capitals)" for i, r in enumerate(rows)]


def run_once(model: str, batch_size: int, max_new_tokens: int, stdin: str, threads: int | None = None) -> dict:
    cmd = [sys.executable, "-m", "sftkit", "generate", model, "--batch-size", str(batch_size), "--max-new-tokens", str(max_new_tokens), "--stats"]
    started = time.perf_counter()
    env = {**os.environ, "NO_COLOR": "1"} | ({"OMP_NUM_THREADS": str(threads)} if threads else {})
    proc = subprocess.run(cmd, input=stdin, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{proc.stderr}")
    match = STATS.search(proc.stderr)
    if not match:
        raise SystemExit(f"no --stats line in:\n{proc.stderr}")
    responses, tokens, seconds = int(match[1]), int(match[2]), float(match[3])
    return {"responses": responses, "new_tokens": tokens, "generate_s": seconds, "wall_s": wall, "stdout": proc.stdout}


def measure(model: str, batch_size: int, max_new_tokens: int, stdin: str, repeats: int, threads: int | None) -> dict:
    runs = [run_once(model, batch_size, max_new_tokens, stdin, threads) for _ in range(repeats)]
    best = min(runs, key=lambda r: r["generate_s"])
    return {
        "batch_size": batch_size,
        "responses": best["responses"],
        "new_tokens": best["new_tokens"],
        "generate_s": round(best["generate_s"], 3),
        "generate_tokens_per_s": round(best["new_tokens"] / best["generate_s"], 1),
        "generate_s_median": round(statistics.median(r["generate_s"] for r in runs), 3),
        "wall_s": round(min(r["wall_s"] for r in runs), 2),
        "end_to_end_tokens_per_s": round(best["new_tokens"] / min(r["wall_s"] for r in runs), 1),
        "outputs": {r["stdout"] for r in runs},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", nargs="?", default="builtin:tiny", help="run folder, model folder or Hub id (default: builtin:tiny)")
    parser.add_argument("--prompts", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--max-new-tokens", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="OMP_NUM_THREADS for the runs (default: torch's own choice)")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args()

    stdin = "".join(p + "\n" for p in prompts(args.prompts))
    one = measure(args.model, 1, args.max_new_tokens, stdin, args.repeats, args.threads)
    batched = measure(args.model, args.batch_size, args.max_new_tokens, stdin, args.repeats, args.threads)
    same = len(one["outputs"] | batched["outputs"]) == 1
    for r in (one, batched):
        r.pop("outputs")
    result = {
        "model": args.model,
        "prompts": args.prompts,
        "max_new_tokens": args.max_new_tokens,
        "repeats": args.repeats,
        "threads": args.threads or "default",
        "machine": {"cpus": os.cpu_count(), "affinity": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None, "platform": platform.platform(), "python": platform.pythonpackage_version()},
        "torch": package_version("torch"),
        "transformers": package_version("transformers"),
        "one_by_one": one,
        "batched": batched,
        "speedup_generate": round(batched["generate_tokens_per_s"] / one["generate_tokens_per_s"], 2),
        "speedup_end_to_end": round(batched["end_to_end_tokens_per_s"] / one["end_to_end_tokens_per_s"], 2),
        "identical_outputs": same,
    }
    if args.json:
        print(json.dumps(result, indent=2))
        return
    threads = f"OMP_NUM_THREADS={args.threads}" if args.threads else "default torch threads"
    print(f"model {args.model}, {args.prompts} prompts from stdin, --max-new-tokens {args.max_new_tokens}, {threads}, best of {args.repeats}")
    print("| --batch-size | new tokens | generate s | generation tokens/s | wall s | end-to-end tokens/s |")
    print("|---:|---:|---:|---:|---:|---:|")
    for r in (one, batched):
        print(f"| {r['batch_size']} | {r['new_tokens']} | {r['generate_s']} | {r['generate_tokens_per_s']} | {r['wall_s']} | {r['end_to_end_tokens_per_s']} |")
    print(f"speed-up: {result['speedup_generate']}x (generation), {result['speedup_end_to_end']}x (end to end); identical outputs: {same}")


if __name__ == "__main__":
    main()
