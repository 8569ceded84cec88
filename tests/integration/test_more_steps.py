"""What a run produces, used again through the real CLI: a finished run trained for more steps, a new run started
from a run's model/ (full or LoRA adapter), and what a short run on a CPU says before it starts."""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

#: a short full run with a checkpoint half way and one at the end, every step logged, no warm-up
SHORT = ["train.max_iters=12", "train.save_steps=6", "train.logging_steps=1", "train.eval_steps=1000", "train.warmup_ratio=0"]


def _sets(pairs: list[str]) -> list[str]:
    return [arg for pair in pairs for arg in ("--set", pair)]


def _ok(proc) -> None:
    assert proc.returncode == 0, proc.stderr[-3000:]


def _logged(run: Path, key: str) -> dict[int, float]:
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return {r["step"]: r[key] for r in records if key in r}


@pytest.fixture(scope="module")
def short_run(tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("more") / "short"
    env = {"OMP_NUM_THREADS": "1", **os.environ}
    args = [sys.executable, "-m", "sftkit", "train", "--preset", "tiny", "--output-dir", str(run), *_sets(SHORT)]
    _ok(subprocess.run(args, check=False, capture_output=True, text=True, env=env, timeout=600))
    return run


def test_a_finished_run_trains_further_when_given_more_steps(short_run, sftkit_proc, tmp_path):
    run = tmp_path / "short"
    shutil.copytree(short_run, run)
    config, here = run / "sftkit.yaml", ("--output-dir", str(run))  # the copy's config still names the original folder

    weights = (run / "model" / "model.safetensors").stat().st_mtime_ns
    again = sftkit_proc("train", "--config", str(config), *here, "--resume")  # same length: nothing to do, and how to go on
    assert again.returncode == 0, again.stderr  # a job that resumes on every restart finds its run done: not an error
    err = " ".join(again.stderr.split())
    assert f"note: the run in {run} already finished (12 steps, train.max_iters is 12): nothing more to train" in err
    assert "--resume --set train.max_iters=22 (any number above 12)" in err and f"--set model.name={run / 'model'}" in err
    assert "training started" not in err and (run / "model" / "model.safetensors").stat().st_mtime_ns == weights
    into = sftkit_proc("train", "--config", str(config), *here)  # trained into again: the same ways on are suggested
    assert into.returncode == 2 and "already holds a run (finished)" in into.stderr
    assert "--resume --set train.max_iters=" in " ".join(into.stderr.split())

    more = sftkit_proc("train", "--config", str(config), *here, "--resume", "--set", "train.max_iters=20")
    _ok(more)
    note = " ".join(more.stderr.split())
    assert "train.max_iters 12 -> 20: continuing from checkpoint-12 for 8 more steps" in note
    state = json.loads((run / "state.json").read_text())
    assert state["state"] == "finished" and state["steps"] == 20
    assert json.loads((run / "sft_metadata.json").read_text())["steps"] == 20
    assert (run / "checkpoint-20").is_dir() and (run / "model" / "model.safetensors").is_file()
    assert "max_iters: 20" in config.read_text()  # the run's config records its length: --resume works again

    # the schedule, as the note states it: step 13 at the rate the 12-step cosine reached (0 at its end), then each
    # step at the 20-step cosine's rate for that step (a step runs at the rate set after the one before it)
    lrs, peak = _logged(run, "learning_rate"), 2e-3
    assert lrs[13] == pytest.approx(0.0, abs=1e-12)
    for step in range(14, 21):
        assert lrs[step] == pytest.approx(peak * 0.5 * (1 + math.cos(math.pi * (step - 1) / 20)), rel=1e-6), step
    assert f"({lrs[14]:.3g} at step 14, {lrs[20]:.3g} at step 20)" in note

    # the other way on the hint gives: a new run starting from this run's model/ (here a full model)
    new = Path(f"{run}-more")
    _ok(
        sftkit_proc(
            "train",
            "--preset",
            "tiny",
            "--set",
            f"model.name={run / 'model'}",
            "--output-dir",
            str(new),
            *_sets(["train.max_iters=4", "train.logging_steps=1"]),
        )
    )
    assert _logged(new, "loss")[1] < 0.9 * _logged(run, "loss")[1]  # it starts where the run ended, not from scratch
    assert json.loads((new / "sft_metadata.json").read_text())["model"] == str(run / "model")


def test_a_new_run_starts_from_a_lora_runs_adapter(lora_run, sftkit_proc, tmp_path):
    adapter = lora_run / "model"
    assert (adapter / "adapter_config.json").is_file() and not (adapter / "config.json").exists()
    losses = _logged(lora_run, "loss")
    base_loss, last_loss = losses[1], losses[max(losses)]  # the untrained base's loss, and the adapter's at the end

    def starts_from_the_adapter(run: Path) -> bool:
        first = _logged(run, "loss")[1]
        return first < 0.9 * base_loss and first == pytest.approx(last_loss, rel=0.05)

    full = tmp_path / "full-from-adapter"  # full fine-tuning of the base with the adapter merged in
    _ok(
        sftkit_proc(
            "train",
            "--preset",
            "tiny",
            "--output-dir",
            str(full),
            *_sets([f"model.name={adapter}", "train.max_iters=4", "train.logging_steps=1"]),
        )
    )
    assert starts_from_the_adapter(full)

    stacked = tmp_path / "lora-on-adapter"  # new LoRA adapters on top of the merged one
    _ok(
        sftkit_proc(
            "train",
            "--preset",
            "tiny",
            "--output-dir",
            str(stacked),
            *_sets([f"model.name={adapter}", "lora.enabled=true", "train.max_iters=4", "train.logging_steps=1"]),
        )
    )
    assert starts_from_the_adapter(stacked)
    # its model loads (base: the first adapter merged into its own base) and compares with the model it started from
    compared = sftkit_proc("eval", str(stacked), "--compare", "base", "--no-generate", "--json")
    _ok(compared)
    report = json.loads(compared.stdout)
    assert report["base"]["model"] == str(adapter)
    assert report["metrics"]["eval_loss"] == pytest.approx(report["base"]["metrics"]["eval_loss"], rel=0.5)


def test_a_short_cpu_run_warns_about_its_warm_up_and_nothing_else(sftkit_proc, tmp_path):
    run = tmp_path / "warm"
    # use_cpu=false: the device is whatever this machine has (on a CPU-only machine, no accelerator for pinned memory)
    proc = sftkit_proc(
        "train",
        "--preset",
        "tiny",
        "--output-dir",
        str(run),
        *_sets(["train.max_iters=3", "train.warmup_ratio=0", "train.warmup_steps=10", "train.use_cpu=false"]),
    )
    _ok(proc)
    assert "pin_memory" not in proc.stderr and "UserWarning" not in proc.stderr
    warnings = [line for line in proc.stderr.splitlines() if "warning" in line.lower()]
    assert len(warnings) == 1 and warnings[0].startswith(
        "warning: the warm-up (train.warmup_steps 10) is not shorter than the whole run (3 steps)"
    ), proc.stderr
    assert "warning: the warm-up" in (run / "train.log").read_text()
