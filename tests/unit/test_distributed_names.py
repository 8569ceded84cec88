"""Named sharding setups (``--distributed fsdp|zero2|zero3``): shipped files, what each becomes in the trainer's
arguments (shown by --dry-run), and one-line errors for a name with a raw setting, an unknown name and DeepSpeed
not installed."""

from __future__ import annotations

import json

import pytest

from sftkit.training import distributed


def _plan(cli, *args: str) -> dict:
    result = cli("train", "--preset", "tiny", *args, "--dry-run", "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_every_name_is_a_shipped_file():
    for name in distributed.NAMES:
        setup = distributed.named_config(name)
        assert setup["description"] and ("fsdp_config" in setup) != ("deepspeed" in setup), name


def test_fsdp_expands_to_transformers_fsdp_arguments_saving_whole_weights(cli):
    args = _plan(cli, "--distributed", "fsdp")["trainer"]["args"]
    assert args["fsdp"] == "full_shard auto_wrap" and args["deepspeed"] is None
    assert args["fsdp_config"]["version"] == 2
    assert args["fsdp_config"]["state_dict_type"] == "FULL_STATE_DICT"  # the final model: one consolidated folder
    assert args["fsdp_config"]["auto_wrap_policy"] == "TRANSFORMER_BASED_WRAP"


def test_the_config_key_works_like_the_flag(cli):
    by_key = _plan(cli, "--set", "train.distributed=fsdp")["trainer"]["args"]
    assert by_key["fsdp_config"] == distributed.named_config("fsdp")["fsdp_config"]


@pytest.mark.parametrize("name,stage", [("zero2", 2), ("zero3", 3)])
def test_zero_names_expand_to_a_deepspeed_config(cli, monkeypatch, name, stage):
    pytest.importorskip("deepspeed", reason="TrainingArguments builds a DeepSpeed config only with deepspeed installed")
    args = _plan(cli, "--distributed", name)["trainer"]["args"]
    assert args["deepspeed"]["zero_optimization"]["stage"] == stage and not args["fsdp"]
    if stage == 3:
        assert args["deepspeed"]["zero_optimization"]["stage3_gather_16bit_weights_on_model_save"] is True


def test_zero_mapping_without_the_trainer(monkeypatch):
    from sftkit.resolve import resolve_config

    monkeypatch.setattr(distributed.importlib.util, "find_spec", lambda name: object())
    cfg = resolve_config(preset="tiny", sets=["train.distributed=zero3"]).config
    args = distributed.distributed_args(cfg)
    assert args["deepspeed"] == distributed.named_config("zero3")["deepspeed"] and args["fsdp"] == ""


@pytest.mark.parametrize("name", ["zero2", "zero3"])
def test_deepspeed_name_without_deepspeed_is_one_line_with_the_pip_hint(cli, monkeypatch, name):
    real = distributed.importlib.util.find_spec
    monkeypatch.setattr(distributed.importlib.util, "find_spec", lambda mod: None if mod == "deepspeed" else real(mod))
    result = cli("train", "--preset", "tiny", "--distributed", name, "--dry-run")
    assert result.exit_code == 2
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and f"train.distributed={name}" in errors[0] and "DeepSpeed" in errors[0], result.stderr
    assert "pip install deepspeed" in result.stderr and "Traceback" not in result.stderr


def test_a_name_and_a_raw_setting_together_are_refused(cli):
    result = cli("train", "--preset", "tiny", "--distributed", "fsdp", "--fsdp", "full_shard", "--dry-run")
    assert result.exit_code == 2
    assert "train.distributed=fsdp and train.fsdp are both set" in result.stderr and "hint:" in result.stderr


def test_an_unknown_name_names_the_choices(cli):
    result = cli("train", "--preset", "tiny", "--distributed", "zero1", "--dry-run")
    assert result.exit_code == 2
    assert "train.distributed" in result.stderr and "fsdp" in result.stderr and "zero3" in result.stderr


def test_raw_settings_pass_through_unchanged(cli):
    args = _plan(cli, "--fsdp", "full_shard auto_wrap")["trainer"]["args"]
    assert args["fsdp"] == "full_shard auto_wrap" and args["deepspeed"] is None and "fsdp_config" not in args
