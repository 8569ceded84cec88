"""The experiment trackers a run reports to (trackio, TensorBoard, Weights & Biases): the package each needs, the
environment each reads, and the check that ``sftkit train --dry-run`` and a run share.

transformers creates one callback per tracker with the trainer, and the trackers read part of their setup from the
environment: TensorBoard its folder (``TENSORBOARD_LOGGING_DIR``), W&B its project and folder (``WANDB_PROJECT``,
``WANDB_DIR``; ``WANDB_MODE=offline`` is the user's to set), trackio a self-hosted server
(``TRACKIO_SERVER_URL``). :func:`tracker_environment` sets them for the run only and gives the caller's
environment back afterwards; :func:`check_tracking` builds the same callbacks and settings without training, so a
tracker that is missing or rejects its settings fails before any work is done.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path

from sftkit import layout
from sftkit.config import RunConfig
from sftkit.errors import ConfigError

#: for each tracker: the package it needs and the sftkit extra that installs it (pyproject.toml)
PACKAGES = {
    "trackio": ("trackio", "tracking"),
    "tensorboard": ("tensorboard", "tracking"),
    "wandb": ("wandb", "wandb"),
}


def backend_of(cfg: RunConfig) -> str:
    """The tracker this run reports to, ``none`` when tracking is off."""
    return cfg.tracking.backend if cfg.tracking.enabled else "none"


def tracking_env(
    cfg: RunConfig, environ: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The environment the run's tracker reads. W&B keeps its local files in the run folder unless ``WANDB_DIR`` is
    already set (in ``environ``, default ``os.environ``)."""
    environ = os.environ if environ is None else environ
    tr, run_dir = cfg.tracking, Path(cfg.train.output_dir).absolute()
    backend = backend_of(cfg)
    if backend == "tensorboard":
        return {"TENSORBOARD_LOGGING_DIR": str(run_dir / layout.TENSORBOARD)}
    if backend == "wandb":
        return {
            "WANDB_PROJECT": tr.project,
            "WANDB_DIR": environ.get("WANDB_DIR") or str(run_dir),
        }
    if backend == "trackio" and tr.trackio_url:
        return {"TRACKIO_SERVER_URL": tr.trackio_url}
    return {}


@contextlib.contextmanager
def scoped_environ(env: dict[str, str]) -> Iterator[None]:
    """``os.environ`` with ``env`` set, and as it was afterwards."""
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@contextlib.contextmanager
def tracker_environment(cfg: RunConfig) -> Iterator[dict[str, str]]:
    """Around a run: the tracker's environment (:func:`tracking_env`) for the run only, and the W&B run this run
    started finished at its end, so its files are complete when ``train`` returns (transformers leaves it open)."""
    env = tracking_env(cfg)
    wandb_before = _wandb_run() if backend_of(cfg) == "wandb" else None
    with scoped_environ(env):
        failed = True
        try:
            yield env
            failed = False
        finally:
            run = _wandb_run() if backend_of(cfg) == "wandb" else None
            # a W&B run the caller started before this run is the caller's to finish
            if run is not None and run is not wandb_before:
                try:
                    run.finish(exit_code=1 if failed else 0)
                except Exception:
                    if not failed:  # else the run's own error is the one to report
                        raise


def _wandb_run():
    wandb = sys.modules.get("wandb")
    return getattr(wandb, "run", None) if wandb is not None else None


def missing_tracker(cfg: RunConfig) -> ConfigError | None:
    """The error for a tracker whose package is not installed (as transformers tests it), else None."""
    backend = backend_of(cfg)
    if backend not in PACKAGES:
        return None
    tracker = _integrations()
    available = {
        "trackio": tracker.is_trackio_available,
        "tensorboard": tracker.is_tensorboard_available,
        "wandb": tracker.is_wandb_available,
    }
    if available[backend]():
        return None
    package, extra = PACKAGES[backend]
    return ConfigError(
        f"tracking.backend is {backend} but the {package} package is not installed",
        hint=f"pip install 'sftkit[{extra}]' (or pip install {package}), or set tracking.enabled=false",
    )


def check_tracking(cfg: RunConfig) -> dict[str, str]:
    """What a run does to set up its tracker, without a run: the package is installed, transformers' callback for it
    is created in the tracker's environment, and W&B accepts its settings. Returns that environment; raises
    ConfigError naming the key or variable to change. Call it before TRL is imported: it imports transformers'
    tracker code the first time, keeping stdout clean (see :func:`_integrations`)."""
    _integrations()
    problem = missing_tracker(cfg)
    if problem is not None:
        raise problem
    backend = backend_of(cfg)
    env = tracking_env(cfg)
    if backend == "none":
        return env
    with scoped_environ(env):
        for callback in _integrations().get_reporting_integration_callbacks(backend):
            try:
                callback()
            except (RuntimeError, ImportError, ValueError, TypeError) as e:
                raise ConfigError(
                    f"the {backend} tracker cannot start: {_first_line(e)}",
                    hint="check its installation, or set tracking.enabled=false",
                ) from None
    if backend == "wandb":
        _check_wandb(cfg, env)
    return env


def _integrations():
    """transformers' tracker integrations, imported with stdout sent to stderr: importing them prints to stdout under
    ``WANDB_MODE=offline``, and stdout is for data (the dry run's plan, ``--json``)."""
    with contextlib.redirect_stdout(sys.stderr):
        from transformers.integrations import integration_utils
    return integration_utils


#: parts of the names of environment variables that hold credentials
_SECRETS = ("KEY", "TOKEN", "SECRET", "PASSWORD")


def _check_wandb(cfg: RunConfig, env: dict[str, str]) -> None:
    """W&B's own settings validation, on the settings the run would start it with."""
    import wandb

    settings = wandb.Settings()
    # W&B before 0.19 has no validating settings object to ask
    if not hasattr(settings, "update_from_env_vars"):
        return
    for key, value in os.environ.items():
        # the run's own variables are checked below, under their config keys; secrets are never shown or judged
        if (
            not key.startswith("WANDB_")
            or key in env
            or any(s in key for s in _SECRETS)
        ):
            continue
        try:
            settings.update_from_env_vars({key: value})
        except Exception as e:  # noqa: BLE001 - pydantic's ValidationError or wandb's UsageError: one line
            raise ConfigError(
                f"{key}={value!r} (environment): W&B rejects it: {_first_line(e, pydantic=True)}",
                hint=f"fix or unset {key}",
            ) from None
    run_name = cfg.tracking.experiment_name or Path(cfg.train.output_dir).name
    for key, field, value in (
        ("tracking.project", "project", cfg.tracking.project),
        ("tracking.experiment_name", "run_name", run_name),
    ):
        try:
            setattr(settings, field, value)
        except Exception as e:  # noqa: BLE001 - as above
            raise ConfigError(
                f"{key}: W&B rejects {value!r}: {_first_line(e, pydantic=True)}",
                hint=f"change {key}",
            ) from None


def _first_line(err: BaseException, pydantic: bool = False) -> str:
    """The message of an error in one line; for pydantic's, the line that says what is wrong."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    if pydantic and len(lines) >= 3 and "validation error" in lines[0]:
        return lines[2].split(" [type=")[0]
    return lines[0] if lines else type(err).__name__
