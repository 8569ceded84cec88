"""Trained tiny runs shared by the integration tests: each is trained once per test session, through the real CLI.

- ``tiny_run``: full fine-tuning of the ``tiny`` preset (300 steps of 64 rows): it upper-cases held-out words
  (exact match 1.0 on the validation split; the preset's own batch of 32 reaches about 0.7 in 300 steps);
- ``lora_run``: a LoRA adapter on the same base (80 steps): enough for adapter loading, merging and export.

Subprocesses run torch on one thread (unless OMP_NUM_THREADS is set): on a small shared machine the tiny
model's matrices are too small to gain from two threads, and a busy second core makes every operation wait
(300 steps: about 40 s on one thread against many minutes on two contended ones).

Set ``SFTKIT_TEST_RUNS=/some/folder`` to keep the trained runs there and reuse them in later sessions
(handy while iterating on tests; delete the folder after changing training code).
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest


def _top_conftest():
    """tests/conftest.py as a module: in this folder ``import conftest`` finds this file, so its helpers are re-exported."""
    name = "_sftkit_tests_conftest"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, Path(__file__).resolve().parents[1] / "conftest.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


ROOT = _top_conftest().ROOT
SHARED = _top_conftest().SHARED
shared_path = _top_conftest().shared_path

#: the tiny full run's training overrides (no intermediate checkpoints or evaluations: faster)
TINY_SETS = ["train.max_iters=300", "train.batch_size=64", "train.save_steps=1000", "train.eval_steps=1000"]
LORA_SETS = ["lora.enabled=true", "train.max_iters=80", "train.learning_rate=5e-3", "train.save_steps=1000", "train.eval_steps=1000"]


def _train(folder: Path, sets: list[str]) -> Path:
    if (folder / "model").is_dir():
        return folder
    args = [sys.executable, "-m", "sftkit", "train", "--preset", "tiny", "--output-dir", str(folder), "--overwrite"]
    for s in sets:
        args += ["--set", s]
    done = subprocess.run(args, capture_output=True, text=True, env=_env())
    assert done.returncode == 0, f"training {folder.name} failed:\n{done.stderr[-3000:]}"
    return folder


def _env(extra: dict[str, str] | None = None) -> dict[str, str]:
    return {"OMP_NUM_THREADS": "1", **os.environ, **(extra or {})}


def _runs_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    kept = os.environ.get("SFTKIT_TEST_RUNS")
    if kept:
        Path(kept).mkdir(parents=True, exist_ok=True)
        return Path(kept)
    return tmp_path_factory.mktemp("runs")


@pytest.fixture(scope="module")
def one_torch_thread():
    """In-process CLI runs use one torch thread too (see the module docstring); restored after the module."""
    if "OMP_NUM_THREADS" in os.environ:
        yield
        return
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def tiny_run(_isolated_cache, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished full fine-tuning run of the tiny preset (the run folder)."""
    return _train(_runs_dir(tmp_path_factory) / "tiny", TINY_SETS)


@pytest.fixture(scope="session")
def lora_run(_isolated_cache, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished LoRA run of the tiny preset (the run folder; model/ holds the adapter)."""
    return _train(_runs_dir(tmp_path_factory) / "tiny-lora", LORA_SETS)


@pytest.fixture
def sftkit_proc():
    """Run the real `sftkit` in a subprocess (pipes, stdin, exit codes as a shell sees them): sftkit_proc("generate", ..., input=...)."""

    def run(*args: str, input: str | None = None, env: dict[str, str] | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "sftkit", *args], input=input, capture_output=True, text=True, env=_env(env), timeout=timeout
        )

    return run
