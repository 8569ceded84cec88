"""How a run uses the machine: padding-free batches where they are exact, and the CPU thread count.

Padding-free batching concatenates the rows of a batch into one sequence whose ``position_ids`` restart at each
row, with no attention mask: transformers then builds a block-diagonal causal mask (sdpa, eager) or passes the
row boundaries to the varlen kernels (flash attention), so no token attends across rows and no padding is
computed. That holds only for models whose attention and positions honour ``position_ids``; rather than keep a
list of architectures, :func:`padding_free_is_exact` checks the loaded model itself on two short rows.
"""

from __future__ import annotations

import os
from typing import Any


def padding_free_is_exact(model: Any) -> tuple[bool, str]:
    """Run two short rows one by one and concatenated (positions restarting, no mask): the same logits means
    padding-free batches are exact for this model. Returns the verdict and the relative difference seen."""
    import torch

    param = next(model.parameters())
    vocab = model.get_input_embeddings().num_embeddings
    generator = torch.Generator().manual_seed(0)
    rows = [torch.randint(0, min(vocab, 1000), (1, n), generator=generator) for n in (7, 5)]
    packed = torch.cat(rows, dim=1).to(param.device)
    positions = torch.cat([torch.arange(r.shape[1]) for r in rows]).unsqueeze(0).to(param.device)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            # no cache: transformers builds the packed-sequence mask only without one (as in training)
            alone = torch.cat([model(input_ids=r.to(param.device), use_cache=False).logits for r in rows], dim=1).float()
            together = model(input_ids=packed, position_ids=positions, use_cache=False).logits.float()
    finally:
        model.train(was_training)
    difference = float((together - alone).abs().max() / alone.abs().max().clamp(min=1e-6))
    tolerance = 1e-4 if param.dtype == torch.float32 else 2e-2
    return difference <= tolerance, f"relative logit difference {difference:.1e} (tolerance {tolerance:.0e})"


#: dense bf16/fp16 tensor-core peak FLOP/s per GPU (vendor figures, no sparsity), by a name fragment
PEAK_FLOPS = (
    ("H200", 989e12),
    ("H100 PCIe", 756e12),
    ("H100", 989e12),
    ("A100", 312e12),
    ("L40S", 362e12),
    ("L4", 121e12),
    ("A10", 125e12),
    ("RTX 4090", 165e12),
    ("V100", 125e12),
    ("T4", 65e12),
)


def flops_budget(model: Any, lora: bool, device_name: str | None, world_size: int) -> tuple[float, float] | None:
    """(model FLOPs per trained token, peak FLOP/s of all GPUs) for MFU, or None when the GPU is not in
    :data:`PEAK_FLOPS`. Per token: 6 x parameters for full training (forward, and backward for activations and
    weights), 4 x with LoRA (no weight gradients for the frozen base); attention's own FLOPs are left out."""
    if not device_name:
        return None
    peak = next((flops for fragment, flops in PEAK_FLOPS if fragment in device_name), None)
    if peak is None:
        return None
    parameters = sum(p.numel() for p in model.parameters())
    return (4 if lora else 6) * parameters, peak * world_size


def choose_threads(requested: int | None, local_processes: int = 1) -> tuple[int, str]:
    """torch's CPU threads per process: ``requested`` (train.threads), else OMP_NUM_THREADS, else the cores this
    process may use, shared by the processes of this node, less the cores other work keeps busy (the 1-minute
    load average). On a shared small machine one thread often beats two contended ones."""
    if requested:
        return requested, "train.threads"
    env = os.environ.get("OMP_NUM_THREADS", "")
    if env.isdigit() and int(env) > 0:
        return int(env), "OMP_NUM_THREADS"
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    try:
        load = os.getloadavg()[0]
    except (OSError, AttributeError):
        load = 0.0
    idle = max(1, int(cores - load + 0.5))
    threads = max(1, min(cores, idle) // max(1, local_processes))
    return threads, f"{cores} cores, {local_processes} process(es) on this node, load average {load:.1f}"
