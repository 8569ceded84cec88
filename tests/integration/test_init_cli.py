"""`sftkit init` through the real CLI: flags and --yes, no terminal, --from-legacy, and a real pseudo-terminal."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from sftkit.resolve import resolve_config

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "legacy"


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv("SFTKIT_PRESET_PATH", raising=False)


def sftkit_env(tmp_path: Path) -> dict[str, str]:
    env = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path / "xdg"), "NO_COLOR": "1", "COLUMNS": "200"}
    env.pop("SFTKIT_PRESET_PATH", None)
    return env


def test_yes_writes_a_file_that_resolves_and_train_dry_run_reads_it(cli):
    result = cli("init", "--preset", "tiny", "--yes", "--output-dir", "runs/w")
    assert result.exit_code == 0, result.stderr
    assert yaml.safe_load(Path("sftkit.yaml").read_text()) == {"extends": "tiny", "train": {"output_dir": "runs/w"}}
    assert "sftkit train --config sftkit.yaml" in result.stderr and "sftkit prepare --config sftkit.yaml" in result.stderr
    assert result.stdout == ""  # people's output goes to stderr
    assert resolve_config(config_file="sftkit.yaml").config.train.output_dir == "runs/w"
    plan = cli("train", "--config", "sftkit.yaml", "--dry-run", "--json")
    assert plan.exit_code == 0, plan.stderr
    assert json.loads(plan.stdout)["config"]["train"]["output_dir"] == "runs/w"


def test_flags_answer_every_question(cli, tmp_path):
    data = tmp_path / "train.jsonl"
    data.write_text('{"prompt": "p", "completion": "c"}\n')
    result = cli(
        "init", "--yes", "--preset", "tiny", "--trainer-type", "sft", "--model", "builtin:tiny", "--data", str(data),
        "--method", "lora", "--lr", "1e-3", "--batch-size", "8", "--grad-accum", "2", "--max-iters", "50",
        "--max-seq-length", "64", "--precision", "fp32", "--tracking", "tensorboard", "--output-dir", "runs/f",
        "--experiment-name", "flags", "--config-path", "conf/project.yaml",
    )
    assert result.exit_code == 0, result.stderr
    cfg = resolve_config(config_file="conf/project.yaml").config
    assert (cfg.data.dataset, cfg.lora.enabled, cfg.train.learning_rate) == (str(data), True, 1e-3)
    assert (cfg.train.batch_size, cfg.train.gradient_accumulation_steps, cfg.train.max_iters) == (8, 2, 50)
    assert (cfg.tracking.enabled, cfg.tracking.backend, cfg.tracking.experiment_name) == (True, "tensorboard", "flags")
    assert cfg.train.output_dir == "runs/f"


def test_bad_flags_are_usage_errors(cli):
    result = cli("init", "--yes", "--preset", "tiny", "--model", "./nowhere", "--lr", "0")
    assert result.exit_code == 2
    assert "--model" in result.stderr and "--lr" in result.stderr
    assert cli("init", "--yes", "--lora", "--full").exit_code == 2
    assert cli("init", "--yes", "--method", "qlora", "--lora").exit_code == 2
    assert not Path("sftkit.yaml").exists()


def test_existing_file_needs_overwrite_with_yes(cli):
    Path("sftkit.yaml").write_text("extends: smollm3\n")
    result = cli("init", "--preset", "tiny", "--yes")
    assert result.exit_code == 2 and "already exists" in result.stderr and "--overwrite" in result.stderr
    assert Path("sftkit.yaml").read_text() == "extends: smollm3\n"
    assert cli("init", "--preset", "tiny", "--yes", "-f").exit_code == 2  # -f is --format elsewhere, never init's
    assert cli("init", "--preset", "tiny", "--yes", "--overwrite").exit_code == 0
    assert yaml.safe_load(Path("sftkit.yaml").read_text()) == {"extends": "tiny"}


def test_no_terminal_fails_at_once(tmp_path):
    start = time.monotonic()
    out = subprocess.run(
        [sys.executable, "-m", "sftkit", "init"],
        stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60, env=sftkit_env(tmp_path), cwd=tmp_path,
    )
    assert out.returncode == 2
    assert "no terminal" in out.stderr and "--yes" in out.stderr
    assert time.monotonic() - start < 30  # it did not wait for answers
    assert not (tmp_path / "sftkit.yaml").exists()


def test_from_legacy_converts_and_lists_what_it_skipped(cli):
    source = FIXTURES / "train_smollm3_openhermes_fr_a100_multiple_passes.py"
    result = cli("init", "--from-legacy", str(source))
    assert result.exit_code == 0, result.stderr
    lines = source.read_text().splitlines()
    token_line = next(i for i, line in enumerate(lines, 1) if "trackio_token" in line)
    err = " ".join(result.stderr.split())
    assert f"{source.name}:{token_line}: trackio_token: a secret" in err
    assert "train_smollm3.py:88: monitoring_mode: not mapped: 'both'" in err  # inherited, with the base file's line
    data = yaml.safe_load(Path("sftkit.yaml").read_text())
    assert data["extends"] == "smollm3" and data["data"]["format"] == "openhermes"
    assert "token" not in Path("sftkit.yaml").read_text().replace("tokens", "")


def test_from_legacy_takes_no_other_answers(cli):
    result = cli("init", "--from-legacy", str(FIXTURES / "train_smollm3.py"), "--lr", "1e-4")
    assert result.exit_code == 2 and "--from-legacy" in result.stderr


def test_from_legacy_never_runs_the_file(cli, tmp_path):
    result = cli("init", "--from-legacy", str(FIXTURES / "train_smollm3_dpo_side_effects.py"))
    assert result.exit_code == 0, result.stderr
    assert not list(tmp_path.glob("LEGACY_CONFIG_WAS_RUN*")) and not list(FIXTURES.glob("LEGACY_CONFIG_WAS_RUN*"))
    assert yaml.safe_load(Path("sftkit.yaml").read_text())["extends"] == "smollm3-dpo"


def test_init_in_a_real_terminal(tmp_path):
    """Type answers into `sftkit init` running in a pseudo-terminal, go back once, write, decline training."""
    pexpect = pytest.importorskip("pexpect")
    env = sftkit_env(tmp_path)
    env["PROMPT_TOOLKIT_NO_CPR"] = "1"  # no cursor-position queries: nobody answers them here
    child = pexpect.spawn(
        sys.executable, ["-m", "sftkit", "init", "--preset", "tiny"],
        cwd=str(tmp_path), env=env, encoding="utf-8", timeout=60, dimensions=(50, 160),
    )
    log = tmp_path / "terminal.log"
    child.logfile_read = log.open("w")
    down, clear = "\x1b[B", "\x15"

    def answer(prompt: str, keys: str) -> None:
        child.expect(prompt)
        child.send(keys)

    try:
        answer("Trainer type", "\r")
        answer("Model", "\r")
        answer("Training data", "\r")
        answer("LoRA or QLoRA", down + "\r")  # full -> LoRA
        answer("Learning rate", clear + "4e-3\r")
        answer("Batch size", clear + "16\r")
        answer("Gradient accumulation", "\r")
        answer("Training steps", clear + "120\r")
        answer("Longest sequence", "\r")
        answer("Precision", "\r")
        answer("Experiment tracking", "\r")
        answer("Run folder", clear + "runs/pty\r")
        answer("Experiment name", clear + "in-a-pty\r")
        child.expect("What now")
        child.send(down + "\r")  # Change an answer
        child.expect("Which answer")
        child.send(down * 6 + "\r")  # trainer type, preset, model, data, method, learning rate, batch size
        answer("Batch size", clear + "24\r")
        answer("What now", "\r")  # Write it
        answer("Start training now", "n")
        child.expect(pexpect.EOF)
    finally:
        child.close()
    assert child.exitstatus == 0, log.read_text()
    data = yaml.safe_load((tmp_path / "sftkit.yaml").read_text())
    assert data["extends"] == "tiny"
    assert data["lora"] == {"enabled": True}
    assert data["train"] == {"output_dir": "runs/pty", "batch_size": 24, "learning_rate": 4e-3, "max_iters": 120}
    assert data["tracking"] == {"experiment_name": "in-a-pty"}
    assert "sftkit train --config sftkit.yaml" in log.read_text()


@pytest.mark.slow
def test_init_yes_then_train_trains(tmp_path):
    """The issue's flow: `sftkit init --preset tiny --yes --output-dir runs/w` then `sftkit train --config sftkit.yaml`."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    run = [sys.executable, "-m", "sftkit"]
    init = subprocess.run([*run, "init", "--preset", "tiny", "--yes", "--output-dir", "runs/w", "--max-iters", "20"], cwd=tmp_path, capture_output=True, text=True, env=env, stdin=subprocess.DEVNULL)
    assert init.returncode == 0, init.stderr
    train = subprocess.run([*run, "train", "--config", "sftkit.yaml"], cwd=tmp_path, capture_output=True, text=True, env=env, timeout=600)
    assert train.returncode == 0, train.stderr[-2000:]
    assert (tmp_path / "runs" / "w" / "model" / "model.safetensors").exists()
    meta = json.loads((tmp_path / "runs" / "w" / "sft_metadata.json").read_text())
    assert meta["steps"] == 20


@pytest.mark.slow
def test_init_yes_without_a_preset_then_train_runs_on_a_cpu(tmp_path):
    """`sftkit init --yes` with no preset and no GPU: a preset that trains on the CPU, said why; `sftkit train` works."""
    env = {**sftkit_env(tmp_path), "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}  # no GPU, whatever the machine has
    run = [sys.executable, "-m", "sftkit"]
    init = subprocess.run([*run, "init", "--yes"], check=False, cwd=tmp_path, capture_output=True, text=True, env=env, stdin=subprocess.DEVNULL, timeout=300)
    assert init.returncode == 0, init.stderr
    assert "preset tiny: no CUDA GPU found, so sftkit starts from a preset that trains on the CPU" in " ".join(init.stderr.split())
    assert yaml.safe_load((tmp_path / "sftkit.yaml").read_text()) == {"extends": "tiny"}
    train = subprocess.run([*run, "train"], check=False, cwd=tmp_path, capture_output=True, text=True, env=env, timeout=900)  # ./sftkit.yaml
    assert train.returncode == 0, train.stderr[-2000:]
    assert "warning" not in train.stderr.lower()
    assert (tmp_path / "runs" / "tiny" / "model" / "model.safetensors").exists()
    assert json.loads((tmp_path / "runs" / "tiny" / "state.json").read_text())["state"] == "finished"
