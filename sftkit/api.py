"""The Python API: the same engine the CLI runs, for notebooks and scripts.

```python
import sftkit

cfg = sftkit.load_config(preset="tiny", overrides={"train.max_iters": 200}, output_dir="runs/nb")
run = sftkit.train(cfg)                      # -> TrainResult(run_dir, model_dir, metrics)
sftkit.evaluate(run.run_dir)["eval_loss"]
model = sftkit.load(run.run_dir)
model.generate("upper: cat")                 # -> "CAT"
model.generate(["upper: a", "upper: b"], batch_size=2)
sftkit.export_model(run.run_dir, "exported/")
```

The names avoid sftkit's module names (``sftkit.resolve``, ``sftkit.export``), so an import elsewhere
can never shadow them. Nothing here prints unless asked (``progress=True``); problems raise :class:`sftkit.SftkitError`
(a :class:`sftkit.ConfigError` for configuration), the same errors the CLI shows.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Mapping, Sequence, overload

from sftkit.config import RunConfig
from sftkit.errors import ConfigError

if TYPE_CHECKING:  # pragma: no cover
    from sftkit.data.prepare import PreparedData
    from sftkit.export import ExportResult
    from sftkit.generation import GenerationStats, LoadedModel
    from sftkit.training.pipeline import TrainResult

FormattingFunc = Callable[[dict[str, Any]], Any]


def load_config(
    preset: str | None = None,
    config: str | Path | None = None,
    overrides: Mapping[str, Any] | Iterable[str] | None = None,
    *,
    trainer_type: str | None = None,
    output_dir: str | Path | None = None,
) -> RunConfig:
    """Resolve a RunConfig exactly as the CLI does: defaults < preset < config file < overrides < keywords.

    ``overrides`` is ``{"train.learning_rate": 1e-4}`` or ``["train.learning_rate=1e-4"]`` (like ``--set``).
    """
    from sftkit.resolve import resolve_config

    mapping = overrides if isinstance(overrides, Mapping) else None
    sets = list(overrides) if overrides is not None and mapping is None else []
    flags = {
        "trainer_type=": ("trainer_type", trainer_type),
        "output_dir=": ("train.output_dir", str(output_dir) if output_dir is not None else None),
    }
    return resolve_config(preset=preset, config_file=config, sets=sets, flags=flags, overrides=mapping).config


def _with_formatter(cfg: RunConfig, formatting_func: FormattingFunc | str | None) -> RunConfig:
    """A copy of ``cfg`` whose ``data.formatting_func`` names the given function (module:qualname)."""
    if formatting_func is None:
        return cfg
    if isinstance(formatting_func, str):
        spec = formatting_func
    else:
        module, name = getattr(formatting_func, "__module__", None), getattr(formatting_func, "__qualname__", "")
        found = getattr(importlib.import_module(module), name, None) if module and "<" not in name else None
        if found is not formatting_func:
            raise ConfigError(
                f"formatting_func {name or formatting_func!r} cannot be found again by name",
                hint="define it with `def` at the top level of a module or notebook (not a lambda or nested function)",
            )
        spec = f"{module}:{name}"
    data = cfg.data.model_copy(update={"formatting_func": spec})
    return cfg.model_copy(update={"data": data})


def prepare(
    config: RunConfig,
    *,
    formatting_func: FormattingFunc | str | None = None,
    output: str | Path | None = None,
    force: bool = False,
) -> "PreparedData":
    """Prepare (or reuse) the tokenised dataset; ``formatting_func(row) -> text or messages`` replaces format detection."""
    from sftkit.data.prepare import prepare_data

    cfg = _with_formatter(config, formatting_func)
    return prepare_data(cfg, output=Path(output) if output else None, force=force)


def train(
    config: RunConfig,
    *,
    formatting_func: FormattingFunc | str | None = None,
    resume: str | None = None,
    overwrite: bool = False,
    progress: bool | str = False,
) -> "TrainResult":
    """Train (SFT or DPO by ``config.trainer_type``); returns the run folder, model folder and final metrics.

    ``resume``: ``"latest"`` or a checkpoint folder. ``progress``: ``True`` prints timestamped progress lines
    to stderr, ``"live"`` a live progress display (on a terminal), ``False`` nothing.
    """
    from sftkit.training.pipeline import train as _train

    console = None
    if progress:
        from sftkit.console import console
    cfg = _with_formatter(config, formatting_func)
    return _train(cfg, resume=resume, overwrite=overwrite, console=console, live=progress == "live")


def evaluate(
    run: str | Path,
    *,
    data: str | Path | None = None,
    compare: str | None = None,
    batch_size: int | None = None,
    generate: bool = True,
    write: bool = True,
) -> dict[str, Any]:
    """The figures ``sftkit eval`` reports (eval_loss, eval_perplexity, ..., exact_match when there are references).

    With ``compare``, the base model's figures are under the ``"base"`` key.
    """
    from sftkit.evaluation import evaluate as _evaluate

    result = _evaluate(
        str(run), data=str(data) if data else None, compare=compare, batch_size=batch_size, generate=generate, write=write
    )
    out = dict(result.metrics)
    if result.base is not None:
        out["base"] = dict(result.base.metrics)
    return out


class Model:
    """A trained run (full model or LoRA adapter) or any causal LM, with the template it was trained with."""

    def __init__(self, loaded: "LoadedModel") -> None:
        self.loaded = loaded
        self.last_stats: GenerationStats | None = None
        """Counts of the last :meth:`generate` call (prompts, batches, tokens, seconds)."""

    @property
    def model(self) -> Any:
        return self.loaded.model

    @property
    def tokenizer(self) -> Any:
        return self.loaded.tokenizer

    def render(self, prompt: str | list[dict[str, str]]) -> str:
        """The exact prompt text the model sees (template applied)."""
        return self.loaded.render(prompt)

    @overload
    def generate(self, prompts: str, **kwargs: Any) -> str: ...
    @overload
    def generate(self, prompts: Sequence[Any], **kwargs: Any) -> list[str]: ...

    def generate(
        self,
        prompts: Any,
        *,
        batch_size: int = 8,
        max_new_tokens: int = 256,
        temperature: float = 0.0,
        top_p: float = 1.0,
        top_k: int = 0,
        repetition_penalty: float = 1.0,
        seed: int | None = None,
    ) -> Any:
        """One prompt -> one response; a list -> responses in order, ``batch_size`` prompts per forward pass.

        A prompt is an instruction string or a list of chat messages. Greedy unless ``temperature > 0``.
        """
        from sftkit.generation import GenerationStats, SamplingOptions

        single = isinstance(prompts, str) or (
            isinstance(prompts, list) and bool(prompts) and isinstance(prompts[0], dict)
        )
        options = SamplingOptions(
            max_new_tokens=max_new_tokens,
            temperature=temperature,
            top_p=top_p,
            top_k=top_k,
            repetition_penalty=repetition_penalty,
            seed=seed,
        )
        stats = GenerationStats()
        out = self.loaded.generate([prompts] if single else list(prompts), batch_size=batch_size, options=options, stats=stats)
        self.last_stats = stats
        return out[0] if single else out


def load(run_or_model: str | Path, *, template: str | None = None, device: str | None = None) -> Model:
    """Load a run folder, a model folder or a Hub id for generation (adapters on top of their base)."""
    from sftkit.generation import load as _load

    return Model(_load(str(run_or_model), template=template, device=device))


def export_model(
    run: str | Path,
    output: str | Path,
    *,
    dtype: str = "auto",
    max_shard_size: str = "5GB",
    overwrite: bool = False,
    push_to_hub: str | None = None,
) -> "ExportResult":
    """Merge adapters and write a standalone model folder (checked against the un-merged model's logits)."""
    from sftkit.export import export as _export

    return _export(str(run), output, dtype=dtype, max_shard_size=max_shard_size, overwrite=overwrite, push_to_hub=push_to_hub)
