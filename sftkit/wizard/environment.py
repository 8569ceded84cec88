"""What this machine has, as far as the wizard's defaults and notes need it: a GPU, tokens, a local file's rows.

Nothing here stops the wizard: whatever cannot be found or read is reported as not found.
"""

from __future__ import annotations

import json
import os
from pathlib import Path


def precision_for(cuda: bool, bf16_supported: bool) -> str:
    """bf16 on a CUDA GPU that has it, fp16 on other CUDA GPUs, fp32 without one."""
    if not cuda:
        return "fp32"
    return "bf16" if bf16_supported else "fp16"


def detect_hardware() -> tuple[str, str]:
    """(precision, what was found) for this machine; torch is imported here, only when asked."""
    try:
        import torch
    except ImportError:
        return "fp32", "torch is not installed"
    try:
        if not torch.cuda.is_available():
            return "fp32", "no CUDA GPU found"
        name = torch.cuda.get_device_name(0)
        bf16 = bool(torch.cuda.is_bf16_supported())
    except Exception as e:  # noqa: BLE001 - a broken driver means: no usable GPU
        return "fp32", f"CUDA not usable ({type(e).__name__})"
    return precision_for(True, bf16), f"{name}{'' if bf16 else ' (no bf16)'}"


def hf_token_status() -> str:
    """Where a Hugging Face token would come from. Never the token itself."""
    if os.environ.get("HF_TOKEN") or os.environ.get("HUGGING_FACE_HUB_TOKEN"):
        return "found in the environment"
    try:
        from huggingface_hub import get_token

        if get_token():
            return "found (Hub login)"
    except Exception:  # noqa: BLE001 - an unreadable token file is the same as none
        pass
    return "not found (public models and data only; run `hf auth login` or set HF_TOKEN for private ones)"


def wandb_key_status() -> str:
    """Where a Weights & Biases key would come from. Never the key itself."""
    if os.environ.get("WANDB_API_KEY"):
        return "found in the environment"
    netrc = Path.home() / ".netrc"
    try:
        if netrc.is_file() and "api.wandb.ai" in netrc.read_text(encoding="utf-8", errors="replace"):
            return "found (wandb login)"
    except OSError:
        pass
    return "not found: run `wandb login` or set WANDB_API_KEY before training"


def data_summary(path: str) -> str | None:
    """A one-line description of a local data file: detected format and row count (None for Hub ids)."""
    p = Path(path).expanduser()
    if not p.exists():
        return None
    try:
        from sftkit.data import peek  # absent or failing -> count rows ourselves
    except Exception:  # noqa: BLE001
        peek = None
    if peek is not None:
        try:
            _rows, total, fmt = peek(str(p), 3)
            return f"{_rows_text(total)}, format {fmt}" if fmt else f"{_rows_text(total)}, format not detected (set data.format)"
        except Exception as e:  # noqa: BLE001 - a summary must never stop the wizard
            message = getattr(e, "message", None) or (str(e).splitlines() or [type(e).__name__])[0]
            return f"could not read it yet: {message}"
    count = count_rows(p)
    return f"{_rows_text(count)} (format detected at `sftkit prepare`)" if count is not None else None


def _rows_text(count: int) -> str:
    return f"{count} row" if count == 1 else f"{count} rows"


def count_rows(path: Path) -> int | None:
    """Rows in a .jsonl (non-blank lines) or .json (list, or a dict of split lists) file; None for others."""
    if not path.is_file():
        return None
    suffix = path.suffix.lower()
    try:
        if suffix == ".jsonl":
            with path.open("rb") as f:
                return sum(1 for line in f if line.strip())
        if suffix == ".json" and path.stat().st_size < 256 * 1024 * 1024:
            data = json.loads(path.read_text(encoding="utf-8"))
            if isinstance(data, list):
                return len(data)
            if isinstance(data, dict) and all(isinstance(v, list) for v in data.values()):
                return sum(len(v) for v in data.values())
    except (OSError, UnicodeDecodeError, ValueError):
        return None
    return None
