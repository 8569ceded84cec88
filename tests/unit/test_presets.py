"""Every preset file resolves and validates; the required presets carry the original projects' values."""

from __future__ import annotations

import json

import pytest

from sftkit.presets import builtin_dir, discover
from sftkit.resolve import resolve_config
from sftkit.training.args import trainer_args

PRESET_FILES = sorted(p.stem for p in builtin_dir().glob("*.yaml"))
REQUIRED = {"smollm3", "smollm3-dpo", "openhermes-fr-a100-multipass", "arabic-qwen-lora", "tiny"}


def test_required_presets_are_discovered():
    assert REQUIRED <= set(discover())
    assert set(PRESET_FILES) <= set(discover())


@pytest.mark.parametrize("name", PRESET_FILES)
def test_each_preset_file_resolves_and_has_a_description(name):
    resolved = resolve_config(preset=name, complete=False)  # validates schema and cross-field rules
    assert resolved.config.model.name
    from sftkit.yamlio import load_yaml

    data, _ = load_yaml(builtin_dir() / f"{name}.yaml")
    assert data.get("description"), f"{name}.yaml needs a one-line description"
    # every preset maps onto trainer arguments without error
    assert trainer_args(resolved.config)["learning_rate"] == resolved.config.train.learning_rate


def test_smollm3_values():
    c = resolve_config(preset="smollm3", complete=False).config
    assert c.model.name == "HuggingFaceTB/SmolLM3-3B"
    assert (c.model.max_seq_length, c.train.batch_size, c.train.gradient_accumulation_steps) == (4096, 4, 4)
    assert (c.train.learning_rate, c.train.weight_decay, c.train.warmup_steps, c.train.max_iters) == (2e-5, 0.01, 100, 1000)
    assert (c.train.eval_steps, c.train.logging_steps, c.train.save_steps, c.train.save_total_limit) == (100, 10, 500, 3)
    assert (c.train.optimizer, c.train.beta1, c.train.beta2, c.train.eps) == ("adamw_torch", 0.9, 0.95, 1e-8)
    assert (c.train.scheduler, c.train.min_lr, c.train.fp16, c.train.bf16) == ("cosine", 1e-6, True, False)
    assert c.model.gradient_checkpointing and c.model.flash_attention and c.tracking.enabled
    assert c.trainer_type == "sft"


def test_smollm3_dpo_inherits_and_overrides():
    c = resolve_config(preset="smollm3-dpo", complete=False).config
    base = resolve_config(preset="smollm3", complete=False).config
    assert c.trainer_type == "dpo"
    assert (c.dpo.beta, c.dpo.loss_type, c.dpo.max_prompt_length, c.dpo.max_length) == (0.1, "sigmoid", 2048, 4096)
    assert (c.lora.enabled, c.lora.r, c.lora.alpha, c.lora.dropout) == (True, 16, 32, 0.1)
    assert c.train == base.train and c.model == base.model


def test_openhermes_multipass_values():
    c = resolve_config(preset="openhermes-fr-a100-multipass").config
    assert c.model.name == "HuggingFaceTB/SmolLM3-3B"
    assert (c.data.dataset, c.data.format) == ("legmlai/openhermes-fr", "openhermes")
    assert (c.model.max_seq_length, c.train.batch_size, c.train.gradient_accumulation_steps) == (8192, 6, 20)
    assert (c.train.learning_rate, c.train.warmup_steps, c.train.max_iters) == (3e-6, 2000, 25000)
    assert (c.train.beta2, c.train.min_lr, c.train.bf16, c.train.fp16) == (0.999, 3e-7, True, False)
    assert c.model.gradient_checkpointing is False
    assert (c.train.eval_steps, c.train.logging_steps, c.train.save_steps, c.train.save_total_limit) == (1000, 50, 2000, 8)
    assert (c.train.dataloader_num_workers, c.train.group_by_length) == (8, True)
    # inherited from smollm3
    assert (c.train.beta1, c.train.eps, c.train.weight_decay, c.train.scheduler) == (0.9, 1e-8, 0.01, "cosine")


def test_arabic_qwen_lora_values():
    c = resolve_config(preset="arabic-qwen-lora", complete=False).config
    assert "Qwen" in c.model.name
    assert (c.lora.enabled, c.lora.r, c.lora.alpha, c.lora.dropout) == (True, 16, 32, 0.1)
    assert set(c.lora.target_modules) == {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}
    assert (c.train.learning_rate, c.train.num_train_epochs, c.train.warmup_ratio) == (5e-5, 3, 0.1)
    assert c.model.max_seq_length == 2048
    assert c.data.template == "### التعليمات:\n{instruction}\n\n### الإجابة:\n{response}"
    assert c.data.response_marker == "### الإجابة:"


def test_tiny_is_offline():
    c = resolve_config(preset="tiny").config
    assert c.model.name == "builtin:tiny" and c.data.dataset == "builtin:tiny"
    assert c.tracking.enabled is False or c.tracking.backend != "wandb"


def test_user_preset_dir_and_extends(tmp_path, monkeypatch, cli):
    (tmp_path / "mine.yaml").write_text("description: my variant\nextends: tiny\ntrain:\n  learning_rate: 1.0e-3\n")
    monkeypatch.setenv("SFTKIT_PRESET_PATH", str(tmp_path))
    c = resolve_config(preset="mine").config
    assert c.train.learning_rate == 1e-3 and c.model.name == "builtin:tiny"
    result = cli("presets", "list", "--json")
    rows = {r["name"]: r for r in json.loads(result.stdout)}
    assert rows["mine"]["source"] == "user" and rows["mine"]["extends"] == "tiny"


def test_extends_cycle_is_an_error(tmp_path, monkeypatch):
    (tmp_path / "a.yaml").write_text("extends: b\n")
    (tmp_path / "b.yaml").write_text("extends: a\n")
    monkeypatch.setenv("SFTKIT_PRESET_PATH", str(tmp_path))
    from sftkit.errors import ConfigError

    with pytest.raises(ConfigError, match="cycle"):
        resolve_config(preset="a")
