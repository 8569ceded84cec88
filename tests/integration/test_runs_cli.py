"""`sftkit runs list|show|compare` on two real tiny runs that differ in their learning rate, and the loss curve
each run draws when it ends: loss.png with the plot extra, a one-line note without it (the second run is trained
with matplotlib hidden from it)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

COMMON = [
    "train.max_iters=20",
    "train.logging_steps=5",
    "train.eval_steps=10",
    "train.save_steps=10",
]
RATES = {"slow": "1e-3", "fast": "5e-3"}
PNG = b"\x89PNG\r\n\x1a\n"


def _has_matplotlib() -> bool:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def _sftkit(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        [sys.executable, "-m", "sftkit", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        cwd=cwd,
        timeout=900,
        check=False,
    )
    assert proc.returncode == 0, (
        f"sftkit {' '.join(args)} exited {proc.returncode}\n{proc.stderr[-3000:]}"
    )
    return proc


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict:
    """runs/slow (learning rate 1e-3, matplotlib hidden) and runs/fast (5e-3), 20 steps each."""
    root = tmp_path_factory.mktemp("looking")
    blocker = root / "no-matplotlib" / "matplotlib"
    blocker.mkdir(parents=True)
    (blocker / "__init__.py").write_text(
        "raise ModuleNotFoundError(\"No module named 'matplotlib'\", name='matplotlib')\n"
    )
    hidden = {
        "PYTHONPATH": os.pathsep.join(
            [str(blocker.parent), os.environ.get("PYTHONPATH", "")]
        )
    }
    out = {"root": root}
    for name, rate in RATES.items():
        sets = [
            a for s in [*COMMON, f"train.learning_rate={rate}"] for a in ("--set", s)
        ]
        out[name] = _sftkit(
            "train",
            "--preset",
            "tiny",
            "--output-dir",
            str(root / "runs" / name),
            *sets,
            env=hidden if name == "slow" else None,
        )
    return out


def test_each_run_ends_with_its_loss_curve(runs):
    root = runs["root"]
    hidden = runs["slow"].stderr
    # without matplotlib: one note that says how to get it, and the run finished all the same
    assert (
        "note: no loss.png: matplotlib is not installed (pip install 'sftkit[plot]' adds it"
        in hidden
    )
    assert "Traceback" not in hidden and "done: model in" in hidden
    assert not (root / "runs" / "slow" / "loss.png").exists()
    assert "no loss.png" in (root / "runs" / "slow" / "train.log").read_text()
    plot = root / "runs" / "fast" / "loss.png"
    if _has_matplotlib():
        assert plot.read_bytes()[:8] == PNG
        assert f"loss curve: {plot}" in runs["fast"].stderr
    else:
        assert "note: no loss.png: matplotlib is not installed" in runs["fast"].stderr
    # stderr is not a terminal here: no curve drawn in it (the run folder and `sftkit runs show` have it)
    assert "(step)" not in runs["fast"].stderr and runs["fast"].stdout == ""


def test_list_shows_both_runs(runs):
    root = runs["root"]
    rows = json.loads(
        _sftkit("runs", "list", "--json", cwd=root).stdout
    )  # runs/ by default
    assert [r["name"] for r in rows] == ["slow", "fast"]  # in the order they started
    for row in rows:
        assert (
            row["state"] == "finished" and row["steps"] == 20 and row["max_steps"] == 20
        )
        assert row["loss"] > 0 and row["eval_loss"] > 0 and row["train_loss"] > 0
        assert row["started"] and 0 < row["duration_seconds"] < 900
        assert row["checkpoints"] == ["checkpoint-10", "checkpoint-20"]
    slow, fast = rows
    assert (
        fast["eval_loss"] < slow["eval_loss"]
    )  # the tiny task learns faster at 5e-3 in 20 steps
    table = _sftkit("runs", "list", str(root / "runs")).stdout
    for text in (
        "slow",
        "fast",
        "finished",
        "20/20",
        f"{slow['loss']:.4f}",
        f"{fast['eval_loss']:.4f}",
    ):
        assert text in table, text


def test_show_gives_the_summary_and_the_curve(runs):
    run = runs["root"] / "runs" / "fast"
    shown = json.loads(_sftkit("runs", "show", str(run), "--json").stdout)
    metrics = json.loads((run / "final_metrics.json").read_text())
    assert [s for s, _ in shown["history"]["train"]] == [1, 5, 10, 15, 20]
    assert [s for s, _ in shown["history"]["eval"]] == [10, 20]
    assert (
        shown["eval_loss"] == metrics["eval_loss"]
        and shown["train_loss"] == metrics["train_loss"]
    )
    assert (
        shown["learning_rate"] == 5e-3
        and shown["method"] == "full"
        and shown["trainer_type"] == "sft"
    )
    text = _sftkit("runs", "show", str(run)).stdout
    assert "finished" in text and "20/20" in text and f"{shown['loss']:.4f}" in text
    assert (
        "── train loss" in text
        and "─o─ eval loss" in text
        and any("\u2800" < ch <= "\u28ff" for ch in text)
    )


def test_show_image_draws_the_curve_of_a_run_that_has_none(runs):
    if not _has_matplotlib():
        pytest.skip("the plot extra (pip install 'sftkit[plot]') is not installed")
    run = runs["root"] / "runs" / "slow"
    shown = json.loads(_sftkit("runs", "show", str(run), "--image", "--json").stdout)
    assert (
        shown["loss_plot"] == str(run / "loss.png")
        and (run / "loss.png").read_bytes()[:8] == PNG
    )


def test_compare_names_the_learning_rate_and_puts_figures_side_by_side(runs):
    root = runs["root"]
    report = json.loads(
        _sftkit("runs", "compare", "slow", "fast", "--json", cwd=root).stdout
    )
    assert [r["name"] for r in report["runs"]] == ["slow", "fast"]
    assert report["config"] == {
        "train.learning_rate": [1e-3, 5e-3]
    }  # the one setting that differs
    listed = {
        r["name"]: r
        for r in json.loads(_sftkit("runs", "list", "--json", cwd=root).stdout)
    }
    for key in ("loss", "eval_loss", "train_loss", "steps", "state"):
        assert report["metrics"][key] == [listed["slow"][key], listed["fast"][key]], key
    assert (
        report["metrics"]["eval_perplexity"][0]
        > report["metrics"]["eval_perplexity"][1]
    )
    text = _sftkit("runs", "compare", "slow", "fast", cwd=root).stdout
    assert "train.learning_rate" in text and "0.001" in text and "0.005" in text
    assert "slow train loss" in text and "fast eval loss" in text


def test_train_draws_the_curve_when_it_ends_on_a_terminal(tmp_path):
    pexpect = pytest.importorskip("pexpect")
    run = tmp_path / "pty"
    sets = [a for s in COMMON for a in ("--set", s)]
    child = pexpect.spawn(
        sys.executable,
        ["-m", "sftkit", "train", "--preset", "tiny", "--output-dir", str(run), *sets],
        env={**os.environ, "NO_COLOR": "1"},
        encoding="utf-8",
        timeout=600,
        dimensions=(50, 120),
    )
    try:
        child.expect(pexpect.EOF)
    finally:
        child.close()
    screen = child.before
    assert child.exitstatus == 0, screen[-3000:]
    curve = screen[screen.index("(loss)") : screen.index("done: model in")]
    assert "(step)" in curve and "── train loss" in curve and "─o─ eval loss" in curve
    assert any("\u2800" < ch <= "\u28ff" for ch in curve)
    assert len(curve.splitlines()) <= 16  # compact: 8 rows of curve, axes and legend
