"""Rendering and tokenising: cleaned examples -> token ids and loss masks, in chunks, optionally in processes.

Each example is rendered with the template, tokenised (:mod:`sftkit.data.tokenize`) and cut to the length
limit (``data.too_long=truncate``) or dropped (``too_long=drop``). Rows are encoded in order until
``data.max_rows`` are kept; what is left over is counted as ``capped``, not dropped.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sftkit.data.clean import Example
from sftkit.data.drops import InvalidRow, Reason, Tally
from sftkit.data.templates import (
    Template,
    render_conversation,
    render_pair,
    render_text,
    tool_problem,
)
from sftkit.data.tokenize import (
    encode_pairs,
    encode_sft,
    encode_unpaired,
    has_trained_tokens,
    truncate_pair,
    truncate_sft,
    truncate_unpaired,
)
from sftkit.data.turns import uses_tools
from sftkit.errors import DataError

if TYPE_CHECKING:  # pragma: no cover
    from sftkit.config import RunConfig

#: examples per chunk (a worker's unit of work)
CHUNK = 512

#: what encoding one example gives: ("keep", row) | ("drop", (Reason, message)) | ("invalid", message)
Result = tuple[str, Any]


@dataclass
class Job:
    """What a worker needs to encode chunks (module-level so worker processes can use it)."""

    tokenizer: Any
    template: Template
    trainer_type: str
    completion_only: bool
    max_seq_length: int
    max_prompt_length: int
    max_length: int
    drop_too_long: bool

    @classmethod
    def for_config(cls, cfg: RunConfig, tokenizer: Any, template: Template) -> Job:
        lengths = cfg.kto if cfg.trainer_type == "kto" else cfg.dpo
        return cls(
            tokenizer,
            template,
            cfg.trainer_type,
            cfg.data.completion_only_loss,
            cfg.model.max_seq_length,
            lengths.max_prompt_length,
            lengths.max_length,
            cfg.data.too_long == "drop",
        )


_WORKER_JOB: Job | None = None


def _init_worker(job: Job) -> None:
    global _WORKER_JOB
    _WORKER_JOB = job


def _encode_in_worker(chunk: list[Example]) -> list[Result]:
    assert _WORKER_JOB is not None
    return encode_chunk(_WORKER_JOB, chunk)


def encode_chunk(job: Job, chunk: list[Example]) -> list[Result]:
    """Each example -> ("keep", row) | ("drop", (reason, message)) | ("invalid", message); a kept row notes truncation."""
    results: list[Result] = [("invalid", "")] * len(chunk)
    rendered, index = [], []
    for k, ex in enumerate(chunk):
        try:
            rendered.append(_render(job, ex.data))
            index.append(k)
        except InvalidRow as e:
            results[k] = ("invalid", str(e))
    if job.trainer_type == "dpo":
        encoded = encode_pairs(rendered, job.tokenizer)
        for k, (texts, enc) in zip(index, zip(rendered, encoded, strict=True), strict=True):
            cut_enc, cut = truncate_pair(enc, job.max_prompt_length, job.max_length)
            if cut and job.drop_too_long:
                longest = len(enc.prompt_ids) + max(len(enc.chosen_ids), len(enc.rejected_ids))
                message = (
                    f"prompt {len(enc.prompt_ids)} tokens (dpo.max_prompt_length={job.max_prompt_length}), "
                    f"prompt + response {longest} (dpo.max_length={job.max_length})"
                )
                results[k] = ("drop", (Reason.TOO_LONG, message))
                continue
            ex = chunk[k].data
            results[k] = (
                "keep",
                {
                    "prompt_ids": cut_enc.prompt_ids,
                    "chosen_ids": cut_enc.chosen_ids,
                    "rejected_ids": cut_enc.rejected_ids,
                    "prompt": texts[0],
                    "chosen": texts[1],
                    "rejected": texts[2],
                    "messages": json.dumps([*ex["prompt"], {"role": "assistant", "content": ex["chosen"]}], ensure_ascii=False),
                    "_truncated": cut,
                    "_merge": enc.boundary_merge,
                },
            )
        return results
    if job.trainer_type == "kto":
        return _encode_unpaired(job, chunk, rendered, index, results)
    encoded = encode_sft(rendered, job.tokenizer, job.completion_only)
    for k, enc in zip(index, encoded, strict=True):
        cut_enc, cut = truncate_sft(enc, job.max_seq_length)
        length = f"{len(enc.input_ids)} tokens, model.max_seq_length={job.max_seq_length}"
        if cut and job.drop_too_long:
            results[k] = ("drop", (Reason.TOO_LONG, length))
            continue
        if not has_trained_tokens(cut_enc):
            results[k] = ("drop", (Reason.PROMPT_TOO_LONG, length) if cut else (Reason.NO_TRAINED_TOKENS, None))
            continue
        ex = chunk[k].data
        messages = ex["messages"] if "messages" in ex else [{"role": "assistant", "content": ex["text"]}]
        results[k] = (
            "keep",
            {
                "input_ids": cut_enc.input_ids,
                "labels": cut_enc.labels,
                "messages": json.dumps(messages, ensure_ascii=False),
                "_truncated": cut,
                "_merge": enc.boundary_merge,
            },
        )
    return results


def _encode_unpaired(job: Job, chunk: list[Example], rendered: list[Any], index: list[int], results: list[Result]) -> list[Result]:
    """KTO rows: prompt ids (masked) and completion ids (the answer the label judges, ending in EOS), and the label."""
    for k, (texts, enc) in zip(index, zip(rendered, encode_unpaired(rendered, job.tokenizer), strict=True), strict=True):
        cut_enc, cut = truncate_unpaired(enc, job.max_prompt_length, job.max_length)
        if cut and job.drop_too_long:
            message = (
                f"prompt {len(enc.prompt_ids)} tokens (kto.max_prompt_length={job.max_prompt_length}), "
                f"prompt + response {len(enc.prompt_ids) + len(enc.completion_ids)} (kto.max_length={job.max_length})"
            )
            results[k] = ("drop", (Reason.TOO_LONG, message))
            continue
        if not cut_enc.completion_ids:
            results[k] = ("drop", (Reason.NO_TRAINED_TOKENS, None))
            continue
        ex = chunk[k].data
        results[k] = (
            "keep",
            {
                "prompt_ids": cut_enc.prompt_ids,
                "completion_ids": cut_enc.completion_ids,
                "label": ex["label"],
                "prompt": texts[0],
                "completion": texts[1],
                "messages": json.dumps([*ex["prompt"], {"role": "assistant", "content": ex["completion"]}], ensure_ascii=False),
                "_truncated": cut,
                "_merge": enc.boundary_merge,
            },
        )
    return results


def _render(job: Job, ex: dict[str, Any]) -> Any:
    if job.trainer_type == "dpo":
        p1, chosen = render_pair(ex["prompt"], ex["chosen"], job.tokenizer, job.template)
        p2, rejected = render_pair(ex["prompt"], ex["rejected"], job.tokenizer, job.template)
        if p1 != p2:
            raise InvalidRow("the template renders the prompt differently for chosen and rejected")
        return (p1, chosen, rejected)
    if job.trainer_type == "kto":
        return render_pair(ex["prompt"], ex["completion"], job.tokenizer, job.template)
    if "text" in ex:
        return render_text(ex["text"], job.template)
    return render_conversation(ex["messages"], job.tokenizer, job.template, ex.get("tools"))


def check_tool_use(job: Job, examples: list[Example]) -> None:
    """Tool use needs a chat template that renders it: checked on the first example that uses tools (and on the next
    that uses them differently), before anything is encoded. A template that cannot is one error for the whole run."""
    seen: set[tuple[bool, ...]] = set()
    for ex in examples:
        if not uses_tools(ex.data):
            continue
        turns = ex.data.get("messages") or ex.data.get("prompt") or []
        kind = (bool(ex.data.get("tools")), any(m.get("tool_calls") for m in turns), any(m["role"] == "tool" for m in turns))
        if kind in seen:
            continue
        seen.add(kind)
        problem = tool_problem(ex.data, job.tokenizer, job.template)
        if problem:
            used, why = problem
            raise DataError(
                f"{ex.where}: the rows use {used}, but {why}",
                hint="use a tokenizer whose chat template renders tools (Qwen2.5's does), or set model.chat_template to one",
            )


def encode_all(job: Job, examples: list[Example], tally: Tally, target: int | None, num_proc: int | None) -> list[dict[str, Any]]:
    """Encode examples in order until ``target`` rows are kept (None: all); the rest count as ``capped``.
    Each chunk is counted into the step showing progress, if any (:func:`sftkit.progress.current`)."""
    from sftkit.progress import current

    check_tool_use(job, examples)
    shown = current()
    shown.expect(len(examples))  # read so far; encoding may stop early at ``target``
    kept: list[dict[str, Any]] = []
    size = CHUNK if target is None else min(CHUNK, max(64, target))
    chunks = [examples[i : i + size] for i in range(0, len(examples), size)]
    workers = num_proc if num_proc and num_proc > 1 and len(chunks) > 1 else 1
    pool = None
    parallelism = os.environ.get("TOKENIZERS_PARALLELISM")
    if workers > 1:
        import multiprocessing

        os.environ["TOKENIZERS_PARALLELISM"] = "false"  # processes instead of tokenizer threads (and no fork warning)
        pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork"), initializer=_init_worker, initargs=(job,))
    done = 0
    try:
        pos = 0
        while pos < len(chunks) and (target is None or len(kept) < target):
            batch = chunks[pos : pos + workers]
            pos += len(batch)
            results: Iterable[list[Result]]
            results = pool.map(_encode_in_worker, batch) if pool else [encode_chunk(job, c) for c in batch]
            for chunk, chunk_results in zip(batch, results, strict=True):
                for ex, (status, value) in zip(chunk, chunk_results, strict=True):
                    done += 1
                    if status == "invalid":
                        tally.invalid(ex.where, value, ex.row, example=ex.data)
                    elif status == "drop":
                        reason, message = value
                        tally.drop(reason, ex.where, ex.row, message=message, example=ex.data)
                    elif target is not None and len(kept) >= target:
                        tally.capped += 1
                    else:
                        kept.append(value)
                shown.advance(len(chunk))
    finally:
        if pool:
            pool.shutdown()
            if parallelism is None:
                os.environ.pop("TOKENIZERS_PARALLELISM", None)
            else:
                os.environ["TOKENIZERS_PARALLELISM"] = parallelism
    tally.capped += len(examples) - done
    return kept
