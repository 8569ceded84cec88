"""Padding-free batches are exact: per-example losses and gradients of a padding-free batch, built by the collator
the trainer gets with sftkit's default arguments, equal those of the same examples run one by one (float32;
tolerance 1e-5 relative on losses, 1e-4 relative on gradients). The check sftkit runs on a loaded model tells an
exact model from one whose attention does not honour restarting positions."""

from __future__ import annotations

import pytest
import torch

from sftkit.config import RunConfig


def _tiny():
    from sftkit.tiny import build_model, build_tokenizer

    tokenizer = build_tokenizer()
    return build_model(tokenizer).float(), tokenizer


def _rows(tokenizer) -> list[dict[str, list[int]]]:
    texts = [("Upper-case: apple", "APPLE"), ("Upper-case: a much longer line of words here", "A MUCH LONGER LINE"), ("Hi", "HI")]
    rows = []
    for prompt, answer in texts:
        p = tokenizer(prompt)["input_ids"]
        a = tokenizer(answer)["input_ids"] + [tokenizer.eos_token_id]
        rows.append({"input_ids": p + a, "labels": [-100] * len(p) + a})
    return rows


def _sum_loss(model, input_ids, labels, **kwargs) -> torch.Tensor:
    logits = model(input_ids=input_ids, use_cache=False, **kwargs).logits[0, :-1]
    target = labels[0, 1:]
    return torch.nn.functional.cross_entropy(logits, target, ignore_index=-100, reduction="sum")


def test_sftkit_defaults_ask_trl_for_padding_free_batches():
    from sftkit.training.args import trainer_args

    cfg = RunConfig.model_validate({"model": {"name": "builtin:tiny"}, "data": {"dataset": "builtin:tiny"}})
    args = trainer_args(cfg, has_eval=False)
    assert args["padding_free"] is True and args["max_length"] is None
    padded = cfg.model_copy(update={"train": cfg.train.model_copy(update={"padding_free": False})})
    assert "padding_free" not in trainer_args(padded, has_eval=False)
    packed = cfg.model_copy(update={"data": cfg.data.model_copy(update={"packing": True})})
    assert "padding_free" not in trainer_args(packed, has_eval=False)  # packing is padding-free already


def test_a_padding_free_batch_equals_its_examples_one_by_one():
    from trl.trainer.sft_trainer import DataCollatorForLanguageModeling

    model, tokenizer = _tiny()
    rows = _rows(tokenizer)
    batch = DataCollatorForLanguageModeling(pad_token_id=tokenizer.pad_token_id, padding_free=True)(rows)
    assert "attention_mask" not in batch and batch["input_ids"].shape[0] == 1
    assert batch["input_ids"].shape[1] == sum(len(r["input_ids"]) for r in rows)  # not one pad token

    # one by one: each example's summed token loss and its gradient
    alone_losses, alone_grad = [], [torch.zeros_like(p) for p in model.parameters()]
    for r in rows:
        model.zero_grad()
        loss = _sum_loss(model, torch.tensor([r["input_ids"]]), torch.tensor([r["labels"]]))
        loss.backward()
        alone_losses.append(loss.item())
        for g, p in zip(alone_grad, model.parameters(), strict=True):
            g += p.grad

    # the padding-free batch: per-example losses from its segments, one backward for the batch
    model.zero_grad()
    logits = model(input_ids=batch["input_ids"], position_ids=batch["position_ids"], use_cache=False).logits[0]
    labels = batch["labels"][0]
    token_loss = torch.nn.functional.cross_entropy(logits[:-1], labels[1:], ignore_index=-100, reduction="none")
    starts = (batch["position_ids"][0] == 0).nonzero().flatten().tolist() + [labels.numel()]
    packed_losses = [token_loss[a : b - 1].sum().item() for a, b in zip(starts, starts[1:], strict=False)]
    token_loss.sum().backward()

    assert packed_losses == pytest.approx(alone_losses, rel=1e-5)
    for g, p in zip(alone_grad, model.parameters(), strict=True):
        assert torch.allclose(p.grad, g, rtol=1e-4, atol=1e-6)


def test_the_check_on_the_loaded_model_accepts_an_exact_one_and_refuses_the_others():
    from transformers import BloomConfig, BloomForCausalLM

    from sftkit.training.batching import padding_free_is_exact

    model, _ = _tiny()
    exact, detail = padding_free_is_exact(model)
    assert exact, detail
    # ALiBi attention takes no position ids: concatenated rows would see each other
    torch.manual_seed(0)
    bloom = BloomForCausalLM(BloomConfig(vocab_size=300, hidden_size=32, n_layer=2, n_head=4)).eval()
    exact, detail = padding_free_is_exact(bloom)
    assert not exact, detail


def test_threads_follow_the_setting_the_environment_and_the_load(monkeypatch):
    import os

    from sftkit.training import batching

    assert batching.choose_threads(3)[0] == 3
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    assert batching.choose_threads(None) == (2, "OMP_NUM_THREADS")
    monkeypatch.delenv("OMP_NUM_THREADS")
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(8)), raising=False)
    monkeypatch.setattr(os, "getloadavg", lambda: (0.2, 0.0, 0.0))
    assert batching.choose_threads(None)[0] == 8
    assert batching.choose_threads(None, local_processes=2)[0] == 4
    monkeypatch.setattr(os, "getloadavg", lambda: (6.0, 0.0, 0.0))  # six cores busy with other work
    threads, why = batching.choose_threads(None)
    assert threads == 2 and "load average 6.0" in why


def test_mfu_budget_counts_parameters_and_the_gpu_peak():
    from sftkit.training.batching import flops_budget

    model, _ = _tiny()
    n = sum(p.numel() for p in model.parameters())
    assert flops_budget(model, False, "NVIDIA H100 80GB HBM3", 2) == (6 * n, 2 * 989e12)
    assert flops_budget(model, True, "NVIDIA A100-SXM4-40GB", 1) == (4 * n, 312e12)
    assert flops_budget(model, False, "Some Unknown GPU", 1) is None
    assert flops_budget(model, False, None, 1) is None


def test_the_sliced_loss_equals_trls_own(tmp_path):
    """sftkit's SFT loss (logits only at trained positions, metrics only on logging steps) is TRL's loss."""
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    from sftkit.training.trainers import sft_trainer_class

    model, tokenizer = _tiny()
    model.config.use_cache = False
    rows = _rows(tokenizer)
    args = SFTConfig(output_dir=str(tmp_path), report_to="none", use_cpu=True, padding_free=True, max_length=None,
                     per_device_train_batch_size=3, logging_steps=1)  # fmt: skip
    trainer = sft_trainer_class()(model=model, args=args, train_dataset=Dataset.from_list(rows), processing_class=tokenizer)
    batch = trainer.data_collator(rows)
    model.train()
    ours = trainer.compute_loss(model, dict(batch), num_items_in_batch=None)
    metrics = {k: list(v) for k, v in trainer._metrics["train"].items()}
    trainer._metrics["train"].clear()
    theirs = SFTTrainer.compute_loss(trainer, model, dict(batch), num_items_in_batch=None)
    assert ours.item() == pytest.approx(theirs.item(), rel=1e-5)
    for key in ("entropy", "mean_token_accuracy"):
        assert metrics[key] == pytest.approx(trainer._metrics["train"][key], rel=1e-4), key
