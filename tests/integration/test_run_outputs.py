"""What a finished run folder holds works everywhere else, on real tiny runs through the real CLI: every file has
the modes the user's umask gives (colleagues on a shared machine can read it), the trackers write their own files
(TensorBoard events, a W&B offline run) into the run folder, the model card's Hub metadata reads back with
huggingface_hub, and its usage snippet runs as written."""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

#: a short run that still writes a checkpoint, evaluates and logs several times
SHORT = [
    "train.max_iters=12",
    "train.save_steps=6",
    "train.eval_steps=6",
    "train.logging_steps=3",
    "train.save_total_limit=1",
]
TENSORBOARD = ["tracking.enabled=true", "tracking.backend=tensorboard"]


def _train(
    run: Path,
    sets: list[str],
    umask: int,
    env: dict[str, str | None] | None = None,
    cwd: Path | None = None,
) -> subprocess.CompletedProcess:
    """`sftkit train --preset tiny` under ``umask``; ``env`` adds to the environment (a None value removes)."""
    args = [
        sys.executable,
        "-m",
        "sftkit",
        "train",
        "--preset",
        "tiny",
        "--output-dir",
        str(run),
    ]
    for s in sets:
        args += ["--set", s]
    proc = subprocess.run(
        args,
        check=False,
        capture_output=True,
        text=True,
        timeout=900,
        env={
            k: v
            for k, v in {"OMP_NUM_THREADS": "1", **os.environ, **(env or {})}.items()
            if v is not None
        },
        cwd=cwd,
        preexec_fn=lambda: os.umask(umask),
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def _wrong_modes(folder: Path, umask: int) -> list[str]:
    """Every file and folder under ``folder`` (and itself) whose mode is not what the umask gives (links aside)."""
    wrong = []
    for path in [folder, *folder.rglob("*")]:
        if path.is_symlink():
            continue
        mode = stat.S_IMODE(path.stat().st_mode)
        expected = (0o777 if path.is_dir() else 0o666) & ~umask
        if mode != expected:
            wrong.append(
                f"{path.relative_to(folder.parent)}: {mode:o} (expected {expected:o})"
            )
    return wrong


@pytest.fixture(scope="module")
def local_base(tmp_path_factory) -> Path:
    """A local base model folder (the tiny model) whose own card states its license."""
    from sftkit.modeling import resolve_model_path

    base = tmp_path_factory.mktemp("base") / "tiny-base"
    shutil.copytree(resolve_model_path("builtin:tiny")[0], base)
    (base / "README.md").write_text(
        "---\nlicense: mit\nlibrary_name: transformers\n---\n\n# A tiny base\n"
    )
    return base


@pytest.fixture(scope="module")
def runs(local_base, tmp_path_factory) -> dict[int, Path]:
    """The same short TensorBoard-tracked run from ``local_base``, finished under umask 022 and under 027."""
    out = {}
    for umask in (0o022, 0o027):
        run = tmp_path_factory.mktemp(f"umask{umask:03o}") / "run"
        _train(run, [f"model.name={local_base}", *TENSORBOARD, *SHORT], umask)
        out[umask] = run
    return out


@pytest.mark.parametrize("umask", [0o022, 0o027])
def test_every_file_of_a_finished_run_has_the_umasks_mode(runs, umask):
    run = runs[umask]
    for name in (
        "sftkit.yaml", "state.json", "environment.json", "metrics.jsonl", "train.log", "sft_metadata.json", "final_metrics.json",
        "README.md", "model/model.safetensors", "model/sft_metadata.json", "checkpoint-12/model.safetensors",
        "checkpoint-12/optimizer.pt", "checkpoint-12/sftkit-complete.json", "prepared/manifest.json", "prepared/train",
    ):  # fmt: skip
        assert (run / name).exists(), name  # what the check below covers
    assert list((run / "tensorboard").glob("events.out.tfevents.*"))
    assert _wrong_modes(run, umask) == []


def test_tensorboard_events_are_written_in_the_run_folder(runs):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run = runs[0o027]
    events = EventAccumulator(str(run / "tensorboard"))
    events.Reload()
    scalars = events.Tags()["scalars"]
    assert "train/loss" in scalars and "eval/loss" in scalars, scalars
    assert [e.step for e in events.Scalars("train/loss")] == [1, 3, 6, 9, 12]
    assert not (run / "runs").exists()  # not transformers' default folder


def test_the_cards_hub_metadata_reads_back(runs, local_base):
    from huggingface_hub import ModelCard

    run = runs[0o027]
    meta = json.loads((run / "sft_metadata.json").read_text())
    for card_path in (run / "README.md", run / "model" / "README.md"):
        data = ModelCard.load(card_path).data
        assert data.license == "mit"  # from the base model's own card
        assert (
            data.base_model is None and data.datasets is None
        )  # a local base and a built-in task are not Hub ids
        assert (
            data.library_name == "transformers"
            and data.pipeline_tag == "text-generation"
        )
        assert data.tags == ["sftkit", "trl", "sft"]
        results = {r.metric_type: r.metric_value for r in data.eval_results}
        assert results == {
            "loss": meta["metrics"]["eval_loss"],
            "perplexity": meta["metrics"]["eval_perplexity"],
        }
        assert data.eval_results[0].dataset_split == "validation"
    assert meta["license"] == "mit" and meta["model"] == str(local_base)


def test_metadata_counts_the_validation_rows(runs):
    from datasets import load_from_disk

    run = runs[0o022]
    rows = json.loads((run / "sft_metadata.json").read_text())["rows"]
    assert rows == {
        "train": len(load_from_disk(str(run / "prepared" / "train"))),
        "validation": len(load_from_disk(str(run / "prepared" / "validation"))),
    }
    assert rows["validation"] > 0


def _snippet(card: Path) -> str:
    blocks = re.findall(r"```python\n(.*?)```", card.read_text(), re.DOTALL)
    assert len(blocks) == 1, card.read_text()
    return blocks[0]


def _run_python(code: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {"OMP_NUM_THREADS": "1", **os.environ}
    return subprocess.run(
        [sys.executable, "-c", code],
        check=False,
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=600,
    )


def test_the_cards_usage_snippet_runs_as_written(tiny_run, tmp_path):
    code = _snippet(tiny_run / "model" / "README.md")
    assert f"path = {json.dumps(str((tiny_run / 'model').absolute()))}" in code
    assert (
        _snippet(tiny_run / "README.md") == code
    )  # the run folder's card loads the same model
    proc = _run_python(
        code, tmp_path
    )  # another working folder: the path in the card works from anywhere
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip(), proc.stderr[-3000:]


def test_an_adapters_usage_snippet_runs_with_only_its_path_changed(lora_run, tmp_path):
    moved = tmp_path / "adapter"
    shutil.copytree(lora_run / "model", moved)
    original = str((lora_run / "model").absolute())
    code = _snippet(moved / "README.md")
    assert "AutoPeftModelForCausalLM" in code and code.count(json.dumps(original)) == 1
    proc = _run_python(
        code.replace(json.dumps(original), json.dumps(str(moved))), tmp_path
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip(), proc.stderr[-3000:]


def test_wandb_offline_run_is_written_in_the_run_folder(tmp_path):
    pytest.importorskip("wandb")
    home = (
        tmp_path / "wandb-home"
    )  # W&B's own settings, cache and data folders: nothing outside the test
    env: dict[str, str | None] = {
        "WANDB_MODE": "offline",
        "WANDB_CONFIG_DIR": str(home / "config"),
        "WANDB_CACHE_DIR": str(home / "cache"),
        "WANDB_DATA_DIR": str(home / "data"),
    }
    env["WANDB_DIR"] = (
        None  # a W&B folder of the caller's would be used instead of the run folder
    )
    run = tmp_path / "run"
    proc = _train(
        run,
        [
            "tracking.enabled=true",
            "tracking.backend=wandb",
            "tracking.project=sftkit-test",
            *SHORT,
        ],
        0o027,
        env=env,
        cwd=tmp_path,
    )
    assert proc.stdout == ""
    offline = list((run / "wandb").glob("offline-run-*"))
    assert len(offline) == 1, list(run.iterdir())
    records = [
        f.read_bytes() for f in offline[0].glob("run-*.wandb")
    ]  # an offline run keeps everything here
    assert (
        len(records) == 1 and b"train/loss" in records[0] and b"eval/loss" in records[0]
    )
    assert (
        "finishing run sftkit-test/" in (offline[0] / "logs" / "debug.log").read_text()
    )
    # finished by the run itself (complete when `train` returns), not when the process exits
    assert 0 <= proc.stderr.find("wandb sync") < proc.stderr.index("done: model in"), (
        proc.stderr[-3000:]
    )
    assert not (tmp_path / "wandb").exists()  # nothing in the working folder
    assert _wrong_modes(run, 0o027) == []


def test_dry_run_output_stays_data_when_wandb_is_offline(tmp_path):
    """transformers announces W&B's offline mode on stdout when its tracker code is imported: not into the plan."""
    env = {"OMP_NUM_THREADS": "1", **os.environ, "WANDB_MODE": "offline"}
    for backend in ("none", "wandb"):
        args = [
            sys.executable,
            "-m",
            "sftkit",
            "train",
            "--preset",
            "tiny",
            "--set",
            f"tracking.backend={backend}",
            "--dry-run",
            "--json",
        ]
        if backend == "wandb":
            pytest.importorskip("wandb")
            args += ["--set", "tracking.enabled=true"]
        proc = subprocess.run(
            args,
            check=False,
            capture_output=True,
            text=True,
            env=env,
            cwd=tmp_path,
            timeout=600,
        )
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert json.loads(proc.stdout)["config"]["tracking"]["backend"] == backend


def test_a_run_in_process_gives_the_callers_environment_back(
    tmp_path, monkeypatch, one_torch_thread
):
    """The tracker's environment is the run's: a later run in the same process (or the caller) does not inherit it."""
    import sftkit

    monkeypatch.delenv("TENSORBOARD_LOGGING_DIR", raising=False)
    overrides = {
        "tracking.enabled": True,
        "tracking.backend": "tensorboard",
        "train.max_iters": 3,
        "train.save_steps": 3,
    }
    result = sftkit.train(
        sftkit.load_config(
            preset="tiny", overrides=overrides, output_dir=tmp_path / "run"
        )
    )
    assert list((result.run_dir / "tensorboard").glob("events.out.tfevents.*"))
    assert "TENSORBOARD_LOGGING_DIR" not in os.environ
