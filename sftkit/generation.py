"""Loading a trained run (full model or LoRA adapter) and generating with the template it was trained with."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Sequence

from sftkit.errors import SftkitError

Prompt = "str | list[dict[str, str]]"


@dataclass
class SamplingOptions:
    """Decoding settings; ``temperature == 0`` means greedy decoding (the default)."""

    max_new_tokens: int = 256
    temperature: float = 0.0
    top_p: float = 1.0
    top_k: int = 0
    repetition_penalty: float = 1.0
    seed: int | None = None

    def generate_kwargs(self) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"max_new_tokens": self.max_new_tokens, "repetition_penalty": self.repetition_penalty}
        if self.temperature > 0:
            kwargs.update(do_sample=True, temperature=self.temperature, top_p=self.top_p, top_k=self.top_k or None)
        else:
            kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        return kwargs


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


def locate(path_or_name: str) -> RunInfo:
    """A run folder (``runs/x``), a model folder (``runs/x/model`` or any HF folder) or a Hub id."""
    path = Path(path_or_name).expanduser()
    if not path.exists():
        if path_or_name.startswith((".", "/", "~")) or path_or_name.count("/") > 1:
            raise SftkitError(f"no run or model at {path_or_name}", hint="pass a run folder (e.g. runs/tiny), a model folder or a Hub id")
        return RunInfo(path_or_name)
    run_dir = None
    model_dir = path
    if (path / "model").is_dir() and not (path / "config.json").exists() and not (path / "adapter_config.json").exists():
        run_dir, model_dir = path, path / "model"
    elif (path.parent / "sftkit.yaml").exists():
        run_dir = path.parent
    if not ((model_dir / "config.json").exists() or (model_dir / "adapter_config.json").exists()):
        hint = "the run may not have finished; resume it with `sftkit train --config <run>/sftkit.yaml --resume`"
        raise SftkitError(f"{path} holds no model (no config.json or adapter_config.json)", hint=hint)
    metadata: dict[str, Any] = {}
    for name in ("sft_metadata.json", "dpo_metadata.json"):
        for folder in (model_dir, run_dir):
            if folder is not None and (folder / name).exists():
                metadata = json.loads((folder / name).read_text(encoding="utf-8"))
                break
        if metadata:
            break
    return RunInfo(model_dir, run_dir, metadata, (model_dir / "adapter_config.json").exists())


@dataclass
class LoadedModel:
    """A model ready to generate: ``generate(["prompt", ...], batch_size=8)``."""

    model: Any
    tokenizer: Any
    info: RunInfo
    template: str = "auto"
    system_prompt: str | None = None
    response_marker: str | None = None

    # -- prompts ---------------------------------------------------------------------------------
    def render(self, prompt: Any) -> str:
        """The exact text the model sees for a prompt (a string is one user message)."""
        from sftkit.data.templates import render_prompt

        messages = [{"role": "user", "content": prompt}] if isinstance(prompt, str) else list(prompt)
        return render_prompt(
            messages, self.tokenizer, self.template, system_prompt=self.system_prompt, response_marker=self.response_marker
        )

    # -- generation ------------------------------------------------------------------------------
    def generate(self, prompts: Sequence[Any], *, batch_size: int = 8, options: SamplingOptions | None = None) -> list[str]:
        """Responses in input order, generated ``batch_size`` prompts at a time with left padding."""
        return list(self.generate_iter(prompts, batch_size=batch_size, options=options))

    def generate_iter(self, prompts: Sequence[Any], *, batch_size: int = 8, options: SamplingOptions | None = None) -> Iterator[str]:
        import torch

        if batch_size < 1:
            raise SftkitError(f"batch size must be at least 1, got {batch_size}", exit_code=2)
        options = options or SamplingOptions()
        if options.seed is not None:
            from transformers import set_seed

            set_seed(options.seed)
        texts = [self.render(p) for p in prompts]
        tok = self.tokenizer
        for start in range(0, len(texts), batch_size):
            batch = texts[start : start + batch_size]
            enc = tok(batch, return_tensors="pt", padding=True, add_special_tokens=False, padding_side="left")
            enc = {k: v.to(self.model.device) for k, v in enc.items()}
            with torch.inference_mode():
                out = self.model.generate(
                    **enc, **options.generate_kwargs(), pad_token_id=tok.pad_token_id, eos_token_id=self._stop_ids()
                )
            for row in out[:, enc["input_ids"].shape[1] :]:
                yield tok.decode(row, skip_special_tokens=True).strip()

    def stream(self, prompt: Any, options: SamplingOptions | None = None) -> Iterator[str]:
        """Yield text pieces of one response as they are generated."""
        import threading

        from transformers import TextIteratorStreamer

        options = options or SamplingOptions()
        enc = self.tokenizer([self.render(prompt)], return_tensors="pt", add_special_tokens=False)
        enc = {k: v.to(self.model.device) for k, v in enc.items()}
        streamer = TextIteratorStreamer(self.tokenizer, skip_prompt=True, skip_special_tokens=True)
        kwargs = dict(**enc, **options.generate_kwargs(), streamer=streamer, pad_token_id=self.tokenizer.pad_token_id, eos_token_id=self._stop_ids())
        thread = threading.Thread(target=self.model.generate, kwargs=kwargs, daemon=True)
        thread.start()
        yield from streamer
        thread.join()

    def _stop_ids(self) -> list[int]:
        ids = {self.tokenizer.eos_token_id}
        gen_eos = getattr(self.model.generation_config, "eos_token_id", None)
        ids.update(gen_eos if isinstance(gen_eos, list) else [gen_eos])
        for marker in ("<|im_end|>", "<|eot_id|>", "<|end|>"):
            tid = self.tokenizer.convert_tokens_to_ids(marker) if marker in self.tokenizer.get_vocab() else None
            ids.add(tid)
        return sorted(i for i in ids if i is not None)


def load(path_or_name: str, *, template: str | None = None, device: str | None = None, dtype: str | None = None) -> LoadedModel:
    """Load a run, a model folder or a Hub id (a LoRA adapter is loaded on top of its base model)."""
    import torch
    from transformers import AutoModelForCausalLM

    from sftkit.modeling import load_tokenizer, resolve_model_path

    info = locate(path_or_name)
    meta = info.metadata
    torch_dtype = getattr(torch, dtype) if dtype else torch.float32
    source = str(info.model_dir)
    try:
        if info.is_adapter:
            from peft import PeftModel

            base_name = meta.get("model") or json.loads((Path(source) / "adapter_config.json").read_text())["base_model_name_or_path"]
            base_source, gguf = resolve_model_path(base_name)
            kwargs = {"gguf_file": gguf} if gguf else {}
            base = AutoModelForCausalLM.from_pretrained(base_source, dtype=torch_dtype, **kwargs)
            model = PeftModel.from_pretrained(base, source)
        else:
            if not Path(source).exists():
                source, gguf = resolve_model_path(source)
                from sftkit.hub import local_only

                kwargs = {"local_files_only": local_only()} | ({"gguf_file": gguf} if gguf else {})
            else:
                kwargs = {}
            model = AutoModelForCausalLM.from_pretrained(source, dtype=torch_dtype, **kwargs)
    except OSError as e:
        from sftkit.hub import offline_error

        raise offline_error("model", path_or_name, e) from None
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    model.to(device).eval()
    tokenizer = load_tokenizer(str(info.model_dir)) if Path(str(info.model_dir)).exists() else load_tokenizer(path_or_name)
    return LoadedModel(
        model,
        tokenizer,
        info,
        template=template or info.template,
        system_prompt=meta.get("system_prompt"),
        response_marker=meta.get("response_marker"),
    )
