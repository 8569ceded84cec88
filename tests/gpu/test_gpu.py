"""On a CUDA GPU, through the real CLI: bf16 training of the tiny model, sdpa attention, QLoRA (4-bit base,
bitsandbytes), and a few steps of benchmarks/train_throughput.py. Skipped, with the reason, without a GPU."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
GPU = ["--preset", "tiny", "--set", "train.use_cpu=false", "--set", "train.max_iters=30", "--set", "train.save_steps=1000",
       "--set", "train.eval_steps=1000", "--set", "train.logging_steps=5"]  # fmt: skip


def sftkit(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ}
    env.pop("SFTKIT_TEST_PAUSE", None)
    return subprocess.run([sys.executable, "-m", "sftkit", *args], capture_output=True, text=True, env=env, timeout=900)


def losses(run: Path) -> list[float]:
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines() if line.strip()]
    return [r["loss"] for r in rows if "loss" in r]


def test_bf16_training_of_the_tiny_model(tmp_path: Path):
    run = tmp_path / "bf16"
    done = sftkit("train", *GPU, "--set", "train.bf16=true", "--set", "train.learning_rate=1e-3", "-o", str(run))
    assert done.returncode == 0, done.stderr[-3000:]
    env = json.loads((run / "environment.json").read_text())
    assert "cuda" in json.dumps(env).lower()
    trained = losses(run)
    assert all(math.isfinite(x) for x in trained) and trained[-1] < trained[0]
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(str(run / "model"), dtype=torch.bfloat16).cuda()
    assert all(bool(torch.isfinite(p).all()) for p in model.parameters())


def test_sdpa_attention_matches_eager_on_the_gpu(tmp_path: Path):
    run = tmp_path / "sdpa"
    done = sftkit("train", *GPU, "-o", str(run))
    assert done.returncode == 0, done.stderr[-3000:]
    import torch
    from transformers import AutoModelForCausalLM

    ids = torch.arange(1, 33, device="cuda").unsqueeze(0)
    logits = {}
    for impl in ("sdpa", "eager"):
        model = AutoModelForCausalLM.from_pretrained(str(run / "model"), attn_implementation=impl).cuda().eval()
        assert model.config._attn_implementation == impl
        with torch.no_grad():
            logits[impl] = model(ids).logits.float()
    assert torch.allclose(logits["sdpa"], logits["eager"], atol=1e-3, rtol=1e-3)


def test_qlora_4bit_on_cuda_saves_an_adapter(tmp_path: Path):
    pytest.importorskip("bitsandbytes")
    run = tmp_path / "qlora"
    done = sftkit("train", *GPU, "--set", "lora.enabled=true", "--set", "lora.load_in_4bit=true", "--set", "train.bf16=true", "-o", str(run))
    assert done.returncode == 0, done.stderr[-3000:]
    assert (run / "model" / "adapter_model.safetensors").exists()
    trained = losses(run)
    assert all(math.isfinite(x) for x in trained)
    from peft import AutoPeftModelForCausalLM

    model = AutoPeftModelForCausalLM.from_pretrained(str(run / "model")).cuda()
    assert any("lora_" in name for name, _ in model.named_parameters())


def test_the_training_throughput_benchmark_runs_a_few_steps(tmp_path: Path):
    if not (ROOT.parent / "shared" / "tokenizers" / "smollm2").exists():
        pytest.skip("the benchmark needs ../shared (the SmolLM2 tokenizer and the Alpaca demo rows)")
    out = tmp_path / "sft.json"
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "train_throughput.py"), "--mode", "sft", "--steps", "5", "--repeats", "1",
                           "--sides", "sftkit", "--json", str(out)], capture_output=True, text=True, cwd=ROOT, timeout=900)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert out.exists() and json.loads(out.read_text())
