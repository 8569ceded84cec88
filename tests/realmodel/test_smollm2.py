"""Fine-tune the real SmolLM2-135M-Instruct with LoRA on a slice of real alpaca data; eval loss goes down."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from conftest import shared_path


def test_lora_on_alpaca_slice_lowers_heldout_loss(smollm2_dir: Path, tmp_path: Path):
    rows = json.loads(shared_path("data", "llamafactory", "alpaca_en_demo.json").read_text())
    train, val = rows[:240], rows[900:940]
    (tmp_path / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in train))
    (tmp_path / "val.jsonl").write_text("".join(json.dumps(r) + "\n" for r in val))
    cfg = tmp_path / "sftkit.yaml"
    cfg.write_text(
        f"""
trainer_type: sft
model:
  name: {smollm2_dir}
  max_seq_length: 256
data:
  dataset: {tmp_path / 'train.jsonl'}
  validation_file: {tmp_path / 'val.jsonl'}
lora:
  enabled: true
  r: 16
  alpha: 32
  dropout: 0.0
train:
  output_dir: {tmp_path / 'run'}
  batch_size: 4
  learning_rate: 5.0e-4
  warmup_steps: 2
  max_iters: 30
  eval_steps: 10
  logging_steps: 5
  save_steps: 30
  use_cpu: true
tracking:
  enabled: false
"""
    )
    proc = subprocess.run(
        [sys.executable, "-m", "sftkit", "train", "--config", str(cfg)], capture_output=True, text=True, timeout=1500
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    evals = [r["eval_loss"] for r in records if "eval_loss" in r]
    assert len(evals) >= 3, records
    assert evals[-1] < evals[0], evals
    meta = json.loads((tmp_path / "run" / "sft_metadata.json").read_text())
    assert meta["method"] == "lora" and meta["template_resolved"] == "chat"
