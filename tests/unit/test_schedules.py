"""Learning-rate schedules: every one transformers has is a ``train.scheduler`` value, its arguments are
``train.scheduler_kwargs``, and ``sftkit train --dry-run`` builds the schedule for real; plus the trainer settings old
configs carry (best-model direction, DDP, TF32)."""

from __future__ import annotations

import json
from typing import get_args

import pytest

from sftkit.config import Scheduler
from sftkit.errors import ConfigError
from sftkit.resolve import resolve_config
from sftkit.training.args import build_scheduler, build_trainer_config, trainer_args


def cfg(*sets: str):
    return resolve_config(preset="tiny", sets=list(sets)).config


def test_every_transformers_schedule_is_a_value():
    from transformers import SchedulerType

    assert set(get_args(Scheduler)) == {s.value for s in SchedulerType}


@pytest.mark.parametrize(
    ("sets", "kwargs"),
    [
        (
            [
                "train.scheduler=cosine_with_min_lr",
                "train.scheduler_kwargs={min_lr_rate: 0.1}",
            ],
            {"min_lr_rate": 0.1},
        ),
        (["train.scheduler=cosine_with_min_lr", "train.min_lr=1e-4"], {"min_lr": 1e-4}),
        (
            ["train.scheduler=cosine_warmup_with_min_lr", "train.min_lr=1e-4"],
            {"min_lr": 1e-4},
        ),
        (["train.scheduler=cosine", "train.min_lr=1e-4"], {"min_lr": 1e-4}),
    ],
)
def test_schedules_with_a_floor_end_at_it(sets, kwargs):
    c = cfg(
        *sets, "train.max_iters=20", "train.warmup_ratio=0", "train.learning_rate=1e-3"
    )
    args = trainer_args(c)
    assert args["lr_scheduler_kwargs"] == kwargs and args["lr_scheduler_type"] in (
        "cosine_with_min_lr",
        "cosine_warmup_with_min_lr",
    )
    schedule = build_scheduler(c, build_trainer_config(c))
    for _ in range(20):
        schedule.optimizer.step()
        schedule.step()
    assert schedule.get_last_lr()[0] == pytest.approx(
        1e-4, rel=0.1
    )  # the floor, not zero


def test_the_dry_run_builds_the_schedule_and_names_what_transformers_rejects(
    cli, tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    ok = cli(
        "train",
        "--preset",
        "tiny",
        "--set",
        "train.scheduler=polynomial",
        "--set",
        "train.scheduler_kwargs={power: 2.0, lr_end: 1.0e-5}",
        "--dry-run",
        "--json",
    )
    assert ok.exit_code == 0, ok.output
    assert json.loads(ok.stdout)["trainer"]["args"]["lr_scheduler_kwargs"] == {
        "power": 2.0,
        "lr_end": 1e-5,
    }
    bad = cli(
        "train",
        "--preset",
        "tiny",
        "--set",
        "train.scheduler=polynomial",
        "--set",
        "train.scheduler_kwargs={num_cycles: 3}",
        "--dry-run",
    )
    assert bad.exit_code == 2
    assert (
        "rejects the learning-rate schedule 'polynomial'" in bad.output
        and "num_cycles" in bad.output
    )
    assert "Traceback" not in bad.output


@pytest.mark.parametrize(
    ("sets", "key", "words"),
    [
        (
            ["train.scheduler=cosine_with_min_lr"],
            "train.min_lr",
            "needs the learning rate it ends at",
        ),
        (
            [
                "train.scheduler=cosine_with_min_lr",
                "train.min_lr=1e-5",
                "train.scheduler_kwargs={min_lr_rate: 0.1}",
            ],
            "train.min_lr, train.scheduler_kwargs",
            "given twice",
        ),
        (
            ["train.scheduler_kwargs={min_lr: 1.0e-5}"],
            "train.scheduler_kwargs",
            "floor is train.min_lr",
        ),
        (
            ["train.scheduler=reduce_lr_on_plateau", "data.validation_split=null"],
            "train.scheduler",
            "needs validation data",
        ),
    ],
)
def test_schedule_problems_name_the_key(sets, key, words):
    with pytest.raises(ConfigError) as err:
        cfg(*sets)
    problem = next(p for p in err.value.problems if words in p.message)
    assert problem.key == key


def test_trainer_settings_from_old_configs_reach_the_arguments():
    c = cfg(
        "train.load_best_model_at_end=true",
        "train.metric_for_best_model=eval_exact_match",
        "train.greater_is_better=false",
        "train.ddp_backend=gloo",
        "train.ddp_find_unused_parameters=false",
    )
    args = trainer_args(c, ddp_backend=None)
    assert (
        args["greater_is_better"],
        args["ddp_backend"],
        args["ddp_find_unused_parameters"],
    ) == (False, "gloo", False)
    assert (
        trainer_args(cfg("train.load_best_model_at_end=true"))["greater_is_better"]
        is False
    )  # a loss: lower is better
    assert (
        trainer_args(cfg(), ddp_backend="gloo")["ddp_backend"] == "gloo"
    )  # sftkit's own choice when none is set
    assert trainer_args(cfg("train.tf32=true"))["tf32"] is True
