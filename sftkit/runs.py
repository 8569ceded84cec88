"""Looking at runs (``sftkit runs list|show|compare``): what each run folder says about itself, read only from
what training already wrote there.

- where it stands: ``state.json`` (running, failed, interrupted, finished; ``killed`` when it says running but
  the process that wrote it, on this machine, is gone), when it started;
- the loss history: ``metrics.jsonl``, every logged event in order. A run resumed from a checkpoint logs the
  steps after that checkpoint again; the later values stand (:func:`read_history`);
- the figures: ``final_metrics.json`` once finished, else the last logged ones;
- the settings: ``sftkit.yaml``, the resolved config the run used (compared key by key).
"""

from __future__ import annotations

import json
import math
import os
import re
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sftkit import layout
from sftkit.errors import EXIT_USAGE, SftkitError
from sftkit.training.rundir import (
    FINISHED,
    RUNNING,
    checkpoints,
    complete_checkpoints,
    is_run_folder,
    read_state,
)

#: a run whose state says running but whose process (on this machine) is gone
KILLED = "killed"
#: the folder ``sftkit runs list`` reads, and where a bare run name is looked for
DEFAULT_FOLDER = "runs"
#: keys that differ between any two runs without saying anything about them
NOT_COMPARED = ("train.output_dir",)
_LOG_TIME = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) ")
_STARTED_LINE = re.compile(r"training started: (\d+) steps")


@dataclass
class History:
    """The loss against the optimizer step: ``train`` (each logged training loss) and ``eval``."""

    train: list[tuple[int, float]] = field(default_factory=list)
    eval: list[tuple[int, float]] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.train or self.eval)

    def to_dict(self) -> dict[str, list[list[float]]]:
        return {
            "train": [[s, v] for s, v in self.train],
            "eval": [[s, v] for s, v in self.eval],
        }


# -- finding runs -----------------------------------------------------------------------------------


def find_run(name: str | Path) -> Path:
    """A run folder from what a user typed: a path, or a bare name under ``runs/``."""
    path = Path(name).expanduser()
    if (
        not path.exists()
        and not path.is_absolute()
        and len(path.parts) == 1
        and (Path(DEFAULT_FOLDER) / path).exists()
    ):
        path = Path(DEFAULT_FOLDER) / path
    if not path.exists():
        raise SftkitError(
            f"no run at {name}",
            hint=f"pass a run folder (e.g. {DEFAULT_FOLDER}/tiny); `sftkit runs list` shows the runs in {DEFAULT_FOLDER}/",
            exit_code=EXIT_USAGE,
        )
    if not path.is_dir() or not is_run_folder(path):
        raise SftkitError(
            f"{name} is not a run folder (no {layout.STATE} or {layout.CONFIG} with results)",
            hint="pass a folder `sftkit train` wrote (its train.output_dir); `sftkit runs list DIR` shows the runs in DIR",
            exit_code=EXIT_USAGE,
        )
    return path


def run_folders(folder: str | Path = DEFAULT_FOLDER) -> list[Path]:
    """The run folders directly inside ``folder`` (or ``folder`` itself when it is one), oldest start first."""
    root = Path(folder).expanduser()
    if not root.is_dir():
        raise SftkitError(
            f"no folder {folder}"
            if not root.exists()
            else f"{folder} is a file, not a folder of runs",
            hint="pass the folder that holds your run folders: sftkit runs list PATH",
            exit_code=EXIT_USAGE,
        )
    if is_run_folder(root):
        return [root]
    found = [
        p
        for p in root.iterdir()
        if p.is_dir() and not p.name.startswith(".") and is_run_folder(p)
    ]

    def when(p: Path) -> tuple[bool, float, str]:
        started = _started(p, read_state(p))
        return (started is None, started.timestamp() if started else 0.0, p.name)

    return sorted(found, key=when)


# -- the loss history -------------------------------------------------------------------------------


def records(run_dir: Path) -> Iterator[dict[str, Any]]:
    """Every event in ``metrics.jsonl``, in order (a line cut short by a killed process is passed over)."""
    try:
        lines = (run_dir / layout.METRICS).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return
    for line in lines:
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict) and isinstance(record.get("step"), int):
            yield record


def read_history(run_dir: Path) -> History:
    """Training and eval loss against steps, as the run's final weights got there.

    A resumed run starts logging again after its checkpoint, so a step at or before the last one seen starts a
    new stretch: what was logged from that step on belongs to the abandoned stretch and is dropped. NaN and
    infinite values are left out. A run folder without ``metrics.jsonl`` is read from its newest checkpoint's
    trainer state (``log_history``), up to that checkpoint.
    """
    train: list[tuple[int, float]] = []
    evals: list[tuple[int, float]] = []
    for record in list(records(run_dir)) or _checkpoint_history(run_dir):
        step = record["step"]
        loss, eval_loss = _finite(record.get("loss")), _finite(record.get("eval_loss"))
        if loss is not None:
            if train and step <= train[-1][0]:
                train = [p for p in train if p[0] < step]
                evals = [p for p in evals if p[0] < step]
            train.append((step, loss))
        if eval_loss is not None:
            if evals and step <= evals[-1][0]:
                evals = [p for p in evals if p[0] < step]
                train = [p for p in train if p[0] <= step]
            evals.append((step, eval_loss))
    return History(train, evals)


def _checkpoint_history(run_dir: Path) -> list[dict[str, Any]]:
    for checkpoint in reversed(checkpoints(run_dir)):
        history = _read_json(checkpoint / "trainer_state.json").get("log_history")
        if isinstance(history, list):
            return [
                h
                for h in history
                if isinstance(h, dict) and isinstance(h.get("step"), int)
            ]
    return []


def _finite(value: Any) -> float | None:
    if (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and math.isfinite(value)
    ):
        return float(value)
    return None


# -- one run ----------------------------------------------------------------------------------------


def summary(run_dir: Path, history: History | None = None) -> dict[str, Any]:
    """What a run is and where it stands: state, steps, losses, start, duration, the main settings."""
    run_dir = Path(run_dir)
    state = read_state(run_dir)
    history = read_history(run_dir) if history is None else history
    config = read_config(run_dir, strict=False)
    final = _read_json(run_dir / layout.FINAL_METRICS)
    status = state.get("state") or (
        FINISHED if (run_dir / layout.MODEL).is_dir() else "unknown"
    )
    if status == RUNNING and not _alive(state):
        status = KILLED
    started = _started(run_dir, state)
    ended = _ended(run_dir, state, status)
    logged = [p[0] for p in history.train[-1:] + history.eval[-1:]]
    steps = max([*logged, state["steps"] if isinstance(state.get("steps"), int) else 0])
    train_cfg, lora = config.get("train") or {}, config.get("lora") or {}
    best = min(history.eval, key=lambda p: p[1]) if history.eval else None
    eval_loss = _finite(final.get("eval_loss")) if status == FINISHED else None
    info: dict[str, Any] = {
        "name": run_dir.name,
        "path": str(run_dir),
        "state": status,
        "error": state.get("error"),
        "steps": steps,
        "max_steps": _max_steps(run_dir, train_cfg),
        "loss": history.train[-1][1] if history.train else None,
        "eval_loss": eval_loss
        if eval_loss is not None
        else (history.eval[-1][1] if history.eval else None),
        "best_eval_loss": best[1] if best else None,
        "best_eval_step": best[0] if best else None,
        "train_loss": _finite(final.get("train_loss")),
        "started": started.isoformat(timespec="seconds") if started else None,
        "duration_seconds": round((ended - started).total_seconds(), 1)
        if started and ended and ended >= started
        else None,
        "trainer_type": config.get("trainer_type"),
        "method": _method(lora) if config else None,
        "model": (config.get("model") or {}).get("name"),
        "dataset": (config.get("data") or {}).get("dataset")
        or (config.get("data") or {}).get("train_file"),
        "learning_rate": train_cfg.get("learning_rate"),
        "checkpoints": [c.name for c in complete_checkpoints(run_dir)],
        "model_dir": str(run_dir / layout.MODEL)
        if (run_dir / layout.MODEL).is_dir()
        else None,
        "loss_plot": str(run_dir / layout.LOSS_PLOT)
        if (run_dir / layout.LOSS_PLOT).is_file()
        else None,
        "final_metrics": {k: v for k, v in final.items() if _finite(v) is not None},
    }
    return info


def read_config(run_dir: Path, strict: bool = True) -> dict[str, Any]:
    """The resolved config the run saved (``sftkit.yaml``); ``strict=False``: {} when it cannot be read."""
    from sftkit.yamlio import load_yaml

    path = Path(run_dir) / layout.CONFIG
    if not strict and not path.is_file():
        return {}
    try:
        data, _ = load_yaml(path)
    except SftkitError:
        if strict:
            raise
        return {}
    return data if isinstance(data, dict) else {}


def _method(lora: dict[str, Any]) -> str:
    from sftkit.names import method_of

    return method_of(
        bool(lora.get("enabled")),
        bool(lora.get("load_in_4bit")),
        bool(lora.get("load_in_8bit")),
    )


def _max_steps(run_dir: Path, train_cfg: dict[str, Any]) -> int | None:
    """The steps the run was to take: what the trainer said at its (last) start, else the newest checkpoint's
    trainer state, else ``train.max_iters``."""
    found = None
    for line in _log_lines(run_dir):
        m = _STARTED_LINE.search(line)
        if m:
            found = int(m.group(1))
    if found:
        return found
    for checkpoint in reversed(complete_checkpoints(run_dir)):
        trainer_state = _read_json(checkpoint / "trainer_state.json")
        if (
            isinstance(trainer_state.get("max_steps"), int)
            and trainer_state["max_steps"] > 0
        ):
            return trainer_state["max_steps"]
    iters = train_cfg.get("max_iters")
    return iters if isinstance(iters, int) and iters > 0 else None


def _log_lines(run_dir: Path) -> list[str]:
    try:
        return (
            (run_dir / layout.TRAIN_LOG)
            .read_text(encoding="utf-8", errors="replace")
            .splitlines()
        )
    except OSError:
        return []


def _started(run_dir: Path, state: dict[str, Any]) -> datetime | None:
    """When the run started: ``state.json`` records it; a run from before that, its first train.log line."""
    when = _parse_time(state.get("started"))
    if when is None:
        for line in _log_lines(run_dir)[:1]:
            m = _LOG_TIME.match(line)
            if m:
                when = datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S").astimezone()
    return when


def _ended(run_dir: Path, state: dict[str, Any], name: str) -> datetime | None:
    """Now for a running run; when it last recorded its state for one that ended; its last logged event for a
    killed one."""
    if name == RUNNING:
        return datetime.now().astimezone()
    if name == KILLED:
        times = [
            r["time"]
            for r in records(run_dir)
            if isinstance(r.get("time"), (int, float))
        ]
        if times:
            return datetime.fromtimestamp(max(times)).astimezone()
        try:
            return datetime.fromtimestamp(
                (run_dir / layout.TRAIN_LOG).stat().st_mtime
            ).astimezone()
        except OSError:
            return None
    return _parse_time(state.get("updated"))


def _parse_time(text: Any) -> datetime | None:
    if not isinstance(text, str):
        return None
    try:
        return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S%z")
    except ValueError:
        return None


def _alive(state: dict[str, Any]) -> bool:
    """Whether the process a ``running`` state names still runs. Only a process on this machine can be checked;
    one elsewhere is taken at its word."""
    pid = state.get("pid")
    if not isinstance(pid, int) or state.get("host") not in (
        None,
        socket.gethostname(),
    ):
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # it exists, as another user's process
        return True
    return True


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


# -- several runs -------------------------------------------------------------------------------------


def list_runs(folder: str | Path = DEFAULT_FOLDER) -> list[dict[str, Any]]:
    """A summary of every run folder in ``folder`` (oldest start first)."""
    return [summary(p) for p in run_folders(folder)]


def show_run(run: str | Path) -> dict[str, Any]:
    """One run's summary with its loss history (``history``: ``{"train": [[step, loss]...], "eval": [...]}``)."""
    run_dir = find_run(run)
    history = read_history(run_dir)
    return {**summary(run_dir, history), "history": history.to_dict()}


def compare_runs(runs: list[str | Path]) -> dict[str, Any]:
    """Runs side by side: the config keys whose values differ (``train.output_dir`` aside) and the figures.

    ``config`` and ``metrics`` map a key to its values in the order the runs were given (None: not set there)."""
    if len(runs) < 2:
        raise SftkitError(
            "compare needs two runs or more",
            hint="sftkit runs compare runs/a runs/b",
            exit_code=EXIT_USAGE,
        )
    dirs = [find_run(r) for r in runs]
    histories = [read_history(d) for d in dirs]
    flat = [_flatten(read_config(d)) for d in dirs]
    keys = list(dict.fromkeys(k for f in flat for k in f))
    config = {
        k: [f.get(k) for f in flat]
        for k in keys
        if k not in NOT_COMPARED and _differ([f.get(k) for f in flat])
    }
    summaries = [summary(d, h) for d, h in zip(dirs, histories)]
    rows = (
        "state",
        "steps",
        "loss",
        "eval_loss",
        "best_eval_loss",
        "best_eval_step",
        "train_loss",
        "duration_seconds",
    )
    metrics = {k: [s[k] for s in summaries] for k in rows}
    extra = list(dict.fromkeys(k for s in summaries for k in s["final_metrics"]))
    metrics.update(
        {
            k: [s["final_metrics"].get(k) for s in summaries]
            for k in extra
            if k not in metrics
        }
    )
    return {
        "runs": [{"name": s["name"], "path": s["path"]} for s in summaries],
        "config": config,
        "metrics": metrics,
        "history": [h.to_dict() for h in histories],
    }


def _flatten(config: dict[str, Any]) -> dict[str, Any]:
    """``{"train": {"learning_rate": 1e-3}}`` -> ``{"train.learning_rate": 1e-3}`` (one level: sections)."""
    out: dict[str, Any] = {}
    for key, value in config.items():
        if isinstance(value, dict):
            out.update({f"{key}.{sub}": v for sub, v in value.items()})
        else:
            out[key] = value
    return out


def _differ(values: list[Any]) -> bool:
    return len({json.dumps(v, sort_keys=True, default=str) for v in values}) > 1


# -- the loss curve as an image -----------------------------------------------------------------------


def save_loss_plot(run_dir: Path, history: History | None = None) -> Path:
    """Draw the run's loss curve into ``loss.png`` in its folder (matplotlib: the ``plot`` extra)."""
    from sftkit.plots import loss_series, save_image

    history = read_history(run_dir) if history is None else history
    if not history:
        raise SftkitError(
            f"{run_dir} has logged no loss yet",
            hint=f"the curve is drawn from {layout.METRICS}, which training writes at every logging step",
        )
    return save_image(
        loss_series(history.train, history.eval),
        Path(run_dir) / layout.LOSS_PLOT,
        title=Path(run_dir).name,
    )


def loss_plot_note(run_dir: Path) -> str | None:
    """At the end of a run: draw ``loss.png``; return why it was not drawn (None when it was). Never raises:
    a picture is not worth failing a finished run for."""
    from sftkit.plots import PLOT_EXTRA

    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return f"no {layout.LOSS_PLOT}: matplotlib is not installed ({PLOT_EXTRA} adds it; then `sftkit runs show {run_dir} --image`)"
    try:
        history = read_history(run_dir)
        if history:
            save_loss_plot(run_dir, history)
    except Exception as err:  # noqa: BLE001 - reported in one line, the run is kept
        return f"no {layout.LOSS_PLOT}: {type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"
    return None
