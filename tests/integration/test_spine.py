"""One path per command, seen from outside: typed values reach eval intact, one evaluation figure, a failed
start does not block the corrected command."""

from __future__ import annotations

import json

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("one_torch_thread")]

SYSTEM = "Note: answer in capitals"
SHORT = ["train.max_iters=30", "train.batch_size=16", "train.eval_steps=1000", "train.save_steps=1000", "train.logging_steps=10"]


def _sets(*sets: str) -> list[str]:
    return [a for s in sets for a in ("--set", s)]


@pytest.fixture(scope="module")
def system_run(tmp_path_factory, _isolated_cache):
    """A short tiny run whose system prompt holds ": " (a YAML mapping marker if it were re-parsed)."""
    from typer.testing import CliRunner

    from sftkit.cli import app

    out = tmp_path_factory.mktemp("spine") / "run"
    result = CliRunner().invoke(app, ["train", "--preset", "tiny", "-o", str(out), *_sets(*SHORT, f"data.system_prompt={SYSTEM}")])
    assert result.exit_code == 0, result.output
    return out


def test_the_system_prompt_reaches_the_run_as_written(system_run):
    meta = json.loads((system_run / "model" / "sft_metadata.json").read_text())
    assert meta["system_prompt"] == SYSTEM


def test_eval_from_the_model_folder_keeps_a_system_prompt_with_colon_space(system_run, cli):
    # a bare model folder: the config is rebuilt from the metadata, the prompt must stay one string
    result = cli("eval", str(system_run / "model"), "--data", str(_rows_file(system_run)), "--no-generate", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["metrics"]["eval_loss"] > 0


def test_eval_with_a_template_that_starts_with_hash(system_run, cli):
    template = "### Instruction: {instruction}\n### Response: {response}"
    result = cli("eval", str(system_run), "--template", template, "--no-generate", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["metrics"]["eval_loss"] > 0


def test_final_training_eval_equals_sftkit_eval_on_the_same_rows(system_run, cli):
    final = json.loads((system_run / "final_metrics.json").read_text())
    result = cli("eval", str(system_run), "--no-generate", "--json")
    assert result.exit_code == 0, result.output
    measured = json.loads(result.stdout)["metrics"]
    assert measured["eval_tokens"] == final["eval_tokens"]
    assert measured["eval_loss"] == pytest.approx(final["eval_loss"], rel=1e-5, abs=1e-6)
    # the evaluations logged during training are the same computation
    logged = [json.loads(line) for line in (system_run / "metrics.jsonl").read_text().splitlines()]
    assert [r for r in logged if "eval_tokens" in r], "training evaluations come from sftkit.scoring"


def test_a_failed_start_does_not_block_the_corrected_command(tmp_path, cli):
    out = tmp_path / "run"
    failed = cli("train", "--preset", "tiny", "-o", str(out), *_sets("model.name=./no-such-model", *SHORT))
    assert failed.exit_code != 0 and "no-such-model" in failed.stderr
    state = json.loads((out / "state.json").read_text())
    assert state["state"] == "failed"
    fixed = cli("train", "--preset", "tiny", "-o", str(out), *_sets(*SHORT))
    assert fixed.exit_code == 0, fixed.output
    assert (out / "model" / "model.safetensors").exists()
    assert json.loads((out / "state.json").read_text())["state"] == "finished"
    # a finished run is kept: the same command is refused now
    again = cli("train", "--preset", "tiny", "-o", str(out), *_sets(*SHORT))
    assert again.exit_code == 2 and "already holds a run" in again.stderr


def _rows_file(run_dir):
    from sftkit import tiny

    path = run_dir.parent / "rows.jsonl"
    if not path.exists():
        path.write_text("".join(json.dumps(r) + "\n" for r in tiny.heldout_rows(8, seed=5)), encoding="utf-8")
    return path


@pytest.mark.parametrize("template", ["alpaca", "Q: {instruction}\nA: {response}"])
def test_the_trained_format_travels_with_the_model(tmp_path, cli, template):
    """Plain transformers prompts the saved model exactly as sftkit trained and generates (ids equal)."""
    from transformers import AutoTokenizer

    import sftkit

    out = tmp_path / "run"
    result = cli("train", "--preset", "tiny", "-o", str(out), *_sets("train.max_iters=2", "train.eval_steps=1000", f"data.template={template}", f"data.system_prompt={SYSTEM}"))
    assert result.exit_code == 0, result.output
    plain = AutoTokenizer.from_pretrained(str(out / "model"))
    model = sftkit.load(out)
    for messages in ([{"role": "user", "content": "cat"}], [{"role": "user", "content": "cat"}, {"role": "assistant", "content": "CAT"}, {"role": "user", "content": "dog"}]):
        ids = plain.apply_chat_template(messages, add_generation_prompt=True, tokenize=True, return_dict=True)["input_ids"]
        assert list(ids) == model.tokenizer(model.render(messages), add_special_tokens=False)["input_ids"]
