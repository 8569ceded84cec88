"""`sftkit train` with ``trainer_type: kto`` on LLaMA-Factory's KTO demo (messages + a true/false label), through the
real CLI in a subprocess: the tiny model (its own byte-level tokenizer) trains full and LoRA, resumes after a kill,
and the run is evaluated and exported like any other."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import shared_path

pytestmark = pytest.mark.slow

KTO_DEMO = ("data", "llamafactory", "kto_en_demo.json")
#: 300 rows in batches of 10: one epoch is 30 steps
EPOCH = 30


def _env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {"OMP_NUM_THREADS": "1", **os.environ, **(extra or {})}
    if not extra or "SFTKIT_TEST_PAUSE" not in extra:
        env.pop("SFTKIT_TEST_PAUSE", None)
    return env


def sftkit(*args: str, check: bool = True, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, "-m", "sftkit", *args], capture_output=True, text=True, timeout=900, env=_env(env))
    if check and proc.returncode != 0:
        raise AssertionError(f"sftkit {' '.join(args)} exited {proc.returncode}\n{proc.stderr[-3000:]}")
    return proc


def kto_args(run: Path, *sets: str) -> list[str]:
    args = ["train", "--preset", "tiny", "--trainer-type", "kto", "--output-dir", str(run), "--set", f"data.dataset={shared_path(*KTO_DEMO)}",
            "--set", "data.validation_split=null", "--set", "train.batch_size=10", "--set", "train.eval_steps=1000"]  # fmt: skip
    for s in sets:
        args += ["--set", s]
    return args


def _logged(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def _training_args(checkpoint: Path):
    import torch

    return torch.load(checkpoint / "training_args.bin", weights_only=False)


def test_kto_trains_the_tiny_model_on_the_kto_demo_and_its_loss_falls(tmp_path: Path):
    run = tmp_path / "kto"
    # logging once an epoch: each logged loss is the mean over the same 30 batches (KTO reads them in one order)
    proc = sftkit(*kto_args(run, f"train.max_iters={6 * EPOCH}", f"train.logging_steps={EPOCH}", f"train.save_steps={3 * EPOCH}",
                            "train.seed=1", "kto.desirable_weight=1.2"))  # fmt: skip
    assert "KTO (full)" in proc.stderr and "done: model in" in proc.stderr and "Traceback" not in proc.stderr
    losses = [r["loss"] for r in _logged(run) if "loss" in r and r["step"] % EPOCH == 0]
    assert len(losses) == 6 and losses[-1] < losses[0] - 0.05, losses
    assert any("rewards/chosen" in r and "kl" in r for r in _logged(run))  # TRL's KTO metrics reach metrics.jsonl
    args = _training_args(run / f"checkpoint-{3 * EPOCH}")
    assert type(args).__name__ == "KTOConfig" and args.desirable_weight == 1.2 and args.loss_type == "kto"
    meta = json.loads((run / "kto_metadata.json").read_text())
    assert meta["trainer_type"] == "kto" and meta["data_format"] == "sharegpt_kto"
    assert meta["labels"] == {"desirable": 150, "undesirable": 150} and meta["kto"]["desirable_weight"] == 1.2
    assert "Kahneman-Tversky optimisation (KTO)" in (run / "README.md").read_text()

    # the loss on the demo's answers (their prompts are longer than the tiny model generates from)
    metrics = json.loads(sftkit("eval", str(run), "--data", str(shared_path(*KTO_DEMO)), "--json", "--no-generate").stdout)["metrics"]
    assert metrics["eval_loss"] > 0 and metrics["eval_undesirable_loss"] > 0 and metrics["eval_tokens"] > 0
    # generation is scored against desirable answers only
    short = tmp_path / "short.jsonl"
    short.write_text("".join(json.dumps({"prompt": w, "completion": c, "label": ok}) + "\n" for w, c, ok in
                             [("cat", "CAT", True), ("dog", "dog", False), ("owl", "OWL", True)]))  # fmt: skip
    metrics = json.loads(sftkit("eval", str(run), "--data", str(short), "--json", "--max-new-tokens", "4").stdout)["metrics"]
    assert metrics["generated"] == 2 and "exact_match" in metrics

    exported = sftkit("export", str(run), "--output", str(tmp_path / "exported"))
    assert "Traceback" not in exported.stderr
    assert (tmp_path / "exported" / "model.safetensors").exists() and (tmp_path / "exported" / "kto_metadata.json").exists()


def test_kto_resumes_from_its_last_complete_checkpoint_to_the_same_weights(tmp_path: Path):
    from safetensors.torch import load_file

    # 36 steps cross an epoch: the one-time shuffle and the KL pairing must be the same after the restart
    sets = ["train.max_iters=36", "train.save_steps=6", "train.logging_steps=6"]
    straight = tmp_path / "straight"
    sftkit(*kto_args(straight, *sets))

    run = tmp_path / "killed"
    proc = subprocess.Popen(
        [sys.executable, "-m", "sftkit", *kto_args(run, *sets)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env({"SFTKIT_TEST_PAUSE": "checkpoint:2"}),
    )  # fmt: skip
    flag, deadline = run / ".paused-checkpoint", time.time() + 600
    while not flag.exists():  # paused inside the write of checkpoint-12: the weights written, nothing else
        assert proc.poll() is None, proc.stderr.read()[-3000:] if proc.stderr else ""
        assert time.time() < deadline
        time.sleep(0.05)
    proc.kill()
    proc.communicate(timeout=60)
    assert not (run / "model").exists() and (run / "checkpoint-6" / "sftkit-complete.json").exists()

    resumed = sftkit(*kto_args(run, *sets), "--resume")
    assert "skipped checkpoint-12: incomplete" in resumed.stderr and "done: model in" in resumed.stderr
    a, b = load_file(str(straight / "model" / "model.safetensors")), load_file(str(run / "model" / "model.safetensors"))
    assert a.keys() == b.keys()
    for key in a:
        assert (a[key] - b[key]).abs().max().item() <= 1e-5, key


def test_lora_kto_trains_an_adapter(tmp_path: Path):
    from safetensors.torch import load_file

    run = tmp_path / "kto-lora"
    proc = sftkit(*kto_args(run, "lora.enabled=true", "train.max_iters=10", "train.save_steps=10", "train.logging_steps=5", "train.learning_rate=5e-3"))
    assert "KTO (lora)" in proc.stderr
    assert type(_training_args(run / "checkpoint-10")).__name__ == "KTOConfig"
    assert not (run / "model" / "model.safetensors").exists()  # an adapter, not a full copy
    adapter = load_file(str(run / "model" / "adapter_model.safetensors"))
    lora_b = [v for k, v in adapter.items() if "lora_B" in k]
    assert lora_b and any(v.abs().max().item() > 0 for v in lora_b)  # B starts at zero: it was trained
    meta = json.loads((run / "model" / "kto_metadata.json").read_text())
    assert meta["method"] == "lora" and meta["kto"]["ref_model"] is None  # the reference: the base, adapters off
    assert all(r["loss"] == r["loss"] for r in _logged(run) if "loss" in r)  # finite, no NaN
