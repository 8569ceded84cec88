"""The experiment trackers without training: `--dry-run` sets them up as a run does, so a tracker that is missing
or rejects its settings fails there; the extra a missing tracker's hint names installs it; the run's tracker
environment does not outlive the run."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from sftkit.training.tracking import PACKAGES, tracker_environment

ROOT = Path(__file__).resolve().parents[2]
TRACKED = ["--preset", "tiny", "--set", "tracking.enabled=true"]


def _plan(cli, *args: str) -> dict:
    result = cli("train", *TRACKED, *args, "--dry-run", "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_dry_run_shows_where_tensorboard_writes(cli, tmp_path):
    plan = _plan(
        cli,
        "--set",
        "tracking.backend=tensorboard",
        "--output-dir",
        str(tmp_path / "run"),
    )
    assert (
        plan["trainer"]["args"]["report_to"] == "tensorboard"
        and plan["trainer"]["args"]["run_name"] == "run"
    )
    assert plan["tracker_environment"] == {
        "TENSORBOARD_LOGGING_DIR": str(tmp_path / "run" / "tensorboard")
    }
    assert "TENSORBOARD_LOGGING_DIR" not in os.environ  # shown, not set


def test_dry_run_sets_up_wandb_in_the_run_folder(cli, tmp_path, monkeypatch):
    pytest.importorskip("wandb")
    monkeypatch.delenv("WANDB_DIR", raising=False)
    plan = _plan(
        cli,
        "--set",
        "tracking.backend=wandb",
        "--set",
        "tracking.project=p1",
        "--output-dir",
        str(tmp_path / "run"),
    )
    assert plan["tracker_environment"] == {
        "WANDB_PROJECT": "p1",
        "WANDB_DIR": str(tmp_path / "run"),
    }
    monkeypatch.setenv(
        "WANDB_DIR", str(tmp_path / "elsewhere")
    )  # the user's own choice is kept
    plan = _plan(
        cli, "--set", "tracking.backend=wandb", "--output-dir", str(tmp_path / "run")
    )
    assert plan["tracker_environment"]["WANDB_DIR"] == str(tmp_path / "elsewhere")


def test_a_self_hosted_trackio_server_reaches_trackio(cli):
    plan = _plan(cli, "--set", "tracking.trackio_url=http://tracking.lan:7860")
    assert plan["trainer"]["args"]["report_to"] == "trackio"
    assert plan["tracker_environment"] == {
        "TRACKIO_SERVER_URL": "http://tracking.lan:7860"
    }


@pytest.mark.parametrize(
    "sets, env, named",
    [
        (
            ["tracking.project=team/run"],
            {},
            "tracking.project",
        ),  # W&B refuses '/' in a project name
        ([], {"WANDB_MODE": "ofline"}, "WANDB_MODE"),
    ],
)
def test_dry_run_refuses_a_tracking_setup_wandb_would_refuse(
    cli, monkeypatch, sets, env, named
):
    pytest.importorskip("wandb")
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    result = cli(
        "train",
        *TRACKED,
        "--set",
        "tracking.backend=wandb",
        *[a for s in sets for a in ("--set", s)],
        "--dry-run",
    )
    assert result.exit_code == 2, result.output
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and named in errors[0] and "W&B rejects" in errors[0], (
        result.stderr
    )
    assert (
        "hint:" in result.stderr
        and "Traceback" not in result.stderr
        and result.stdout == ""
    )


@pytest.mark.parametrize("backend", ["tensorboard", "trackio"])
def test_dry_run_of_a_tracker_that_is_not_installed_names_its_extra(
    cli, monkeypatch, backend
):
    for module in {
        "tensorboard": ("tensorboard", "tensorboardX"),
        "trackio": ("trackio",),
    }[backend]:
        monkeypatch.setitem(
            sys.modules, module, None
        )  # how Python sees a package that is not installed
    result = cli("train", *TRACKED, "--set", f"tracking.backend={backend}", "--dry-run")
    assert result.exit_code == 2, result.output
    assert (
        f"error: tracking.backend is {backend} but the {backend} package is not installed"
        in result.stderr
    )
    assert (
        f"pip install 'sftkit[{PACKAGES[backend][1]}]'" in result.stderr
        and "tracking.enabled=false" in result.stderr
    )
    assert "Traceback" not in result.stderr and result.stdout == ""


def test_a_wandb_left_behind_by_an_uninstall_is_not_installed(
    cli, monkeypatch, tmp_path
):
    """A `wandb` folder without the package (what an uninstall can leave): transformers would not start it."""
    (tmp_path / "wandb").mkdir()
    (tmp_path / "wandb" / "__init__.py").write_text("")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "wandb", raising=False)
    result = cli("train", *TRACKED, "--set", "tracking.backend=wandb", "--dry-run")
    assert result.exit_code == 2, result.output
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert errors == [
        "error: tracking.backend is wandb but the wandb package is not installed"
    ], result.stderr
    assert "hint: pip install 'sftkit[wandb]'" in result.stderr


def test_each_trackers_extra_installs_its_package():
    tomllib = pytest.importorskip(
        "tomllib", reason="reading pyproject.toml needs Python 3.11's tomllib"
    )
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    assert set(PACKAGES) == {"trackio", "tensorboard", "wandb"}
    for backend, (package, extra) in PACKAGES.items():
        assert any(
            req.split(">")[0].split("=")[0].split("[")[0].strip() == package
            for req in extras[extra]
        ), (backend, extra)


def test_the_trackers_environment_lasts_as_long_as_the_run(monkeypatch, tmp_path):
    from sftkit.resolve import resolve_config

    monkeypatch.setenv("WANDB_PROJECT", "the-callers")
    monkeypatch.delenv("WANDB_DIR", raising=False)
    cfg = resolve_config(
        preset="tiny",
        sets=[
            "tracking.enabled=true",
            "tracking.backend=wandb",
            f"train.output_dir={tmp_path / 'r'}",
        ],
    ).config
    with pytest.raises(RuntimeError), tracker_environment(cfg):
        assert os.environ["WANDB_PROJECT"] == "sftkit" and os.environ[
            "WANDB_DIR"
        ] == str(tmp_path / "r")
        raise RuntimeError("the run failed")
    assert (
        os.environ["WANDB_PROJECT"] == "the-callers" and "WANDB_DIR" not in os.environ
    )
