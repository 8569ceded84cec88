"""`sftkit init --from-legacy`: old SmolLM3 dataclass configs are read as syntax trees, never run."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from sftkit.errors import ConfigError
from sftkit.legacy.convert import convert_legacy, render, write_conversion
from sftkit.legacy.read import read_legacy
from sftkit.projectfile import flatten
from sftkit.resolve import resolve_config

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "legacy"
MULTIPASS = FIXTURES / "train_smollm3_openhermes_fr_a100_multiple_passes.py"
BASE = FIXTURES / "train_smollm3.py"
SIDE_EFFECTS = FIXTURES / "train_smollm3_dpo_side_effects.py"


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv("SFTKIT_PRESET_PATH", raising=False)


def convert_and_write(source: Path, target: Path = Path("sftkit.yaml")) -> tuple:
    conv = convert_legacy(source)
    write_conversion(conv, target)
    return conv, yaml.safe_load(target.read_text(encoding="utf-8"))


def test_multipass_config_resolves_to_the_multipass_preset():
    conv, data = convert_and_write(MULTIPASS)
    assert data["extends"] == "smollm3"
    converted = flatten(resolve_config(config_file="sftkit.yaml").config.to_dict())
    preset = flatten(resolve_config(preset="openhermes-fr-a100-multipass").config.to_dict())
    # Where they legitimately differ, only names:
    # - tracking.project: the preset names its tracker project "smollm3-openhermes-fr"; the old config had no
    #   project setting, so the converted file keeps the smollm3 preset's "smollm3".
    # - tracking.experiment_name: the old __post_init__ set "smollm3_openhermes_fr_multiple_passes"; the preset
    #   leaves it empty (the run folder's name).
    # train.output_dir is the same ("runs/sftkit"): the old config had none (it was a command-line argument).
    # And the settings the preset does not hold but the old config (and its loader) did, carried over:
    # - the 1% validation split the old loader held out of a Hub dataset, which best-model selection needs;
    # - load_best_model_at_end (the old default, True) and ddp_find_unused_parameters (False);
    # - the system message the old loader put before each conversation, and enable_thinking: False.
    carried = {
        "data.validation_fraction": 0.01,
        "train.load_best_model_at_end": True,
        "train.ddp_find_unused_parameters": False,
        "data.system_prompt": "Tu es TonicIA, un assistant francophone rigoureux et bienveillant.",
        "data.chat_template_kwargs": {"enable_thinking": False},
    }
    allowed = {"tracking.project", "tracking.experiment_name", *carried}
    differ = {k for k in preset if converted[k] != preset[k]}
    assert differ <= allowed, {k: (converted[k], preset[k]) for k in differ - allowed}
    assert {k: converted[k] for k in carried} == carried
    assert converted["tracking.experiment_name"] == "smollm3_openhermes_fr_multiple_passes"
    assert converted["train.output_dir"] == preset["train.output_dir"]
    # the values the issue lists, spelled out
    assert converted["model.name"] == "HuggingFaceTB/SmolLM3-3B"
    assert converted["data.dataset"] == "legmlai/openhermes-fr" and converted["data.format"] == "openhermes"
    assert (converted["model.max_seq_length"], converted["train.batch_size"], converted["train.max_iters"]) == (8192, 6, 25000)
    assert (converted["train.eval_steps"], converted["train.logging_steps"], converted["train.save_steps"]) == (1000, 50, 2000)
    assert converted["train.bf16"] and not converted["train.fp16"] and not converted["model.gradient_checkpointing"]


def test_multipass_reports_what_it_could_not_carry_over():
    conv = convert_legacy(MULTIPASS)
    lines = MULTIPASS.read_text().splitlines()
    by_name = {s.name: s for s in conv.skipped}
    # the token line is skipped as a secret, never evaluated and never written
    token = by_name["trackio_token"]
    assert "os.environ.get" in lines[token.line - 1] and "secret" in token.reason
    assert "token" not in render(conv).lower().replace("tokens", "")
    # fields with no sftkit equivalent are listed with the line they are on (dataloader_pin_memory: True and
    # dataloader_prefetch_factor: 2 are what sftkit and torch do anyway; add_generation_prompt has no use in training)
    assert "chat_template_kwargs" in lines[by_name["chat_template_kwargs"].line - 1]
    # ... and inherited fields with the line of the base class's file next to it (monitoring_mode: 'both')
    base_lines = BASE.read_text().splitlines()
    assert by_name["monitoring_mode"].path == BASE and "monitoring_mode" in base_lines[by_name["monitoring_mode"].line - 1]
    assert conv.accounted["dataloader_pin_memory"] == conv.accounted["dataloader_prefetch_factor"] == "equivalent"
    # values equal to the old SmolLM3Config defaults need no line (ddp_backend "nccl", weight_decay 0.01, ...)
    assert "ddp_backend" not in by_name and conv.same_as_base > 10


def test_mapped_values_remember_their_lines():
    conv = convert_legacy(MULTIPASS)
    lines = MULTIPASS.read_text().splitlines()
    where = {key: (old, line) for old, key, line in conv.mapped}
    old, line = where["train.eval_steps"]
    assert old == "eval_steps" and "eval_steps: int = 1000" in lines[line - 1]
    old, line = where["tracking.experiment_name"]  # set in __post_init__ when None
    assert 'self.experiment_name = "smollm3_openhermes_fr_multiple_passes"' in lines[line - 1]


def test_base_config_is_just_the_smollm3_preset_and_its_data_file():
    # the preset names no data; the old defaults (data_dir my_dataset, train_file train.json) are carried over,
    # and the two settings the preset does not hold: the /no_think system message and ddp_find_unused_parameters
    conv, data = convert_and_write(BASE)
    system = "Tu es TonicIA , un assistant francophone rigoureux et bienveillant. /no_think"
    assert data == {
        "extends": "smollm3",
        "data": {"train_file": "my_dataset/train.json", "system_prompt": system},
        "train": {"ddp_find_unused_parameters": False},
    }
    # best-model selection needs validation data, which the old default (my_dataset/train.json alone) lacks
    assert {s.name for s in conv.skipped} == {"load_best_model_at_end", "monitoring_mode", "chat_template_kwargs"}
    sets = ["data.train_file=my_dataset/train.json", f"data.system_prompt={system}", "train.ddp_find_unused_parameters=false"]
    expected = resolve_config(preset="smollm3", sets=sets).config
    assert resolve_config(config_file="sftkit.yaml").config == expected


def test_side_effects_never_run(tmp_path):
    markers = ["LEGACY_CONFIG_WAS_RUN", "LEGACY_CONFIG_WAS_RUN_OPEN", "LEGACY_CONFIG_WAS_RUN_FIELD", "LEGACY_CONFIG_WAS_RUN_POST_INIT"]
    conv, data = convert_and_write(SIDE_EFFECTS)
    for folder in (tmp_path, FIXTURES, Path(__file__).resolve().parents[2]):
        for marker in markers:
            assert not (folder / marker).exists(), f"{marker} was created: the legacy file was run"
    assert data["extends"] == "smollm3-dpo"  # a SmolLM3DPOConfig subclass
    assert data["dpo"] == {"beta": 0.2}
    assert data["train"]["batch_size"] == 2  # from `config = MyPreferenceRun(batch_size=2)`
    assert data["train"]["warmup_steps"] == 50  # from __post_init__
    reasons = {s.name: (s.line, s.reason) for s in conv.skipped}
    assert "secret" in reasons["hf_token"][1]
    assert reasons["seed"][1].startswith("not evaluated: int(os.system(")
    assert reasons["output_dir"][1].startswith("not evaluated")
    assert "ddp_backend" not in reasons and data["train"]["ddp_backend"] == "gloo"  # differs from the old default
    source = SIDE_EFFECTS.read_text().splitlines()
    assert "seed" in source[reasons["seed"][0] - 1]
    resolve_config(config_file="sftkit.yaml")


def test_aliases_and_conditional_assignments(tmp_path):
    src = tmp_path / "old.py"
    src.write_text(
        "from config.train_smollm3 import SmolLM3Config\n"
        "from dataclasses import dataclass\n"
        "@dataclass\n"
        "class Mine(SmolLM3Config):\n"
        "    eval_interval: int = 200\n"
        "    eval_steps: int = 300\n"
        "    log_interval = 5\n"
        "    input_field: str = 'question'\n"
        "    target_field: str = 'answer'\n"
        "    dataset_name: str = 'org/qa'\n"
        "    def __post_init__(self):\n"
        "        if self.bf16:\n"
        "            self.fp16 = False\n"
        "config = Mine(max_iters=42)\n"
    )
    conv = convert_legacy(src)
    train = conv.values["train"]
    assert train["eval_steps"] == 300 and train["logging_steps"] == 5 and train["max_iters"] == 42
    data = conv.values["data"]
    assert (data["dataset"], data["field_map"]) == ("org/qa", {"question": "instruction", "answer": "output"})
    reasons = {s.name: (s.line, s.reason) for s in conv.skipped}
    assert reasons["eval_interval"][0] == 5 and "disagrees" in reasons["eval_interval"][1]
    assert reasons["fp16"][0] == 13 and "condition" in reasons["fp16"][1]


def test_a_value_sftkit_rejects_is_reported_with_its_legacy_line(tmp_path):
    src = tmp_path / "old.py"
    src.write_text(
        "class Mine(SmolLM3Config):\n"
        "    learning_rate: float = 1e-7\n"  # below the smollm3 min_lr of 1e-6
        "config = Mine()\n"
    )
    with pytest.raises(ConfigError) as err:
        write_conversion(convert_legacy(src), Path("sftkit.yaml"))
    assert err.value.exit_code == 2 and "min_lr" in err.value.message
    assert not Path("sftkit.yaml").exists()


def test_unreadable_files_are_clear_errors(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("class Broken(:\n")
    with pytest.raises(ConfigError, match=r"bad.py:1: not valid Python"):
        read_legacy(bad)
    with pytest.raises(ConfigError, match="not found"):
        read_legacy(tmp_path / "missing.py")
    empty = tmp_path / "empty.py"
    empty.write_text("x = 1\n")
    with pytest.raises(ConfigError, match="no config class"):
        read_legacy(empty)
