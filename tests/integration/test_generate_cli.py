"""`sftkit generate` on real tiny runs: stdin and arguments, order, jsonl round trips, batching, pipes, chat, errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from conftest import shared_path

from sftkit import tiny

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("one_torch_thread")]

#: rows the tiny run was trained on (it has learnt these for sure; held-out rows are for `eval`): prompt -> answer
ROWS = tiny.sft_rows(6)
PROMPTS = [r["instruction"] for r in ROWS]
ANSWERS = [r["output"] for r in ROWS]


@pytest.fixture(autouse=True)
def _wide_console(monkeypatch):
    """In-process runs print errors on one line each (no wrapping at 80 columns)."""
    from sftkit.console import console

    monkeypatch.setattr(console, "width", 1000)


def test_stdin_lines_come_back_upper_cased_in_order(tiny_run, sftkit_proc):
    proc = sftkit_proc("generate", str(tiny_run), "--stats", input="".join(p + "\n" for p in PROMPTS))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ANSWERS  # only the results on stdout
    assert "tokens/s" in proc.stderr and "Traceback" not in proc.stderr  # --stats: for people, on stderr


def test_prompts_as_arguments_and_the_model_folder(tiny_run, cli):
    result = cli("generate", str(tiny_run / "model"), PROMPTS[0], PROMPTS[1], "--batch-size", "1")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == ANSWERS[:2]


def test_batched_and_one_by_one_greedy_generation_agree(tiny_run, cli):
    # prompts of very different lengths, so that batches carry a lot of left padding
    alpaca = ["Describe a process of making crepes.", "Hi", "Transform the following sentence using a synonym: The car sped quickly."]
    prompts = PROMPTS + alpaca + [r["instruction"] for r in tiny.heldout_rows(7)]
    stdin = "".join(p + "\n" for p in prompts)
    one = cli("generate", str(tiny_run), "--batch-size", "1", "--max-new-tokens", "12", input=stdin)
    many = cli("generate", str(tiny_run), "--batch-size", "16", "--max-new-tokens", "12", input=stdin)
    assert one.exit_code == 0 and many.exit_code == 0
    assert len(one.stdout.splitlines()) == len(prompts)
    assert many.stdout == one.stdout


def test_jsonl_round_trips_alpaca_rows(tiny_run, cli):
    rows = json.loads(shared_path("data", "llamafactory", "alpaca_en_demo.json").read_text(encoding="utf-8"))[:5]
    stdin = "".join(json.dumps(r) + "\n" for r in rows)
    result = cli("generate", str(tiny_run), "--input-format", "jsonl", "--output-format", "jsonl", "--max-new-tokens", "8", input=stdin)
    assert result.exit_code == 0, result.output
    out = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(out) == len(rows)
    for row, got in zip(rows, out, strict=True):
        assert {k: got[k] for k in row} == row  # every input field kept, in order
        assert set(got) == set(row) | {"response"} and isinstance(got["response"], str)


def test_jsonl_rows_in_other_formats_and_without_answers(tiny_run, cli, tmp_path):
    p, a = PROMPTS[0], ANSWERS[0]
    rows = [
        {"instruction": p},  # alpaca without its output
        {"messages": [{"role": "user", "content": p}, {"role": "assistant", "content": "IGNORED"}]},
        {"conversations": [{"from": "human", "value": p}]},
        {"prompt": p, "chosen": a, "rejected": a.lower()},
        {"question": p, "answer": a},
    ]
    path = tmp_path / "rows.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    result = cli("generate", str(tiny_run), "--input", str(path), "--output-format", "jsonl", "--response-key", "generated")
    assert result.exit_code == 0, result.output
    assert [json.loads(line)["generated"] for line in result.stdout.splitlines()] == [a] * len(rows)
    text = cli("generate", str(tiny_run), "--input-format", "jsonl", input=path.read_text())
    assert text.stdout.splitlines() == [a] * len(rows)


def test_text_lines_become_prompt_records_in_jsonl(tiny_run, cli):
    result = cli("generate", str(tiny_run), "--output-format", "jsonl", input=PROMPTS[0] + "\n")
    assert [json.loads(line) for line in result.stdout.splitlines()] == [{"prompt": PROMPTS[0], "response": ANSWERS[0]}]


def test_head_closes_the_pipe_quietly(tiny_run):
    lines = "".join(PROMPTS[i % len(PROMPTS)] + "\n" for i in range(200))
    script = f'"{sys.executable}" -m sftkit generate "{tiny_run}" --batch-size 8 2>"$ERR" | head -1; echo "status ${{PIPESTATUS[0]}}"'
    err = tiny_run.parent / "head.err"
    proc = subprocess.run(["bash", "-c", script], input=lines, capture_output=True, text=True, env={**os.environ, "ERR": str(err)}, timeout=600)
    out = proc.stdout.splitlines()
    assert out[0] == ANSWERS[0]
    assert out[-1] == "status 0"
    stderr = err.read_text()
    assert "Traceback" not in stderr and "BrokenPipe" not in stderr, stderr


def test_chat_keeps_a_conversation_and_resets(tiny_run, sftkit_proc):
    proc = sftkit_proc("generate", str(tiny_run), "--chat", input=f"{PROMPTS[0]}\n/reset\n{PROMPTS[1]}\n/exit\n{PROMPTS[2]}\n")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ANSWERS[:2]
    assert "you>" in proc.stderr and "conversation cleared" in proc.stderr


def test_stream_yields_the_same_response_as_generate(tiny_run):
    from sftkit.generation import load

    model = load(str(tiny_run))
    prompts = PROMPTS[:3]
    assert ["".join(model.stream(p)).strip() for p in prompts] == model.generate(prompts)


def test_sampling_with_a_seed_is_repeatable(tiny_run, cli):
    args = ("generate", str(tiny_run), "--temperature", "1.5", "--top-k", "50", "--top-p", "0.95", "--seed", "7", "--batch-size", "4")
    stdin = "".join(p + "\n" for p in PROMPTS)
    first, second = cli(*args, input=stdin), cli(*args, input=stdin)
    assert first.exit_code == 0 and first.stdout == second.stdout and len(first.stdout.splitlines()) == len(PROMPTS)


# --------------------------------------------------------------------------- errors: one line and a hint


def _error(result) -> str:
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.stderr
    return result.stderr


def test_missing_run(cli, tmp_path):
    result = cli("generate", str(tmp_path / "nope"), "hi")
    assert result.exit_code == 1 and "no run or model at" in _error(result)


def test_run_without_a_model(cli, tmp_path, tiny_run):
    run = tmp_path / "unfinished"
    run.mkdir()
    (run / "sftkit.yaml").write_text((tiny_run / "sftkit.yaml").read_text())
    result = cli("generate", str(run), "hi")
    assert result.exit_code == 1
    err = _error(result)
    assert "holds no model" in err and "--resume" in err


def test_unknown_template(cli, tiny_run):
    result = cli("generate", str(tiny_run), "--template", "nonsense", "hi")
    assert result.exit_code == 2 and "unknown template" in _error(result)


def test_bad_jsonl_line_names_its_place(cli, tiny_run):
    result = cli("generate", str(tiny_run), "--input-format", "jsonl", input='{"instruction": "cat"}\n{oops\n')
    assert result.exit_code == 1 and "stdin:2: not valid JSON" in _error(result)


def test_jsonl_row_of_unknown_shape(cli, tiny_run):
    result = cli("generate", str(tiny_run), "--input-format", "jsonl", input='{"foo": 1}\n')
    assert result.exit_code == 1 and "stdin:1: cannot tell the row format" in _error(result)


def test_response_field_clash_is_refused(cli, tiny_run):
    row = {"instruction": PROMPTS[0], "response": ANSWERS[0]}
    result = cli("generate", str(tiny_run), "--input-format", "jsonl", "--output-format", "jsonl", input=json.dumps(row) + "\n")
    assert result.exit_code == 2 and "--response-key" in _error(result)


def test_missing_input_file(cli, tiny_run, tmp_path):
    result = cli("generate", str(tiny_run), "--input", str(tmp_path / "prompts.txt"))
    assert result.exit_code == 1 and "input file not found" in _error(result)


def test_text_input_file(cli, tiny_run, tmp_path):
    path = tmp_path / "prompts.txt"
    path.write_text("".join(p + "\n" for p in PROMPTS[:3]))
    result = cli("generate", str(tiny_run), "--input", str(path))
    assert result.stdout.splitlines() == ANSWERS[:3]


def test_bad_sampling_values_are_usage_errors(cli, tiny_run):
    assert cli("generate", str(tiny_run), "--temperature", "-1", "hi").exit_code == 2
    assert cli("generate", str(tiny_run), "--batch-size", "0", "hi").exit_code == 2
