"""What a run takes from the hardware it is on: the training precision (``train.precision``) and the fused kernels
(``train.kernels``), each chosen with its reason, which the run records in environment.json and
``sftkit train --dry-run`` shows.

Both resolve to a copy of the config with the choice made (``train.bf16`` / ``train.fp16`` set, ``train.kernels``
``liger`` or ``none``), so everything downstream reads one plain setting.
"""

from __future__ import annotations

from typing import Any

from sftkit.config import RunConfig
from sftkit.errors import EXIT_USAGE, SftkitError

LIGER = "liger-kernel"


def cuda_in_use(cfg: RunConfig) -> bool:
    """A CUDA GPU is present and the run does not ask for the CPU (``train.use_cpu``)."""
    import torch

    return torch.cuda.is_available() and not cfg.train.use_cpu


def precision_of(cfg: RunConfig, cuda: bool | None = None) -> tuple[str, str]:
    """The precision the run trains in (``bf16``, ``fp16`` or ``fp32``) and why: the key that asks for it, or for
    ``train.precision=auto`` what the hardware supports (bf16 on a GPU that has it, fp16 on an older GPU, float32
    on the CPU)."""
    t = cfg.train
    if t.bf16:
        return "bf16", "train.bf16"
    if t.fp16:
        return "fp16", "train.fp16"
    if t.precision != "auto":
        return t.precision, f"train.precision={t.precision}"
    if cuda is None:
        cuda = cuda_in_use(cfg)
    if not cuda:
        return "fp32", "train.precision=auto: no CUDA GPU in use" + (" (train.use_cpu)" if cfg.train.use_cpu else "")
    import torch

    gpu = torch.cuda.get_device_name()
    if torch.cuda.is_bf16_supported():
        return "bf16", f"train.precision=auto: {gpu} supports bfloat16"
    return "fp16", f"train.precision=auto: {gpu} does not support bfloat16 (float16 with loss scaling)"


def with_precision(cfg: RunConfig, cuda: bool | None = None) -> tuple[RunConfig, dict[str, str]]:
    """``cfg`` with the precision chosen (:func:`precision_of`) set as ``train.bf16`` / ``train.fp16``, and the
    record of the choice (``precision``, ``precision_chosen_from``)."""
    precision, why = precision_of(cfg, cuda)
    train = cfg.train.model_copy(update={"bf16": precision == "bf16", "fp16": precision == "fp16"})
    return cfg.model_copy(update={"train": train}), {"precision": precision, "precision_chosen_from": why}


# -- fused kernels --------------------------------------------------------------------------------------


def liger_installed() -> bool:
    """The liger-kernel package, in a version transformers applies (0.3.0 or newer)."""
    import importlib.util
    from importlib.metadata import PackageNotFoundError, version

    if importlib.util.find_spec("liger_kernel") is None:
        return False
    try:
        from packaging.version import Version

        return Version(version(LIGER)) >= Version("0.3.0")
    except PackageNotFoundError:
        return False


def liger_supports(model_type: str) -> bool:
    """Whether Liger has kernels for this architecture (its own table of model types)."""
    try:
        from liger_kernel.transformers.monkey_patch import MODEL_TYPE_TO_APPLY_LIGER_FN
    except Exception:  # noqa: BLE001 - its kernels need triton and a GPU: unusable means unsupported here
        return False
    return model_type in MODEL_TYPE_TO_APPLY_LIGER_FN


def kernels_of(cfg: RunConfig, cuda: bool | None = None, model_type: str | None = None) -> tuple[str, str]:
    """``liger`` or ``none``, and why. ``model_type``: the loaded model's architecture (None before it is loaded:
    the architecture is then checked at the start of the run). ``train.kernels=liger`` where Liger cannot run
    is an error naming the key."""
    asked = cfg.train.kernels
    if asked == "none":
        return "none", "train.kernels=none"
    if cuda is None:
        cuda = cuda_in_use(cfg)
    if asked == "liger":
        if not cuda:
            raise SftkitError(
                "train.kernels=liger needs a CUDA GPU, and none is in use here",
                hint="set train.kernels=auto (Liger where it can run) or train.kernels=none",
                exit_code=EXIT_USAGE,
            )
        if not liger_installed():
            raise SftkitError(
                f"train.kernels=liger needs the {LIGER} package (0.3.0 or newer), which is not installed",
                hint=f"pip install {LIGER}, or set train.kernels=auto",
                exit_code=EXIT_USAGE,
            )
        if model_type is not None and not liger_supports(model_type):
            raise SftkitError(
                f"train.kernels=liger: Liger has no kernels for {model_type} models ({cfg.model.name})",
                hint="set train.kernels=auto (no kernels for this model) or train.kernels=none",
                exit_code=EXIT_USAGE,
            )
        return "liger", "train.kernels=liger"
    if not cuda:
        return "none", "train.kernels=auto: no CUDA GPU in use"
    if not liger_installed():
        return "none", f"train.kernels=auto: {LIGER} is not installed (pip install {LIGER} to use its kernels)"
    if model_type is None:
        return "liger", f"train.kernels=auto: CUDA GPU and {LIGER} present (the architecture is checked at the start of the run)"
    if not liger_supports(model_type):
        return "none", f"train.kernels=auto: Liger has no kernels for {model_type} models"
    return "liger", f"train.kernels=auto: Liger kernels for {model_type}"


def with_kernels(cfg: RunConfig, cuda: bool | None = None, model: Any = None) -> tuple[RunConfig, dict[str, str]]:
    """``cfg`` with ``train.kernels`` resolved to ``liger`` or ``none`` for ``model`` (when loaded), and the record
    of the choice (``kernels``, ``kernels_chosen_from``)."""
    model_type = getattr(getattr(model, "config", None), "model_type", None) if model is not None else None
    kernels, why = kernels_of(cfg, cuda, model_type)
    train = cfg.train.model_copy(update={"kernels": kernels})
    return cfg.model_copy(update={"train": train}), {"kernels": kernels, "kernels_chosen_from": why}
