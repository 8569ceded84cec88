"""FSDP on two CPU processes (gloo), through the real CLI: full fine-tuning that checkpoints, is killed inside a
checkpoint write and resumes to the weights of an uninterrupted run, and LoRA adapters; every run ends with one
consolidated final model that plain transformers (or peft) loads.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

#: 12 steps, a checkpoint every 4 (the first at step 4: a kill at the second write resumes from it)
STEPS = ["--preset", "tiny", "--nproc", "2", "--set", "train.max_iters=12", "--set", "train.save_steps=4", "--set", "train.logging_steps=50",
         "--set", "train.eval_steps=1000", "--set", "train.save_total_limit=2"]  # fmt: skip
RUN = [*STEPS, "--distributed", "fsdp"]  # the named setup shipped with sftkit (sftkit/distributed/fsdp.json)


def _port() -> str:
    return str(29900 + (os.getpid() * 7 + int(time.time())) % 90)


def _env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {"OMP_NUM_THREADS": "1", **os.environ}
    env.pop("SFTKIT_TEST_PAUSE", None)
    env.update(extra or {})
    return env


def sftkit(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "sftkit", *args, "--master-port", _port()], capture_output=True, text=True, env=_env(env), timeout=900)


def weights(run: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(str(run / "model" / "model.safetensors"))


@pytest.fixture(scope="module")
def straight(tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("fsdp") / "straight"
    done = sftkit("train", *RUN, "-o", str(run))
    assert done.returncode == 0, done.stderr[-3000:]
    return run


@pytest.mark.slow
def test_fsdp_shards_checkpoints_and_writes_one_model_transformers_loads(straight: Path):
    checkpoint = straight / "checkpoint-12"
    assert (checkpoint / "sftkit-complete.json").exists()  # the completion marker, written once (rank 0)
    assert (checkpoint / "pytorch_model_fsdp.bin").exists() and (checkpoint / "optimizer.bin").exists()  # FSDP's own checkpoint
    assert json.loads((straight / "state.json").read_text())["state"] == "finished"
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(str(straight / "model"))
    saved, loaded = weights(straight), model.state_dict()
    assert set(saved) <= set(loaded) and set(loaded) - set(saved) <= {"lm_head.weight"}  # whole, not one rank's shard
    for name, tensor in saved.items():
        assert tensor.shape == loaded[name].shape and bool((tensor == loaded[name]).all()), name


@pytest.mark.faults
def test_fsdp_killed_inside_a_checkpoint_resumes_to_the_same_weights(straight: Path, tmp_path: Path):
    run = tmp_path / "r"
    proc = subprocess.Popen([sys.executable, "-m", "sftkit", "train", *RUN, "-o", str(run), "--master-port", _port()],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=_env({"SFTKIT_TEST_PAUSE": "checkpoint:2"}))  # fmt: skip
    flag, deadline = run / ".paused-checkpoint", time.time() + 600
    while not flag.exists():  # the write of checkpoint-8: its weights written, the optimizer state not
        assert proc.poll() is None, proc.stderr.read()[-3000:]
        assert time.time() < deadline
        time.sleep(0.05)
    proc.kill()  # the launcher; torchrun and both ranks die with it
    proc.communicate(timeout=60)
    time.sleep(1)
    assert not (run / "checkpoint-8" / "sftkit-complete.json").exists()
    assert (run / "checkpoint-4" / "pytorch_model_fsdp.bin").exists()  # sharded training, not two full DDP copies
    resumed = sftkit("train", *RUN, "-o", str(run), "--resume")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "skipped checkpoint-8: incomplete" in resumed.stderr
    assert json.loads((run / "state.json").read_text())["steps"] == 12
    a, b = weights(straight), weights(run)
    assert a.keys() == b.keys()
    for key in a:
        assert bool((a[key] == b[key]).all()), key  # bit for bit: same shards, same reduction order


@pytest.mark.slow
def test_lora_under_fsdp_saves_an_adapter_peft_loads(tmp_path: Path):
    run = tmp_path / "lora"
    done = sftkit("train", *STEPS, "--fsdp", "full_shard auto_wrap", "-o", str(run), "--set", "lora.enabled=true")
    assert done.returncode == 0, done.stderr[-3000:]
    assert (run / "checkpoint-12" / "sftkit-complete.json").exists()
    assert (run / "checkpoint-12" / "pytorch_model_fsdp.bin").exists()  # sharded training, not two full DDP copies
    from peft import AutoPeftModelForCausalLM
    from safetensors.torch import load_file

    adapter = load_file(str(run / "model" / "adapter_model.safetensors"))
    assert adapter and all("lora_" in k for k in adapter)
    model = AutoPeftModelForCausalLM.from_pretrained(str(run / "model"))
    loaded = {k.replace(".default", ""): v for k, v in model.state_dict().items() if "lora_" in k}
    for key, tensor in adapter.items():
        assert bool((loaded[key] == tensor).all()), key
    assert any(bool(t.abs().sum() > 0) for k, t in adapter.items() if "lora_B" in k)  # trained: B starts at zero


@pytest.mark.slow
def test_deepspeed_on_cpu_processes_is_one_line_not_a_silent_ddp_run(tmp_path: Path):
    pytest.importorskip("deepspeed", reason="without deepspeed the name is refused before training (tests/unit/test_distributed_names.py)")
    one_process = [a for a in STEPS if a not in ("--nproc", "2")]
    done = sftkit("train", *one_process, "--distributed", "zero2", "-o", str(tmp_path / "z"))
    assert done.returncode == 1, done.stderr[-3000:]
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "DeepSpeed" in errors[0] and "CUDA GPUs only" in errors[0], done.stderr[-3000:]
    assert "--distributed fsdp" in done.stderr
    assert not (tmp_path / "z" / "model").exists()
