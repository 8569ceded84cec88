"""Loading a trained run (full model or LoRA adapter) and generating with the template it was trained with.

The pieces ``sftkit generate``, ``sftkit eval`` and ``sftkit export`` share:

- :func:`load`: a :class:`LoadedModel` (a LoRA adapter is loaded on top of its base model) that renders
  prompts exactly as training rendered them and generates in batches with left padding;
- :class:`ChatSession`: a multi-turn conversation for ``sftkit generate --chat``.

Nothing here prints; torch and transformers are imported inside the functions that use them.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Sequence

from sftkit.errors import EXIT_USAGE, DataError, SftkitError
from sftkit.runinfo import RunInfo, locate
from sftkit.sampling import DEFAULT_BATCH_SIZE, GenerationStats, SamplingOptions

#: a prompt: a string (one user message) or a list of canonical messages ending with a user/system turn
Prompt = Any


@dataclass
class LoadedModel:
    """A model ready to generate: ``generate(["prompt", ...], batch_size=8)``."""

    model: Any
    tokenizer: Any
    info: RunInfo
    template: str = "auto"
    system_prompt: str | None = None
    response_marker: str | None = None
    chat_template_kwargs: dict[str, Any] | None = None
    _resolved: Any = field(default=None, repr=False)
    _stops: Any = field(default=None, repr=False)

    # -- prompts ---------------------------------------------------------------------------------
    @property
    def resolved_template(self) -> Any:
        """The resolved :class:`~sftkit.data.templates.Template` (ConfigError for an unknown template)."""
        if self._resolved is None:
            from sftkit.data.templates import resolve_template

            self._resolved = resolve_template(self.template, self.tokenizer, self.response_marker, self.chat_template_kwargs)
        return self._resolved

    def render(self, prompt: Prompt) -> str:
        """The exact text the model sees for a prompt (a string is one user message)."""
        from sftkit.data.templates import render_prompt

        messages = [{"role": "user", "content": prompt}] if isinstance(prompt, str) else list(prompt)
        return render_prompt(messages, self.tokenizer, self.resolved_template, system_prompt=self.system_prompt)

    def context_length(self) -> int | None:
        """The most tokens the model takes, prompt and response together (its config's position limit); None when unknown."""
        config = getattr(self.model, "config", None)
        if config is not None and hasattr(config, "get_text_config"):
            config = config.get_text_config()
        for name in ("max_position_embeddings", "n_positions", "max_sequence_length", "seq_length"):
            value = getattr(config, name, None)
            if isinstance(value, int) and not isinstance(value, bool) and value > 0:
                return value
        return None

    def check_fits(self, text: str, where: str, max_length: int | None = None) -> None:
        """Refuse a rendered prompt that leaves the model no room to answer (DataError naming ``where``): one as
        long as the model takes, or (given ``max_length``, prompt and response tokens together) as ``max_length``."""
        limit = self.context_length()
        if limit is None and max_length is None:
            return
        n = len(self.tokenizer(text, add_special_tokens=False, verbose=False)["input_ids"])
        if limit is not None and n >= limit:
            raise DataError(
                f"{where}: the prompt is {n} tokens long and the model takes at most {limit} (prompt and response together)",
                hint=f"shorten it to well under {limit} tokens, leaving room for the response (max_new_tokens)",
            )
        if max_length is not None and n >= max_length:
            raise DataError(
                f"{where}: the prompt is {n} tokens long, so max_length={max_length} (prompt and response together) leaves no room to answer",
                hint=f"raise max_length above {n}, or give max_new_tokens (the response alone) instead",
            )

    # -- generation ------------------------------------------------------------------------------
    def generate(
        self,
        prompts: Sequence[Prompt],
        *,
        batch_size: int = DEFAULT_BATCH_SIZE,
        options: SamplingOptions | None = None,
        stats: GenerationStats | None = None,
    ) -> list[str]:
        """Responses in input order, generated ``batch_size`` prompts at a time with left padding."""
        return list(self.generate_iter(prompts, batch_size=batch_size, options=options, stats=stats))

    def generate_iter(
        self,
        prompts: Iterable[Prompt],
        *,
        batch_size: int = DEFAULT_BATCH_SIZE,
        options: SamplingOptions | None = None,
        stats: GenerationStats | None = None,
        where: Callable[[int], str] | None = None,
    ) -> Iterator[str]:
        """Like :meth:`generate`, yielding each response as its batch finishes; ``prompts`` may be a lazy iterable.

        A prompt longer than the model takes is refused (DataError) before its batch runs; ``where(n)`` names the
        n-th prompt (from 1) in that error (default: ``prompt n``).
        """
        if batch_size < 1:
            raise SftkitError(f"batch_size must be at least 1, got {batch_size}", exit_code=EXIT_USAGE)
        options = options or SamplingOptions()
        options.check()
        if options.seed is not None:
            from transformers import set_seed

            set_seed(options.seed)
        batch: list[str] = []
        for n, prompt in enumerate(prompts, 1):
            text = self.render(prompt)
            self.check_fits(text, where(n) if where is not None else f"prompt {n}", options.max_length)
            batch.append(text)
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
        # each prompt's own budget (with max_length it depends on the prompt's length, not on the padded batch's)
        budgets = [options.new_tokens(int(n)) for n in enc["attention_mask"].sum(dim=1).tolist()]
        started = time.perf_counter()
        with torch.inference_mode():
            out = self.model.generate(
                **enc,
                **{**options.generate_kwargs(), "max_new_tokens": max(budgets)},
                **self._stop_kwargs(),
                pad_token_id=tok.pad_token_id,
                eos_token_id=stop_ids,
            )
        new = out[:, enc["input_ids"].shape[1] :].tolist()
        responses = []
        for row, budget in zip(new, budgets, strict=True):
            row = row[:budget]
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
        for marker in self._stop_sets()[1]:
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
        text = self.render(prompt)
        self.check_fits(text, "the prompt", options.max_length)
        enc = self.tokenizer([text], return_tensors="pt", add_special_tokens=False)
        enc = {k: v.to(self.model.device) for k, v in enc.items()}
        streamer = TextIteratorStreamer(self.tokenizer, skip_prompt=True, skip_special_tokens=True)
        generate_kwargs = {**options.generate_kwargs(), "max_new_tokens": options.new_tokens(enc["input_ids"].shape[1])}
        kwargs = dict(
            **enc, **generate_kwargs, **self._stop_kwargs(), streamer=streamer, pad_token_id=self.tokenizer.pad_token_id, eos_token_id=self.stop_ids()
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
        return list(self._stop_sets()[0])

    def _text_stops(self) -> list[str]:
        """End-of-turn markers of the template that are not single tokens (a chatml template on a plain tokenizer)."""
        return list(self._stop_sets()[1])

    def _stop_sets(self) -> tuple[tuple[int, ...], tuple[str, ...]]:
        """(stop ids, text stops), worked out once for this tokenizer, template and EOS setting: they need the
        tokenizer's whole vocabulary (``get_vocab()`` builds a dict of every token, ~20 ms for 49k tokens), and
        they were asked for once per response, inside the generation's time."""
        template = self.resolved_template
        gen_eos = getattr(getattr(self.model, "generation_config", None), "eos_token_id", None)
        eos = tuple(gen_eos) if isinstance(gen_eos, list) else (gen_eos,)
        key = (id(self.tokenizer), self.tokenizer.eos_token_id, id(template), eos)
        if self._stops is None or self._stops[0] != key:
            vocab = self.tokenizer.get_vocab()
            ids = {self.tokenizer.eos_token_id, *eos}
            for marker in ("<|im_end|>", "<|eot_id|>", "<|end|>", *template.end_markers):
                if marker in vocab:
                    ids.add(vocab[marker])
            text_stops = tuple(m for m in template.end_markers if m and m not in vocab)
            self._stops = (key, tuple(sorted(i for i in ids if i is not None)), text_stops)
        return self._stops[1], self._stops[2]

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
            chat_template_kwargs=meta.get("chat_template_kwargs") if chosen == trained_template else None,
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
    from safetensors import SafetensorError
    from transformers import AutoModelForCausalLM

    from sftkit.hub import local_only, offline_error
    from sftkit.modeling import is_adapter_folder, resolve_model_path, weights_problem
    from sftkit.names import is_local

    try:
        if info.is_adapter:
            from peft import PeftModel

            base_name = info.base_model
            if not base_name:
                raise SftkitError(f"{info.model_dir}: the adapter does not say which base model it applies to", hint="set base_model_name_or_path in adapter_config.json")
            base_source, gguf = resolve_model_path(base_name)
            if not gguf and is_adapter_folder(base_source):  # a run started from another LoRA run's model/
                base = _model(locate(base_source), base_source, torch_dtype).merge_and_unload()
                return PeftModel.from_pretrained(base, str(info.model_dir))
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
    except (OSError, SafetensorError) as e:
        # a local folder without weights, or with a truncated file, is named as such (not as a failed download)
        base = info.base_model if info.is_adapter else None
        folders = [info.model_dir] if info.is_local else []
        if base and is_local(base):
            base_source, gguf = resolve_model_path(base)
            folders += [] if gguf else [base_source]  # (a .gguf file's folder holds no weights files)
        for folder in folders:
            problem = weights_problem(folder)
            if problem is not None:
                raise problem from None
        if not isinstance(e, OSError):
            raise
        if info.is_local and not info.is_adapter:
            raise SftkitError(f"could not load a model from {info.model_dir}: {str(e).splitlines()[0]}") from None
        raise offline_error("model", base or path_or_name, e) from None


def release_memory() -> None:
    """Give freed models' memory back (GPU memory too) after the last reference to them was dropped."""
    import gc

    gc.collect()
    import torch

    if torch.cuda.is_available():
        torch.cuda.empty_cache()
