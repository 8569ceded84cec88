"""Measuring a run with EleutherAI's lm-evaluation-harness (the ``lm-eval`` package), as the field measures models.

:func:`evaluate_harness` loads the tasks first (a registered name such as ``hellaswag``, or the path of a task
YAML, which may read local files: ``dataset_path: json`` with ``dataset_kwargs.data_files``), so an unknown name
or a dataset that cannot be fetched (offline) is one line before any model is loaded. It then loads the run's
model as ``sftkit eval`` does (a LoRA adapter on its base, the run's dtype, the run's eval batch size) and hands it
to the harness as an ``HFLM`` with the run's tokenizer, whose chat template is the format the run trained with.
Prompts go through that template (the harness's ``apply_chat_template``) unless ``chat_template=False``.

``compare`` evaluates a base model the same way, with the same tokenizer and template. The figures come back as an
:class:`sftkit.evaluation.EvalResult` (``<task>.<metric>``, e.g. ``arc_easy.acc``), so the table and the JSON are
the ones ``sftkit eval`` prints for its own figures, and are written to ``<run>/eval/harness_<tasks>.json`` with
every scored row (the harness's per-row log-likelihoods or answers and metric values).
"""

from __future__ import annotations

import contextlib
import difflib
import json
import logging
import re
from pathlib import Path
from typing import Any

from sftkit import layout
from sftkit.console import status
from sftkit.errors import EXIT_USAGE, SftkitError


def evaluate_harness(
    target: str,
    tasks: list[str],
    *,
    compare: str | None = None,
    template: str | None = None,
    batch_size: int | None = None,
    num_fewshot: int | None = None,
    limit: int | None = None,
    chat_template: bool = True,
    output: Path | None = None,
    write: bool = True,
    console: Any = None,
) -> Any:
    """Run the harness ``tasks`` on ``target`` (and ``compare``); see the module docstring. Returns an EvalResult."""
    from sftkit.evaluation import EvalResult, _base_name, _config
    from sftkit.generation import load, release_memory
    from sftkit.runinfo import locate

    specs = [t.strip() for t in tasks if t and t.strip()]
    if not specs:
        raise SftkitError(
            "no harness task given",
            hint="name one or more, comma-separated: --harness arc_easy,hellaswag (or a task YAML file)",
            exit_code=EXIT_USAGE,
        )
    if batch_size is not None and batch_size < 1:
        raise SftkitError(
            f"batch_size must be at least 1, got {batch_size}", exit_code=EXIT_USAGE
        )
    if limit is not None and limit < 1:
        raise SftkitError(
            f"limit must be at least 1, got {limit}", exit_code=EXIT_USAGE
        )
    _lm_eval()
    info = locate(target)
    cfg = _config(info, target, template)
    batch_size = batch_size or cfg.train.eval_batch_size or cfg.train.batch_size or 8
    base_name = _base_name(compare, info) if compare else None
    with status(console, "loading the harness tasks…"), _quiet(console):
        manager, built, names = _load_tasks(specs)
    dtype = _run_dtype(cfg)
    with status(console, "loading the model…"):
        model = load(target, template=cfg.data.template, info=info, dtype=dtype)
    _use_trained_template(model)
    label = target
    result = _run(
        model,
        label,
        built,
        manager,
        names,
        batch_size,
        num_fewshot,
        limit,
        chat_template,
        console,
    )
    if base_name:
        tokenizer, resolved = model.tokenizer, model.resolved_template
        del model
        release_memory()
        with status(console, f"loading the base model {base_name}…"):
            base = load(
                base_name, template=cfg.data.template, tokenizer=tokenizer, dtype=dtype
            )
        base.system_prompt, base._resolved = cfg.data.system_prompt, resolved
        result.base = _run(
            base,
            base_name,
            built,
            manager,
            names,
            batch_size,
            num_fewshot,
            limit,
            chat_template,
            console,
        )
        del base
        release_memory()
    if write and (output is not None or info.run_dir is not None):
        from sftkit.yamlio import atomic_write_text

        result.path = (
            Path(output) if output else layout.eval_file(info.run_dir, result.name)
        )  # type: ignore[arg-type]
        atomic_write_text(
            result.path,
            json.dumps(result.as_dict(), indent=2, ensure_ascii=False, default=_plain)
            + "\n",
        )
    assert isinstance(result, EvalResult)
    return result


def _lm_eval() -> Any:
    try:
        import lm_eval
    except ImportError:
        raise SftkitError(
            "--harness needs EleutherAI's lm-evaluation-harness",
            hint="pip install 'sftkit[eval]' (or pip install lm-eval)",
        ) from None
    return lm_eval


@contextlib.contextmanager
def _quiet(console: Any) -> Any:
    """The harness logs every step and draws its own progress bars: keep them off the user's terminal."""
    from sftkit.gguf import hidden_stderr

    logger = logging.getLogger("lm_eval")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with hidden_stderr(console):
            yield
    finally:
        logger.setLevel(level)


def _run_dtype(cfg: Any) -> str | None:
    """The dtype the run's weights are used in: ``model.dtype``, else its mixed precision, else float32 (None)."""
    if cfg.model.dtype != "auto":
        return cfg.model.dtype
    if cfg.train.bf16:
        return "bfloat16"
    if cfg.train.fp16:
        return "float16"
    return None


def _use_trained_template(model: Any) -> None:
    """The harness renders chats with ``tokenizer.apply_chat_template``: make that the template sftkit renders
    prompts with (the run's trained format, or ``--template``)."""
    from sftkit.data.chat_template import trained_chat_template

    model.tokenizer.chat_template = trained_chat_template(
        model.resolved_template, model.system_prompt
    )


# --------------------------------------------------------------------------- tasks


def _load_tasks(specs: list[str]) -> tuple[Any, list[Any], list[str]]:
    """(the TaskManager, the built tasks and groups, a name for each spec); one line for a spec that fails."""
    from lm_eval.tasks import TaskManager

    paths = [s for s in specs if s.endswith((".yaml", ".yml"))]
    for path in paths:
        if not Path(path).expanduser().is_file():
            raise SftkitError(
                f"harness task file not found: {path}",
                hint="give the path of a task YAML, or a task name such as arc_easy",
                exit_code=EXIT_USAGE,
            )
    # the built-in index (thousands of YAML files) is only read when a task is named, not given as a file
    manager = TaskManager(include_defaults=len(paths) < len(specs))
    built: list[Any] = []
    names: list[str] = []
    for spec in specs:
        loadable = str(Path(spec).expanduser().resolve()) if spec in paths else spec
        try:
            loaded = manager.load([loadable])
        except KeyError:
            close = difflib.get_close_matches(spec, manager.all_tasks, n=3)
            raise SftkitError(
                f"unknown harness task {spec!r}",
                hint=f"did you mean {', '.join(close)}?"
                if close
                else "list them with `lm-eval ls tasks`, or give a task YAML file",
                exit_code=EXIT_USAGE,
            ) from None
        except Exception as e:  # noqa: BLE001 - datasets' and the Hub's errors: one line naming the task
            raise SftkitError(
                f"harness task {spec}: its data cannot be loaded ({_first_line(e)})",
                hint=_data_hint(e),
            ) from None
        children = {c for kids in loaded["group_map"].values() for c in kids}
        tops = [g for n, g in loaded["groups"].items() if n not in children]
        built += tops or list(loaded["tasks"].values())
        names.append(Path(spec).stem if spec in paths else spec)
    return manager, built, names


def _first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[0]}" if text else type(err).__name__


def _data_hint(err: BaseException) -> str:
    from sftkit import hub

    if not hub.hub_reachable():
        return "the Hugging Face Hub is not reachable (offline, or HF_HUB_OFFLINE=1): run once online to cache the task's data, or use a task YAML over local files (dataset_path: json)"
    return "check the task's dataset_path and dataset_kwargs"


# --------------------------------------------------------------------------- running


def _run(
    model: Any,
    label: str,
    built: list[Any],
    manager: Any,
    names: list[str],
    batch_size: int,
    num_fewshot: int | None,
    limit: int | None,
    chat: bool,
    console: Any,
) -> Any:
    from lm_eval import simple_evaluate
    from lm_eval.models.huggingface import HFLM

    from sftkit.evaluation import EvalResult

    with status(console, f"running {', '.join(names)} on {label}…"), _quiet(console):
        lm = HFLM(
            pretrained=model.model, tokenizer=model.tokenizer, batch_size=batch_size
        )
        out = simple_evaluate(
            model=lm,
            tasks=list(built),
            task_manager=manager,
            num_fewshot=num_fewshot,
            limit=limit,
            batch_size=batch_size,
            apply_chat_template=chat,
            fewshot_as_multiturn=chat,
            log_samples=True,
        )
    assert out is not None  # None only on the non-zero ranks of a multi-process run
    metrics: dict[str, Any] = {}
    for section in ("results", "groups"):
        for task, figures in (out.get(section) or {}).items():
            for key, value in figures.items():
                metric, _, filt = key.partition(",")
                if not filt or isinstance(value, (str, bool)):
                    continue
                metrics[
                    f"{task}.{metric}" + (f"[{filt}]" if filt != "none" else "")
                ] = value
    samples = []
    for task, rows in (out.get("samples") or {}).items():
        for row in rows:
            keep = {
                k: v
                for k, v in row.items()
                if k
                not in ("arguments", "resps", "doc_hash", "prompt_hash", "target_hash")
            }
            samples.append({"task": task, **keep})
    rows = sum(
        int(n.get("effective", 0)) for n in (out.get("n-samples") or {}).values()
    )
    data = (
        "lm-evaluation-harness: "
        + ", ".join(names)
        + (" (chat template)" if chat else " (plain prompts)")
    )
    name = (
        "harness_" + re.sub(r"[^A-Za-z0-9._-]+", "_", "+".join(names)).strip("._")[:120]
    )
    return EvalResult(
        label,
        data,
        name,
        rows,
        metrics,
        json.loads(json.dumps(samples, default=_plain)),
    )


def _plain(value: Any) -> Any:
    """What ``json`` makes of the harness's numpy numbers and tuples."""
    if hasattr(value, "item"):
        return value.item()
    if hasattr(value, "tolist"):
        return value.tolist()
    return str(value)


__all__ = ["evaluate_harness"]
