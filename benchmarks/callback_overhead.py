"""Per-step cost of sftkit's own training callbacks: progress and metrics log, stop signal, NaN guard.

The same short SFT training runs twice per repeat, interleaved, in this process:

- ``on``: as ``sftkit train`` runs it: sftkit's trainer class (its NaN guard checks the loss and the gradient norm
  at every optimizer step), ``RunLogCallback`` (progress line, metrics.jsonl, train.log) and ``StopSignalCallback``
  (Ctrl-C / SIGTERM / stop file) with its signal handlers installed.
- ``off``: the same trainer class with the NaN guard bypassed (TRL's own ``training_step`` and
  ``_maybe_log_save_evaluate``) and neither callback.

Both sides use the trainer arguments ``sftkit train`` builds (padding-free batches, sftkit's loss), with
transformers' printing callbacks removed as sftkit removes them. Model: a LlamaForCausalLM with SmolLM2-135M's
shapes (49,152-token vocabulary, hidden 576, 9 heads, 3 KV heads, intermediate 1536, tied embeddings) and
``--layers`` layers, built from a config with a fixed seed, with the real SmolLM2 tokenizer
(../shared/tokenizers/smollm2); data: random token rows of 64 to 128 tokens, loss on
their second half. Step time: from one optimizer step to the next (an optimizer post-step hook), the first
``--warmup`` steps left out; each run's mean step time (so the periodic logging steps count), the median over
repeats per side, in wall-clock time and in this process's CPU time (all threads; less disturbed by other load
on a shared machine). Everything offline, CPU or GPU (whatever torch sees).

Run from the project root (needs ../shared)::

    python benchmarks/callback_overhead.py --steps 40 --repeats 5

Prints a Markdown section for docs/benchmarks.md (progress on stderr).
"""

from __future__ import annotations

import argparse
import os
import platform
import shlex
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
TOKENIZER = (ROOT / ".." / "shared" / "tokenizers" / "smollm2").resolve()
SEED = 42


def build_model(folder: Path, layers: int) -> None:
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    tok = AutoTokenizer.from_pretrained(str(TOKENIZER))
    config = LlamaConfig(vocab_size=49152, hidden_size=576, intermediate_size=1536, num_hidden_layers=layers,
                         num_attention_heads=9, num_key_value_heads=3, max_position_embeddings=8192,
                         rope_theta=100000.0, rms_norm_eps=1e-5, tie_word_embeddings=True, bos_token_id=tok.bos_token_id,
                         eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    torch.manual_seed(SEED)
    LlamaForCausalLM(config).to(torch.float32).save_pretrained(folder)
    tok.save_pretrained(folder)


def rows(n: int):
    import random

    from datasets import Dataset

    rnd = random.Random(SEED)
    ids, labels = [], []
    for _ in range(n):
        length = rnd.randint(64, 128)
        row = [rnd.randrange(3, 49152) for _ in range(length)]
        ids.append(row)
        labels.append([-100] * (length // 2) + row[length // 2 :])
    return Dataset.from_dict({"input_ids": ids, "labels": labels})


def config(model: Path, out: Path, ns):
    from sftkit.resolve import resolve_config

    sets = [f"model.name={model}", f"train.output_dir={out}", f"train.max_iters={ns.steps}", f"train.batch_size={ns.batch}",
            f"train.logging_steps={ns.logging_steps}", "train.save_steps=1000000", "train.eval_steps=1000000",
            "train.warmup_steps=0", "tracking.enabled=false", "data.validation_fraction=0"]
    return resolve_config(preset="tiny", sets=sets).config


class Inside:
    """Wall time spent inside sftkit's own code during a run (``on`` side): the callbacks' event methods, and the
    NaN guard (its trainer methods' time less the time of the TRL methods they wrap)."""

    def __init__(self) -> None:
        self.total = 0.0

    def wrap(self, fn, sign: int = 1):
        def timed(*a, **k):
            started = time.perf_counter()
            try:
                return fn(*a, **k)
            finally:
                self.total += sign * (time.perf_counter() - started)

        return timed

    def callbacks(self, *callbacks) -> None:
        for cb in callbacks:
            for name in ("on_train_begin", "on_step_begin", "on_step_end", "on_log", "on_save", "on_train_end"):
                setattr(cb, name, self.wrap(getattr(cb, name)))


def run(side: str, ns, model_dir: Path, work: Path, data, r: int) -> tuple[float, float, float]:
    """One training run; its mean step time in seconds after the warm-up steps: wall clock, and the CPU time of
    this process (all its threads), which other load on a shared machine disturbs less; and (``on``) the time per
    step inside sftkit's callbacks and NaN guard."""
    import torch
    from torch.optim.optimizer import register_optimizer_step_post_hook
    from transformers import (
        AutoModelForCausalLM,
        AutoTokenizer,
        PrinterCallback,
        ProgressCallback,
        set_seed,
    )
    from trl import SFTTrainer

    from sftkit.training.args import build_trainer_config
    from sftkit.training.callbacks import RunLogCallback, StopSignalCallback
    from sftkit.training.trainers import sft_trainer_class

    out = work / f"{side}-{r}"
    out.mkdir(parents=True)
    cfg = config(model_dir, out, ns)
    args = build_trainer_config(cfg, has_eval=False, padding_free=True, train_rows=len(data))
    set_seed(SEED)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    model.config.use_cache = False
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    cls = sft_trainer_class()
    signals = None
    inside, patched = Inside(), {}
    if side == "on":
        signals = StopSignalCallback(out / "STOP")
        callbacks = [RunLogCallback(out, None, False, None), signals]
        inside.callbacks(*callbacks)
        guarded = cls

        class Timed(guarded):  # the guard's methods, inclusive of the TRL methods they call ...
            training_step = inside.wrap(guarded.training_step)
            _maybe_log_save_evaluate = inside.wrap(guarded._maybe_log_save_evaluate)

        for name in ("training_step", "_maybe_log_save_evaluate"):  # ... less those TRL methods
            patched[name] = SFTTrainer.__dict__.get(name)
            setattr(SFTTrainer, name, inside.wrap(getattr(SFTTrainer, name), sign=-1))
        cls = Timed
    else:

        class Unguarded(cls):
            def training_step(self, *a, **k):
                return SFTTrainer.training_step(self, *a, **k)

            def _maybe_log_save_evaluate(self, *a, **k):
                return SFTTrainer._maybe_log_save_evaluate(self, *a, **k)

        cls, callbacks = Unguarded, []
    trainer = cls(model=model, args=args, train_dataset=data, processing_class=tokenizer, callbacks=callbacks)
    for noisy in (PrinterCallback, ProgressCallback):
        trainer.remove_callback(noisy)
    stamps: list[tuple[float, float]] = []
    handle = register_optimizer_step_post_hook(lambda *a: stamps.append((time.perf_counter(), time.process_time())))
    if signals is not None:
        signals.install()
    try:
        trainer.train()
    finally:
        handle.remove()
        if signals is not None:
            signals.uninstall()
        for name, original in patched.items():
            if original is None:
                delattr(SFTTrainer, name)
            else:
                setattr(SFTTrainer, name, original)
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    if len(stamps) != ns.steps:
        raise SystemExit(f"{side}: {len(stamps)} optimizer steps, expected {ns.steps}")
    kept = stamps[ns.warmup :]
    wall, cpu = ((kept[-1][i] - kept[0][i]) / (len(kept) - 1) for i in (0, 1))
    return wall, cpu, inside.total / ns.steps


def machine() -> str:
    cpu = ""
    if Path("/proc/cpuinfo").exists():
        cpu = next((l.split(":", 1)[1].strip() for l in Path("/proc/cpuinfo").read_text().splitlines() if l.startswith("model name")), "")
    import torch

    gpu = torch.cuda.get_device_name() if torch.cuda.is_available() else "no GPU"
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return f"{os.cpu_count()} x {cpu or platform.processor()} ({usable} usable), {gpu}; torch {torch.__version__}, {torch.get_num_threads()} threads"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--warmup", type=int, default=5, help="steps left out of each run's time")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--logging-steps", type=int, default=1, help="1: a log event every step (the worst case)")
    ns = parser.parse_args()
    if ns.steps < ns.warmup + 2:
        parser.error("--steps must exceed --warmup by at least 2")
    os.environ.update({"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"})
    from sftkit.modeling import quiet_transformers

    command = "python " + shlex.join([os.path.relpath(sys.argv[0], ROOT), *sys.argv[1:]])
    with tempfile.TemporaryDirectory(prefix="callback-overhead-") as tmp, quiet_transformers():
        work = Path(tmp)
        build_model(work / "model", ns.layers)
        data = rows(ns.steps * ns.batch)
        load_before = os.getloadavg()
        times: dict[str, list[tuple[float, float, float]]] = {"on": [], "off": []}
        for r in range(ns.repeats):
            for side in ("off", "on") if r % 2 else ("on", "off"):  # alternate which side goes first
                times[side].append(run(side, ns, work / "model", work, data, r))
                wall, cpu, _ = times[side][-1]
                print(f"repeat {r} {side}: {wall * 1000:.1f} ms/step wall, {cpu * 1000:.1f} ms/step CPU", file=sys.stderr)
        load_after = os.getloadavg()

    def median(side: str, i: int) -> float:
        return statistics.median(t[i] for t in times[side])

    def listed(side: str, i: int) -> str:
        return ", ".join(f"{t[i] * 1000:.1f}" for t in times[side])

    overhead = [100 * (median("on", i) / median("off", i) - 1) for i in (0, 1)]
    share = statistics.median(100 * t[2] / t[0] for t in times["on"])
    print("\n".join([
        f"Machine: {machine()}; load average {load_before[0]:.2f} before, {load_after[0]:.2f} after.",
        "",
        "```",
        command,
        "```",
        "",
        "| side | median wall ms/step | median CPU ms/step | wall, each repeat | CPU, each repeat |",
        "|---|---:|---:|---|---|",
        *(f"| {side} | {median(side, 0) * 1000:.1f} | {median(side, 1) * 1000:.1f} | {listed(side, 0)} | {listed(side, 1)} |"
          for side in ("on", "off")),
        "",
        (f"Overhead of sftkit's callbacks and NaN guard: {overhead[0]:+.2f}% wall, {overhead[1]:+.2f}% CPU time "
         f"({ns.steps} steps of batch {ns.batch}, "
         f"{ns.layers} layers, logging every {ns.logging_steps} step(s), {ns.repeats} interleaved repeats). Time inside "
         f"sftkit's callbacks and NaN guard, measured directly on the on side: {statistics.median(t[2] for t in times['on']) * 1000:.2f} ms "
         f"per step, {share:.2f}% of the step (median over repeats)."),
    ]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
