"""TRL's trainers as sftkit runs them: checkpoints that are complete or absent, and no step past a NaN.

- A checkpoint is written by the trainer as usual, then every file is flushed to disk and the completion marker
  written (:func:`sftkit.training.rundir.mark_complete`); ``--resume`` takes only marked checkpoints. Rotation
  (``save_total_limit``) is sftkit's, among complete checkpoints, so a half-written checkpoint never costs a
  good one. A checkpoint that cannot be written (a full disk) is removed and reported in one line.
- Every optimizer step checks that the loss and the gradient norm are finite (one device sync per step, the one
  transformers' own NaN filter would cost) and stops the run before anything is saved from poisoned weights.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sftkit import layout
from sftkit.errors import partial_output
from sftkit.testhooks import pause_point
from sftkit.training.rundir import (
    discard_replaced,
    mark_complete,
    rotate_checkpoints,
)
from sftkit.yamlio import follow_umask


class NonFiniteTraining(Exception):
    """The loss or the gradients stopped being finite at ``step``."""

    def __init__(self, step: int, what: str) -> None:
        super().__init__(f"{what} at step {step}")
        self.step = step
        self.what = what


class RunSafetyMixin:
    """Mixed into TRL's trainers (see the module docstring)."""

    _sftkit_ok: Any = None  # a bool tensor: every loss since the last optimizer step was finite

    def create_accelerator_and_postprocess(self) -> None:
        if self.args.deepspeed and self.args.device.type != "cuda":
            from sftkit.errors import SftkitError

            raise SftkitError(
                f"DeepSpeed (train.distributed / train.deepspeed) runs on CUDA GPUs only; this run is on {self.args.device.type.upper()}",
                hint="use --distributed fsdp (FSDP runs on CPU processes too), or run on GPUs",
            )
        with _fsdp_on_cpu(self.args):
            super().create_accelerator_and_postprocess()

    def training_step(self, *args, **kwargs):
        import torch

        loss = super().training_step(*args, **kwargs)
        finite = torch.isfinite(loss.detach()).all()
        self._sftkit_ok = finite if self._sftkit_ok is None else self._sftkit_ok & finite
        return loss

    def _maybe_log_save_evaluate(self, tr_loss, grad_norm, *args, **kwargs):
        import math

        import torch

        ok = self._sftkit_ok
        if grad_norm is not None:
            g = torch.isfinite(grad_norm) if isinstance(grad_norm, torch.Tensor) else torch.tensor(math.isfinite(grad_norm))
            ok = g if ok is None else ok & g.to(ok.device)
        if ok is not None and not bool(ok):
            losses_ok = self._sftkit_ok is None or bool(self._sftkit_ok)
            what = "the gradient norm became " + str(float(grad_norm)) if losses_ok else "the loss became NaN or infinite"
            raise NonFiniteTraining(self.state.global_step, what)
        self._sftkit_ok = None
        return super()._maybe_log_save_evaluate(tr_loss, grad_norm, *args, **kwargs)

    def _save_checkpoint(self, model, trial):
        run_dir = Path(self._get_output_dir(trial=trial))
        folder = run_dir / f"{layout.CHECKPOINT_PREFIX}{self.state.global_step}"
        limit, self.args.save_total_limit = self.args.save_total_limit, None  # rotation is ours (see above)
        hint = f"free space on that disk, then continue: sftkit train --config {run_dir / layout.CONFIG} --resume"
        try:
            with partial_output(folder, f"checkpoint {folder} (removed; the earlier checkpoints are untouched)", hint, remove=self.args.should_save):
                super()._save_checkpoint(model, trial)
                if self.args.should_save:
                    follow_umask(folder)  # safetensors writes the weights through a private temp file
                    mark_complete(folder, self.state.global_step)
                    rotate_checkpoints(run_dir, limit, self.state.best_model_checkpoint)
                    discard_replaced(run_dir)
        finally:
            self.args.save_total_limit = limit

    def _save_optimizer_and_scheduler(self, output_dir: str) -> None:
        pause_point("checkpoint", Path(output_dir).parent)  # for fault tests: the weights are written, the rest not
        super()._save_optimizer_and_scheduler(output_dir)


class _fsdp_on_cpu:
    """accelerate builds its FSDP plugin for accelerator processes only: several CPU processes asked for FSDP
    would silently train as plain DDP (every rank a full copy). torch's FSDP2 runs on CPU processes (gloo), so
    there accelerate is shown the processes as accelerator ones while it creates its state; the processes, their
    devices and the process group stay as they are."""

    def __init__(self, args: Any) -> None:
        self.wanted = getattr(args, "fsdp_plugin_args", None) is not None

    def __enter__(self):
        from accelerate.state import AcceleratorState, PartialState
        from accelerate.utils import DistributedType

        self.state = PartialState._shared_state
        self.swapped = (
            self.wanted and not AcceleratorState._shared_state and self.state.get("distributed_type") == DistributedType.MULTI_CPU
        )
        if self.swapped:
            self.state["distributed_type"] = DistributedType.MULTI_GPU
        return self

    def __exit__(self, *exc):
        from accelerate.utils import DistributedType

        if self.swapped and self.state.get("distributed_type") == DistributedType.MULTI_GPU:
            self.state["distributed_type"] = DistributedType.MULTI_CPU  # accelerate failed before taking FSDP
        return False


def sft_trainer_class():
    from trl import SFTTrainer

    _compact_fused_head_on_cpu()  # for TRL's own loss where sftkit's does not apply (evaluation, custom losses)

    class SftkitSFTTrainer(RunSafetyMixin, SFTTrainer):
        """SFTTrainer whose evaluations compute what `sftkit eval` computes (:mod:`sftkit.scoring`): the mean loss
        per trained token over all validation rows, so the figures in metrics.jsonl, the final metrics and a
        later `sftkit eval` on the same rows agree. Sharded models (FSDP, DeepSpeed) keep TRL's evaluation loop."""

        _sftkit_rows: list | None = None  # the prepared validation rows as prepared (TRL may pack its own copy)

        _sftkit_sliced: bool = True  # False once the model turned out not to take a boolean logits_to_keep

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            """The plain next-token loss with logits only where a label is trained (transformers' boolean
            ``logits_to_keep``: prompt positions never reach the vocabulary projection), and TRL's token-accuracy
            and entropy metrics only on the steps that log them. Anything else (evaluation, custom losses, MoE
            auxiliary losses, label smoothing, sequence parallelism) goes to TRL's own loss."""
            if (
                return_outputs
                or not self._sftkit_sliced
                or not model.training
                or self.aux_loss_enabled
                or self.compute_loss_func is not None
                or self.label_smoother is not None
                or self.args.loss_type != "nll"
                or getattr(self.accelerator, "parallelism_config", None) is not None
            ):
                return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
            import torch
            import torch.nn.functional as F

            labels = inputs["labels"]
            keep = torch.zeros_like(labels, dtype=torch.bool)
            keep[:, :-1] = labels[:, 1:] != -100  # position t predicts token t + 1
            target = labels[:, 1:][keep[:, :-1]]
            forward = {k: v for k, v in inputs.items() if k != "labels"}
            try:
                logits = model(**forward, use_cache=False, logits_to_keep=keep).logits
            except TypeError:  # a model without logits_to_keep (remote code): TRL's loss from now on
                self._sftkit_sliced = False
                return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
            logits = logits.reshape(-1, logits.shape[-1]).float()
            loss = F.cross_entropy(logits, target, reduction="sum")
            loss = loss / (target.numel() if num_items_in_batch is None else num_items_in_batch)
            if self.args.average_tokens_across_devices and num_items_in_batch is not None:
                loss = loss * (self.accelerator.num_processes // self._tp_size)
            self._count_tokens(inputs)
            if self._logs_this_step():
                with torch.no_grad():
                    valid = max(target.numel(), 1)
                    log_p = logits.detach().log_softmax(-1)
                    self._metrics["train"]["entropy"].append(float(-(log_p.exp() * log_p).sum() / valid))
                    self._metrics["train"]["mean_token_accuracy"].append(float((logits.argmax(-1) == target).sum() / valid))
            return loss

        def _count_tokens(self, inputs) -> None:
            """TRL's ``num_tokens`` metric, counted as TRL counts it."""
            import torch

            if "attention_mask" in inputs:
                local = inputs["attention_mask"].sum()
            else:
                local = torch.tensor(inputs["position_ids"].size(1), device=inputs["position_ids"].device)
            self._total_train_tokens += self.accelerator.gather_for_metrics(local).sum().item() // self._tp_size
            self._metrics["train"]["num_tokens"] = [self._total_train_tokens]

        def _logs_this_step(self) -> bool:
            step = self.state.global_step + 1  # the step this forward belongs to
            return step % max(int(self.args.logging_steps), 1) == 0 or (self.args.logging_first_step and step == 1)

        def evaluate(self, eval_dataset=None, ignore_keys=None, metric_key_prefix="eval"):
            if eval_dataset is not None or self.is_fsdp_enabled or self.is_deepspeed_enabled or not self._sftkit_rows:
                return super().evaluate(eval_dataset, ignore_keys, metric_key_prefix)
            from sftkit.scoring import loss_figures

            pad = self.processing_class.pad_token_id if self.processing_class.pad_token_id is not None else 0
            metrics = loss_figures(self.model, self._sftkit_rows, "sft", self.args.per_device_eval_batch_size, pad)
            metrics = {k.replace("eval_", f"{metric_key_prefix}_", 1): v for k, v in metrics.items()}
            self.log(metrics)
            self.control = self.callback_handler.on_evaluate(self.args, self.state, self.control, metrics)
            return metrics

    return SftkitSFTTrainer


def _compact_fused_head_on_cpu() -> None:
    """TRL's fused LM head scores only the labelled positions on GPUs (Triton) but every position elsewhere, so
    that Neuron compiles one shape. A CPU compiles nothing: score only the labelled positions there too (prompt
    and padding positions skip the vocabulary projection; the log-probabilities are the same)."""
    import trl.trainer.utils as trl_utils

    original = getattr(trl_utils, "_use_triton", None)
    if original is None or getattr(original, "_sftkit", False):
        return

    def compact(device) -> bool:
        return device.type == "cpu" or original(device)

    compact._sftkit = True
    trl_utils._use_triton = compact


def dpo_trainer_class():
    from trl import DPOTrainer

    _compact_fused_head_on_cpu()

    class SftkitDPOTrainer(RunSafetyMixin, DPOTrainer):
        """DPOTrainer that takes sftkit's prepared ids as they are (prompt truncation and templates done in prepare)."""

        def _prepare_dataset(self, dataset, processing_class, args, dataset_name):
            if {"prompt_ids", "chosen_ids", "rejected_ids"} <= set(dataset.column_names):
                return dataset
            return super()._prepare_dataset(dataset, processing_class, args, dataset_name)

    return SftkitDPOTrainer


def kto_trainer_class():
    from trl import KTOTrainer

    _compact_fused_head_on_cpu()

    class SftkitKTOTrainer(RunSafetyMixin, KTOTrainer):
        """KTOTrainer that takes sftkit's prepared ids as they are (templates and truncation done in prepare).

        With the KL term (``kto.loss_type=kto``) each row's KL reference point is scored on the completion of the row
        before it in its batch of ``per_device_train_batch_size`` rows, which TRL pairs once, in a fixed order
        (``train_sampling_strategy=sequential``). Read in file order every epoch, sorted data (all desirable rows
        first) would give one-sided batches: the training rows are shuffled once first, seeded by ``train.seed``,
        so a resumed run reads them in the same order."""

        def _prepare_dataset(self, dataset, processing_class, args, dataset_name):
            if not {"prompt_ids", "completion_ids", "label"} <= set(dataset.column_names):
                return super()._prepare_dataset(dataset, processing_class, args, dataset_name)
            from trl.trainer.utils import global_then_local_main_first

            with global_then_local_main_first():
                if dataset_name == "train" and args.train_sampling_strategy == "sequential":
                    dataset = dataset.shuffle(seed=args.seed)
                if self.calculate_KL:
                    dataset = dataset.map(
                        _rotate_completions, batched=True, batch_size=args.per_device_train_batch_size, desc=f"KL completions of the {dataset_name} rows"
                    )
            return dataset

    return SftkitKTOTrainer


def _rotate_completions(batch: dict[str, list]) -> dict[str, list]:
    """TRL's KL completions: within a batch, row i is paired with the completion of row i - 1 (the first with the last)."""
    completions = batch["completion_ids"]
    return {"KL_completion_ids": completions[-1:] + completions[:-1]}


def kto_notes(cfg: Any, manifest: dict[str, Any]) -> list[str]:
    """The KTO paper's advice on unequal label counts (TRL only logs it): keep desirable_weight x desirable rows /
    (undesirable_weight x undesirable rows) between 1 and 4/3."""
    labels = manifest.get("labels") or {}
    good, bad = labels.get("desirable", 0), labels.get("undesirable", 0)
    if not good or not bad:
        return [f"every training row is labelled {'desirable' if good else 'undesirable'}: KTO has nothing to contrast it with"]
    k = cfg.kto
    ratio = k.desirable_weight * good / (k.undesirable_weight * bad)
    if 1 <= round(ratio, 1) <= 1.3:  # read to one decimal: a few rows either way are no reason to change weights
        return []
    fix = (
        f"kto.undesirable_weight={k.desirable_weight * good / bad:.3g}"
        if ratio > 4 / 3
        else f"kto.desirable_weight={k.undesirable_weight * bad / good:.3g}"
    )
    return [
        f"{good} desirable and {bad} undesirable training rows: desirable_weight x {good} / (undesirable_weight x {bad}) "
        f"is {ratio:.2f}; the KTO paper advises 1 to 4/3 (e.g. {fix})"
    ]
