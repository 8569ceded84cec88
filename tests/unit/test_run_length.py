"""How long a run is, before it starts: a warm-up as long as the run is reported, a finished run is not resumed for
nothing, and data loaders pin memory only for an accelerator."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sftkit.errors import SftkitError
from sftkit.resolve import resolve_config
from sftkit.training.plan import total_steps, warmup_warning

LONG_WARMUP = ["--set", "train.max_iters=20", "--set", "train.warmup_ratio=0", "--set", "train.warmup_steps=50"]


def _tiny(**overrides):
    return resolve_config(preset="tiny", overrides=overrides).config


def test_dry_run_warns_when_the_warm_up_outlasts_the_run(cli):
    result = cli("train", "--preset", "tiny", *LONG_WARMUP, "--dry-run")
    assert result.exit_code == 0, result.stderr
    err = " ".join(result.stderr.split())
    assert (
        "warning: the warm-up (train.warmup_steps 50) is not shorter than the whole run (20 steps): the learning rate "
        "climbs for the whole run and ends at about 38% of train.learning_rate (0.002); shorten it, e.g. --set train.warmup_steps=2"
    ) in err
    plan = json.loads(cli("train", "--preset", "tiny", *LONG_WARMUP, "--dry-run", "--json").stdout)
    assert plan["warnings"] == [w for w in plan["warnings"] if "train.warmup_steps 50" in w] and len(plan["warnings"]) == 1
    quiet = cli("train", "--preset", "tiny", "--dry-run")  # 5% warm-up of 200 steps
    assert quiet.exit_code == 0 and "warning" not in quiet.stderr


def test_a_ratio_and_runs_by_epochs_are_counted_as_transformers_counts_them():
    cfg = _tiny(**{"train.max_iters": None, "train.num_train_epochs": 1.0, "train.batch_size": 32, "train.gradient_accumulation_steps": 2})
    # 100 rows: 4 batches of 32 (the last one short), 2 optimiser steps of 2 batches each
    assert total_steps(cfg, 100) == 2
    assert total_steps(cfg, 100, world_size=2) == 1  # 50 rows per process: 2 batches, 1 step
    assert total_steps(cfg, None) is None and warmup_warning(cfg) is None  # by epochs, rows unknown: not said
    long = cfg.model_copy(update={"train": cfg.train.model_copy(update={"warmup_ratio": 0.0, "warmup_steps": 5})})
    assert "whole run (2 steps (1 epochs of 100 rows))" in warmup_warning(long, 100)
    assert warmup_warning(_tiny(**{"train.max_iters": 1, "train.warmup_ratio": 0.5}), None).startswith(
        "the warm-up (train.warmup_ratio 0.5: 1 step) is not shorter than the whole run (1 step)"
    )
    assert warmup_warning(_tiny(**{"train.max_iters": 20, "train.warmup_ratio": 0.0, "train.warmup_steps": 19}), None) is None


def _finished_run(folder: Path, steps: int) -> None:
    from sftkit.yamlio import dump_yaml

    (folder / "model").mkdir(parents=True)
    (folder / "sftkit.yaml").write_text(dump_yaml(_tiny(**{"train.output_dir": str(folder), "train.max_iters": steps}).to_dict()))
    (folder / "state.json").write_text(json.dumps({"state": "finished", "steps": steps}))
    last = folder / f"checkpoint-{steps}"  # the complete checkpoint written after the last step
    last.mkdir()
    (last / "trainer_state.json").write_text(json.dumps({"global_step": steps, "max_steps": steps}))
    (last / "sftkit-complete.json").write_text(json.dumps({"step": steps}))


def test_resuming_a_finished_run_without_more_steps_says_how_to_go_on(tmp_path):
    from sftkit.training.rundir import AlreadyFinished, RunLock, start_run_dir

    run = tmp_path / "done"
    _finished_run(run, 30)
    cfg = _tiny(**{"train.output_dir": str(run), "train.max_iters": 30})
    with RunLock(run), pytest.raises(AlreadyFinished) as done:
        start_run_dir(cfg, "latest", overwrite=False)
    assert done.value.steps == 30 and done.value.run_dir == run
    note = done.value.note
    assert note.startswith(f"the run in {run} already finished (30 steps, train.max_iters is 30): nothing more to train; ")
    assert f"sftkit train --config {run / 'sftkit.yaml'} --resume --set train.max_iters=45 (any number above 30)" in note
    assert f"--set model.name={run / 'model'} --output-dir {run}-more" in note
    assert json.loads((run / "state.json").read_text())["state"] == "finished"  # nothing was started
    with RunLock(run), pytest.raises(SftkitError) as again:  # training into it again, without --resume
        start_run_dir(cfg, None, overwrite=False)
    assert "already holds a run (finished)" in again.value.message
    assert "--resume --set train.max_iters=45" in again.value.hint and "--overwrite" in again.value.hint


def test_data_loaders_pin_memory_only_for_an_accelerator():
    import torch

    from sftkit.training.args import build_trainer_config

    on_cpu, anywhere = _tiny(), _tiny(**{"train.use_cpu": False})
    assert build_trainer_config(on_cpu).dataloader_pin_memory is False
    assert build_trainer_config(anywhere).dataloader_pin_memory is torch.accelerator.is_available()
