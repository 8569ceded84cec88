"""Fine-tune the real SmolLM2-135M-Instruct with LoRA on a slice of real alpaca data: held-out loss goes down."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from conftest import shared_path


def test_lora_on_alpaca_slice_lowers_heldout_loss(smollm2_dir: Path, tmp_path: Path):
    import sftkit

    rows = json.loads(shared_path("data", "llamafactory", "alpaca_en_demo.json").read_text())
    short = [r for r in rows if len(r["instruction"]) + len(r.get("input", "")) + len(r["output"]) < 360]
    train, val = short[:160], short[-24:]
    (tmp_path / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in train))
    (tmp_path / "val.jsonl").write_text("".join(json.dumps(r) + "\n" for r in val))
    run = tmp_path / "run"
    cfg = tmp_path / "sftkit.yaml"
    cfg.write_text(
        f"""
trainer_type: sft
model:
  name: {smollm2_dir}
  max_seq_length: 160
data:
  dataset: {tmp_path / 'train.jsonl'}
  validation_file: {tmp_path / 'val.jsonl'}
lora:
  enabled: true
  r: 16
  alpha: 32
  dropout: 0.0
train:
  output_dir: {run}
  batch_size: 4
  learning_rate: 1.0e-3
  warmup_steps: 2
  max_iters: 16
  eval_steps: 8
  logging_steps: 4
  save_steps: 16
  use_cpu: true
tracking:
  enabled: false
"""
    )
    env = {**os.environ, "OMP_NUM_THREADS": str(os.cpu_count() or 1)}  # a real model does use every core
    proc = subprocess.run(
        [sys.executable, "-m", "sftkit", "train", "--config", str(cfg)], capture_output=True, text=True, timeout=1800, env=env
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    meta = json.loads((run / "sft_metadata.json").read_text())
    assert meta["method"] == "lora" and meta["template_resolved"] == "chat"

    # the same held-out rows, the same template and masking, scored for the base model and the tuned one
    base = sftkit.evaluate(str(smollm2_dir), data=tmp_path / "val.jsonl", generate=False, write=False)
    tuned = sftkit.evaluate(str(run), data=tmp_path / "val.jsonl", generate=False, write=False)
    assert tuned["eval_loss"] < base["eval_loss"] - 0.02, (base["eval_loss"], tuned["eval_loss"])
