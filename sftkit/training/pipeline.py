"""The training recipe, top to bottom: run folder -> tokenizer -> data -> model -> trainer -> train -> save.

:func:`run_pipeline` runs it in this process (once per process under torchrun); :mod:`sftkit.training.launch`
decides how many processes run it.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sftkit.layout as layout
from sftkit.config import RunConfig
from sftkit.errors import InterruptedRun, SftkitError
from sftkit.training.args import build_peft_config, build_trainer_config, tracking_env
from sftkit.training.rundir import (
    FAILED,
    FINISHED,
    INTERRUPTED,
    environment,
    find_checkpoint,
    run_dir_of,
    start_run_dir,
    write_json,
    write_state,
)


@dataclass
class TrainResult:
    """What a finished run produced."""

    run_dir: Path
    model_dir: Path
    metrics: dict[str, Any] = field(default_factory=dict)
    """Final training metrics (train_loss, train_runtime, ...) and, with validation data, the final eval_*."""


def is_main_process() -> bool:
    return int(os.environ.get("RANK", "0")) == 0


def world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def run_pipeline(
    cfg: RunConfig,
    *,
    resume: str | None = None,
    overwrite: bool = False,
    console: Any | None = None,
    live: bool = False,
    launched: bool = False,
) -> TrainResult:
    """Train as the config says, in this process.

    ``console``: where progress goes (None: silent); ``live``: a rich live display; ``launched``: this process is
    one of several started by the launcher, which already created the run folder and prepared the data.
    """
    from sftkit.training.model import check_hardware

    device = check_hardware(cfg)
    main = is_main_process()
    if launched:
        run_dir = run_dir_of(cfg)
        checkpoint = find_checkpoint(cfg, run_dir, resume) if resume else None
    else:
        run_dir, checkpoint = start_run_dir(cfg, resume, overwrite)
    try:
        return _train(cfg, run_dir, checkpoint, device, console if main else None, live and main)
    except (InterruptedRun, KeyboardInterrupt):
        if main:
            write_state(run_dir, INTERRUPTED)
        raise
    except BaseException as err:
        if main:
            write_state(run_dir, FAILED, error=f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}")
        raise


def _train(cfg: RunConfig, run_dir: Path, checkpoint: str | None, device: str, console: Any, live: bool) -> TrainResult:
    main = is_main_process()
    if main:
        write_json(run_dir / layout.ENVIRONMENT, environment(device, world_size()))
    with _quiet_libraries():
        tokenizer = _tokenizer(cfg)
        data = _data(cfg, tokenizer)
        model = _model(cfg)
        trainer, signals, nan_guard = _trainer(cfg, model, tokenizer, data, run_dir, console, live)
        started = time.time()
        signals.install()
        try:
            output = trainer.train(resume_from_checkpoint=checkpoint)
        finally:
            signals.uninstall()
    if nan_guard.bad_step is not None:
        raise SftkitError(
            f"loss became {nan_guard.bad_value} at step {nan_guard.bad_step}; training stopped",
            hint="lower train.learning_rate, keep train.max_grad_norm > 0, or check the data for broken rows",
        )
    if signals.received:
        step = trainer.state.global_step
        raise InterruptedRun(
            f"stopped by {signals.received} at step {step}; checkpoint saved in {run_dir / f'{layout.CHECKPOINT_PREFIX}{step}'}",
            hint=f"resume with: sftkit train --config {run_dir / layout.CONFIG} --resume",
        )
    metrics = dict(output.metrics)
    with _quiet_libraries():
        if data.validation is not None:
            metrics.update(_final_eval(trainer))
        if main:
            _save(cfg, trainer, tokenizer, data, run_dir, metrics, started)
            write_state(run_dir, FINISHED, steps=trainer.state.global_step)
    return TrainResult(run_dir, run_dir / layout.MODEL, metrics)


def _final_eval(trainer) -> dict[str, Any]:
    """The evaluation of the final weights: the one the trainer just ran at the last step, else a new one."""
    state = trainer.state
    last = [h for h in state.log_history if "eval_loss" in h and h.get("step") == state.global_step]
    if last and not trainer.args.load_best_model_at_end:
        return {k: v for k, v in last[-1].items() if k.startswith("eval_")}
    return trainer.evaluate()


# -- steps ----------------------------------------------------------------------------------------


def _tokenizer(cfg: RunConfig) -> Any:
    from sftkit.modeling import tokenizer_for

    return tokenizer_for(cfg)


def _data(cfg: RunConfig, tokenizer: Any) -> Any:
    from sftkit.data.prepare import prepare_data

    return prepare_data(cfg, tokenizer=tokenizer)


def _model(cfg: RunConfig) -> Any:
    from transformers import set_seed

    from sftkit.training.model import load_model

    set_seed(cfg.train.seed)
    return load_model(cfg)


def _trainer(cfg, model, tokenizer, data, run_dir: Path, console, live):
    from transformers import PrinterCallback, ProgressCallback

    from sftkit.training.callbacks import (
        NanGuardCallback,
        RunLogCallback,
        StopSignalCallback,
    )

    has_eval = data.validation is not None
    os.environ.update(tracking_env(cfg))
    args = build_trainer_config(cfg, has_eval=has_eval, ddp_backend="gloo" if world_size() > 1 and not _cuda(cfg) else None)
    peft_config = build_peft_config(cfg)
    nan_guard, signals = NanGuardCallback(), StopSignalCallback()
    callbacks = [RunLogCallback(run_dir, console, live), nan_guard, signals]
    if cfg.trainer_type == "sft":
        trainer_cls, extra = _sft_trainer_class(), {}
        columns = ["input_ids", "labels"]
    else:
        from sftkit.training.model import load_model

        trainer_cls = _dpo_trainer_class()
        # None: TRL uses the base with adapters disabled (LoRA) or a frozen copy of the model (full)
        extra = {"ref_model": load_model(cfg, name=cfg.dpo.ref_model) if cfg.dpo.ref_model else None}
        columns = ["prompt_ids", "chosen_ids", "rejected_ids"]
    trainer = trainer_cls(
        model=model,
        args=args,
        train_dataset=data.train.select_columns(columns),
        eval_dataset=data.validation.select_columns(columns) if has_eval else None,
        processing_class=tokenizer,
        peft_config=peft_config,
        callbacks=callbacks,
        **extra,
    )
    if has_eval and cfg.trainer_type == "sft":
        trainer._sftkit_rows = data.validation.select_columns(columns).to_list()
    for noisy in (PrinterCallback, ProgressCallback):
        trainer.remove_callback(noisy)  # they print to stdout; our RunLogCallback replaces them
    return trainer, signals, nan_guard


def _sft_trainer_class():
    from trl import SFTTrainer

    class SftkitSFTTrainer(SFTTrainer):
        _sftkit_rows: list | None = None  # the prepared validation rows as prepared (TRL may pack its own copy)

        """SFTTrainer whose evaluations compute what `sftkit eval` computes (:mod:`sftkit.scoring`): the mean loss
        per trained token over all validation rows, so the figures in metrics.jsonl, the final metrics and a
        later `sftkit eval` on the same rows agree. Sharded models (FSDP, DeepSpeed) keep TRL's evaluation loop."""

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


def _dpo_trainer_class():
    from trl import DPOTrainer

    class PretokenizedDPOTrainer(DPOTrainer):
        """DPOTrainer that takes sftkit's prepared ids as they are (prompt truncation and templates done in prepare)."""

        def _prepare_dataset(self, dataset, processing_class, args, dataset_name):
            if {"prompt_ids", "chosen_ids", "rejected_ids"} <= set(dataset.column_names):
                return dataset
            return super()._prepare_dataset(dataset, processing_class, args, dataset_name)

    return PretokenizedDPOTrainer


def _cuda(cfg: RunConfig) -> bool:
    import torch

    return torch.cuda.is_available() and not cfg.train.use_cpu


def _save(cfg: RunConfig, trainer, tokenizer, data, run_dir: Path, metrics: dict[str, Any], started: float) -> None:
    import shutil

    from sftkit.card import metadata, model_card

    final = run_dir / layout.MODEL
    tmp = run_dir / f".{layout.MODEL}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    trainer.save_model(str(tmp))
    tokenizer.chat_template = _trained_format(cfg, tokenizer)  # what plain transformers renders = what was trained
    tokenizer.save_pretrained(str(tmp))
    meta = metadata(cfg, data, metrics, started, trainer.state.global_step)
    name = layout.metadata_name(cfg.trainer_type)
    write_json(tmp / name, meta)
    card = model_card(cfg, meta)
    (tmp / layout.CARD).write_text(card, encoding="utf-8")
    shutil.rmtree(final, ignore_errors=True)
    os.replace(tmp, final)
    write_json(run_dir / name, meta)
    (run_dir / layout.CARD).write_text(card, encoding="utf-8")  # replaces TRL's generic card
    write_json(run_dir / layout.FINAL_METRICS, metrics)


def _trained_format(cfg: RunConfig, tokenizer: Any) -> str:
    from sftkit.data.chat_template import trained_chat_template
    from sftkit.data.templates import resolve_template

    template = resolve_template(cfg.data.template, tokenizer, cfg.data.response_marker)
    return trained_chat_template(template, cfg.data.system_prompt)


class _quiet_libraries:
    """:class:`~sftkit.modeling.quiet_transformers`, plus no datasets progress bars and a clean stdout.

    Libraries print to stdout during training (trackio announces its dashboard there); stdout is for data,
    so while training runs whatever they print goes to stderr instead.
    """

    def __enter__(self):
        import contextlib
        import sys

        import datasets

        from sftkit.modeling import quiet_transformers

        self._stack = contextlib.ExitStack()
        self._stack.enter_context(contextlib.redirect_stdout(sys.stderr))
        self._stack.enter_context(quiet_transformers())
        if datasets.utils.logging.is_progress_bar_enabled():
            datasets.disable_progress_bars()
            self._stack.callback(datasets.enable_progress_bars)
        return self

    def __exit__(self, *exc):
        return self._stack.__exit__(*exc)
