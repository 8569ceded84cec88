"""The training recipe, top to bottom: run folder -> tokenizer -> data -> model -> trainer -> train -> save.

:func:`run_pipeline` runs it in this process (once per process under torchrun); :mod:`sftkit.training.launch`
decides how many processes run it.
"""

from __future__ import annotations

import contextlib
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sftkit.layout as layout
from sftkit.config import RunConfig
from sftkit.errors import EXIT_USAGE, InterruptedRun, SftkitError, partial_output
from sftkit.training.args import build_peft_config, build_scheduler, build_trainer_config
from sftkit.training.rundir import (
    FAILED,
    FINISHED,
    INTERRUPTED,
    AlreadyFinished,
    RunLock,
    complete_checkpoints,
    environment,
    find_checkpoint,
    flush_tree,
    record_end,
    run_dir_of,
    settle_replaced,
    start_run_dir,
    write_json,
    write_state,
)
from sftkit.training.tracking import tracker_environment


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
    one of several started by the launcher, which holds the run folder's lock, created the folder and prepared
    the data.
    """
    from sftkit.training.model import check_hardware

    device = check_hardware(cfg)
    main = is_main_process()
    if launched:
        run_dir = run_dir_of(cfg)
        checkpoint = find_checkpoint(cfg, run_dir, resume)[0] if resume else None
        return _run(cfg, run_dir, checkpoint, device, console if main else None, live and main)
    with RunLock(run_dir_of(cfg)) if main else contextlib.nullcontext():
        try:
            run_dir, checkpoint, notes = start_run_dir(cfg, resume, overwrite)
        except AlreadyFinished as done:
            return finished_already(done, console)
        if main:
            _notes(console, run_dir, notes)
        try:
            return _run(cfg, run_dir, checkpoint, device, console if main else None, live and main)
        finally:
            if main and settle_replaced(run_dir) == "restored" and console is not None:
                console.print(f"[dim]the previous run in {run_dir} was put back (this one stopped before its first checkpoint)[/]")


def _run(cfg: RunConfig, run_dir: Path, checkpoint: str | None, device: str, console: Any, live: bool) -> TrainResult:
    """:func:`_train`, recording how it ended in state.json (main process)."""
    main = is_main_process()
    try:
        with _sigterm_interrupts(), _torch_threads(cfg.train.threads) as threads, tracker_environment(cfg):
            return _train(cfg, run_dir, checkpoint, device, console, live, threads)
    except KeyboardInterrupt:
        if main:
            record_end(run_dir, INTERRUPTED)
        raise InterruptedRun("interrupted", hint=_restart_hint(run_dir)) from None
    except InterruptedRun:
        if main:
            record_end(run_dir, INTERRUPTED)
        raise
    except BaseException as err:
        if main:
            record_end(run_dir, FAILED, error=f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}")
        raise


def finished_already(done: AlreadyFinished, console: Any) -> TrainResult:
    """``--resume`` of a run that finished, with no more steps asked for: say so (and how to go on), train nothing,
    and give the run as it is."""
    import json

    from sftkit.console import escape

    if console is not None:
        console.print(f"[yellow]note:[/] {escape(done.note)}")
    try:
        metrics = json.loads((done.run_dir / layout.FINAL_METRICS).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        metrics = {}
    return TrainResult(done.run_dir, done.run_dir / layout.MODEL, metrics if isinstance(metrics, dict) else {})


def _restart_hint(run_dir: Path) -> str:
    if complete_checkpoints(run_dir):
        return f"continue it: sftkit train --config {run_dir / layout.CONFIG} --resume"
    return "start it again with the same command (it stopped before its first checkpoint: nothing is lost)"


def _notes(console: Any, run_dir: Path, notes: list[str]) -> None:
    from sftkit.console import escape
    from sftkit.training.callbacks import append_log

    for note in notes:
        if console is not None:
            console.print(f"[dim]note: {escape(note)}[/]")  # a note may quote a template holding [brackets]
        append_log(run_dir / layout.TRAIN_LOG, f"note: {note}")


def _warnings(console: Any, run_dir: Path, warnings: list[str | None]) -> None:
    """Like :func:`_notes`, for what the user probably wants to change (the run goes on)."""
    from sftkit.console import escape
    from sftkit.training.callbacks import append_log

    for warning in filter(None, warnings):
        if console is not None:
            console.print(f"[bold yellow]warning:[/] {escape(warning)}")
        append_log(run_dir / layout.TRAIN_LOG, f"warning: {warning}")


@contextlib.contextmanager
def _torch_threads(requested: int | None):
    """torch's CPU threads for the run (:func:`~sftkit.training.batching.choose_threads`); yields why that many.
    The Python API's caller gets its own setting back afterwards."""
    import torch

    from sftkit.training.batching import choose_threads

    threads, why = choose_threads(requested, int(os.environ.get("LOCAL_WORLD_SIZE", "1")))
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield why
    finally:
        torch.set_num_threads(previous)


@contextlib.contextmanager
def _sigterm_interrupts():
    """SIGTERM before training starts (data, model loading) stops the run like Ctrl-C; during training the
    trainer's own handler takes over and saves a checkpoint first."""
    import signal

    def handle(signum, frame):
        raise KeyboardInterrupt

    try:
        previous = signal.signal(signal.SIGTERM, handle)
    except ValueError:  # not the main thread
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _train(cfg: RunConfig, run_dir: Path, checkpoint: str | None, device: str, console: Any, live: bool, threads: str) -> TrainResult:
    import torch

    from sftkit.testhooks import pause_point
    from sftkit.training.trainers import NonFiniteTraining

    main = is_main_process()
    env = {**environment(device, world_size()), "cpu_threads_chosen_from": threads}
    if main:
        write_json(run_dir / layout.ENVIRONMENT, env)
    with _quiet_libraries():
        tokenizer = _tokenizer(cfg)
        from sftkit.progress import task

        with task(console, "preparing data", unit="rows"):  # reused at once when prepared already
            data = _data(cfg, tokenizer)
        if main:
            from sftkit.training.plan import warmup_warning

            _warnings(console, run_dir, [warmup_warning(cfg, len(data.train), world_size())])
        pause_point("model", run_dir)  # for fault tests: the data is prepared, training not started
        from sftkit.training.hardware import with_kernels, with_precision

        cfg, precision = with_precision(cfg, device == "cuda")  # train.precision=auto: what this hardware supports
        if main:
            from sftkit.training.memory import announce_plan

            announce_plan(cfg, world_size(), console, run_dir / layout.TRAIN_LOG)  # before the model: an oversized one fails loading
        model = _model(cfg)
        cfg, kernels = with_kernels(cfg, device == "cuda", model)
        env = {**env, **precision, **kernels}
        _check_vocabulary(cfg, tokenizer, model)
        padding_free, batching, fallback = _batching(cfg, model)
        if main:
            write_json(run_dir / layout.ENVIRONMENT, {**env, "batching": batching})
            _notes(console, run_dir, [*data.notes, *([batching] if fallback else [])])
            if cfg.trainer_type == "kto":
                from sftkit.training.trainers import kto_notes

                _notes(console, run_dir, kto_notes(cfg, data.manifest))
        trainer, signals, run_log = _trainer(cfg, model, tokenizer, data, run_dir, console, live, padding_free)
        started = time.time()
        signals.install()
        try:
            if checkpoint and _trained_to_the_end(checkpoint, cfg):
                _notes(console, run_dir, [f"{Path(checkpoint).name} was written after the last step: saving the model from it, no more training"])
                metrics = _load_finished(trainer, checkpoint)
            else:
                metrics = dict(trainer.train(resume_from_checkpoint=checkpoint).metrics)
        except NonFiniteTraining as bad:
            good = complete_checkpoints(run_dir)
            raise SftkitError(
                f"{bad.what} at step {bad.step}; training stopped before saving anything from that step on"
                + (f" (last good checkpoint: {good[-1].name})" if good else ""),
                hint="lower train.learning_rate, keep train.max_grad_norm > 0, or check the data for broken rows",
            ) from None
        except torch.OutOfMemoryError:
            from sftkit.training.memory import out_of_memory

            raise out_of_memory(cfg, trainer.state.global_step + 1, device == "cuda", world_size()) from None
        finally:
            signals.uninstall()
            run_log.close()
    if signals.received:
        step = trainer.state.global_step
        raise InterruptedRun(
            f"stopped by {signals.received} at step {step}; checkpoint saved in {run_dir / f'{layout.CHECKPOINT_PREFIX}{step}'}",
            hint=f"resume with: sftkit train --config {run_dir / layout.CONFIG} --resume",
        )
    with _quiet_libraries():
        if data.validation is not None:
            metrics.update(_final_eval(trainer))
        weights = _gathered_weights(trainer)  # a sharded model: every rank takes part in gathering it
        if main:
            _save(cfg, trainer, tokenizer, data, run_dir, metrics, started, weights)
            write_state(run_dir, FINISHED, steps=trainer.state.global_step)
            from sftkit.runs import loss_plot_note

            _notes(console, run_dir, [note for note in [loss_plot_note(run_dir)] if note])  # loss.png, or why not
    return TrainResult(run_dir, run_dir / layout.MODEL, metrics)


def _batching(cfg: RunConfig, model: Any) -> tuple[bool, str, bool]:
    """Padding-free batches where they are exact for this model (checked on it), else padded. Returns the choice,
    how the run batches in words (for environment.json), and whether padding was chosen over a padding-free
    default (the user is told)."""
    from sftkit.training.args import padding_free_wanted
    from sftkit.training.batching import padding_free_is_exact

    if cfg.data.packing:
        return False, "packed", False
    if not padding_free_wanted(cfg):
        return False, "padded" + (" (train.padding_free=false)" if cfg.trainer_type == "sft" else ""), False
    exact, detail = padding_free_is_exact(model)
    if exact:
        return True, f"padding-free ({detail})", False
    if cfg.train.padding_free:
        raise SftkitError(
            f"train.padding_free is on but padding-free batches are not exact for {cfg.model.name}: {detail}",
            hint="unset train.padding_free (sftkit then pads this model's batches) or set it to false",
            exit_code=EXIT_USAGE,
        )
    return False, f"padded (padding-free batches are not exact for this model: {detail})", True


def _check_vocabulary(cfg: RunConfig, tokenizer: Any, model: Any) -> None:
    """A tokenizer with more tokens than the model has embedding rows would fail mid-run (an index error)."""
    rows = model.get_input_embeddings().num_embeddings
    if len(tokenizer) > rows:
        source = f"model.tokenizer ({cfg.model.tokenizer})" if cfg.model.tokenizer else f"the tokenizer of {cfg.model.name}"
        raise SftkitError(
            f"{source} has {len(tokenizer)} tokens but the model's embeddings have {rows} rows",
            hint="use the model's own tokenizer (unset model.tokenizer), or a model whose vocabulary covers this tokenizer",
        )


def _trained_to_the_end(checkpoint: str, cfg: RunConfig) -> bool:
    """The checkpoint is the one written after the last step (the run stopped while saving the final model): its
    step is the run's last, ``train.max_iters`` (which a finished run extended with more steps has raised), or
    for a run by epochs the last step the checkpoint counted."""
    import json

    state = json.loads((Path(checkpoint) / "trainer_state.json").read_text(encoding="utf-8"))
    last = cfg.train.max_iters or state.get("max_steps", 0)
    return last > 0 and state.get("global_step", 0) >= last


def _load_finished(trainer, checkpoint: str) -> dict[str, Any]:
    """Take the weights and the trainer state of a checkpoint written after the last step, without training
    (resuming there, transformers would train one step past the end)."""
    from transformers import TrainerState

    trainer._load_from_checkpoint(checkpoint)
    trainer.state = TrainerState.load_from_json(str(Path(checkpoint) / "trainer_state.json"))
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    return {"train_loss": sum(losses) / len(losses)} if losses else {}


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


def _trainer(cfg, model, tokenizer, data, run_dir: Path, console, live, padding_free: bool):
    from transformers import PrinterCallback, ProgressCallback

    from sftkit.training.callbacks import RunLogCallback, StopSignalCallback
    from sftkit.training.trainers import dpo_trainer_class, kto_trainer_class, sft_trainer_class

    has_eval = data.validation is not None
    ddp_backend = "gloo" if world_size() > 1 and not _cuda(cfg) else None
    args = build_trainer_config(cfg, has_eval=has_eval, ddp_backend=ddp_backend, padding_free=padding_free, train_rows=len(data.train))
    build_scheduler(cfg, args)  # a schedule transformers rejects fails here, before the first step
    peft_config = build_peft_config(cfg)
    run_log, signals = RunLogCallback(run_dir, console, live, _flops(cfg, model)), StopSignalCallback(run_dir / layout.STOP)
    if cfg.trainer_type == "sft":
        trainer_cls, extra = sft_trainer_class(), {}
        columns = ["input_ids", "labels"]
    else:
        from sftkit.training.model import load_model

        kto = cfg.trainer_type == "kto"
        trainer_cls = kto_trainer_class() if kto else dpo_trainer_class()
        # None: TRL uses the base with adapters disabled (LoRA) or a frozen copy of the model (full)
        ref_model = cfg.kto.ref_model if kto else cfg.dpo.ref_model
        extra = {"ref_model": load_model(cfg, name=ref_model) if ref_model else None}
        columns = ["prompt_ids", "completion_ids", "label"] if kto else ["prompt_ids", "chosen_ids", "rejected_ids"]
    trainer = trainer_cls(
        model=model,
        args=args,
        train_dataset=data.train.select_columns(columns),
        eval_dataset=data.validation.select_columns(columns) if has_eval else None,
        processing_class=tokenizer,
        peft_config=peft_config,
        callbacks=[run_log, signals],
        **extra,
    )
    if has_eval and cfg.trainer_type == "sft":
        trainer._sftkit_rows = data.validation.select_columns(columns).to_list()
    for noisy in (PrinterCallback, ProgressCallback):
        trainer.remove_callback(noisy)  # they print to stdout; our RunLogCallback replaces them
    return trainer, signals, run_log


def _flops(cfg: RunConfig, model: Any) -> tuple[float, float] | None:
    """For MFU in the progress line and metrics.jsonl: on a GPU sftkit knows, with mixed precision."""
    if not _cuda(cfg) or not (cfg.train.bf16 or cfg.train.fp16):
        return None
    import torch

    from sftkit.training.batching import flops_budget

    return flops_budget(model, cfg.lora.enabled, torch.cuda.get_device_name(), world_size())


def _cuda(cfg: RunConfig) -> bool:
    import torch

    return torch.cuda.is_available() and not cfg.train.use_cpu


def _gathered_weights(trainer) -> dict[str, Any] | None:
    """The full weights of a model sharded by FSDP or DeepSpeed, gathered by every rank together (rank 0 keeps
    them, on the CPU, whatever the FSDP state_dict_type of the checkpoints): the final model is one
    consolidated folder. None for a model every rank holds whole."""
    if getattr(trainer, "is_fsdp_enabled", False):
        return trainer.accelerator.get_state_dict(trainer.model)
    if getattr(trainer, "is_deepspeed_enabled", False):
        return trainer.accelerator.get_state_dict(trainer.deepspeed)
    return None


def _save(
    cfg: RunConfig, trainer, tokenizer, data, run_dir: Path, metrics: dict[str, Any], started: float, weights: dict[str, Any] | None = None
) -> None:
    """Write the final model to .model.tmp, flush it to disk, then rename it to model/ (the run's files last).
    ``weights``: the gathered weights of a sharded model (:func:`_gathered_weights`)."""
    import shutil

    from sftkit.card import metadata, model_card
    from sftkit.testhooks import pause_point
    from sftkit.yamlio import follow_umask

    _check_finite_weights(trainer.model if weights is None else weights)
    pause_point("save", run_dir)  # for fault tests: nothing of the final model written yet
    final, tmp, old = run_dir / layout.MODEL, run_dir / layout.MODEL_TMP, run_dir / layout.MODEL_OLD
    shutil.rmtree(tmp, ignore_errors=True)
    meta = metadata(cfg, data, metrics, started, trainer.state.global_step)
    name = layout.metadata_name(cfg.trainer_type)
    card = model_card(cfg, meta)
    hint = f"free space on that disk, then finish the run: sftkit train --config {run_dir / layout.CONFIG} --resume"
    with partial_output(tmp, f"the final model to {final} (nothing half-written was left)", hint):
        if weights is None:
            trainer.save_model(str(tmp))
        else:
            trainer._save(str(tmp), state_dict=weights)
        tokenizer.chat_template = _trained_format(cfg, tokenizer)  # what plain transformers renders = what was trained
        tokenizer.save_pretrained(str(tmp))
        write_json(tmp / name, meta)
        (tmp / layout.CARD).write_text(card, encoding="utf-8")
        follow_umask(tmp)  # safetensors writes the weights through a private temp file
        flush_tree(tmp)
        pause_point("final", run_dir)  # for fault tests: the model is written, not yet in place
        if final.exists():
            os.replace(final, old)
        os.replace(tmp, final)
        shutil.rmtree(old, ignore_errors=True)
        write_json(run_dir / name, meta)
        (run_dir / layout.CARD).write_text(card, encoding="utf-8")  # replaces TRL's generic card
        write_json(run_dir / layout.FINAL_METRICS, metrics)


def _check_finite_weights(model) -> None:
    """The last guard before a model is saved: no NaN or infinite weight (``model``: a model, or gathered weights)."""
    import torch

    named = model.items() if isinstance(model, dict) else ((n, p) for n, p in model.named_parameters() if p.requires_grad)
    for name, param in named:
        if param.is_floating_point() and not bool(torch.isfinite(param).all()):
            raise SftkitError(
                f"the trained weights hold NaN or infinite values ({name}); the model was not saved",
                hint="lower train.learning_rate or keep train.max_grad_norm > 0, then start again",
            )


def _trained_format(cfg: RunConfig, tokenizer: Any) -> str:
    from sftkit.data.chat_template import trained_chat_template
    from sftkit.data.templates import resolve_template

    template = resolve_template(cfg.data.template, tokenizer, cfg.data.response_marker, cfg.data.chat_template_kwargs)
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
