"""The loss figures of a model on prepared rows: the one computation behind the evaluations during
training (``eval_loss`` in ``metrics.jsonl``, the final figures) and ``sftkit eval``.

``eval_loss`` is the mean cross-entropy per trained token (labels != -100), summed over every row and divided
by the number of trained tokens, so it does not depend on the batch size or on how rows are grouped (a mean
of per-batch means would). For DPO rows the trained tokens are the chosen answers' and
``eval_preference_accuracy`` is how often the chosen answer has the higher log-probability. For KTO rows the
trained tokens are the desirable answers', and ``eval_undesirable_loss`` is the same figure over the undesirable
answers (KTO pushes it up).

One difference is by definition: during DPO and KTO training the trainer's ``eval_loss`` is TRL's preference loss
(sigmoid, IPO, ..., KTO's), not a cross-entropy, so it is not comparable with ``sftkit eval``'s ``eval_loss`` of the
same run; TRL's ``eval_rewards/accuracies`` is the counterpart of ``eval_preference_accuracy`` (it compares
the policy's log-ratio against the reference model, where sftkit compares the two answers' log-probabilities).
Sharded runs (FSDP, DeepSpeed) keep TRL's evaluation loop, which averages per batch.
"""

from __future__ import annotations

import math
import time
from typing import Any

from sftkit.errors import SftkitError

IGNORE_INDEX = -100


def loss_figures(model: Any, rows: list[dict[str, Any]], trainer_type: str, batch_size: int, pad_id: int) -> dict[str, float]:
    """eval_loss, eval_perplexity, eval_runtime, eval_samples_per_second, eval_tokens (and DPO's preference accuracy,
    KTO's undesirable loss)."""
    if not rows:
        raise SftkitError("there are no rows to evaluate", hint="check the data file or the run's validation split")
    started = time.perf_counter()
    extra: dict[str, float] = {}
    if trainer_type == "dpo":
        chosen = [_pair_row(r, "chosen_ids") for r in rows]
        rejected = [_pair_row(r, "rejected_ids") for r in rows]
        logp_c, n_c = sequence_logprobs(model, chosen, batch_size, pad_id)
        logp_r, _ = sequence_logprobs(model, rejected, batch_size, pad_id)
        total, count = sum(logp_c), sum(n_c)
        extra["eval_preference_accuracy"] = sum(c > r for c, r in zip(logp_c, logp_r, strict=True)) / len(rows)
    elif trainer_type == "kto":
        desirable = [_pair_row(r, "completion_ids") for r in rows if r["label"]]
        undesirable = [_pair_row(r, "completion_ids") for r in rows if not r["label"]]
        if not desirable:
            raise SftkitError(
                "none of the rows is labelled desirable, and a KTO run's eval_loss is measured on desirable answers",
                hint="evaluate on rows that include desirable ones (label: true)",
            )
        logps, counts = sequence_logprobs(model, desirable, batch_size, pad_id)
        total, count = sum(logps), sum(counts)
        if undesirable:
            bad_logps, bad_counts = sequence_logprobs(model, undesirable, batch_size, pad_id)
            extra["eval_undesirable_loss"] = -sum(bad_logps) / max(sum(bad_counts), 1)
    else:
        logps, counts = sequence_logprobs(model, rows, batch_size, pad_id)
        total, count = sum(logps), sum(counts)
    runtime = time.perf_counter() - started
    if count == 0:
        raise SftkitError("the rows have no trained tokens to compute a loss on", hint="check data.completion_only_loss and the template")
    loss = -total / count
    return {
        "eval_loss": loss,
        "eval_perplexity": math.exp(loss) if loss < 700 else math.inf,
        "eval_runtime": round(runtime, 4),
        "eval_samples_per_second": round(len(rows) / runtime, 3) if runtime else 0.0,
        "eval_tokens": count,
        **extra,
    }


def _pair_row(row: dict[str, Any], side: str) -> dict[str, Any]:
    prompt = row["prompt_ids"]
    return {"input_ids": prompt + row[side], "labels": [IGNORE_INDEX] * len(prompt) + row[side]}


def sequence_logprobs(model: Any, rows: list[dict[str, Any]], batch_size: int, pad_id: int) -> tuple[list[float], list[int]]:
    """Per row: the summed log-probability of its trained tokens (labels != -100) and how many there are.

    The model is put in eval mode for the pass and given back in the mode it was in. Each batch is counted into
    the step showing progress, if any (:func:`sftkit.progress.current`).
    """
    import torch

    from sftkit.progress import current

    shown = current()
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    sums: list[float] = []
    counts: list[int] = []
    try:
        for start in range(0, len(rows), batch_size):
            batch = rows[start : start + batch_size]
            width = max(len(r["input_ids"]) for r in batch)
            ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
            labels = torch.full((len(batch), width), IGNORE_INDEX, dtype=torch.long)
            mask = torch.zeros((len(batch), width), dtype=torch.long)
            for i, r in enumerate(batch):
                n = len(r["input_ids"])
                ids[i, :n] = torch.tensor(r["input_ids"])
                labels[i, :n] = torch.tensor(r["labels"])
                mask[i, :n] = 1
            ids, labels, mask = ids.to(device), labels.to(device), mask.to(device)
            with torch.inference_mode():
                logits = model(input_ids=ids, attention_mask=mask).logits
                for i in range(len(batch)):
                    target = labels[i, 1:]
                    keep = target != IGNORE_INDEX
                    logp = torch.log_softmax(logits[i, :-1][keep].float(), dim=-1)
                    picked = logp.gather(-1, target[keep].unsqueeze(-1)).squeeze(-1)
                    sums.append(float(picked.sum()))
                    counts.append(int(keep.sum()))
            shown.advance(len(batch))
    finally:
        model.train(was_training)
    return sums, counts
