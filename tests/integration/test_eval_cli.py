"""`sftkit eval` on real tiny runs: the four eval_* figures, exact match, files with references, --compare, errors."""

from __future__ import annotations

import json
import math
import shutil

import pytest

from sftkit import tiny

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("one_torch_thread")]


@pytest.fixture(autouse=True)
def _wide_console(monkeypatch):
    from sftkit.console import console

    monkeypatch.setattr(console, "width", 1000)


@pytest.fixture(scope="module")
def heldout_file(tmp_path_factory):
    """20 held-out rows of the tiny task as an alpaca JSONL file (references: the upper-cased words)."""
    path = tmp_path_factory.mktemp("eval-data") / "heldout.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in tiny.heldout_rows(20, seed=3)), encoding="utf-8")
    return path


def test_eval_json_on_the_validation_split(tiny_run, cli):
    result = cli("eval", str(tiny_run), "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)  # JSON only on stdout
    m = report["metrics"]
    for key in ("eval_loss", "eval_perplexity", "eval_runtime", "eval_samples_per_second"):
        assert isinstance(m[key], float) and m[key] > 0, key
    assert m["eval_perplexity"] == pytest.approx(math.exp(m["eval_loss"]))
    assert m["exact_match"] >= 0.8, m
    assert report["rows"] > 150 and m["generated"] == report["rows"]  # builtin:tiny's held-out split
    # the same loss the trainer reported at the end: one computation (sftkit.scoring) for both
    final = json.loads((tiny_run / "final_metrics.json").read_text())
    assert m["eval_loss"] == pytest.approx(final["eval_loss"], rel=1e-5)
    written = json.loads((tiny_run / "eval" / "validation.json").read_text())
    assert written["metrics"] == m and len(written["predictions"]) == m["generated"]
    first = written["predictions"][0]
    assert first["prompt"][-1]["role"] == "user"
    assert first["reference"] == first["prompt"][-1]["content"].removeprefix(tiny.INSTRUCTION_PREFIX).upper()


def test_eval_on_a_file_with_references(tiny_run, cli, heldout_file):
    result = cli("eval", str(tiny_run), "--data", str(heldout_file), "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    m = report["metrics"]
    assert report["rows"] == 20 and report["name"] == "heldout"
    for key in ("exact_match", "contains", "chrf", "bleu"):
        assert key in m
    assert m["exact_match"] >= 0.6 and m["contains"] >= m["exact_match"]
    assert 0 < m["chrf"] <= 100
    assert (tiny_run / "eval" / "heldout.json").is_file()


def test_compare_shows_base_and_fine_tuned_side_by_side(tiny_run, cli, heldout_file):
    result = cli("eval", str(tiny_run), "--data", str(heldout_file), "--compare", "base")  # the model the run started from
    assert result.exit_code == 0, result.output
    table = result.stdout
    assert "base: builtin:tiny" in table and "fine-tuned" in table and "exact_match" in table
    assert "\x1b[" not in table  # not a terminal: no colour codes
    report = json.loads((tiny_run / "eval" / "heldout.json").read_text())
    base, tuned = report["base"]["metrics"], report["metrics"]
    assert base["eval_loss"] > 2 * tuned["eval_loss"]
    assert base["exact_match"] == 0.0 and tuned["exact_match"] > 0.5


def test_eval_prepares_the_validation_split_again_when_it_is_gone(tiny_run, cli, tmp_path):
    run = tmp_path / "copy"
    shutil.copytree(tiny_run, run, ignore=shutil.ignore_patterns("checkpoint-*", "eval"))
    shutil.rmtree(run / "prepared")
    original = (run / "sftkit.yaml").read_text()
    (run / "sftkit.yaml").write_text(original.replace(str(tiny_run), str(run)))
    result = cli("eval", str(run), "--no-generate", "--json")
    assert result.exit_code == 0, result.output
    assert (run / "prepared" / "manifest.json").is_file()
    m = json.loads(result.stdout)["metrics"]
    assert "exact_match" not in m
    reference = json.loads((tiny_run / "final_metrics.json").read_text())["eval_loss"]
    assert m["eval_loss"] == pytest.approx(reference, rel=0.05)


@pytest.fixture
def bare_model(tiny_run, tmp_path):
    """The run's model folder on its own (as a user would download it): no sftkit.yaml next to it."""
    return shutil.copytree(tiny_run / "model", tmp_path / "bare")


def test_a_bare_model_folder_is_evaluated_on_data(bare_model, cli, heldout_file, tmp_path):
    out = tmp_path / "results.json"
    result = cli("eval", str(bare_model), "--data", str(heldout_file), "--output", str(out), "--json")
    assert result.exit_code == 0, result.output
    written = json.loads(out.read_text())
    assert written["metrics"]["exact_match"] >= 0.6 and written["rows"] == 20  # template from its metadata


def test_lora_run_evaluates_through_its_adapter(lora_run, cli, heldout_file):
    result = cli("eval", str(lora_run), "--data", str(heldout_file), "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["metrics"]["eval_loss"] > 0


# --------------------------------------------------------------------------- errors


def _error(result) -> str:
    assert result.stderr.startswith("error: ") and "Traceback" not in result.stderr, result.stderr
    return result.stderr


def test_missing_data_file(cli, tiny_run, tmp_path):
    result = cli("eval", str(tiny_run), "--data", str(tmp_path / "missing.jsonl"))
    assert result.exit_code == 1 and "not found" in _error(result)


def test_unreadable_data_file(cli, tiny_run, tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"foo": 1}\n')
    result = cli("eval", str(tiny_run), "--data", str(bad))
    assert result.exit_code == 1 and "cannot tell the data format" in _error(result)


def test_bare_model_without_data(cli, bare_model):
    result = cli("eval", str(bare_model))
    assert result.exit_code == 1 and "--data" in _error(result)


def test_missing_run(cli, tmp_path):
    result = cli("eval", str(tmp_path / "nope"))
    assert result.exit_code == 1 and "no run or model at" in _error(result)
