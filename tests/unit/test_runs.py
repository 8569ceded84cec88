"""`sftkit runs list|show|compare` on run folders written as training writes them (state.json, metrics.jsonl,
final_metrics.json, sftkit.yaml, train.log): states, resumed histories, errors. Trained runs: tests/integration."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

STARTED = "2026-03-01T10:00:00+0000"


def make_run(
    folder: Path,
    *,
    state: str = "finished",
    started: str | None = STARTED,
    updated: str = "2026-03-01T10:12:30+0000",
    records: list[dict] | None = None,
    lr: float = 1e-3,
    final: dict | None = None,
    **extra,
) -> Path:
    """A run folder as `sftkit train` leaves it (the files sftkit runs reads)."""
    folder.mkdir(parents=True)
    status = {"state": state, "updated": updated, **extra}
    if started:
        status["started"] = started
    (folder / "state.json").write_text(json.dumps(status))
    config = {
        "trainer_type": "sft",
        "model": {"name": "builtin:tiny"},
        "data": {"dataset": "builtin:tiny", "field_map": {"q": "instruction"}},
        "train": {"output_dir": str(folder), "learning_rate": lr, "max_iters": 40},
        "lora": {"enabled": False},
    }
    (folder / "sftkit.yaml").write_text(yaml.safe_dump(config))
    if records is None:
        records = [
            {"step": 10, "loss": 2.5},
            {"step": 10, "eval_loss": 2.4, "eval_perplexity": 11.0},
            {"step": 20, "loss": 1.5},
            {"step": 20, "eval_loss": 1.2345678},
            {"step": 20, "train_loss": 2.0, "train_runtime": 3.0},
        ]
    (folder / "metrics.jsonl").write_text(
        "".join(json.dumps(r) + "\n" for r in records)
    )
    (folder / "train.log").write_text(
        "2026-03-01 10:00:05 training started: 20 steps\n"
    )
    if final is not None:
        (folder / "final_metrics.json").write_text(json.dumps(final))
    return folder


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_list_json_gives_each_runs_state_steps_losses_and_times(cli, tmp_path):
    import socket

    make_run(
        tmp_path / "b-failed",
        state="failed",
        started="2026-03-01T11:00:00+0000",
        error="DataError: bad row",
    )
    make_run(
        tmp_path / "a-done",
        final={"train_loss": 2.0, "eval_loss": 1.2345678, "eval_perplexity": 3.4},
    )
    here = socket.gethostname()
    make_run(
        tmp_path / "c-killed",
        state="running",
        started="2026-03-01T12:00:00+0000",
        pid=_dead_pid(),
        host=here,
    )
    make_run(
        tmp_path / "d-running",
        state="running",
        started="2026-03-01T13:00:00+0000",
        pid=os.getpid(),
        host=here,
    )
    (tmp_path / "notes").mkdir()  # not a run: left out
    (tmp_path / "notes" / "todo.txt").write_text("x")

    result = cli("runs", "list", str(tmp_path), "--json")
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert [r["name"] for r in rows] == [
        "a-done",
        "b-failed",
        "c-killed",
        "d-running",
    ]  # oldest start first
    done, failed, killed, running = rows
    assert (
        done["state"] == "finished" and done["steps"] == 20 and done["max_steps"] == 20
    )
    assert (
        done["loss"] == 1.5
        and done["eval_loss"] == 1.2345678
        and done["train_loss"] == 2.0
    )
    assert done["best_eval_loss"] == 1.2345678 and done["best_eval_step"] == 20
    assert (
        done["started"] == "2026-03-01T10:00:00+00:00"
        and done["duration_seconds"] == 750.0
    )
    assert (
        done["learning_rate"] == 1e-3
        and done["method"] == "full"
        and done["model"] == "builtin:tiny"
    )
    assert failed["state"] == "failed" and failed["error"] == "DataError: bad row"
    assert killed["state"] == "killed"  # says running, but its process is gone
    assert running["state"] == "running" and running["duration_seconds"] > 0

    table = cli("runs", "list", str(tmp_path))
    assert table.exit_code == 0
    for text in (
        "a-done",
        "finished",
        "20/20",
        "1.5000",
        "1.2346",
        "2026-03-01",
        "0:12:30",
        "killed",
    ):
        assert text in table.stdout, text


def test_a_resumed_runs_history_keeps_what_the_final_weights_went_through(
    cli, tmp_path
):
    """Killed after step 30 with its last checkpoint at 20: the resumed run logs 30 again. Lines cut short by the
    kill and non-finite values are passed over."""
    records = [
        {"step": 10, "loss": 3.0},
        {"step": 10, "eval_loss": 2.9},
        {"step": 20, "loss": 2.0},
        {"step": 20, "eval_loss": 1.9},
        {"step": 30, "loss": 1.5},
        {"step": 30, "eval_loss": 1.45},
        {"step": 30, "loss": 1.4},  # resumed from checkpoint-20
        {"step": 30, "eval_loss": 1.35},
        {"step": 40, "loss": float("nan")},
        {"step": 40, "loss": 1.1},
    ]
    run = make_run(tmp_path / "resumed", records=records)
    with (run / "metrics.jsonl").open("a") as f:
        f.write('{"step": 50, "lo')
    result = cli("runs", "show", str(run), "--json")
    assert result.exit_code == 0, result.output
    shown = json.loads(result.stdout)
    assert shown["history"] == {
        "train": [[10, 3.0], [20, 2.0], [30, 1.4], [40, 1.1]],
        "eval": [[10, 2.9], [20, 1.9], [30, 1.35]],
    }
    assert shown["loss"] == 1.1 and shown["steps"] == 40


def test_without_metrics_jsonl_the_history_comes_from_the_newest_checkpoint(
    cli, tmp_path
):
    run = make_run(tmp_path / "r", records=[])
    (run / "metrics.jsonl").unlink()
    for step in (10, 20):
        (run / f"checkpoint-{step}").mkdir()
        history = [{"step": s, "loss": 3.0 / s} for s in range(10, step + 1, 10)] + [
            {"step": step, "eval_loss": 0.5}
        ]
        (run / f"checkpoint-{step}" / "trainer_state.json").write_text(
            json.dumps({"log_history": history, "max_steps": 40})
        )
    shown = json.loads(cli("runs", "show", str(run), "--json").stdout)
    assert shown["history"] == {"train": [[10, 0.3], [20, 0.15]], "eval": [[20, 0.5]]}


def test_show_draws_the_loss_curve_under_the_summary(cli, tmp_path):
    run = make_run(tmp_path / "r1", final={"train_loss": 2.0, "eval_loss": 1.2345678})
    result = cli("runs", "show", str(run))
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "finished" in out and "(sft, full)" in out and "20/20" in out
    assert "1.5000" in out and "best 1.2346 at step 20" in out and "took 0:12:30" in out
    assert "── train loss" in out and "─o─ eval loss" in out and "(step)" in out
    assert any(
        "\u2800" < ch <= "\u28ff" for ch in out
    )  # braille dots: the curve itself
    assert "\x1b[" not in out  # not a terminal: no colour codes


def test_a_bare_name_is_looked_for_in_runs(cli, tmp_path, monkeypatch):
    make_run(tmp_path / "runs" / "mine")
    monkeypatch.chdir(tmp_path)
    assert json.loads(cli("runs", "show", "mine", "--json").stdout)["name"] == "mine"
    assert [r["name"] for r in json.loads(cli("runs", "list", "--json").stdout)] == [
        "mine"
    ]  # runs/ by default


def test_compare_gives_the_config_differences_and_the_figures_side_by_side(
    cli, tmp_path
):
    a = make_run(tmp_path / "a", lr=1e-3, final={"train_loss": 2.0, "eval_loss": 1.25})
    b = make_run(
        tmp_path / "b",
        lr=5e-3,
        records=[{"step": 10, "loss": 2.0}, {"step": 20, "loss": 0.5}],
        final={"train_loss": 1.0},
    )
    result = cli("runs", "compare", str(a), str(b), "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["runs"] == [
        {"name": "a", "path": str(a)},
        {"name": "b", "path": str(b)},
    ]
    assert report["config"] == {
        "train.learning_rate": [1e-3, 5e-3]
    }  # train.output_dir always differs: left out
    m = report["metrics"]
    assert (
        m["loss"] == [1.5, 0.5]
        and m["eval_loss"] == [1.25, None]
        and m["train_loss"] == [2.0, 1.0]
    )
    assert m["state"] == ["finished", "finished"] and m["steps"] == [20, 20]

    table = cli("runs", "compare", str(a), str(b))
    assert table.exit_code == 0
    assert (
        "train.learning_rate" in table.stdout
        and "0.005" in table.stdout
        and "a train loss" in table.stdout
    )


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["runs", "show", "{tmp}/nowhere"], "no run at"),
        (["runs", "show", "{tmp}/plain"], "is not a run folder"),
        (["runs", "list", "{tmp}/nowhere"], "no folder"),
        (["runs", "compare", "{tmp}/plain"], "compare needs two runs or more"),
    ],
)
def test_bad_arguments_are_one_line_with_a_hint(cli, tmp_path, argv, message):
    (tmp_path / "plain").mkdir()
    (tmp_path / "plain" / "data.csv").write_text("a,b\n")
    result = cli(*(a.format(tmp=tmp_path) for a in argv))
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert (
        lines[0].startswith("error:")
        and message in lines[0]
        and lines[1].startswith("hint:")
    ), result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""


def test_show_image_writes_a_png(cli, tmp_path):
    pytest.importorskip(
        "matplotlib",
        reason="the plot extra (pip install 'sftkit[plot]') is not installed",
    )
    run = make_run(tmp_path / "r")
    result = cli("runs", "show", str(run), "--image", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["loss_plot"] == str(run / "loss.png")
    assert (run / "loss.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not [p for p in run.iterdir() if p.name.endswith(".tmp")]


def test_show_image_without_matplotlib_says_how_to_get_it(tmp_path):
    blocker = tmp_path / "blocked" / "matplotlib"
    blocker.mkdir(parents=True)
    (blocker / "__init__.py").write_text(
        "raise ModuleNotFoundError(\"No module named 'matplotlib'\", name='matplotlib')\n"
    )
    run = make_run(tmp_path / "r")
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(
            [str(blocker.parent), os.environ.get("PYTHONPATH", "")]
        ),
    }
    proc = subprocess.run(
        [sys.executable, "-m", "sftkit", "runs", "show", str(run), "--image"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert proc.returncode == 1
    assert proc.stderr.splitlines() == [
        "error: drawing loss.png needs matplotlib, which is not installed",
        "hint: pip install 'sftkit[plot]'",
    ]
    assert not (run / "loss.png").exists()
