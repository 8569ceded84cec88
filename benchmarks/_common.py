"""What the benchmark scripts share (they run as ``python benchmarks/NAME.py``, so this folder is on sys.path)."""

from __future__ import annotations


def package_version(name: str) -> str | None:
    """The installed version of a distribution, or None when it is not installed."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return None
