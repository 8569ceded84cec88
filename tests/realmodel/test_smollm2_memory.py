"""The memory plan of a SmolLM2-135M run against the run's measured peak memory (full fine-tuning on CPU, a few
steps of full 128-token sequences)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from memory_measure import train_and_measure


def test_plan_is_within_a_quarter_of_the_measured_peak(smollm2_dir: Path, tmp_path: Path):
    sets = [
        f"model.name={smollm2_dir}", "model.max_seq_length=128", "train.batch_size=4", "train.max_iters=3", "train.save_steps=1000",
        # packed full sequences, every token's logits: each step holds what the plan counts
        "data.packing=true", "data.completion_only_loss=false", "data.validation_split=null",
    ]
    peak, planned, stderr = train_and_measure(tmp_path / "run", sets)
    assert "134.52M parameters, 134.52M trainable (full fine-tuning, float32, batch 4 x 128 tokens)" in stderr
    assert abs(planned - peak) / peak <= 0.25, f"plan {planned / 2**20:.0f} MiB against a measured peak of {peak / 2**20:.0f} MiB"
