"""Trainer callbacks: progress on stderr, metrics.jsonl and train.log, Ctrl-C/SIGTERM checkpointing.

Only the main process (rank 0) prints and writes.
"""

from __future__ import annotations

import json
import signal
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

import sftkit.layout as layout
from sftkit.progress import (
    duration as _fmt_duration,  # one format for every step's times
)

SHOWN = ("loss", "learning_rate", "grad_norm", "epoch")


class _Rate:
    """Tokens/s between two log events, from transformers' num_input_tokens_seen."""

    def __init__(self) -> None:
        self.last: tuple[float, int] | None = None
        self.value: float | None = None

    def update(self, tokens: int | None) -> float | None:
        if tokens is None:
            return self.value
        now = time.perf_counter()
        if self.last is not None and now > self.last[0] and tokens > self.last[1]:
            self.value = (tokens - self.last[1]) / (now - self.last[0])
        self.last = (now, tokens)
        return self.value


def append_log(path: Path, text: str) -> str:
    """Append ``text`` to train.log as a timestamped line; return the line."""
    line = f"{datetime.now().strftime('%Y-%m-%d %H:%M:%S')} {text}"
    with path.open("a", encoding="utf-8") as f:
        f.write(line + "\n")
    return line


class RunLogCallback(TrainerCallback):
    """Writes every log event to metrics.jsonl and a plain line to train.log (and stderr when not a TTY)."""

    def __init__(self, run_dir: Path, console: Any | None, live: bool, flops: tuple[float, float] | None = None) -> None:
        self.metrics_path = run_dir / layout.METRICS
        self.log_path = run_dir / layout.TRAIN_LOG
        self.console = console
        self.live = live
        self.started = time.perf_counter()
        self.rate = _Rate()
        self.flops = flops  # (FLOPs per token, peak FLOP/s): model FLOPs utilisation on a known GPU
        self.progress: Any = None
        self.task: Any = None
        self.last_eval: str = "-"
        self.last_train: str = ""

    # -- lifecycle -------------------------------------------------------------------------------
    def on_train_begin(self, args, state, control, **kwargs):
        if not state.is_world_process_zero:
            return
        self.started = time.perf_counter()
        self._line(f"training started: {state.max_steps} steps")
        if self.live and self.console is not None:
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )

            self.progress = Progress(
                TextColumn("[bold]train[/]"),
                BarColumn(bar_width=24),
                MofNCompleteColumn(),
                TextColumn("{task.fields[stats]}"),
                TimeElapsedColumn(),
                TextColumn("eta"),
                TimeRemainingColumn(),
                console=self.console,
                transient=False,
                refresh_per_second=4,
            )
            self.progress.start()
            self.task = self.progress.add_task("train", total=state.max_steps, completed=state.global_step, stats="")

    def on_step_end(self, args, state, control, **kwargs):
        if self.progress is not None:
            self.progress.update(self.task, completed=state.global_step)

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not state.is_world_process_zero or not logs:
            return
        record = {"step": state.global_step, "time": round(time.time(), 3), **logs}
        tps = self.rate.update(logs.get("num_input_tokens_seen"))
        if tps is not None and "loss" in logs:
            record["tokens_per_second"] = round(tps, 1)
            if self.flops:
                record["mfu"] = round(tps * self.flops[0] / self.flops[1], 4)
        with self.metrics_path.open("a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")
        if "eval_loss" in logs:
            self.last_eval = f"{logs['eval_loss']:.4f}"
        text = self._describe(state, logs, tps)
        if text:
            self._line(text)
        if self.progress is not None:
            if "loss" in logs:
                self.last_train = self._describe(state, logs, tps, timing=False).split("  ", 1)[-1]
            evals = f" | eval_loss {self.last_eval}" if self.last_eval != "-" else ""
            self.progress.update(self.task, stats=self.last_train + evals)

    def on_train_end(self, args, state, control, **kwargs):
        if self.progress is not None:
            self.progress.update(self.task, completed=state.global_step)
        self.close()
        if state.is_world_process_zero:
            self._line(f"training finished at step {state.global_step} in {_fmt_duration(time.perf_counter() - self.started)}")

    def close(self) -> None:
        """Stop the live display (also when training ended with an error)."""
        if self.progress is not None:
            self.progress.stop()
            self.progress = None

    # -- formatting ------------------------------------------------------------------------------
    def _describe(self, state, logs: dict[str, Any], tps: float | None, timing: bool = True) -> str:
        parts = [f"step {state.global_step}/{state.max_steps}"]
        if "loss" in logs:
            parts.append(f"loss {logs['loss']:.4f}")
        if "learning_rate" in logs:
            parts.append(f"lr {logs['learning_rate']:.2e}")
        if logs.get("grad_norm") is not None:
            parts.append(f"grad_norm {logs['grad_norm']:.3f}")
        if tps is not None and "loss" in logs:
            parts.append(f"tok/s {tps:,.0f}")
            if self.flops:
                parts.append(f"mfu {tps * self.flops[0] / self.flops[1]:.0%}")
        if "eval_loss" in logs:
            parts.append(f"eval_loss {logs['eval_loss']:.4f}")
        if "epoch" in logs and logs["epoch"] is not None:
            parts.append(f"epoch {logs['epoch']:.2f}")
        if timing:  # the live display has its own elapsed/eta columns
            elapsed = time.perf_counter() - self.started
            parts.append(f"elapsed {_fmt_duration(elapsed)}")
            if 0 < state.global_step < state.max_steps:
                eta = elapsed / state.global_step * (state.max_steps - state.global_step)
                parts.append(f"eta {_fmt_duration(eta)}")
        if timing and "eval_loss" not in logs and self.last_eval != "-":
            parts.append(f"last eval {self.last_eval}")
        if "loss" not in logs and "eval_loss" not in logs:
            return ""  # e.g. the final train_runtime summary; it goes to metrics.jsonl only
        return parts[0] + "  " + " ".join(parts[1:])

    def _line(self, text: str) -> None:
        line = append_log(self.log_path, text)
        if self.console is not None and not self.live:
            self.console.print(line, markup=False, highlight=False, soft_wrap=True)


class StopSignalCallback(TrainerCallback):
    """On Ctrl-C or SIGTERM: finish the current step, save a checkpoint, stop. A second Ctrl-C aborts at once.

    In a multi-process run every rank must stop at the same step: each step the ranks agree (one small
    all-reduce) on whether any of them was signalled or the launcher asked for a stop through ``stop_file``.
    There a repeated signal changes nothing (the launcher aborts the run if the user insists).
    """

    def __init__(self, stop_file: Path) -> None:
        self.stop_file = stop_file
        self.received: str | None = None
        self._previous: dict[int, Any] = {}

    def install(self) -> None:
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                self._previous[sig] = signal.signal(sig, self._handle)
            except ValueError:  # not the main thread (e.g. inside a notebook worker)
                pass

    def uninstall(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()

    def _handle(self, signum, frame):
        if self.received is not None:
            if _distributed():
                return
            raise KeyboardInterrupt
        self.received = signal.Signals(signum).name

    def on_step_end(self, args, state, control, **kwargs):
        stop = self.received is not None
        if _distributed():
            import torch
            import torch.distributed as dist

            asked = stop or (state.is_world_process_zero and self.stop_file.exists())
            flag = torch.tensor([1 if asked else 0], device=args.device)
            dist.all_reduce(flag, op=dist.ReduceOp.MAX)
            if int(flag.item()) and self.received is None:
                self.received = "a stop request"
            stop = bool(flag.item())
        if stop:
            control.should_save = True
            control.should_training_stop = True


def _distributed() -> bool:
    import torch.distributed as dist

    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1
