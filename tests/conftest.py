"""Shared test fixtures: the real material in ../shared, an isolated sftkit cache, a CLI runner."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# One torch thread per process: the tiny models gain nothing from more, and several test processes
# sharing two cores with spinning OpenMP threads run 10-20x slower. Set before torch is imported.
os.environ.setdefault("OMP_NUM_THREADS", "1")

ROOT = Path(__file__).resolve().parents[1]
SHARED = (ROOT / ".." / "shared").resolve()


def shared_path(*parts: str) -> Path:
    """A file under ../shared, or skip the test with a clear reason when it is absent (a user's clone)."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"needs {path} (the shared test material next to the project)")
    return path


@pytest.fixture(scope="session", autouse=True)
def _isolated_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Keep the built tiny model and other cached files inside the test session, unless SFTKIT_CACHE is set."""
    if "SFTKIT_CACHE" not in os.environ:
        os.environ["SFTKIT_CACHE"] = str(tmp_path_factory.mktemp("sftkit-cache"))
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.pop("SFTKIT_DEBUG", None)


@pytest.fixture
def runner():
    from typer.testing import CliRunner

    return CliRunner()


@pytest.fixture
def cli(runner):
    """Invoke the real CLI in-process: cli("train", "--preset", "tiny", ...) -> click Result."""
    from sftkit.cli import app

    def invoke(*args: str, input: str | None = None):
        return runner.invoke(app, list(args), input=input, catch_exceptions=False)

    return invoke


# -- the real-model tier: SmolLM2-135M-Instruct, shipped as a GGUF file inside a PyPI wheel, converted once --
# (tests/smollm2_assets.py, shared with benchmarks/generate_throughput.py)


def pytest_collection_modifyitems(items):
    """Everything under tests/realmodel is the realmodel tier (deselected by default, see pyproject)."""
    for item in items:
        if "tests/realmodel" in str(item.fspath).replace(os.sep, "/"):
            item.add_marker(pytest.mark.realmodel)


@pytest.fixture(scope="session")
def smollm2_dir() -> Path:
    """A normal HF folder of SmolLM2-135M-Instruct (dequantised from the GGUF once, then cached)."""
    from smollm2_assets import Unavailable, smollm2_folder

    try:
        return smollm2_folder()
    except Unavailable as e:
        pytest.skip(str(e))
