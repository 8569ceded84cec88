"""Loading a trained run (full model or LoRA adapter) and generating with the template it was trained with.

The pieces ``sftkit generate``, ``sftkit eval`` and ``sftkit export`` share:

- :func:`locate`: what a ``RUN_OR_MODEL`` argument names (run folder, model folder, checkpoint, Hub id);
- :func:`load`: a :class:`LoadedModel` (a LoRA adapter is loaded on top of its base model) that renders
  prompts exactly as training rendered them and generates in batches with left padding;
- :func:`row_prompt`: the prompt of a data row of any format ``prepare`` knows (the row without its answer);
- :class:`ChatSession`: a multi-turn conversation for ``sftkit generate --chat``.

Nothing here prints; torch and transformers are imported inside the functions that use them.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

from sftkit.errors import EXIT_USAGE, DataError, SftkitError

#: a prompt: a string (one user message) or a list of canonical messages ending with a user/system turn
Prompt = Any


@dataclass
class SamplingOptions:
    """Decoding settings; ``temperature == 0`` means greedy decoding (the default)."""

    max_new_tokens: int = 256
    temperature: float = 0.0
    top_p: float = 1.0
    top_k: int = 0
    repetition_penalty: float = 1.0
    seed: int | None = None

    def check(self) -> None:
        """Raise an SftkitError (exit 2) naming the flag when a value is out of range."""
        bad = None
        if self.max_new_tokens < 1:
            bad = ("--max-new-tokens", "at least 1")
        elif self.temperature < 0:
            bad = ("--temperature", "0 (greedy) or more")
        elif not 0 < self.top_p <= 1:
            bad = ("--top-p", "in (0, 1]")
        elif self.top_k < 0:
            bad = ("--top-k", "0 (off) or more")
        elif self.repetition_penalty <= 0:
            bad = ("--repetition-penalty", "above 0 (1.0 is off)")
        if bad:
            raise SftkitError(f"{bad[0]} must be {bad[1]}", exit_code=EXIT_USAGE)

    @property
    def greedy(self) -> bool:
        return self.temperature == 0

    def generate_kwargs(self) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"max_new_tokens": self.max_new_tokens, "repetition_penalty": self.repetition_penalty}
        if self.temperature > 0:
            kwargs.update(do_sample=True, temperature=self.temperature, top_p=self.top_p, top_k=self.top_k)  # top_k 0: no limit
        else:
            kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        return kwargs


@dataclass
class GenerationStats:
    """Counts of one or more generate calls (pass one to ``generate_iter(stats=...)`` to fill it)."""

    prompts: int = 0
    batches: list[int] = field(default_factory=list)
    """The size of each batch generated, in order."""
    prompt_tokens: int = 0
    new_tokens: int = 0
    """Generated tokens, up to and including each response's stop token (padding not counted)."""
    seconds: float = 0.0
    """Time spent inside ``model.generate``."""

    @property
    def tokens_per_second(self) -> float:
        return self.new_tokens / self.seconds if self.seconds else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "prompts": self.prompts,
            "batches": self.batches,
            "prompt_tokens": self.prompt_tokens,
            "new_tokens": self.new_tokens,
            "seconds": round(self.seconds, 3),
            "tokens_per_second": round(self.tokens_per_second, 2),
        }


@dataclass
class RunInfo:
    """Where a model lives and how it was trained (from its metadata, when it has any)."""

    model_dir: Path | str
    run_dir: Path | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    is_adapter: bool = False

    @property
    def template(self) -> str:
        return self.metadata.get("template") or "auto"

    @property
    def is_local(self) -> bool:
        return isinstance(self.model_dir, Path)

    @property
    def base_model(self) -> str | None:
        """The model an adapter applies to (or a full run started from), when known."""
        if self.metadata.get("model"):
            return self.metadata["model"]
        if self.is_adapter:
            cfg = json.loads((Path(self.model_dir) / "adapter_config.json").read_text(encoding="utf-8"))
            return cfg.get("base_model_name_or_path")
        return None


def locate(path_or_name: str) -> RunInfo:
    """A run folder (``runs/x``), a model folder (``runs/x/model``, a checkpoint, any HF folder) or a Hub id."""
    path = Path(path_or_name).expanduser()
    if not path.exists():
        looks_local = path_or_name.startswith((".", "/", "~")) or path_or_name.count("/") > 1
        if looks_local or (path.parent != Path(".") and path.parent.is_dir()):
            raise SftkitError(
                f"no run or model at {path_or_name}",
                hint="pass a run folder (e.g. runs/tiny), a model folder or a Hub id (org/name)",
            )
        return RunInfo(path_or_name)
    if not path.is_dir():
        raise SftkitError(f"{path_or_name} is a file, not a run or model folder", hint="pass a run folder (e.g. runs/tiny) or a model folder")
    run_dir = None
    model_dir = path
    if (path / "model").is_dir() and not (path / "config.json").exists() and not (path / "adapter_config.json").exists():
        run_dir, model_dir = path, path / "model"
    elif (path / "sftkit.yaml").exists():
        run_dir = path
    elif (path.parent / "sftkit.yaml").exists():
        run_dir = path.parent
    if not ((model_dir / "config.json").exists() or (model_dir / "adapter_config.json").exists()):
        if run_dir is not None:
            hint = f"the run has not finished; resume it with `sftkit train --config {run_dir / 'sftkit.yaml'} --resume`"
        else:
            hint = "pass a run folder (with model/ inside) or a model folder holding config.json"
        raise SftkitError(f"{path_or_name} holds no model (no config.json or adapter_config.json)", hint=hint)
    metadata: dict[str, Any] = {}
    for name in ("sft_metadata.json", "dpo_metadata.json"):
        for folder in (model_dir, run_dir):
            if folder is not None and (folder / name).exists():
                metadata = json.loads((folder / name).read_text(encoding="utf-8"))
                break
        if metadata:
            break
    return RunInfo(model_dir, run_dir, metadata, (model_dir / "adapter_config.json").exists())


# --------------------------------------------------------------------------- prompts of data rows

#: where the answer lives in rows of each answer-carrying format (a missing answer is fine for generate)
_ANSWER_FIELDS = {"alpaca": "output", "instruction": "response", "prompt_completion": "completion", "qa": "answer", "openhermes": "accepted_completion"}
#: a row without its answer column still names its format by these columns
_PROMPT_ONLY = [("instruction", "output"), ("prompt", "completion"), ("question", "answer")]


def _format_of(row: dict[str, Any]) -> str | None:
    from sftkit.data.formats import detect_format

    try:
        return detect_format([row])
    except DataError:
        return None


def row_prompt(row: Any, where: str = "row") -> list[dict[str, Any]]:
    """The prompt of one data row: its canonical messages without the final assistant answer.

    ``row`` is a string (one user message) or an object in any format ``prepare`` knows (alpaca,
    sharegpt, messages, prompt/completion, qa, dpo, ...); the answer column may be missing. A ``text`` row
    is one user message. Raises DataError (with ``where``) for a row that holds no usable prompt.
    """
    from sftkit.data.formats import DroppedRow, InvalidRow, normalize_row

    if isinstance(row, str):
        return [{"role": "user", "content": row}]
    if not isinstance(row, dict):
        raise DataError(f"{where}: expected a JSON object or string, got {type(row).__name__}")
    probe, fmt = row, _format_of(row)
    if fmt is None:  # a row without its answer column: name the format by its prompt column
        for column, answer in _PROMPT_ONLY:
            if column in row:
                probe = {**row, answer: ""}
                fmt = _format_of(probe)
                break
    if fmt is None:
        from sftkit.data.formats import accepted_formats_text

        raise DataError(
            f"{where}: cannot tell the row format from its columns: {', '.join(sorted(row)) or '(none)'}",
            hint=f"accepted formats and their columns: {accepted_formats_text()}",
        )
    if fmt in _ANSWER_FIELDS and probe.get(_ANSWER_FIELDS[fmt]) is None:
        probe = {**probe, _ANSWER_FIELDS[fmt]: ""}
    assert fmt is not None
    try:
        examples = normalize_row(probe, fmt)
    except InvalidRow as e:
        raise DataError(f"{where}: {e}") from None
    except DroppedRow:  # an OpenHermes row marked bad_entry still has a prompt to answer
        examples = normalize_row({**probe, "bad_entry": False}, fmt)
    if len(examples) != 1:
        raise DataError(
            f"{where}: a {fmt} row holds {len(examples)} prompts; generate takes one prompt per row",
            hint="flatten the rows first (one question per row)",
        )
    ex = examples[0]
    if "text" in ex:
        messages = [{"role": "user", "content": ex["text"]}]
    elif "messages" in ex:
        messages = list(ex["messages"])
        if messages and messages[-1]["role"] == "assistant":
            messages = messages[:-1]
    else:
        messages = list(ex["prompt"])
    if not messages or all(m["role"] == "system" for m in messages):
        raise DataError(f"{where}: the row has no user message to answer")
    return messages


# --------------------------------------------------------------------------- the loaded model


@dataclass
class LoadedModel:
    """A model ready to generate: ``generate(["prompt", ...], batch_size=8)``."""

    model: Any
    tokenizer: Any
    info: RunInfo
    template: str = "auto"
    system_prompt: str | None = None
    response_marker: str | None = None
    _resolved: Any = field(default=None, repr=False)

    # -- prompts ---------------------------------------------------------------------------------
    @property
    def resolved_template(self) -> Any:
        """The resolved :class:`~sftkit.data.templates.Template` (ConfigError for an unknown template)."""
        if self._resolved is None:
            from sftkit.data.templates import resolve_template

            self._resolved = resolve_template(self.template, self.tokenizer, self.response_marker)
        return self._resolved

    def render(self, prompt: Prompt) -> str:
        """The exact text the model sees for a prompt (a string is one user message)."""
        from sftkit.data.templates import render_prompt

        messages = [{"role": "user", "content": prompt}] if isinstance(prompt, str) else list(prompt)
        return render_prompt(messages, self.tokenizer, self.resolved_template, system_prompt=self.system_prompt)

    # -- generation ------------------------------------------------------------------------------
    def generate(
        self,
        prompts: Sequence[Prompt],
        *,
        batch_size: int = 8,
        options: SamplingOptions | None = None,
        stats: GenerationStats | None = None,
    ) -> list[str]:
        """Responses in input order, generated ``batch_size`` prompts at a time with left padding."""
        return list(self.generate_iter(prompts, batch_size=batch_size, options=options, stats=stats))

    def generate_iter(
        self,
        prompts: Iterable[Prompt],
        *,
        batch_size: int = 8,
        options: SamplingOptions | None = None,
        stats: GenerationStats | None = None,
    ) -> Iterator[str]:
        """Like :meth:`generate`, yielding each response as its batch finishes; ``prompts`` may be a lazy iterable."""
        if batch_size < 1:
            raise SftkitError(f"--batch-size must be at least 1, got {batch_size}", exit_code=EXIT_USAGE)
        options = options or SamplingOptions()
        options.check()
        if options.seed is not None:
            from transformers import set_seed

            set_seed(options.seed)
        batch: list[str] = []
        for prompt in prompts:
            batch.append(self.render(prompt))
            if len(batch) == batch_size:
                yield from self._generate_batch(batch, options, stats)
                batch = []
        if batch:
            yield from self._generate_batch(batch, options, stats)

    def _generate_batch(self, texts: list[str], options: SamplingOptions, stats: GenerationStats | None) -> list[str]:
        import torch

        tok = self.tokenizer
        enc = tok(texts, return_tensors="pt", padding=True, add_special_tokens=False, padding_side="left")
        enc = {k: v.to(self.model.device) for k, v in enc.items()}
        stop_ids = self.stop_ids()
        started = time.perf_counter()
        with torch.inference_mode():
            out = self.model.generate(**enc, **options.generate_kwargs(), **self._stop_kwargs(), pad_token_id=tok.pad_token_id, eos_token_id=stop_ids)
        new = out[:, enc["input_ids"].shape[1] :].tolist()
        responses = []
        for row in new:
            end = next((i + 1 for i, t in enumerate(row) if t in stop_ids), len(row))
            responses.append(self._decode(row[:end]))
            if stats is not None:
                stats.new_tokens += end
        if stats is not None:
            stats.seconds += time.perf_counter() - started
            stats.prompts += len(texts)
            stats.batches.append(len(texts))
            stats.prompt_tokens += int(enc["attention_mask"].sum())
        return responses

    def _decode(self, ids: list[int]) -> str:
        text = self.tokenizer.decode(ids, skip_special_tokens=True)
        for marker in self._text_stops():
            cut = text.find(marker)
            if cut >= 0:
                text = text[:cut]
        return text.strip()

    def stream(self, prompt: Prompt, options: SamplingOptions | None = None) -> Iterator[str]:
        """Yield text pieces of one response as they are generated (their concatenation, stripped, is the response)."""
        import threading

        from transformers import TextIteratorStreamer

        options = options or SamplingOptions()
        options.check()
        if options.seed is not None:
            from transformers import set_seed

            set_seed(options.seed)
        enc = self.tokenizer([self.render(prompt)], return_tensors="pt", add_special_tokens=False)
        enc = {k: v.to(self.model.device) for k, v in enc.items()}
        streamer = TextIteratorStreamer(self.tokenizer, skip_prompt=True, skip_special_tokens=True)
        kwargs = dict(
            **enc, **options.generate_kwargs(), **self._stop_kwargs(), streamer=streamer, pad_token_id=self.tokenizer.pad_token_id, eos_token_id=self.stop_ids()
        )
        failure: list[BaseException] = []

        def run() -> None:
            import torch

            try:
                with torch.inference_mode():
                    self.model.generate(**kwargs)
            except BaseException as e:  # noqa: BLE001 - handed to the reading thread below
                failure.append(e)
                streamer.end()

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        text, started = "", False
        markers = self._text_stops()
        for piece in streamer:
            if not started:
                piece = piece.lstrip()
                started = bool(piece)
            text += piece
            hit = [text.find(m) for m in markers if m in text]
            if hit:
                keep = min(hit) - (len(text) - len(piece))
                if keep > 0:
                    yield piece[:keep]
                break
            if piece:
                yield piece
        thread.join()
        if failure:
            raise failure[0]

    def stop_ids(self) -> list[int]:
        """Token ids that end a response: EOS, the generation config's EOS ids and end-of-turn markers."""
        ids = {self.tokenizer.eos_token_id}
        gen_eos = getattr(getattr(self.model, "generation_config", None), "eos_token_id", None)
        ids.update(gen_eos if isinstance(gen_eos, list) else [gen_eos])
        vocab = self.tokenizer.get_vocab()
        for marker in ("<|im_end|>", "<|eot_id|>", "<|end|>", *self.resolved_template.end_markers):
            if marker in vocab:
                ids.add(vocab[marker])
        return sorted(i for i in ids if i is not None)

    def _text_stops(self) -> list[str]:
        """End-of-turn markers of the template that are not single tokens (a chatml template on a plain tokenizer)."""
        vocab = self.tokenizer.get_vocab()
        return [m for m in self.resolved_template.end_markers if m and m not in vocab]

    def _stop_kwargs(self) -> dict[str, Any]:
        stops = self._text_stops()
        return {"stop_strings": stops, "tokenizer": self.tokenizer} if stops else {}


class ChatSession:
    """A multi-turn conversation: ``for piece in session.send("hi"): ...``; ``reset()`` forgets it."""

    def __init__(self, model: LoadedModel, options: SamplingOptions | None = None, system: str | None = None) -> None:
        self.model, self.options, self.system = model, options or SamplingOptions(), system
        self.messages: list[dict[str, str]] = []
        self.reset()

    def reset(self) -> None:
        self.messages = [{"role": "system", "content": self.system}] if self.system else []

    def send(self, text: str) -> Iterator[str]:
        """Stream the answer to ``text``; the exchange is kept once the answer is complete."""
        self.messages.append({"role": "user", "content": text})
        pieces: list[str] = []
        try:
            for piece in self.model.stream(self.messages, self.options):
                pieces.append(piece)
                yield piece
        except BaseException:
            self.messages.pop()
            raise
        self.messages.append({"role": "assistant", "content": "".join(pieces).strip()})


# --------------------------------------------------------------------------- loading


def load(
    path_or_name: str,
    *,
    template: str | None = None,
    device: str | None = None,
    dtype: str | None = None,
    info: RunInfo | None = None,
    tokenizer: Any = None,
) -> LoadedModel:
    """Load a run, a model folder or a Hub id (a LoRA adapter is loaded on top of its base model).

    ``template`` overrides the one the run trained with (from its metadata; ``auto`` when unknown).
    ``dtype``: ``float32`` (the default on CPU), ``bfloat16``, ``float16`` or ``auto`` (the checkpoint's own;
    the default on a GPU). ``tokenizer`` replaces the model's own (to run a base model on exactly the
    prompts a fine-tuned run sees). An unknown template is reported before any weights are loaded.
    """
    import torch

    from sftkit.modeling import load_tokenizer, quiet_transformers

    info = info or locate(path_or_name)
    meta = info.metadata
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    if dtype in (None, "auto"):
        torch_dtype: Any = torch.float32 if dtype is None and device == "cpu" else "auto"
    elif dtype in ("float32", "bfloat16", "float16"):
        torch_dtype = getattr(torch, dtype)
    else:
        raise SftkitError(f"unknown dtype {dtype!r}", hint="use float32, bfloat16, float16 or auto", exit_code=EXIT_USAGE)
    with quiet_transformers():
        tokenizer = tokenizer or _tokenizer(info, path_or_name, load_tokenizer)
        trained_template = info.template
        chosen = template or trained_template
        loaded = LoadedModel(
            None,
            tokenizer,
            info,
            template=chosen,
            system_prompt=meta.get("system_prompt"),
            response_marker=meta.get("response_marker") if chosen == trained_template else None,
        )
        loaded.resolved_template  # noqa: B018 - an unknown template fails here, before the weights load
        loaded.model = _model(info, path_or_name, torch_dtype)
        loaded.model.to(device).eval()
    return loaded


def _tokenizer(info: RunInfo, path_or_name: str, load_tokenizer: Any) -> Any:
    model_dir = Path(str(info.model_dir))
    if not info.is_local:
        return load_tokenizer(path_or_name)
    has_own = any((model_dir / f).exists() for f in ("tokenizer.json", "tokenizer_config.json", "tokenizer.model"))
    if has_own or not info.is_adapter:
        return load_tokenizer(str(model_dir))
    return load_tokenizer(info.base_model or str(model_dir))


def _model(info: RunInfo, path_or_name: str, torch_dtype: Any) -> Any:
    from transformers import AutoModelForCausalLM

    from sftkit.hub import local_only, offline_error
    from sftkit.modeling import is_local, resolve_model_path

    try:
        if info.is_adapter:
            from peft import PeftModel

            base_name = info.base_model
            if not base_name:
                raise SftkitError(f"{info.model_dir}: the adapter does not say which base model it applies to", hint="set base_model_name_or_path in adapter_config.json")
            base_source, gguf = resolve_model_path(base_name)
            kwargs: dict[str, Any] = {"gguf_file": gguf} if gguf else {}
            if not is_local(base_name):
                kwargs["local_files_only"] = local_only()
            base = AutoModelForCausalLM.from_pretrained(base_source, dtype=torch_dtype, **kwargs)
            return PeftModel.from_pretrained(base, str(info.model_dir))
        if info.is_local:
            return AutoModelForCausalLM.from_pretrained(str(info.model_dir), dtype=torch_dtype)
        source, gguf = resolve_model_path(path_or_name)
        kwargs = {"gguf_file": gguf} if gguf else {}
        if not is_local(path_or_name):
            kwargs["local_files_only"] = local_only()
        return AutoModelForCausalLM.from_pretrained(source, dtype=torch_dtype, **kwargs)
    except OSError as e:
        raise offline_error("model", info.base_model if info.is_adapter else path_or_name, e) from None


def release_memory() -> None:
    """Give freed models' memory back (GPU memory too) after the last reference to them was dropped."""
    import gc

    gc.collect()
    import torch

    if torch.cuda.is_available():
        torch.cuda.empty_cache()
