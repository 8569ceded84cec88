"""The Python API: the docs/api.md walkthrough runs as written; CLI and API are one engine; runs don't leak."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

DOC = Path(__file__).resolve().parents[2] / "docs" / "api.md"


def snippets() -> list[str]:
    return re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), flags=re.S)


def weights(model_dir: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(str(Path(model_dir) / "model.safetensors"))


def assert_same_weights(a: Path, b: Path) -> None:
    wa, wb = weights(a), weights(b)
    assert wa.keys() == wb.keys()
    for key in wa:
        assert (wa[key] - wb[key]).abs().max().item() <= 1e-6, key


def run_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, "-m", "sftkit", *args], capture_output=True, text=True, cwd=cwd, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def test_walkthrough_snippets_run_as_written(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    blocks = snippets()
    assert len(blocks) >= 8
    # notebook semantics: cells run in the namespace of a __main__ module
    import types

    notebook = types.ModuleType("__main__")
    monkeypatch.setitem(sys.modules, "__main__", notebook)
    namespace = notebook.__dict__
    fresh_outputs = []
    for block in blocks:
        if block.startswith("# fresh process"):
            env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
            proc = subprocess.run([sys.executable, "-c", block], capture_output=True, text=True, cwd=tmp_path, env=env, timeout=600)
            assert proc.returncode == 0, proc.stderr[-3000:]
            fresh_outputs.append(proc.stdout)
            continue
        exec(compile(block, str(DOC), "exec"), namespace)
    out = capsys.readouterr().out
    assert "did you mean train.learning_rate?" in out
    model = namespace["model"]
    assert model.generate("cat") == "CAT"
    assert namespace["metrics"]["exact_match"] >= 0.8
    # the batch path really ran as one batch of four
    assert model.last_stats is not None
    assert namespace["model"].generate(["lamp", "moon", "tea", "pen"], batch_size=4)
    assert model.last_stats.batches == [4]
    assert fresh_outputs and fresh_outputs[0].strip() == "BOOK"
    assert namespace["prepared"].manifest["rows_kept"] == 4
    assert namespace["prepared"].manifest["format"] in ("custom", "formatting_func")
    assert Path(namespace["result"].path, "config.json").exists()
    # the Arabic library's calls, batched formatting functions and a template without {response}
    assert namespace["batched"].manifest["rows_kept"] == 4 and "pen -> PEN" in out
    assert "has no {response}" in out
    assert model.generate("river", max_length=11) == "RI"
    assert namespace["results"]["eval_loss"] == pytest.approx(namespace["metrics"]["eval_loss"], rel=1e-5)
    assert Path(namespace["saved"], "sft_metadata.json").exists()


def test_cli_and_api_runs_give_identical_weights(tmp_path):
    import sftkit

    overrides = ["train.max_iters=15", "train.save_steps=1000", "train.logging_steps=5"]
    run_cli("train", "--preset", "tiny", "--output-dir", str(tmp_path / "cli"), *[a for s in overrides for a in ("--set", s)])
    cfg = sftkit.load_config(preset="tiny", overrides=overrides, output_dir=tmp_path / "api")
    result = sftkit.train(cfg)
    assert_same_weights(tmp_path / "cli" / "model", result.model_dir)


def test_two_runs_in_one_process_do_not_interfere(tmp_path):
    import sftkit

    first = {"train.max_iters": 12, "train.seed": 1, "train.save_steps": 1000}
    second = {"train.max_iters": 12, "train.seed": 7, "train.learning_rate": 3e-3, "train.save_steps": 1000, "lora.enabled": True}
    in_process = [
        sftkit.train(sftkit.load_config(preset="tiny", overrides=o, output_dir=tmp_path / f"inproc{i}")) for i, o in enumerate((first, second))
    ]
    for i, overrides in enumerate((first, second)):
        sets = [a for k, v in overrides.items() for a in ("--set", f"{k}={str(v).lower() if isinstance(v, bool) else v}")]
        run_cli("train", "--preset", "tiny", "--output-dir", str(tmp_path / f"alone{i}"), *sets)
    assert_same_weights(tmp_path / "alone0" / "model", in_process[0].model_dir)
    from safetensors.torch import load_file

    a = load_file(str(tmp_path / "alone1" / "model" / "adapter_model.safetensors"))
    b = load_file(str(in_process[1].model_dir / "adapter_model.safetensors"))
    assert a.keys() == b.keys() and all((a[k] - b[k]).abs().max().item() <= 1e-6 for k in a)


def test_api_errors_are_sftkit_errors_and_nothing_prints(tmp_path, capsys):
    import sftkit

    with pytest.raises(sftkit.ConfigError):
        sftkit.load_config(preset="tiny", overrides={"train.batch_size": 0})
    with pytest.raises(sftkit.SftkitError):
        sftkit.load(tmp_path / "missing-run")
    with pytest.raises(sftkit.ConfigError, match="cannot be found again by name"):
        sftkit.prepare(sftkit.load_config(preset="tiny", output_dir=tmp_path / "x"), formatting_func=lambda row: row)
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""
