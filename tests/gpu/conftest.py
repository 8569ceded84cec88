"""The GPU tier: everything under tests/gpu is marked ``gpu`` and skips, saying why, where torch sees no CUDA GPU."""

from __future__ import annotations

import os

import pytest


def pytest_configure(config):
    config.addinivalue_line("markers", "gpu: tests that need a CUDA GPU (bf16, sdpa, QLoRA 4-bit, the throughput benchmark); skipped without one")


def pytest_collection_modifyitems(config, items):
    import torch

    reason = None if torch.cuda.is_available() else "needs a CUDA GPU (torch.cuda.is_available() is False here)"
    for item in items:
        if "tests/gpu" in str(item.fspath).replace(os.sep, "/"):
            item.add_marker(pytest.mark.gpu)
            if reason:
                item.add_marker(pytest.mark.skip(reason=reason))
