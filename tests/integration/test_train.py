"""`sftkit train` end to end on real tiny models, through the real CLI (subprocess: a user's process)."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow


def sftkit(*args: str, check: bool = True, timeout: float = 900, **kwargs) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        [sys.executable, "-m", "sftkit", *args], capture_output=True, text=True, timeout=timeout, **kwargs
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"sftkit {' '.join(args)} exited {proc.returncode}\n{proc.stderr[-3000:]}")
    return proc


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory) -> Path:
    """The README's main job: `sftkit train --preset tiny`, once for this module."""
    run = tmp_path_factory.mktemp("train") / "tiny"
    proc = sftkit("train", "--preset", "tiny", "--output-dir", str(run))
    assert "done: model in" in proc.stderr
    assert proc.stdout == ""  # people-facing output goes to stderr only
    return run


def test_run_folder_holds_everything(tiny_run: Path):
    for name in ("sftkit.yaml", "metrics.jsonl", "train.log", "environment.json", "sft_metadata.json", "README.md", "model"):
        assert (tiny_run / name).exists(), name
    model = tiny_run / "model"
    for name in ("config.json", "model.safetensors", "tokenizer.json", "chat_template.jinja", "sft_metadata.json", "README.md"):
        assert (model / name).exists(), name
    meta = json.loads((tiny_run / "sft_metadata.json").read_text())
    assert meta["trainer_type"] == "sft" and meta["method"] == "full" and meta["model"] == "builtin:tiny"
    assert meta["template"] and meta["max_length"] == 64 and meta["packing"] is False and meta["completed_at"]
    card = (model / "README.md").read_text()
    assert card.startswith("---\n") and "\nlibrary_name: transformers\n" in card and "sftkit" in card
    records = [json.loads(line) for line in (tiny_run / "metrics.jsonl").read_text().splitlines()]
    losses = [r["loss"] for r in records if "loss" in r]
    assert losses[-1] < losses[0] / 4, losses
    assert any("eval_loss" in r for r in records)
    log = (tiny_run / "train.log").read_text()
    assert "training finished" in log and "\x1b[" not in log
    checkpoints = sorted(tiny_run.glob("checkpoint-*"))
    assert 1 <= len(checkpoints) <= 2  # save_total_limit 2
    env = json.loads((tiny_run / "environment.json").read_text())
    # the tiny preset trains on the CPU: float32 and no fused kernels, each with the reason
    assert env["precision"] == "fp32" and env["precision_chosen_from"].startswith("train.precision=auto: no CUDA GPU")
    assert env["kernels"] == "none" and env["kernels_chosen_from"] == "train.kernels=auto: no CUDA GPU in use"


def test_tiny_model_learns_its_task(tiny_run: Path):
    from sftkit.generation import load
    from sftkit.modeling import load_tokenizer, resolve_model_path
    from sftkit.tiny import exact_match, heldout_rows

    rows = heldout_rows(200, seed=123)
    trained = load(str(tiny_run))
    acc = exact_match(trained.model, trained.tokenizer, rows)
    assert acc >= 0.8, f"exact match after training: {acc:.2%}"

    from transformers import AutoModelForCausalLM

    source, _ = resolve_model_path("builtin:tiny")
    untrained = AutoModelForCausalLM.from_pretrained(source)
    base_acc = exact_match(untrained, load_tokenizer("builtin:tiny"), rows)
    assert base_acc <= 0.02, f"untrained exact match should be ~0, got {base_acc:.2%}"


def test_existing_run_folder_is_not_overwritten(tiny_run: Path):
    before = (tiny_run / "model" / "model.safetensors").stat().st_mtime_ns
    proc = sftkit("train", "--preset", "tiny", "--output-dir", str(tiny_run), check=False)
    assert proc.returncode == 2
    assert "already holds a run" in proc.stderr and "--overwrite" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert (tiny_run / "model" / "model.safetensors").stat().st_mtime_ns == before


def _optimizer_state(checkpoint: Path) -> dict:
    import torch

    return torch.load(checkpoint / "optimizer.pt", map_location="cpu", weights_only=False)


def _training_args(checkpoint: Path):
    import torch

    return torch.load(checkpoint / "training_args.bin", map_location="cpu", weights_only=False)


def test_lora_settings_reach_the_optimizer_and_schedule(tmp_path: Path):
    run = tmp_path / "lora"
    sftkit(
        "train", "--preset", "tiny", "--output-dir", str(run),
        "--set", "lora.enabled=true", "--set", "lora.r=4", "--set", "lora.alpha=8",
        "--set", "train.max_iters=12", "--set", "train.logging_steps=1", "--set", "train.save_steps=12",
        "--set", "train.beta2=0.95", "--set", "train.eps=1e-6", "--set", "train.learning_rate=1e-3",
        "--set", "train.min_lr=2e-4", "--set", "train.warmup_ratio=0",
    )  # fmt: skip
    state = _optimizer_state(run / "checkpoint-12")
    group = state["param_groups"][0]
    assert tuple(group["betas"]) == (0.9, 0.95) and group["eps"] == 1e-6
    lrs = [json.loads(l)["learning_rate"] for l in (run / "metrics.jsonl").read_text().splitlines() if '"learning_rate"' in l]
    # cosine from 1e-3 down to min_lr 2e-4 (not to zero): lr(i) = min + (max - min) * (1 + cos(pi * i / 12)) / 2
    expected = [2e-4 + 8e-4 * (1 + math.cos(math.pi * i / 12)) / 2 for i in range(12)]
    assert lrs == pytest.approx(expected, rel=1e-6)
    adapter = json.loads((run / "model" / "adapter_config.json").read_text())
    assert adapter["r"] == 4 and adapter["lora_alpha"] == 8
    assert not (run / "model" / "model.safetensors").exists()  # an adapter, not a full copy
    meta = json.loads((run / "model" / "sft_metadata.json").read_text())
    assert meta["method"] == "lora"


def test_dpo_with_lora_uses_beta_and_no_second_model(tmp_path: Path):
    run = tmp_path / "dpo"
    proc = sftkit(
        "train", "--preset", "tiny", "--trainer-type", "dpo", "--output-dir", str(run),
        "--set", "lora.enabled=true", "--set", "dpo.beta=0.25", "--set", "train.max_iters=6",
        "--set", "train.save_steps=6", "--set", "train.logging_steps=2", "--set", "train.learning_rate=1e-3",
    )  # fmt: skip
    assert "DPO (lora)" in proc.stderr
    args = _training_args(run / "checkpoint-6")
    assert type(args).__name__ == "DPOConfig" and args.beta == 0.25 and list(args.loss_type) == ["sigmoid"]
    records = [json.loads(l) for l in (run / "metrics.jsonl").read_text().splitlines()]
    assert any("rewards/chosen" in r or "rewards/margins" in r for r in records), records[0].keys()
    assert (run / "model" / "adapter_config.json").exists() and (run / "dpo_metadata.json").exists()
    # with LoRA the reference is the base with adapters disabled: nothing else was loaded
    assert json.loads((run / "dpo_metadata.json").read_text())["dpo"]["ref_model"] is None


def test_qlora_4bit_trains_or_fails_clearly(tmp_path: Path):
    run = tmp_path / "qlora"
    proc = sftkit(
        "train", "--preset", "tiny", "--output-dir", str(run),
        "--set", "lora.enabled=true", "--set", "lora.load_in_4bit=true", "--set", "train.max_iters=4",
        "--set", "train.save_steps=4",
        check=False,
    )  # fmt: skip
    assert "Traceback" not in proc.stderr
    if proc.returncode == 0:
        args = _training_args(run / "checkpoint-4")
        assert args.max_steps == 4
        config = json.loads((run / "model" / "adapter_config.json").read_text())
        assert config["r"] == 8
        meta = json.loads((run / "model" / "sft_metadata.json").read_text())
        assert meta["method"] == "qlora"  # the method names of sftkit.names
    else:
        lines = [l for l in proc.stderr.splitlines() if l.startswith("error:")]
        assert len(lines) == 1 and "4-bit" in lines[0], proc.stderr
        assert not (run / "model").exists()


def test_nan_loss_stops_with_a_clear_message(tmp_path: Path):
    run = tmp_path / "nan"
    proc = sftkit(
        "train", "--preset", "tiny", "--output-dir", str(run),
        "--set", "train.learning_rate=1e30", "--set", "train.max_grad_norm=0", "--set", "train.warmup_ratio=0",
        "--set", "train.max_iters=40", "--set", "train.logging_steps=1",
        check=False,
    )  # fmt: skip
    assert proc.returncode == 1, proc.stderr
    assert "became" in proc.stderr and "nan" in proc.stderr.lower() and "train.learning_rate" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (run / "model").exists()


def _weights(model_dir: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(str(model_dir / "model.safetensors"))


def test_interrupt_and_resume_gives_the_same_weights(tmp_path: Path):
    common = ["--preset", "tiny", "--set", "train.max_iters=40", "--set", "train.save_steps=1000", "--set", "train.logging_steps=1"]
    straight = tmp_path / "straight"
    sftkit("train", *common, "--output-dir", str(straight))

    run = tmp_path / "interrupted"
    proc = subprocess.Popen(
        [sys.executable, "-m", "sftkit", "train", *common, "--output-dir", str(run)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    metrics = run / "metrics.jsonl"
    deadline = time.time() + 600
    while time.time() < deadline and proc.poll() is None:
        if metrics.exists() and sum(1 for l in metrics.read_text().splitlines() if '"loss"' in l) >= 8:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 130, err
    assert "stopped by SIGINT" in err and "--resume" in err and "Traceback" not in err
    assert not (run / "model").exists()
    checkpoints = list(run.glob("checkpoint-*"))
    assert len(checkpoints) == 1 and 8 <= int(checkpoints[0].name.split("-")[1]) < 40

    resumed = sftkit("train", "--config", str(run / "sftkit.yaml"), "--resume")
    assert "done" in resumed.stderr
    a, b = _weights(straight / "model"), _weights(run / "model")
    assert a.keys() == b.keys()
    for key in a:
        assert (a[key] - b[key]).abs().max().item() <= 1e-5, key


def test_resume_refuses_a_changed_config(tmp_path: Path):
    run = tmp_path / "r"
    sftkit("train", "--preset", "tiny", "--output-dir", str(run), "--set", "train.max_iters=3", "--set", "train.save_steps=3")
    proc = sftkit(
        "train", "--preset", "tiny", "--output-dir", str(run), "--set", "train.max_iters=3",
        "--set", "train.learning_rate=5e-3", "--resume", check=False,
    )  # fmt: skip
    assert proc.returncode == 2
    assert "train.learning_rate changed" in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.skipif(sys.platform == "win32", reason="torchrun gloo on Windows is not supported")
def test_two_processes_on_cpu_produce_one_model(tmp_path: Path):
    run = tmp_path / "ddp"
    proc = sftkit(
        "train", "--preset", "tiny", "--nproc", "2", "--output-dir", str(run),
        "--set", "train.max_iters=10", "--set", "train.save_steps=10", "--set", "train.logging_steps=5",
        "--master-port", str(29500 + os.getpid() % 1000),
    )  # fmt: skip
    assert (run / "model" / "model.safetensors").exists()
    env = json.loads((run / "environment.json").read_text())
    assert env["world_size"] == 2
    # rank 0 alone writes: one line per logging event
    steps = [json.loads(l)["step"] for l in (run / "metrics.jsonl").read_text().splitlines() if '"loss"' in l]
    assert steps == sorted(set(steps))
    assert proc.stderr.count("training finished") == 1
    args = _training_args(run / "checkpoint-10")
    assert args.world_size == 2 and math.isfinite(json.loads((run / "final_metrics.json").read_text())["train_loss"])


def test_packing_trains_through_the_cli(tmp_path: Path):
    run = tmp_path / "packed"
    sftkit(
        "train", "--preset", "tiny", "--output-dir", str(run), "--set", "data.packing=true",
        "--set", "train.max_iters=6", "--set", "train.save_steps=6", "--set", "train.logging_steps=2",
    )  # fmt: skip
    args = _training_args(run / "checkpoint-6")
    assert args.packing is True and args.max_length == 64
    meta = json.loads((run / "sft_metadata.json").read_text())
    assert meta["packing"] is True
    # packed rows of ~15 tokens into 64-token sequences: far more rows per step than the batch size
    tokens = [json.loads(l)["num_input_tokens_seen"] for l in (run / "metrics.jsonl").read_text().splitlines() if "num_input_tokens_seen" in l]
    assert tokens and tokens[-1] > 6 * 32 * 20


def test_default_tracking_is_local_trackio_and_keeps_stdout_clean(tmp_path: Path):
    run = tmp_path / "tracked"
    env = {**os.environ, "TRACKIO_DIR": str(tmp_path / "trackio")}
    proc = sftkit(
        "train", "--preset", "tiny", "--output-dir", str(run), "--set", "tracking.enabled=true",
        "--set", "tracking.project=sftkit-test", "--set", "train.max_iters=4", env=env,
    )  # fmt: skip
    assert proc.stdout == ""  # trackio's own announcements were sent to stderr
    assert "dashboard: trackio show --project sftkit-test" in proc.stderr
    assert any((tmp_path / "trackio").glob("sftkit-test*")), list((tmp_path / "trackio").iterdir())


def test_padding_free_default_trains_like_padded_batches(tmp_path: Path):
    """The default (padding-free, checked exact on the model) and explicit padding reach the same losses on the
    same rows and steps (relative 1e-4: only float summation order differs)."""
    common = ["train", "--preset", "tiny", "--set", "train.max_iters=15", "--set", "train.batch_size=8", "--set", "train.logging_steps=5",
              "--set", "train.save_steps=1000", "--set", "train.eval_steps=1000"]  # fmt: skip
    sftkit(*common, "--output-dir", str(tmp_path / "free"))
    sftkit(*common, "--output-dir", str(tmp_path / "padded"), "--set", "train.padding_free=false")
    env = json.loads((tmp_path / "free" / "environment.json").read_text())
    assert env["batching"].startswith("padding-free")
    assert json.loads((tmp_path / "padded" / "environment.json").read_text())["batching"].startswith("padded")

    def losses(run: Path) -> list[float]:
        return [json.loads(l)["loss"] for l in (run / "metrics.jsonl").read_text().splitlines() if '"loss"' in l]

    free, padded = losses(tmp_path / "free"), losses(tmp_path / "padded")
    assert len(free) == len(padded) >= 3
    assert free == pytest.approx(padded, rel=1e-4)
