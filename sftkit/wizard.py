"""The ``sftkit init`` wizard: a short list of questions, built from data, that writes a minimal ``sftkit.yaml``.

Each :class:`Question` names the answer it sets, how its default is found (mostly from the chosen preset),
how typed text becomes a value and when it is asked. The same table serves three ways in:

* flags (``--lr 3e-6``): checked with the question's own parser, and then not asked;
* ``--yes``: every question not given by a flag takes its default, no prompt is ever shown;
* a terminal: :func:`run_interactive` asks the rest through a :class:`Prompter`, shows a summary and lets
  the user change any answer before anything is written.

:func:`build_project` turns the answers into ``extends: <preset>`` plus only the values that differ from the
preset's resolved ones; :func:`write_project` writes it atomically after resolving it as a self-check.
Tokens are never asked for: the wizard only says whether one is found in the environment or the Hub login.
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Protocol

from sftkit.config import RunConfig
from sftkit.errors import ConfigError, Problem, SftkitError

# ---------------------------------------------------------------------------------------------- checks

HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$")
DATA_SUFFIXES = (".jsonl", ".json", ".csv", ".parquet", ".tsv", ".txt", ".gz", ".arrow")
MODEL_FILE_SUFFIXES = (".gguf", ".safetensors", ".bin")
BUILTIN_PREFIX = "builtin:"


def _looks_local(text: str, suffixes: tuple[str, ...]) -> bool:
    return (
        text.startswith((".", "/", "~"))
        or text.count("/") > 1
        or "\\" in text
        or text.lower().endswith(suffixes)
        or (os.sep != "/" and os.sep in text)
    )


def parse_model(text: str) -> str:
    """A model: ``builtin:tiny``, an existing local folder or file, or a Hub id shaped ``org/name``."""
    name = text.strip()
    if not name:
        raise ValueError("enter a Hub id (org/name) or a local folder")
    if name.startswith(BUILTIN_PREFIX):
        if name != "builtin:tiny":
            raise ValueError("the only built-in model is builtin:tiny")
        return name
    if Path(name).expanduser().exists():
        return name
    if _looks_local(name, MODEL_FILE_SUFFIXES):
        raise ValueError(f"no such folder or file: {name}")
    if not HUB_ID.match(name):
        raise ValueError(f"{name!r} is not a local folder and does not look like a Hub id (org/name)")
    return name


def parse_dataset(text: str) -> str:
    """Training data: ``builtin:tiny``, an existing local file or folder, or a Hub dataset id ``org/name``."""
    name = text.strip()
    if not name:
        raise ValueError("enter a data file, a folder or a Hub dataset id (org/name)")
    if name.startswith(BUILTIN_PREFIX):
        if name != "builtin:tiny":
            raise ValueError("the only built-in dataset is builtin:tiny")
        return name
    if Path(name).expanduser().exists():
        return name
    if _looks_local(name, DATA_SUFFIXES):
        raise ValueError(f"no such file or folder: {name}")
    if not HUB_ID.match(name):
        raise ValueError(f"{name!r} is not a local file and does not look like a Hub dataset id (org/name)")
    return name


def parse_space(text: str) -> str:
    name = text.strip()
    if not HUB_ID.match(name):
        raise ValueError("a Space id looks like user/space-name")
    return name


def _positive(kind: type, what: str, example: str) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        try:
            value = kind(str(text).strip())
        except ValueError:
            raise ValueError(f"{what} must be a positive {'whole ' if kind is int else ''}number, e.g. {example}") from None
        if value <= 0:
            raise ValueError(f"{what} must be above 0, e.g. {example}")
        return value

    return parse


def _optional(parse: Callable[[str], Any]) -> Callable[[str], Any]:
    def wrapped(text: str) -> Any:
        return None if not str(text).strip() else parse(text)

    return wrapped


def _required_text(what: str) -> Callable[[str], str]:
    def parse(text: str) -> str:
        value = str(text).strip()
        if not value:
            raise ValueError(f"{what} cannot be empty")
        if "\n" in value:
            raise ValueError(f"{what} must be one line")
        return value

    return parse


def show(value: Any) -> str:
    """A value as the wizard shows and pre-fills it."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


# ---------------------------------------------------------------------------------------- environment


def precision_for(cuda: bool, bf16_supported: bool) -> str:
    """bf16 on a CUDA GPU that has it, fp16 on other CUDA GPUs, fp32 without one."""
    if not cuda:
        return "fp32"
    return "bf16" if bf16_supported else "fp16"


def detect_hardware() -> tuple[str, str]:
    """(precision, what was found) for this machine; torch is imported here, only when asked."""
    try:
        import torch
    except ImportError:
        return "fp32", "torch is not installed"
    try:
        if not torch.cuda.is_available():
            return "fp32", "no CUDA GPU found"
        name = torch.cuda.get_device_name(0)
        bf16 = bool(torch.cuda.is_bf16_supported())
    except Exception as e:  # noqa: BLE001 - a broken driver means: no usable GPU
        return "fp32", f"CUDA not usable ({type(e).__name__})"
    return precision_for(True, bf16), f"{name}{'' if bf16 else ' (no bf16)'}"


def hf_token_status() -> str:
    """Where a Hugging Face token would come from. Never the token itself."""
    if os.environ.get("HF_TOKEN") or os.environ.get("HUGGING_FACE_HUB_TOKEN"):
        return "found in the environment"
    try:
        from huggingface_hub import get_token

        if get_token():
            return "found (Hub login)"
    except Exception:  # noqa: BLE001 - an unreadable token file is the same as none
        pass
    return "not found (public models and data only; run `hf auth login` or set HF_TOKEN for private ones)"


def wandb_key_status() -> str:
    if os.environ.get("WANDB_API_KEY"):
        return "found in the environment"
    netrc = Path.home() / ".netrc"
    try:
        if netrc.is_file() and "api.wandb.ai" in netrc.read_text(encoding="utf-8", errors="replace"):
            return "found (wandb login)"
    except OSError:
        pass
    return "not found: run `wandb login` or set WANDB_API_KEY before training"


def data_summary(path: str) -> str | None:
    """A one-line description of a local data file: detected format and row count (None for Hub ids)."""
    p = Path(path).expanduser()
    if not p.exists():
        return None
    try:
        from sftkit.data import peek  # written alongside; absent or failing -> count rows ourselves
    except Exception:  # noqa: BLE001
        peek = None
    if peek is not None:
        try:
            _rows, total, fmt = peek(str(p), 3)
            return f"{_rows_text(total)}, format {fmt}" if fmt else f"{_rows_text(total)}, format not detected (set data.format)"
        except Exception as e:  # noqa: BLE001 - a summary must never stop the wizard
            message = getattr(e, "message", None) or (str(e).splitlines() or [type(e).__name__])[0]
            return f"could not read it yet: {message}"
    count = count_rows(p)
    return f"{_rows_text(count)} (format detected at `sftkit prepare`)" if count is not None else None


def _rows_text(count: int) -> str:
    return f"{count} row" if count == 1 else f"{count} rows"


def count_rows(path: Path) -> int | None:
    """Rows in a .jsonl (non-blank lines) or .json (list, or a dict of split lists) file; None for others."""
    import json

    if not path.is_file():
        return None
    suffix = path.suffix.lower()
    try:
        if suffix == ".jsonl":
            with path.open("rb") as f:
                return sum(1 for line in f if line.strip())
        if suffix == ".json" and path.stat().st_size < 256 * 1024 * 1024:
            data = json.loads(path.read_text(encoding="utf-8"))
            if isinstance(data, list):
                return len(data)
            if isinstance(data, dict) and all(isinstance(v, list) for v in data.values()):
                return sum(len(v) for v in data.values())
    except (OSError, UnicodeDecodeError, ValueError):
        return None
    return None


# ------------------------------------------------------------------------------------------ questions


@dataclass(frozen=True)
class Option:
    """One choice of a select question."""

    value: str
    title: str


@dataclass(frozen=True)
class Question:
    key: str
    """The answer this question sets (also the name in the summary's 'Change an answer' list)."""
    label: str
    """Short name shown in the summary table."""
    message: str
    """The question as asked."""
    flag: str
    """The command-line flag that answers it."""
    default: Callable[["Wizard"], Any]
    options: Callable[["Wizard"], list[Option]] | None = None
    """Choices for a select question; None makes it a text question."""
    parse: Callable[[str], Any] = str
    """Typed text -> value; a ValueError's message is shown and the question asked again."""
    when: Callable[["Wizard"], bool] = lambda w: True
    note: Callable[["Wizard", Any], str | None] | None = None
    """A line shown after answering (e.g. the row count of a local data file)."""

    @property
    def is_select(self) -> bool:
        return self.options is not None


ADAPTERS = {
    "lora": "LoRA: train small adapters, base weights frozen",
    "qlora": "QLoRA: LoRA on a 4-bit base model (CUDA GPU + bitsandbytes)",
    "full": "full fine-tuning: every weight (most memory)",
}
PRECISIONS = {
    "bf16": "bf16 mixed precision (Ampere or newer GPUs)",
    "fp16": "fp16 mixed precision (older CUDA GPUs)",
    "fp32": "fp32, no mixed precision (CPU, or when in doubt)",
}
TRACKERS = {
    "trackio": "trackio, local dashboard (`trackio show`)",
    "trackio-space": "trackio, synced to a Hugging Face Space",
    "tensorboard": "TensorBoard, logs in the run folder",
    "wandb": "Weights & Biases",
    "none": "none (metrics.jsonl in the run folder only)",
}
METHODS = {"sft": "SFT: supervised fine-tuning on examples", "dpo": "DPO: preference tuning on chosen/rejected pairs"}
PREFERRED_PRESET = {"sft": "smollm3", "dpo": "smollm3-dpo"}


def _preset_options(w: "Wizard") -> list[Option]:
    from sftkit.presets import describe

    method = w.answers.get("method", "sft")
    rows = [describe(p) for p in w.presets().values()]
    rows.sort(key=lambda r: r["trainer_type"] != method)  # the chosen method's presets first, stable otherwise
    width = max((len(r["name"]) for r in rows), default=0)
    return [Option(r["name"], f"{r['name']:<{width}}  {r['trainer_type']}  {r['description']}") for r in rows]


def _default_preset(w: "Wizard") -> str:
    from sftkit.presets import describe

    names = list(w.presets())
    method = w.answers.get("method", "sft")
    preferred = PREFERRED_PRESET.get(method)
    if preferred in names:
        return preferred
    for p in w.presets().values():
        if describe(p)["trainer_type"] == method:
            return p.name
    return names[0]


def _default_adapter(w: "Wizard") -> str:
    lo = w.base().lora
    if not lo.enabled:
        return "full"
    return "qlora" if lo.load_in_4bit else "lora"


def _default_tracking(w: "Wizard") -> str:
    tr = w.base().tracking
    if not tr.enabled or tr.backend == "none":
        return "none"
    if tr.backend == "trackio" and tr.trackio_space:
        return "trackio-space"
    return tr.backend


def _default_precision(w: "Wizard") -> str:
    if w.base().train.use_cpu:
        return "fp32"
    return w.hardware()[0]


def _data_note(w: "Wizard", value: Any) -> str | None:
    summary = data_summary(value) if isinstance(value, str) else None
    return f"{value}: {summary}" if summary else None


def _adapter_note(w: "Wizard", value: Any) -> str | None:
    if value == "qlora" and w.hardware()[0] == "fp32":
        return "QLoRA needs a CUDA GPU with bitsandbytes; this machine has none (fine if you train elsewhere)"
    return None


def _precision_note(w: "Wizard", value: Any) -> str | None:
    if w.base().train.use_cpu:
        return None if value == "fp32" else "the preset trains on the CPU (train.use_cpu): mixed precision may be slow there"
    detected, found = w.hardware()
    if value != detected:
        return f"detected: {found} (suggests {detected})"
    return None


def _tracking_note(w: "Wizard", value: Any) -> str | None:
    if value == "wandb":
        return f"W&B key: {wandb_key_status()}"
    if value == "trackio-space":
        return f"HF token (needed to sync to a Space): {hf_token_status()}"
    return None


QUESTIONS: tuple[Question, ...] = (
    Question(
        "method", "method", "Training method?", "--method",
        default=lambda w: w.preset_trainer_type() or "sft",
        options=lambda w: [Option(k, v) for k, v in METHODS.items()],
    ),
    Question(
        "preset", "preset", "Start from which preset?", "--preset",
        default=_default_preset, options=_preset_options,
    ),
    Question(
        "model", "model", "Model (Hub id org/name or local folder)?", "--model",
        default=lambda w: w.base().model.name, parse=parse_model,
    ),
    Question(
        "dataset", "data", "Training data (file, folder or Hub dataset id)?", "--data",
        default=lambda w: w.base().data.dataset or w.base().data.train_file, parse=parse_dataset, note=_data_note,
    ),
    Question(
        "adapter", "adapter", "Full fine-tuning, LoRA or QLoRA?", "--lora/--qlora/--full",
        default=_default_adapter, options=lambda w: [Option(k, v) for k, v in ADAPTERS.items()], note=_adapter_note,
    ),
    Question(
        "learning_rate", "learning rate", "Learning rate?", "--lr",
        default=lambda w: w.base().train.learning_rate, parse=_positive(float, "the learning rate", "2e-5"),
    ),
    Question(
        "batch_size", "batch size", "Batch size per device?", "--batch-size",
        default=lambda w: w.base().train.batch_size, parse=_positive(int, "the batch size", "8"),
    ),
    Question(
        "gradient_accumulation_steps", "grad accumulation", "Gradient accumulation steps?", "--grad-accum",
        default=lambda w: w.base().train.gradient_accumulation_steps,
        parse=_positive(int, "gradient accumulation", "4"),
    ),
    Question(
        "max_iters", "max steps", "Training steps (leave empty to train by epochs)?", "--max-iters",
        default=lambda w: w.base().train.max_iters, parse=_optional(_positive(int, "the number of steps", "1000")),
    ),
    Question(
        "num_train_epochs", "epochs", "Epochs?", "--epochs",
        default=lambda w: w.base().train.num_train_epochs, parse=_positive(float, "the number of epochs", "3"),
        when=lambda w: w.answers.get("max_iters") is None,
    ),
    Question(
        "max_seq_length", "max length", "Longest sequence in tokens?", "--max-seq-length",
        default=lambda w: w.base().model.max_seq_length, parse=_positive(int, "the sequence length", "2048"),
    ),
    Question(
        "precision", "precision", "Precision?", "--precision",
        default=_default_precision, options=lambda w: [Option(k, v) for k, v in PRECISIONS.items()],
        note=_precision_note,
    ),
    Question(
        "tracking", "tracking", "Experiment tracking?", "--tracking",
        default=_default_tracking, options=lambda w: [Option(k, v) for k, v in TRACKERS.items()], note=_tracking_note,
    ),
    Question(
        "trackio_space", "trackio Space", "Hugging Face Space to sync to (user/space)?", "--trackio-space",
        default=lambda w: w.base().tracking.trackio_space, parse=parse_space,
        when=lambda w: w.answers.get("tracking") == "trackio-space",
    ),
    Question(
        "output_dir", "output folder", "Run folder (checkpoints, logs, final model)?", "--output-dir",
        default=lambda w: w.base().train.output_dir, parse=_required_text("the run folder"),
    ),
    Question(
        "experiment_name", "experiment name", "Experiment name (empty: the run folder's name)?", "--experiment-name",
        default=lambda w: w.base().tracking.experiment_name, parse=_optional(_required_text("the experiment name")),
    ),
)
BY_KEY = {q.key: q for q in QUESTIONS}


# ------------------------------------------------------------------------------------------- the state


class Prompter(Protocol):
    """How questions reach a person. :class:`QuestionaryPrompter` is the real one."""

    def select(self, message: str, options: list[Option], default: str) -> str: ...

    def text(self, message: str, default: str, validate: Callable[[str], str | None]) -> str: ...

    def confirm(self, message: str, default: bool) -> bool: ...


class Wizard:
    """Answers (from flags, defaults or a person) and everything derived from them."""

    def __init__(self, given: dict[str, Any] | None = None, hardware: tuple[str, str] | None = None) -> None:
        self.given: dict[str, Any] = check_given(given or {})
        self.answers: dict[str, Any] = dict(self.given)
        self.defaulted: set[str] = set()
        """Answers that took their default; they follow the default when an earlier answer changes."""
        self._hardware = hardware
        self._bases: dict[str, RunConfig] = {}
        self._presets: dict[str, Any] | None = None
        self._noted: set[str] = set()

    # -- lookups ------------------------------------------------------------------------------------
    def presets(self) -> dict[str, Any]:
        if self._presets is None:
            from sftkit.presets import discover

            self._presets = discover()
            if not self._presets:
                raise SftkitError("no presets found", hint="reinstall sftkit: its presets/ folder is missing")
        return self._presets

    def hardware(self) -> tuple[str, str]:
        if self._hardware is None:
            self._hardware = detect_hardware()
        return self._hardware

    def base(self, preset: str | None = None) -> RunConfig:
        """The chosen preset fully resolved (what the project file's values are compared with)."""
        name = preset or self.answers.get("preset") or _default_preset(self)
        if name not in self._bases:
            from sftkit.resolve import resolve_config

            self._bases[name] = resolve_config(preset=name, check=False).config
        return self._bases[name]

    def preset_trainer_type(self) -> str | None:
        name = self.answers.get("preset")
        return self.base(name).trainer_type if name else None

    def active(self) -> list[Question]:
        return [q for q in QUESTIONS if q.when(self)]

    def default(self, q: Question) -> Any:
        return q.default(self)

    # -- answering ----------------------------------------------------------------------------------
    def accept_defaults(self) -> None:
        """``--yes``: every question not answered yet takes its default, in order."""
        for q in QUESTIONS:
            if not q.when(self):
                continue
            if q.key not in self.answers:
                value = self.default(q)
                if value is None and not _may_be_empty(q):
                    raise ConfigError(
                        f"no {q.label} in preset {self.answers['preset']!r}",
                        hint=f"pass {q.flag} (with --yes every answer must come from a flag or the preset)",
                    )
                self.answers[q.key] = value
                self.defaulted.add(q.key)
            self._show_note(q, self.answers[q.key])

    def set_answer(self, key: str, value: Any, *, defaulted: bool) -> None:
        """Record an answer; answers that took defaults after it follow their new defaults."""
        changed = key in self.answers and self.answers[key] != value
        self.answers[key] = value
        if defaulted:
            self.defaulted.add(key)
        else:
            self.defaulted.discard(key)
        if changed:
            self._rebase(after=key)

    def _rebase(self, after: str) -> None:
        keys = [q.key for q in QUESTIONS]
        start = keys.index(after) + 1
        for q in QUESTIONS[start:]:
            if not q.when(self):
                self.answers.pop(q.key, None)
                self.defaulted.discard(q.key)
            elif q.key in self.defaulted and q.key in self.answers:
                self.answers[q.key] = self.default(q)

    def _show_note(self, q: Question, value: Any) -> None:
        if q.note is None:
            return
        line = q.note(self, value)
        if line:
            from sftkit.console import console, escape

            console.print(f"  [dim]{escape(line)}[/]")

    def ask(self, prompter: Prompter, q: Question) -> None:
        """Ask one question, pre-filled with the current answer (or the default)."""
        default = self.answers[q.key] if q.key in self.answers else self.default(q)
        if q.is_select:
            options = q.options(self)
            values = [o.value for o in options]
            start = default if default in values else values[0]
            value = prompter.select(q.message, options, start)
        else:

            def validate(text: str) -> str | None:
                try:
                    q.parse(text)
                except ValueError as e:
                    return str(e)
                return None

            value = q.parse(prompter.text(q.message, show(default), validate))
        fresh = q.key not in self.answers
        self.set_answer(q.key, value, defaulted=fresh and value == default)
        self._show_note(q, value)

    def ask_missing(self, prompter: Prompter) -> None:
        """Ask every active question without an answer, in order (notes for flag answers shown on the way)."""
        while True:
            todo = [q for q in self.active() if q.key not in self.answers]
            for q in self.active():
                if todo and q is todo[0]:
                    break
                if q.key in self.given and q.key not in self._noted:
                    self._noted.add(q.key)
                    self._show_note(q, self.answers[q.key])
            if not todo:
                return
            self.ask(prompter, todo[0])

    # -- results ------------------------------------------------------------------------------------
    def project(self) -> "Project":
        return build_project(self.answers, self.base())

    def summary_rows(self) -> list[tuple[str, str]]:
        rows = [(q.label, show(self.answers.get(q.key)) or "-") for q in self.active()]
        return rows


def _may_be_empty(q: Question) -> bool:
    try:
        return q.parse("") is None
    except ValueError:
        return False


def check_given(given: dict[str, Any]) -> dict[str, Any]:
    """Validate flag answers with the questions' own parsers; every problem reported at once (exit 2)."""
    out: dict[str, Any] = {}
    problems: list[Problem] = []
    for key, value in given.items():
        if value is None:
            continue
        q = BY_KEY.get(key)
        if q is None:
            raise ValueError(f"not a wizard question: {key}")
        if q.is_select:
            out[key] = value  # checked against its choices below
            continue
        try:
            out[key] = q.parse(show(value))
        except ValueError as e:
            problems.append(Problem(str(e), where=q.flag))
    if "preset" in out:
        from sftkit.presets import find

        try:
            find(out["preset"])
        except ConfigError as e:
            problems.append(Problem(e.message, where="--preset", hint=e.hint))
    for key, choices in (("method", METHODS), ("adapter", ADAPTERS), ("precision", PRECISIONS), ("tracking", TRACKERS)):
        if key in out and out[key] not in choices:
            problems.append(Problem(f"{out[key]!r} is not one of: {', '.join(choices)}", where=BY_KEY[key].flag))
    if "trackio_space" in out:
        if out.get("tracking", "trackio-space") != "trackio-space":
            problems.append(
                Problem("--trackio-space only goes with --tracking trackio-space", where="--trackio-space")
            )
        out["tracking"] = "trackio-space"
    if "max_iters" in out and "num_train_epochs" in out:
        problems.append(Problem("give --max-iters or --epochs, not both", where="--epochs", hint="steps win over epochs"))
    elif "num_train_epochs" in out:
        out["max_iters"] = None  # training by epochs: the preset's step count must not override them
    if problems:
        raise ConfigError.from_problems(problems)
    return out


# ------------------------------------------------------------------------------------------ the result


@dataclass
class Project:
    """What ``sftkit.yaml`` will hold: the preset it extends and the values that differ from it."""

    preset: str
    values: dict[str, Any]
    """Nested sections, only keys whose value differs from the preset's resolved value."""
    notes: list[str] = field(default_factory=list)
    """Values the wizard adjusted so the whole config stays valid (shown to the user)."""

    def data(self) -> dict[str, Any]:
        return {"extends": self.preset, **self.values}


def desired_values(answers: dict[str, Any], base: RunConfig) -> tuple[dict[str, Any], list[str]]:
    """Answers -> dotted config keys (``train.learning_rate``), plus notes about derived adjustments."""
    a = answers
    out: dict[str, Any] = {"trainer_type": a["method"], "model.name": a["model"]}
    notes: list[str] = []
    dataset = a.get("dataset")
    if dataset and dataset != base.data.train_file:
        out["data.dataset"] = dataset
        if base.data.train_file:
            out["data.train_file"] = None  # the preset's file is replaced, not combined
    adapter = a["adapter"]
    out["lora.enabled"] = adapter != "full"
    out["lora.load_in_4bit"] = adapter == "qlora"
    # LoRA keeps a preset's 8-bit base; QLoRA is 4-bit; full fine-tuning cannot train a quantised base
    out["lora.load_in_8bit"] = base.lora.load_in_8bit if adapter == "lora" else False
    lr = a["learning_rate"]
    out["train.learning_rate"] = lr
    out["train.batch_size"] = a["batch_size"]
    out["train.gradient_accumulation_steps"] = a["gradient_accumulation_steps"]
    out["train.max_iters"] = a.get("max_iters")
    if a.get("max_iters") is None:
        out["train.num_train_epochs"] = a["num_train_epochs"]
    seq = a["max_seq_length"]
    out["model.max_seq_length"] = seq
    precision = a["precision"]
    out["train.bf16"] = precision == "bf16"
    out["train.fp16"] = precision == "fp16"
    tracking = a["tracking"]
    if tracking == "none":
        out["tracking.enabled"] = False
    else:
        out["tracking.enabled"] = True
        out["tracking.backend"] = "trackio" if tracking == "trackio-space" else tracking
        out["tracking.trackio_space"] = a.get("trackio_space") if tracking == "trackio-space" else None
    out["train.output_dir"] = a["output_dir"]
    out["tracking.experiment_name"] = a.get("experiment_name")

    if base.train.min_lr and base.train.min_lr >= lr:
        ratio = base.train.min_lr / base.train.learning_rate
        min_lr = float(f"{lr * ratio:.3g}") if ratio < 1 else 0.0
        out["train.min_lr"] = min_lr
        notes.append(f"train.min_lr set to {min_lr:g} to stay below the learning rate (the preset's ratio)")
    if a["method"] == "dpo":
        max_len = min(base.dpo.max_length, seq)
        max_prompt = base.dpo.max_prompt_length
        if max_prompt >= max_len:
            max_prompt = max_len // 2
        if (max_len, max_prompt) != (base.dpo.max_length, base.dpo.max_prompt_length):
            out["dpo.max_length"] = max_len
            out["dpo.max_prompt_length"] = max_prompt
            notes.append(f"dpo.max_length {max_len} and dpo.max_prompt_length {max_prompt} to fit {seq} tokens")
    return out, notes


def flatten(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"train": {"lr": 1}}`` -> ``{"train.lr": 1}`` (one section level, as the schema has)."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        if not prefix and isinstance(value, dict):
            out.update(flatten(value, f"{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def diff_against(values: dict[str, Any], base: RunConfig) -> dict[str, Any]:
    """Nested sections holding only the dotted ``values`` that differ from ``base``, in schema order."""
    current = flatten(base.to_dict())
    nested: dict[str, Any] = {}
    order = list(current)
    for key in sorted(values, key=lambda k: order.index(k) if k in order else len(order)):
        if key in current and _same(values[key], current[key]):
            continue
        section, _, name = key.partition(".")
        if name:
            nested.setdefault(section, {})[name] = values[key]
        else:
            nested[key] = values[key]
    top_order = list(base.to_dict())
    return {k: nested[k] for k in sorted(nested, key=lambda k: top_order.index(k) if k in top_order else 99)}


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return float(a) == float(b)
    return a == b


def build_project(answers: dict[str, Any], base: RunConfig) -> Project:
    values, notes = desired_values(answers, base)
    return Project(answers["preset"], diff_against(values, base), notes)


def render(project: Project, header: Iterable[str] = ()) -> str:
    from sftkit.yamlio import dump_yaml

    lines = [f"# {line}" if line else "#" for line in header]
    lines.append(f"# Values not listed here come from the preset: `sftkit presets show {project.preset}`.")
    return "\n".join(lines) + "\n" + dump_yaml(project.data())


def check_text(text: str) -> list[Problem]:
    """Resolve a project file's text as ``sftkit train`` would; the problems, or [] when it is valid."""
    from sftkit.resolve import resolve_config

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "sftkit.yaml"
        path.write_text(text, encoding="utf-8")
        try:
            resolve_config(config_file=path)
        except ConfigError as e:
            problems = e.problems or [Problem(e.message, hint=e.hint)]
            for p in problems:
                p.where = None  # the temporary file's name would only confuse
            return problems
    return []


def write_project(path: Path, text: str) -> None:
    """Write atomically after a self-check: the text must resolve, or nothing is written."""
    from sftkit.resolve import resolve_config
    from sftkit.yamlio import atomic_write_text

    path = Path(path)
    problems = check_text(text)
    if problems:
        raise SftkitError(
            f"the generated {path.name} does not resolve, so it was not written: " + "; ".join(map(str, problems)),
            hint="this is a bug in sftkit init: please report it with the command you ran",
            problems=problems,
        )
    atomic_write_text(path, text)
    try:
        resolve_config(config_file=path)  # the self-check on the file as written
    except ConfigError as e:
        raise SftkitError(
            f"{path} was written but does not resolve: {e.message}", hint="this is a bug in sftkit init: please report it"
        ) from None


# ---------------------------------------------------------------------------------------- interaction

ACTIONS_OK = [Option("write", "Write it"), Option("change", "Change an answer"), Option("cancel", "Cancel")]
ACTIONS_BAD = [Option("change", "Change an answer"), Option("cancel", "Cancel")]


def run_interactive(w: Wizard, prompter: Prompter) -> Project | None:
    """Ask what flags did not answer, then summary -> write / change an answer / cancel. None when cancelled."""
    from sftkit.console import console, escape

    w.ask_missing(prompter)
    while True:
        project = w.project()
        problems = check_text(render(project))
        show_summary(w, project)
        if problems:
            console.print("[bold red]This config would not resolve:[/]")
            for p in problems:
                console.print(f"  [red]•[/] {escape(str(p))}" + (f" [dim]({escape(p.hint)})[/]" if p.hint else ""))
        action = prompter.select("What now?", ACTIONS_BAD if problems else ACTIONS_OK, "change" if problems else "write")
        if action == "write":
            return project
        if action == "cancel":
            return None
        options = [Option(q.key, f"{q.label}: {show(w.answers.get(q.key)) or '-'}") for q in w.active()]
        key = prompter.select("Which answer?", options, options[0].value)
        w.ask(prompter, BY_KEY[key])
        w.ask_missing(prompter)


def show_summary(w: Wizard, project: Project) -> None:
    from rich.table import Table

    from sftkit.console import console, escape

    table = Table(title="sftkit init", title_justify="left", show_header=False, box=None, pad_edge=False)
    table.add_column(style="bold")
    table.add_column(overflow="fold")
    for label, value in w.summary_rows():
        table.add_row(label, escape(value))
    if _uses_hub(w.answers):
        table.add_row("HF token", hf_token_status())
    console.print(table)
    for note in project.notes:
        console.print(f"  [dim]{escape(note)}[/]")
    changed = sum(len(v) if isinstance(v, dict) else 1 for v in project.values.values())
    console.print(f"[dim]{changed} value(s) differ from preset {project.preset!r}[/]")


def _uses_hub(answers: dict[str, Any]) -> bool:
    for key in ("model", "dataset"):
        value = answers.get(key)
        if isinstance(value, str) and not value.startswith(BUILTIN_PREFIX) and not Path(value).expanduser().exists():
            return True
    return answers.get("tracking") == "trackio-space"


class QuestionaryPrompter:
    """The real prompts (questionary). ``input``/``output`` are prompt_toolkit's, for tests and other streams.

    Prompts are written to stderr by default: stdout is for data. Ctrl-C raises KeyboardInterrupt.
    """

    def __init__(self, input: Any = None, output: Any = None) -> None:
        self.input = input
        self.output = output

    def _io(self) -> dict[str, Any]:
        if self.output is None:
            from prompt_toolkit.output import create_output

            self.output = create_output(stdout=sys.stderr)
        io = {"output": self.output}
        if self.input is not None:
            io["input"] = self.input
        return io

    def select(self, message: str, options: list[Option], default: str) -> str:
        import questionary

        choices = [questionary.Choice(o.title, value=o.value) for o in options]
        return _ask(questionary.select(message, choices=choices, default=default, **self._io()))

    def text(self, message: str, default: str, validate: Callable[[str], str | None]) -> str:
        import questionary

        def check(text: str) -> bool | str:
            error = validate(text)
            return True if error is None else error

        return _ask(questionary.text(message, default=default, validate=check, **self._io()))

    def confirm(self, message: str, default: bool) -> bool:
        import questionary

        return _ask(questionary.confirm(message, default=default, **self._io()))


def _ask(question: Any) -> Any:
    """Ask; Ctrl-C stays a KeyboardInterrupt (exit 130), input ending (Ctrl-D, closed pipe) is a clear error."""
    try:
        return question.unsafe_ask()
    except EOFError:
        raise SftkitError("the input ended before every question was answered: nothing was written") from None


# ------------------------------------------------------------------------------------------ the command


@dataclass
class InitResult:
    path: Path
    project: Project | None
    """None when the user cancelled (nothing written)."""
    start_training: bool = False


def no_terminal() -> ConfigError:
    return ConfigError(
        "sftkit init asks questions, but there is no terminal to ask them on (stdin is not a TTY)",
        hint="pass --yes to take the preset's values for every answer no flag gives, e.g. `sftkit init --preset tiny --yes`",
    )


def init_project(
    given: dict[str, Any],
    path: Path,
    *,
    yes: bool = False,
    force: bool = False,
    train: bool = False,
    prompter: Prompter | None = None,
    interactive: bool | None = None,
    hardware: tuple[str, str] | None = None,
) -> InitResult:
    """The whole of ``sftkit init`` (minus printing the next commands and starting training).

    ``interactive`` defaults to whether stdin is a terminal; without one and without ``yes`` this fails at
    once instead of waiting for answers that cannot come.
    """
    if interactive is None:
        interactive = prompter is not None or sys.stdin.isatty()
    if not yes and not interactive:
        raise no_terminal()
    path = Path(path)
    w = Wizard(given, hardware=hardware)  # flags are checked before any question is asked
    if not yes:
        prompter = prompter or QuestionaryPrompter()
    if not may_write(path, force=force, prompter=None if yes else prompter):
        return InitResult(path, None)
    if yes:
        w.accept_defaults()
        project = w.project()
        problems = check_text(render(project))
        if problems:
            raise ConfigError.from_problems(problems)
        show_summary(w, project)
    else:
        project = run_interactive(w, prompter)
        if project is None:
            return InitResult(path, None)
    write_project(path, render(project, header=_header(path)))
    start = train
    if interactive and not yes and not train:
        start = bool(prompter and prompter.confirm("Start training now?", False))
    return InitResult(path, project, start)


def may_write(path: Path, *, force: bool, prompter: Prompter | None) -> bool:
    """Whether ``path`` may be (over)written: always when new or with --force; else ask, or fail without a prompter."""
    if not Path(path).exists() or force:
        return True
    if prompter is None:
        raise ConfigError(f"{path} already exists", hint="pass --force to replace it, or --config-path to write elsewhere")
    return bool(prompter.confirm(f"{path} already exists. Replace it?", False))


def _header(path: Path) -> list[str]:
    return [
        "sftkit project file, written by `sftkit init`.",
        f"Check the full config: sftkit train --config {path} --dry-run",
    ]


def train_command(path: Path) -> list[str]:
    return [sys.executable, "-m", "sftkit", "train", "--config", str(path)]


def next_commands(path: Path) -> list[str]:
    return [f"sftkit prepare --config {path}", f"sftkit train --config {path}"]
