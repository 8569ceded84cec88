"""Reaching the Hugging Face Hub: fail fast and clearly when it cannot be reached.

Without network, huggingface_hub retries for about a minute before failing with a long message. sftkit
checks once whether the Hub resolves; when it does not, loading falls back to the local cache only and
a miss becomes one clear line.
"""

from __future__ import annotations

import functools
import os
import socket
from urllib.parse import urlparse

from sftkit.errors import SftkitError


@functools.lru_cache(maxsize=1)
def hub_reachable(timeout: float = 3.0) -> bool:
    """True when the Hub's host resolves and accepts a connection (HF_HUB_OFFLINE=1 forces False)."""
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in {"1", "true", "yes", "on"}:
        return False
    host = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co")).hostname or "huggingface.co"
    try:
        with socket.create_connection((host, 443), timeout=timeout):
            return True
    except OSError:
        return False


def local_only() -> bool:
    """Whether from_pretrained/load_dataset calls should use the local cache only."""
    return not hub_reachable()


def offline_error(what: str, name: str, err: Exception | None = None) -> SftkitError:
    detail = f" ({str(err).splitlines()[0]})" if err and str(err) else ""
    if local_only():
        return SftkitError(
            f"cannot download {what} {name!r}: the Hugging Face Hub is not reachable and it is not in the local cache",
            hint="connect to the internet once to cache it, or pass a local folder or file instead",
        )
    return SftkitError(f"could not load {what} {name!r}{detail}", hint="check the name (Hub id, local folder or file)")
