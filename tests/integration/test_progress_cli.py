"""Signs of life on stderr while eval, export, generate and prepare work, when stderr is not a terminal (a log, CI):
plain progress lines every SFTKIT_PROGRESS_INTERVAL seconds (10 by default), stdout untouched."""

from __future__ import annotations

import json
import re

import pytest

from sftkit import tiny

pytestmark = pytest.mark.slow

#: a short interval, so that steps of a tiny model (well under a second) report too
OFTEN = {"SFTKIT_PROGRESS_INTERVAL": "0.01"}
PROMPTS = [r["instruction"] for r in tiny.sft_rows(6)]
ANSWERS = [r["output"] for r in tiny.sft_rows(6)]


def _progress(stderr: str, step: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith(f"{step}: ")]


def test_eval_reports_its_loss_and_generation_passes(tiny_run, sftkit_proc):
    proc = sftkit_proc("eval", str(tiny_run), "--json", env=OFTEN)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)  # stdout holds the JSON alone
    rows = report["rows"]
    assert _progress(proc.stderr, "loading the model")
    answers = _progress(proc.stderr, f"generating answers with {tiny_run}")
    counted = [line for line in answers if re.search(rf": \d+/{rows} answers \(\d+%\), elapsed \d:\d\d:\d\d", line)]
    assert counted, proc.stderr
    assert answers[-1].startswith(f"generating answers with {tiny_run}: done, {rows}/{rows} answers in "), proc.stderr
    assert "\x1b[" not in proc.stderr  # plain lines: no cursor movement or colour in a log


def test_export_reports_its_loading_merging_and_check(lora_run, sftkit_proc, tmp_path):
    out = tmp_path / "merged"
    proc = sftkit_proc("export", str(lora_run), "--output", str(out), env=OFTEN)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == f"{out}\n"
    for step in (f"loading {lora_run}", "checking the export"):
        lines = _progress(proc.stderr, step)
        assert lines and lines[-1].startswith(f"{step}: done in "), (step, proc.stderr)


def test_generate_reports_on_stderr_and_keeps_stdout_for_responses(tiny_run, sftkit_proc):
    proc = sftkit_proc("generate", str(tiny_run), "--batch-size", "2", input="".join(p + "\n" for p in PROMPTS), env=OFTEN)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ANSWERS  # nothing but the responses, for the next command in the pipe
    lines = _progress(proc.stderr, "generating")
    assert lines[-1].startswith(f"generating: done, {len(PROMPTS)} responses in "), proc.stderr
    assert all(
        re.match(r"generating: (\d+ responses, elapsed \d:\d\d:\d\d|done, \d+ responses in \d:\d\d:\d\d)$", line) for line in lines
    ), lines


def test_quick_work_says_nothing_with_the_default_interval(tiny_run, sftkit_proc):
    proc = sftkit_proc("generate", str(tiny_run), PROMPTS[0])
    assert proc.returncode == 0 and proc.stdout == ANSWERS[0] + "\n"
    assert not _progress(proc.stderr, "generating") and not _progress(proc.stderr, f"loading {tiny_run}")


def test_prepare_counts_its_rows(sftkit_proc, tmp_path):
    data = tmp_path / "rows.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in tiny.sft_rows(3000, seed=5)), encoding="utf-8")
    proc = sftkit_proc("prepare", "--preset", "tiny", "--data", str(data), "--output", str(tmp_path / "prepared"), env=OFTEN)
    assert proc.returncode == 0, proc.stderr
    lines = _progress(proc.stderr, "preparing data")
    assert lines[-1].startswith("preparing data: done, "), proc.stderr
    assert re.search(r"done, (\d+)/\1 rows in ", lines[-1]), lines[-1]  # every row read was counted
