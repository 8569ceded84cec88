"""The CLI spine: commands, version, dry-run plan, errors as one line with exit 2, the no-torch import rule."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from sftkit import __version__
from sftkit.presets import builtin_dir

COMMANDS = ["init", "prepare", "train", "eval", "generate", "export", "runs", "presets", "completion"]


def test_help_lists_every_command(cli):
    result = cli("--help")
    assert result.exit_code == 0
    for name in COMMANDS:
        assert f" {name} " in result.stdout, name


def test_version(cli):
    result = cli("--version")
    assert result.exit_code == 0 and result.stdout.strip() == f"sftkit {__version__}"


def test_python_dash_m_works():
    out = subprocess.run([sys.executable, "-m", "sftkit", "--version"], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == f"sftkit {__version__}"


def test_importing_the_cli_loads_no_heavy_library():
    code = (
        "import sys, sftkit.cli, sftkit.config, sftkit.resolve, sftkit.presets;"
        "heavy = [m for m in ('torch', 'transformers', 'trl', 'datasets', 'peft', 'bitsandbytes') if m in sys.modules];"
        "print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"imported at CLI start-up: {out.stdout.strip()}"


def test_presets_list_and_help_do_not_load_torch():
    # (--dry-run does load TRL: it builds the trainer's real argument objects, see test_dry_run_*)
    code = (
        "import sys; from typer.testing import CliRunner; from sftkit.cli import app;"
        "r = CliRunner().invoke(app, ['presets', 'list']); assert r.exit_code == 0, r.output;"
        "r = CliRunner().invoke(app, ['train', '--help']); assert r.exit_code == 0, r.output;"
        "r = CliRunner().invoke(app, ['config', 'keys', 'train']); assert r.exit_code == 0, r.output;"
        "print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_presets_list_and_show(cli):
    result = cli("presets", "list")
    assert result.exit_code == 0
    for name in ("smollm3", "smollm3-dpo", "openhermes-fr-a100-multipass", "arabic-qwen-lora", "tiny"):
        assert name in result.stdout
    shown = json.loads(cli("presets", "show", "smollm3-dpo", "--json").stdout)
    assert shown["extends"] == "smollm3"
    assert shown["config"]["trainer_type"] == "dpo"
    assert shown["config"]["train"]["learning_rate"] == 2e-5  # inherited
    assert shown["config"]["lora"]["r"] == 16  # override
    for key, leaf, filename in [("train.learning_rate", "learning_rate", "smollm3.yaml"), ("dpo.beta", "beta", "smollm3-dpo.yaml")]:
        path, _, line = shown["sources"][key].rpartition(":")
        assert path.endswith(filename)
        text = (builtin_dir() / filename).read_text().splitlines()[int(line) - 1]
        assert text.strip().startswith(f"{leaf}:"), (key, text)


def test_dry_run_maps_config_to_trainer_arguments(cli):
    result = cli("train", "--preset", "openhermes-fr-a100-multipass", "--dry-run", "--json")
    assert result.exit_code == 0, result.output
    plan = json.loads(result.stdout)
    cfg, args = plan["config"], plan["trainer"]["args"]
    assert cfg["train"]["max_iters"] == 25000 and args["max_steps"] == 25000
    assert args["per_device_train_batch_size"] == 6 and args["gradient_accumulation_steps"] == 20
    assert args["lr_scheduler_type"] == "cosine_with_min_lr" and args["lr_scheduler_kwargs"] == {"min_lr": 3e-7}
    assert (args["adam_beta1"], args["adam_beta2"], args["adam_epsilon"]) == (0.9, 0.999, 1e-8)
    assert args["bf16"] is True and args["fp16"] is False
    assert args["train_sampling_strategy"] == "group_by_length"
    assert args["dataloader_num_workers"] == 8 and args["save_total_limit"] == 8
    assert args["warmup_steps"] == 2000 and args["learning_rate"] == 3e-6
    assert plan["trainer"]["class"] == "trl.SFTTrainer"
    assert plan["model_loading"]["dtype"] == "bfloat16"


def test_dry_run_human_output_is_yaml_on_stdout(cli):
    import yaml

    result = cli("train", "--preset", "tiny", "--dry-run")
    assert result.exit_code == 0
    plan = yaml.safe_load(result.stdout)
    assert plan["config"]["model"]["name"] == "builtin:tiny"
    assert "dry run" in result.stderr


def test_trainer_type_flag_on_smollm3(cli):
    plan = json.loads(cli("train", "--preset", "smollm3", "--set", "data.dataset=prefs.jsonl", "--trainer-type", "dpo", "--dry-run", "--json").stdout)
    assert plan["config"]["trainer_type"] == "dpo" and plan["trainer"]["class"] == "trl.DPOTrainer"
    assert plan["trainer"]["args"]["beta"] == 0.1


def test_unknown_key_exits_2_with_one_line_and_hint(cli):
    result = cli("train", "--preset", "smollm3", "--set", "train.learnin_rate=1e-4", "--dry-run")
    assert result.exit_code == 2
    assert "train.learnin_rate" in result.stderr and "did you mean train.learning_rate?" in result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""


def test_fp16_and_bf16_both_on_names_both(cli, tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("extends: smollm3\ntrain:\n  bf16: true\n")
    result = cli("train", "--config", str(f), "--dry-run")
    assert result.exit_code == 2
    assert "train.fp16" in result.stderr and "train.bf16" in result.stderr


def test_unknown_preset_exit_2(cli):
    result = cli("train", "--preset", "tyni", "--dry-run")
    assert result.exit_code == 2 and "did you mean 'tiny'" in result.stderr


def test_no_config_given_is_a_clear_error(cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = cli("train", "--dry-run")
    assert result.exit_code == 2 and "--preset" in result.stderr


def test_debug_shows_traceback_only_when_asked():
    cmd = [sys.executable, "-m", "sftkit", "train", "--preset", "nope", "--dry-run"]
    quiet = subprocess.run(cmd, capture_output=True, text=True)
    assert quiet.returncode == 2 and "Traceback" not in quiet.stderr
    loud = subprocess.run([sys.executable, "-m", "sftkit", "--debug", *cmd[3:]], capture_output=True, text=True)
    assert loud.returncode != 0 and "Traceback" in loud.stderr


@pytest.mark.parametrize("env", [{"NO_COLOR": "1"}])
def test_no_color_is_honoured(env):
    import os

    out = subprocess.run(
        [sys.executable, "-m", "sftkit", "train", "--preset", "nope", "--dry-run"],
        capture_output=True,
        text=True,
        env={**os.environ, **env, "FORCE_COLOR": ""},
    )
    assert "\x1b[" not in out.stderr


def test_dry_run_builds_the_real_trainer_arguments(cli):
    # sftkit's schema takes any optimiser name; the installed transformers knows which exist
    result = cli("train", "--preset", "tiny", "--set", "train.optimizer=adamw_nope", "--dry-run")
    assert result.exit_code == 2, result.output
    assert "rejects these settings" in result.stderr and "adamw_nope" in result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""
    # best-model selection needs checkpoints at evaluation steps: TRL's own rule, caught before a run
    result = cli("train", "--preset", "tiny", "--set", "train.load_best_model_at_end=true", "--set", "train.eval_steps=30", "--set", "train.save_steps=45", "--dry-run")
    assert result.exit_code == 2 and "multiple of the evaluation" in result.stderr


def test_dry_run_of_a_gpu_preset_on_a_cpu_machine_notes_the_unchecked_precision(cli):
    result = cli("train", "--preset", "openhermes-fr-a100-multipass", "--dry-run")
    assert result.exit_code == 0, result.output
    import torch

    if not torch.cuda.is_available():
        assert "note:" in result.stderr and "train.bf16" in result.stderr


@pytest.mark.parametrize(
    "sets, keys",
    [
        (["data.dataset=null"], ["data.dataset"]),
        (["data.validation_fraction=0.1"], ["data.validation_split", "data.validation_fraction"]),
    ],
)
def test_dry_run_refuses_a_config_a_run_would_refuse(cli, sets, keys):
    result = cli("train", "--preset", "tiny", *[a for s in sets for a in ("--set", s)], "--dry-run")
    assert result.exit_code == 2, result.output
    for key in keys:
        assert key in result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""


def test_schema_and_cross_field_problems_in_one_report(cli, tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("extends: tiny\ndata:\n  dataset: null\n  validation_fraction: 0.1\ntrain:\n  batch_size: 0\n  fp16: true\n  bf16: true\n")
    result = cli("train", "--config", str(f), "--dry-run")
    assert result.exit_code == 2
    assert "4 problems" in result.stderr, result.stderr
    for key in ("train.batch_size", "train.fp16, train.bf16", "data.dataset", "data.validation_fraction"):
        assert key in result.stderr


def test_config_keys_prints_each_key_with_type_default_and_doc(cli):
    result = cli("config", "keys", "train")
    assert result.exit_code == 0
    block = result.stdout.split("train.learning_rate", 1)[1].split("\n\n", 1)[0]
    assert "number > 0" in block and "default 2e-05" in block and "Peak learning rate." in block
    assert "model.name" not in result.stdout
    rows = json.loads(cli("config", "keys", "--json").stdout)
    assert {r["key"] for r in rows} >= {"model.name", "data.response_marker", "lora.r", "tracking.backend"}
    bad = cli("config", "keys", "tran")
    assert bad.exit_code == 2 and "did you mean train?" in bad.stderr


def test_set_completion_completes_keys_and_choices():
    from sftkit.cli.options import _complete_set

    assert "train.learning_rate=" in _complete_set("train.lea")
    assert _complete_set("train.scheduler=cos") == [
        "train.scheduler=cosine",
        "train.scheduler=cosine_with_restarts",
        "train.scheduler=cosine_with_min_lr",
        "train.scheduler=cosine_warmup_with_min_lr",
    ]
    assert _complete_set("lora.enabled=") == ["lora.enabled=true", "lora.enabled=false"]
