"""Evaluating a run or a model: loss and perplexity on the trained tokens, and generation metrics.

:func:`evaluate` measures, on a run's validation split (its prepared folder, prepared again from its
``sftkit.yaml`` when missing or stale) or on a data file prepared with the run's template and masking:

- ``eval_loss``: the mean cross-entropy per trained token (the tokens training computed its loss on:
  with ``data.completion_only_loss`` the answers only), over all rows; ``eval_perplexity`` is its exp;
  ``eval_runtime`` (seconds of that pass) and ``eval_samples_per_second``. For a DPO run the trained
  tokens are the chosen answers', and ``eval_preference_accuracy`` is how often the model gives the chosen
  answer a higher log-probability than the rejected one. For a KTO run they are the desirable answers', and
  ``eval_undesirable_loss`` is the same measure over the undesirable ones;
- when rows carry a reference answer (the last assistant message after a prompt): greedy generation for
  each prompt and ``exact_match`` (stripped texts equal), ``contains`` (the stripped reference occurs in
  the response), ``chrf`` and ``bleu`` (sacrebleu corpus scores, 0-100; BLEU with effective order, so
  that one-word answers do not zero it), ``generated`` (rows generated for) and ``generation_runtime``.

``compare`` evaluates a base model on exactly the same rows, prompts and tokenizer. Results are written
as JSON (atomically) to ``<run>/eval/<name>.json`` with every prediction. Nothing is printed unless a
console is given (for progress).
"""

from __future__ import annotations

import json
import re
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sftkit import layout
from sftkit.console import status
from sftkit.errors import EXIT_USAGE, SftkitError
from sftkit.generation import LoadedModel, load, release_memory
from sftkit.runinfo import RunInfo, locate
from sftkit.sampling import SamplingOptions

#: ``compare`` value meaning "the model the run started from"
BASE = "base"


@dataclass
class EvalRows:
    """What is evaluated: tokenised rows (as training tokenised them) and their conversations."""

    name: str
    """Name of the results file (``validation``, the data file's stem, ...)."""
    description: str
    trainer_type: str
    rows: list[dict[str, Any]]
    """SFT: input_ids, labels, messages; DPO: prompt_ids, chosen_ids, rejected_ids, messages; KTO: prompt_ids,
    completion_ids, label, messages."""

    def references(self) -> list[tuple[list[dict[str, Any]], str]]:
        """(prompt messages, reference answer) of each row that has both."""
        out = []
        for row in self.rows:
            messages = json.loads(row["messages"]) if isinstance(row["messages"], str) else row["messages"]
            if row.get("label") is False:  # a KTO answer labelled undesirable is no reference to match
                continue
            if len(messages) >= 2 and messages[-1]["role"] == "assistant" and any(m["role"] == "user" for m in messages[:-1]):
                out.append((messages[:-1], messages[-1]["content"]))
        return out


@dataclass(eq=False)
class EvalResult(Mapping):
    """The figures for one model; ``base`` holds the compared base model's, when asked for.

    It reads as a mapping of the figures too: ``result["eval_loss"]``, and ``result["base"]`` for the base
    model's figures (a dict) when one was compared.
    """

    model: str
    data: str
    name: str
    rows: int
    metrics: dict[str, float]
    predictions: list[dict[str, Any]] = field(default_factory=list)
    base: "EvalResult | None" = None
    path: Path | None = None
    """Where the results JSON was written (None: not written)."""

    def as_dict(self, predictions: bool = True) -> dict[str, Any]:
        out: dict[str, Any] = {"model": self.model, "data": self.data, "name": self.name, "rows": self.rows, "metrics": self.metrics}
        if self.base is not None:
            out["base"] = self.base.as_dict(predictions)
        if self.path is not None:
            out["written"] = str(self.path)
        if predictions:
            out["predictions"] = self.predictions
        return out

    def figures(self) -> dict[str, Any]:
        out: dict[str, Any] = dict(self.metrics)
        if self.base is not None:
            out["base"] = dict(self.base.metrics)
        return out

    def __getitem__(self, key: str) -> Any:
        return self.figures()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.figures())

    def __len__(self) -> int:
        return len(self.figures())


def evaluate(
    target: str,
    *,
    data: str | None = None,
    split: str | None = None,
    compare: str | None = None,
    template: str | None = None,
    batch_size: int | None = None,
    max_new_tokens: int | None = None,
    generate: bool = True,
    output: Path | None = None,
    write: bool = True,
    trust_formatting_func: bool = False,
    console: Any = None,
    harness: list[str] | None = None,
    num_fewshot: int | None = None,
    limit: int | None = None,
    chat_template: bool = True,
) -> EvalResult:
    """Evaluate a run (or a model folder / Hub id, with ``data``); see the module docstring.

    ``harness``: lm-evaluation-harness tasks (names or task YAML files) to run instead, with ``num_fewshot``,
    ``limit`` (rows per task) and ``chat_template`` (prompts through the trained format); see :mod:`sftkit.harness`.

    ``compare``: a base model (Hub id, folder, ``builtin:tiny``) or ``"base"`` for the model the run started
    from. ``batch_size``: rows per forward pass and per generation batch (default: the run's eval batch
    size). ``max_new_tokens``: the generation budget (default: the longest reference + 16 tokens).
    ``generate=False`` skips the generation metrics. Results go to ``output`` or ``<run>/eval/<name>.json``
    unless ``write`` is False. ``trust_formatting_func``: the run's ``data.formatting_func`` may be imported and
    run (without it such a run is refused before anything is loaded).
    """
    if harness or num_fewshot is not None or limit is not None or not chat_template:
        return _harness(target, harness, data, split, generate, max_new_tokens, compare, template, batch_size, num_fewshot, limit, chat_template, output, write, console)
    info = locate(target)
    if data is None and info.run_dir is None:
        raise SftkitError(f"{target} is not a run folder, so it has no validation split", hint="give rows to evaluate on as data (sftkit eval --data FILE)")
    cfg = _config(info, target, template).trusting_formatting_func(trust_formatting_func)
    if cfg.data.formatting_func:  # the rows are prepared with it: refused now rather than after loading the model
        from sftkit.data.custom import require_trust

        require_trust(cfg.data.formatting_func, cfg.formatting_func_trusted)
    if batch_size is not None and batch_size < 1:
        raise SftkitError(f"batch_size must be at least 1, got {batch_size}", exit_code=EXIT_USAGE)
    batch_size = batch_size or cfg.train.eval_batch_size or cfg.train.batch_size or 8
    base_name = _base_name(compare, info) if compare else None
    with status(console, "loading the model…"):
        model = load(target, template=cfg.data.template, info=info)
    with status(console, "preparing the evaluation data…"):
        rows = eval_rows(cfg, info, model.tokenizer, data=data, split=split)
    result = _measure(model, rows, target, batch_size, max_new_tokens, generate, console)
    if base_name:
        tokenizer, resolved = model.tokenizer, model.resolved_template
        del model
        release_memory()
        with status(console, f"loading the base model {base_name}…"):
            base = load(base_name, template=cfg.data.template, tokenizer=tokenizer)
        base.system_prompt, base._resolved = cfg.data.system_prompt, resolved
        _check_vocab(base, rows, base_name)
        result.base = _measure(base, rows, base_name, batch_size, max_new_tokens, generate, console)
        del base
        release_memory()
    if write and (output is not None or info.run_dir is not None):
        result.path = Path(output) if output else layout.eval_file(info.run_dir, rows.name)  # type: ignore[arg-type]
        from sftkit.yamlio import atomic_write_text

        atomic_write_text(result.path, json.dumps(result.as_dict(), indent=2, ensure_ascii=False) + "\n")
    return result


def evaluate_loaded(
    model: LoadedModel,
    *,
    data: Any = None,
    split: str | None = None,
    batch_size: int | None = None,
    trust_formatting_func: bool = False,
) -> dict[str, float]:
    """The loss figures (eval_loss, eval_perplexity, eval_runtime, eval_samples_per_second, ...) of a model
    already loaded, on rows prepared exactly as :func:`evaluate` prepares them; nothing is written.

    ``data``: None (the run's validation split), a data file, a folder or Hub id, or the rows themselves (a
    ``datasets.Dataset`` or a list of dicts in any format ``prepare`` reads).
    """
    info = model.info
    if data is None and info.run_dir is None:
        raise SftkitError(
            f"{info.model_dir} is not a run folder, so it has no validation split",
            hint="give rows to evaluate on: a data file, a datasets.Dataset or a list of rows",
        )
    template = model.template if model.template != info.template else None
    cfg = _config(info, str(info.model_dir), template).trusting_formatting_func(trust_formatting_func)
    if cfg.data.formatting_func:
        from sftkit.data.custom import require_trust

        require_trust(cfg.data.formatting_func, cfg.formatting_func_trusted)
    if batch_size is not None and batch_size < 1:
        raise SftkitError(f"batch_size must be at least 1, got {batch_size}", exit_code=EXIT_USAGE)
    batch_size = batch_size or cfg.train.eval_batch_size or cfg.train.batch_size or 8
    with tempfile.TemporaryDirectory(prefix="sftkit-eval-rows-") as tmp:
        if data is not None and not isinstance(data, (str, Path)):
            data = _rows_file(data, Path(tmp) / "eval_dataset.jsonl")
        rows = eval_rows(cfg, info, model.tokenizer, data=str(data) if data is not None else None, split=split)
    return loss_metrics(model, rows, batch_size)


def _rows_file(rows: Any, path: Path) -> Path:
    """Rows given in memory (a ``datasets.Dataset``, a list of dicts) written as JSON lines, to be prepared like a file."""
    if hasattr(rows, "to_list"):
        rows = rows.to_list()
    if isinstance(rows, Mapping) or not isinstance(rows, (list, tuple)):
        raise SftkitError(
            f"eval_dataset is a {type(rows).__name__}, not rows",
            hint="give a data file, a datasets.Dataset or a list of dicts",
            exit_code=EXIT_USAGE,
        )
    with path.open("w", encoding="utf-8") as f:
        for n, row in enumerate(rows, 1):
            try:
                f.write(json.dumps(row, ensure_ascii=False) + "\n")
            except (TypeError, ValueError) as e:
                raise SftkitError(f"eval_dataset row {n} cannot be written as JSON ({e})", hint="give rows of text, numbers, lists and dicts") from None
    return path


def _harness(target: str, harness: list[str] | None, data: str | None, split: str | None, generate: bool, max_new_tokens: int | None, compare: str | None, template: str | None,
             batch_size: int | None, num_fewshot: int | None, limit: int | None, chat_template: bool, output: Path | None, write: bool, console: Any) -> EvalResult:  # fmt: skip
    """:func:`evaluate` with harness tasks: the options of sftkit's own measures do not apply."""
    if not harness:
        raise SftkitError("num_fewshot, limit and chat_template=False apply to harness tasks", hint="name the tasks: --harness TASK[,TASK...]", exit_code=EXIT_USAGE)
    for given, name in ((data is not None, "data"), (split is not None, "split"), (not generate, "generate=False"), (max_new_tokens is not None, "max_new_tokens")):
        if given:
            raise SftkitError(f"{name} applies to sftkit's own measures, not to harness tasks", hint="run them in two commands", exit_code=EXIT_USAGE)
    from sftkit.harness import evaluate_harness

    return evaluate_harness(
        target, harness, compare=compare, template=template, batch_size=batch_size, num_fewshot=num_fewshot, limit=limit,
        chat_template=chat_template, output=output, write=write, console=console,
    )  # fmt: skip


# --------------------------------------------------------------------------- config and rows


def _config(info: RunInfo, target: str, template: str | None) -> Any:
    """The run's resolved config (paths made to point into the run folder), or one for a bare model.

    Values reach the config as the types they are (never re-encoded as ``--set`` text), so a template that
    starts with ``#`` or a system prompt holding ``": "`` arrive as written.
    """
    from sftkit.resolve import resolve_config

    overrides: dict[str, Any] = {"data.template": template} if template else {}
    if info.run_dir is not None and layout.run_config(info.run_dir).exists():
        run_dir = Path(info.run_dir)
        cfg = resolve_config(config_file=layout.run_config(run_dir), overrides=overrides, check=False).config
        d = cfg.data
        return cfg.model_copy(
            update={
                "train": cfg.train.model_copy(update={"output_dir": str(run_dir)}),
                "data": d.model_copy(update={"prepared_dir": d.prepared_dir or str(layout.prepared_dir(run_dir))}),
            }
        )
    model_name = str(info.model_dir) if info.is_local else target
    meta = info.metadata
    if meta.get("model") and info.is_adapter:
        model_name = meta["model"]
    overrides = {
        "model.name": model_name,
        "trainer_type": meta.get("trainer_type") or "sft",
        "data.template": template or meta.get("template") or "auto",
    }
    if meta.get("system_prompt"):
        overrides["data.system_prompt"] = meta["system_prompt"]
    if meta.get("response_marker") and not template:
        overrides["data.response_marker"] = meta["response_marker"]
    if meta.get("chat_template_kwargs") and not template:
        overrides["data.chat_template_kwargs"] = meta["chat_template_kwargs"]
    return resolve_config(overrides=overrides, check=False).config


def eval_rows(cfg: Any, info: RunInfo, tokenizer: Any, *, data: str | None = None, split: str | None = None) -> EvalRows:
    """The rows to evaluate: the run's validation split, or ``data`` prepared exactly as training prepared its data."""
    from sftkit.data.prepare import prepare_data

    if data is None:
        if not cfg.has_validation:
            raise SftkitError(
                f"the run in {info.run_dir} has no validation data",
                hint="give rows to evaluate on as data (sftkit eval --data FILE), or train with data.validation_fraction or data.validation_split",
            )
        prepared = prepare_data(cfg, tokenizer=_training_tokenizer(cfg, tokenizer))
        assert prepared.validation is not None
        return EvalRows("validation", f"validation split of {info.run_dir}", cfg.trainer_type, prepared.validation.to_list())
    d = cfg.data
    data_cfg = d.model_copy(
        update={
            "dataset": data,
            "train_file": None,
            "split": split or "train",
            "validation_file": None,
            "validation_split": None,
            "validation_fraction": 0.0,
            "max_rows": None,
            "drop_duplicates": False,
        }
    )
    with tempfile.TemporaryDirectory(prefix="sftkit-eval-") as tmp:
        prepared = prepare_data(cfg.model_copy(update={"data": data_cfg}), tokenizer=tokenizer, output=Path(tmp) / layout.PREPARED, overwrite=True)
        rows = prepared.train.to_list()
    return EvalRows(_name_of(data, split), data + (f" [{split}]" if split else ""), cfg.trainer_type, rows)


def _training_tokenizer(cfg: Any, fallback: Any) -> Any:
    """The tokenizer training prepared the data with (so the prepared folder is reused), else the run's copy."""
    try:
        from sftkit.modeling import tokenizer_for

        return tokenizer_for(cfg)
    except (SftkitError, OSError):
        return fallback


def _name_of(data: str, split: str | None) -> str:
    path = Path(data)
    name = path.name
    for suffix in (".gz", ".jsonl", ".ndjson", ".json", ".csv", ".tsv", ".parquet"):
        name = name.removesuffix(suffix)
    if not path.exists() and name == path.name:  # no data-file suffix and not on disk: a Hub id
        name = data
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "data"
    return f"{name}.{split}" if split else name


def _base_name(compare: str, info: RunInfo) -> str:
    if compare != BASE:
        return compare
    base = info.base_model
    if not base:
        raise SftkitError(f"{info.model_dir} does not record the model it started from", hint="name the base model to compare with (sftkit eval --compare ORG/NAME)")
    return base


def _check_vocab(model: LoadedModel, rows: EvalRows, name: str) -> None:
    size = model.model.get_input_embeddings().num_embeddings
    keys = {"sft": ("input_ids",), "dpo": ("prompt_ids", "chosen_ids", "rejected_ids"), "kto": ("prompt_ids", "completion_ids")}[rows.trainer_type]
    top = max((max(r[k]) for r in rows.rows for k in keys if r[k]), default=0)
    if top >= size:
        raise SftkitError(
            f"{name} has {size} token embeddings, but the run's tokenizer uses id {top}",
            hint="compare with the model the run was fine-tuned from",
        )


# --------------------------------------------------------------------------- measuring


def _measure(model: LoadedModel, rows: EvalRows, label: str, batch_size: int, max_new_tokens: int | None, generate: bool, console: Any) -> EvalResult:
    from sftkit.progress import task

    pairs = rows.trainer_type == "dpo"  # the chosen and the rejected answer of each row: two sequences
    with task(console, f"computing the loss of {label}", total=len(rows.rows) * (2 if pairs else 1), unit="sequences" if pairs else "rows"):
        metrics = loss_metrics(model, rows, batch_size)  # counted batch by batch into the task shown
    predictions: list[dict[str, Any]] = []
    refs = rows.references() if generate else []
    if refs:
        with task(console, f"generating answers with {label}", total=len(refs), unit="answers") as shown:
            gen_metrics, predictions = generation_metrics(model, refs, batch_size, max_new_tokens, progress=shown.advance)
        metrics.update(gen_metrics)
    return EvalResult(label, rows.description, rows.name, len(rows.rows), metrics, predictions)


def loss_metrics(model: LoadedModel, rows: EvalRows, batch_size: int) -> dict[str, float]:
    """eval_loss (mean cross-entropy per trained token), eval_perplexity, eval_runtime, eval_samples_per_second."""
    from sftkit.scoring import loss_figures

    pad = model.tokenizer.pad_token_id if model.tokenizer.pad_token_id is not None else 0
    return loss_figures(model.model, rows.rows, rows.trainer_type, batch_size, pad)


def generation_metrics(
    model: LoadedModel,
    refs: list[tuple[list[dict[str, Any]], str]],
    batch_size: int,
    max_new_tokens: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> tuple[dict[str, float], list[dict[str, Any]]]:
    """Greedy answers to each prompt against its reference: exact match, contains, chrF and BLEU (sacrebleu).
    ``progress(n)`` is called as each batch's ``n`` answers are done."""
    import sacrebleu

    prompts = [p for p, _ in refs]
    references = [r.strip() for _, r in refs]
    if max_new_tokens is None:
        longest = max(len(model.tokenizer(r, add_special_tokens=False)["input_ids"]) for r in references)
        max_new_tokens = longest + 16
    started = time.perf_counter()
    responses = []
    for response in model.generate_iter(prompts, batch_size=batch_size, options=SamplingOptions(max_new_tokens=max_new_tokens)):
        responses.append(response)
        if progress is not None:
            progress(1)
    runtime = time.perf_counter() - started
    exact = [resp.strip() == ref for resp, ref in zip(responses, references, strict=True)]
    contains = [bool(ref) and ref in resp for resp, ref in zip(responses, references, strict=True)]
    n = len(references)
    metrics = {
        "exact_match": sum(exact) / n,
        "contains": sum(contains) / n,
        "chrf": sacrebleu.corpus_chrf(responses, [references]).score,
        "bleu": sacrebleu.corpus_bleu(responses, [references], use_effective_order=True).score,
        "generated": n,
        "generation_runtime": round(runtime, 4),
    }
    predictions = [
        {"prompt": p, "reference": ref, "response": resp, "exact_match": e}
        for p, ref, resp, e in zip(prompts, references, responses, exact, strict=True)
    ]
    return metrics, predictions



__all__ = ["EvalResult", "EvalRows", "eval_rows", "evaluate", "evaluate_loaded", "generation_metrics", "loss_metrics"]
