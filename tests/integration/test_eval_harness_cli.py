"""`sftkit eval --harness` on real tiny runs: a local lm-evaluation-harness task (multiple choice over the tiny
upper-casing words, from a JSONL file) gives the accuracy computed here by hand from the model's log-likelihoods,
for the run and for its base; Hub tasks offline and unknown tasks are one line."""

from __future__ import annotations

import json
import math

import pytest

from sftkit import tiny

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("one_torch_thread")]
pytest.importorskip("lm_eval")


def _rows(n: int = 24) -> list[dict]:
    """Held-out words, each with the right answer and three wrong ones, the right one at every position in turn."""
    rows = []
    for i, r in enumerate(tiny.heldout_rows(n)):
        word, upper = r["instruction"], r["output"]
        wrong = [
            upper[::-1] if upper[::-1] != upper else upper + "Q",
            word,
            upper[:-1] + ("Z" if upper[-1] != "Z" else "Y"),
        ]
        wrong.insert(i % 4, upper)
        rows.append({"word": word, "choices": wrong, "label": i % 4})
    return rows


@pytest.fixture(scope="module")
def task(tmp_path_factory):
    folder = tmp_path_factory.mktemp("task")
    rows = _rows()
    (folder / "upper.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (folder / "upper_mc.yaml").write_text(
        f"""task: upper_mc
dataset_path: json
dataset_kwargs:
  data_files:
    test: {folder / "upper.jsonl"}
output_type: multiple_choice
test_split: test
doc_to_text: "{{{{word}}}}"
doc_to_choice: "{{{{choices}}}}"
doc_to_target: label
metric_list:
  - metric: acc
    aggregation: mean
    higher_is_better: true
  - metric: acc_norm
    aggregation: mean
    higher_is_better: true
"""
    )
    return folder / "upper_mc.yaml", rows


def _by_hand(
    model_dir: str, tokenizer_dir: str, rows: list[dict]
) -> tuple[list[list[float]], float, float]:
    """Each choice's log-likelihood after the prompt in the run's chat format, and the accuracies they give."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tokenizer_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    lls, right, right_norm = [], 0, 0
    with torch.inference_mode():
        for row in rows:
            prompt = tok.apply_chat_template(
                [{"role": "user", "content": row["word"]}],
                tokenize=False,
                add_generation_prompt=True,
            )
            context = tok(prompt, add_special_tokens=False)["input_ids"]
            scores = []
            for choice in row["choices"]:
                ids = tok(prompt + choice, add_special_tokens=False)["input_ids"]
                logp = torch.log_softmax(
                    model(input_ids=torch.tensor([ids[:-1]])).logits[0], -1
                )
                scores.append(
                    sum(
                        float(logp[i - 1, ids[i]])
                        for i in range(len(context), len(ids))
                    )
                )
            lls.append(scores)
            right += max(range(4), key=scores.__getitem__) == row["label"]
            right_norm += (
                max(range(4), key=lambda k: scores[k] / len(row["choices"][k].encode()))
                == row["label"]
            )
    return lls, right / len(rows), right_norm / len(rows)


def test_local_task_accuracy_equals_the_hand_computed_one(tiny_run, task, cli):
    from sftkit.modeling import resolve_model_path

    path, rows = task
    result = cli(
        "eval", str(tiny_run), "--harness", str(path), "--compare", "base", "--json"
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    written = tiny_run / "eval" / "harness_upper_mc.json"
    assert report["written"] == str(written) and report["rows"] == len(rows)
    saved = json.loads(written.read_text())
    model_dir = str(tiny_run / "model")
    for figures, predictions, weights in (
        (report["metrics"], saved["predictions"], model_dir),
        (
            report["base"]["metrics"],
            saved["base"]["predictions"],
            resolve_model_path("builtin:tiny")[0],
        ),
    ):
        lls, acc, acc_norm = _by_hand(weights, model_dir, rows)
        assert figures["upper_mc.acc"] == pytest.approx(acc, abs=1e-9)
        assert figures["upper_mc.acc_norm"] == pytest.approx(acc_norm, abs=1e-9)
        assert figures["upper_mc.acc_stderr"] == pytest.approx(
            math.sqrt(acc * (1 - acc) / (len(rows) - 1)), abs=1e-9
        )
        got = {p["doc_id"]: [r[0] for r in p["filtered_resps"]] for p in predictions}
        assert sorted(got) == list(range(len(rows)))
        for i, scores in enumerate(lls):
            assert got[i] == pytest.approx(scores, abs=1e-4)
    assert (
        report["metrics"]["upper_mc.acc"] == 1.0
        and report["base"]["metrics"]["upper_mc.acc"] < 0.5
    )


def test_table_shows_base_and_tuned_side_by_side(tiny_run, task, cli):
    path, _ = task
    result = cli(
        "eval",
        str(tiny_run),
        "--harness",
        str(path),
        "--compare",
        "base",
        "--limit",
        "8",
        "--batch-size",
        "3",
    )
    assert result.exit_code == 0, result.output
    # the table's title wraps where the run's path is long; compare it with its whitespace folded
    assert "lm-evaluation-harness: upper_mc (chat template) (8 rows)" in " ".join(result.stdout.split())
    line = next(x for x in result.stdout.splitlines() if "upper_mc.acc " in x)
    assert "1.0000" in line and "base: builtin:tiny" in result.stdout


def test_a_lora_run_with_plain_prompts(lora_run, task, cli):
    path, _ = task
    result = cli(
        "eval",
        str(lora_run),
        "--harness",
        str(path),
        "--no-chat-template",
        "--json",
        "--num-fewshot",
        "0",
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert (
        report["data"].endswith("(plain prompts)")
        and 0.0 <= report["metrics"]["upper_mc.acc"] <= 1.0
    )


def test_hub_tasks_offline_and_unknown_tasks_are_one_line(
    tiny_run, sftkit_proc, tmp_path
):
    proc = sftkit_proc(
        "eval",
        str(tiny_run),
        "--harness",
        "arc_easy",
        env={"HF_HUB_OFFLINE": "1", "HF_DATASETS_CACHE": str(tmp_path / "empty")},
        timeout=600,
    )
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert (
        "harness task arc_easy: its data cannot be loaded" in proc.stderr
        and "not reachable" in proc.stderr
    )
    proc = sftkit_proc("eval", str(tiny_run), "--harness", "arc_eazy", timeout=600)
    assert (
        proc.returncode == 2
        and "unknown harness task 'arc_eazy'" in proc.stderr
        and "arc_easy" in proc.stderr
    )
    assert not (tiny_run / "eval" / "harness_arc_easy.json").exists()


def test_sftkit_own_options_do_not_mix_with_harness_tasks(
    tiny_run, task, cli, tmp_path
):
    path, _ = task
    result = cli(
        "eval",
        str(tiny_run),
        "--harness",
        str(path),
        "--data",
        str(tmp_path / "x.jsonl"),
    )
    assert (
        result.exit_code == 2
        and "--data applies to sftkit's own measures" in result.stderr
    )
    result = cli("eval", str(tiny_run), "--limit", "3")
    assert (
        result.exit_code == 2
        and "--limit" in result.stderr
        and "--harness" in result.stderr
    )
    result = cli("eval", str(tiny_run), "--harness", str(tmp_path / "missing.yaml"))
    assert result.exit_code == 2 and "harness task file not found" in result.stderr
