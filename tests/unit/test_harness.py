"""`sftkit eval --harness` refusals that come before any model is loaded: one line each (the runs themselves are in
tests/integration/test_eval_harness_cli.py)."""

from __future__ import annotations

import sys

import pytest

from sftkit.errors import SftkitError


def test_without_lm_eval_the_install_command_is_named(monkeypatch, tmp_path):
    from sftkit.evaluation import evaluate

    monkeypatch.setitem(
        sys.modules, "lm_eval", None
    )  # import lm_eval raises ImportError
    with pytest.raises(
        SftkitError, match="needs EleutherAI's lm-evaluation-harness"
    ) as info:
        evaluate("builtin:tiny", harness=["arc_easy"], output=tmp_path / "out.json")
    assert "pip install 'sftkit[eval]'" in info.value.hint
    assert list(tmp_path.iterdir()) == []


def test_a_missing_task_file_is_a_usage_error(tmp_path):
    pytest.importorskip("lm_eval")
    from sftkit.evaluation import evaluate

    with pytest.raises(SftkitError, match="harness task file not found") as info:
        evaluate("builtin:tiny", harness=[str(tmp_path / "nope.yaml")])
    assert info.value.exit_code == 2


def test_harness_options_need_harness_tasks_and_sftkit_options_do_not_mix():
    from sftkit.evaluation import evaluate

    with pytest.raises(SftkitError, match="apply to harness tasks"):
        evaluate("builtin:tiny", limit=3)
    with pytest.raises(SftkitError, match="data applies to sftkit's own measures"):
        evaluate("builtin:tiny", harness=["arc_easy"], data="rows.jsonl")
    with pytest.raises(SftkitError, match="no harness task given"):
        evaluate("builtin:tiny", harness=[" ", ""])


def test_the_api_takes_comma_separated_tasks(monkeypatch):
    import sftkit
    from sftkit import harness

    seen = {}
    monkeypatch.setattr(
        harness,
        "evaluate_harness",
        lambda target, tasks, **kw: (
            seen.update(target=target, tasks=tasks, **kw) or "result"
        ),
    )
    assert sftkit.evaluate("runs/x", harness="arc_easy,hellaswag", limit=5) == "result"
    assert (
        seen["tasks"] == ["arc_easy", "hellaswag"]
        and seen["limit"] == 5
        and seen["chat_template"] is True
    )
