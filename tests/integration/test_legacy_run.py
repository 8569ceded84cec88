"""A converted old config trains: its schedule with a floor given as a rate (cosine_with_min_lr, min_lr_rate), its
chat template variables, and best-model selection, through the real CLI on the tiny offline model."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.slow

OLD = """
from dataclasses import dataclass, field

@dataclass
class TinyRunConfig:
    model_name: str = "builtin:tiny"
    max_seq_length: int = 64
    dataset_name: str = "builtin:tiny"
    validation_split: str = "validation"
    batch_size: int = 32
    learning_rate: float = 1e-3
    max_iters: int = 12
    warmup_steps: int = 0
    scheduler: str = "cosine_with_min_lr"
    lr_scheduler_kwargs: dict = field(default_factory=lambda: {"min_lr_rate": 0.2})
    logging_steps: int = 1
    eval_steps: int = 6
    save_steps: int = 6
    load_best_model_at_end: bool = True
    chat_template_kwargs: dict = field(default_factory=lambda: {"greeting": "bonjour", "add_generation_prompt": True})
    enable_tracking: bool = False
    device: str = "cpu"

config = TinyRunConfig()
"""
# the tiny tokenizer's turns, with a greeting the template takes as a variable
TEMPLATE = (
    "{%- if greeting is defined -%}{{- greeting -}}{%- endif -%}"
    "{%- for m in messages -%}{{- '<|' + m['role'] + '|>' + m['content'] + eos_token -}}{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{- '<|assistant|>' -}}{%- endif -%}"
)


def sftkit(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        [sys.executable, "-m", "sftkit", *args],
        check=False,
        capture_output=True,
        text=True,
        timeout=900,
        cwd=cwd,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def test_a_converted_config_trains_with_its_schedule_and_template_variables(tmp_path):
    (tmp_path / "old.py").write_text(OLD, encoding="utf-8")
    sftkit("init", "--from-legacy", "old.py", "--yes", cwd=tmp_path)
    written = yaml.safe_load((tmp_path / "sftkit.yaml").read_text(encoding="utf-8"))
    assert written["train"]["scheduler_kwargs"] == {"min_lr_rate": 0.2}
    assert written["data"]["chat_template_kwargs"] == {"greeting": "bonjour"}
    run = tmp_path / "run"
    sftkit(
        "train",
        "--config",
        "sftkit.yaml",
        "--output-dir",
        str(run),
        "--set",
        f"model.chat_template={TEMPLATE}",
        cwd=tmp_path,
    )
    lrs = [
        json.loads(line)["learning_rate"]
        for line in (run / "metrics.jsonl").read_text().splitlines()
        if '"learning_rate"' in line
    ]
    # cosine from 1e-3 to 20% of it (not to zero)
    expected = [2e-4 + 8e-4 * (1 + math.cos(math.pi * i / 12)) / 2 for i in range(12)]
    assert lrs == pytest.approx(expected, rel=1e-6)
    meta = json.loads((run / "model" / "sft_metadata.json").read_text())
    assert meta["chat_template_kwargs"] == {"greeting": "bonjour"}
    # the saved template renders as training did, greeting included, in plain transformers
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(run / "model")
    text = tok.apply_chat_template(
        [{"role": "user", "content": "cat"}], tokenize=False, add_generation_prompt=True
    )
    assert text.startswith("bonjour") and text.endswith("<|assistant|>")
    from sftkit.generation import load

    assert load(str(run)).render("cat") == text
