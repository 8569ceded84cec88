"""The Python API: one public function per command, the same path the CLI takes.

Every ``sftkit`` command is a thin file in ``sftkit/cli/`` that parses its options, calls exactly one function
here and prints what it returns; each function here calls one engine module (``sftkit.training``,
``sftkit.data``, ``sftkit.evaluation``, ``sftkit.generation``, ``sftkit.export``). The engine never imports
this module.

```python
import sftkit

cfg = sftkit.load_config(preset="tiny", overrides={"train.max_iters": 200}, output_dir="runs/nb")
run = sftkit.train(cfg)                      # -> TrainResult(run_dir, model_dir, metrics)
sftkit.evaluate(run.run_dir)["eval_loss"]
model = sftkit.load(run.run_dir)
model.generate("upper: cat")                 # -> "CAT"
model.generate(["upper: a", "upper: b"], batch_size=2)
model.generate_response("cat", max_length=64)  # the Arabic fine-tuning library's names: also batch_generate,
model.evaluate_model()["eval_loss"]            # evaluate_model and save_model (see docs/api.md)
sftkit.export_model(run.run_dir, "exported/")
```

The names avoid sftkit's module names (``sftkit.resolve``, ``sftkit.export``), so an import elsewhere
can never shadow them. Nothing here prints unless asked (``progress=True``); problems raise :class:`sftkit.SftkitError`
(a :class:`sftkit.ConfigError` for configuration), the same errors the CLI shows.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import (
    TYPE_CHECKING,
    Any,
    Callable,
    Iterable,
    Iterator,
    Mapping,
    Sequence,
    overload,
)

from sftkit.config import RunConfig
from sftkit.errors import EXIT_USAGE, ConfigError, SftkitError
from sftkit.sampling import DEFAULT_BATCH_SIZE, DEFAULTS

if TYPE_CHECKING:  # pragma: no cover
    from sftkit.data.prepare import PreparedData
    from sftkit.evaluation import EvalResult
    from sftkit.export import ExportResult
    from sftkit.generation import ChatSession, LoadedModel
    from sftkit.resolve import Resolved
    from sftkit.sampling import GenerationStats, SamplingOptions
    from sftkit.training.pipeline import TrainResult

FormattingFunc = Callable[[dict[str, Any]], Any]


def _console(progress: bool | str) -> Any:
    if not progress:
        return None
    from sftkit.console import console

    return console


# -- configuration ------------------------------------------------------------------------------------


def resolve(
    preset: str | None = None,
    config: str | Path | None = None,
    sets: Iterable[str] = (),
    flags: Mapping[str, tuple[str, Any]] | None = None,
    overrides: Mapping[str, Any] | None = None,
    *,
    complete: bool = True,
) -> "Resolved":
    """The resolved config with where each value came from (what ``--dry-run --json`` shows).

    ``sets`` are ``key=value`` texts as ``--set`` takes them; ``flags`` map a flag name to ``(key, value)``
    with the value already typed; ``overrides`` map keys to typed values.
    """
    from sftkit.resolve import resolve_config

    return resolve_config(preset=preset, config_file=config, sets=sets, flags=flags, overrides=overrides, complete=complete)


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
    mapping = overrides if isinstance(overrides, Mapping) else None
    sets = list(overrides) if overrides is not None and mapping is None else []
    flags = {
        "trainer_type=": ("trainer_type", trainer_type),
        "output_dir=": ("train.output_dir", str(output_dir) if output_dir is not None else None),
    }
    return resolve(preset, config, sets, flags, mapping).config


def plan(config: RunConfig, processes: int = 1) -> dict[str, Any]:
    """What ``train`` would do, without loading a model: the config, the real TRL, peft and loading arguments
    built from it (an argument the installed TRL or peft rejects raises a ConfigError here), and the memory plan
    for ``processes`` processes (read from the model's config only)."""
    from sftkit.training.plan import training_plan

    return training_plan(config, processes)


def config_keys(section: str | None = None) -> list[dict[str, Any]]:
    """Every config key (or one section's) with its type, default and documentation."""
    from sftkit.keys import SECTIONS, key_docs

    if section is not None and section not in SECTIONS and section != "trainer_type":
        import difflib

        close = difflib.get_close_matches(section, [*SECTIONS, "trainer_type"], n=1)
        raise ConfigError(f"unknown config section {section!r}", hint=f"did you mean {close[0]}?" if close else f"sections: {', '.join(SECTIONS)}")
    return key_docs(section)


def list_presets() -> list[dict[str, Any]]:
    """Every preset found on disk (built-in and user folders), each with its description and method."""
    from sftkit.presets import describe, discover

    return [describe(p) for p in discover().values()]


def show_preset(name: str) -> dict[str, Any]:
    """A preset fully resolved (with what it extends) and where each value comes from."""
    from sftkit.presets import describe, find

    info = describe(find(name))
    resolved = resolve(preset=name, complete=False)
    return {**info, "config": resolved.config.to_dict(), "sources": resolved.sources}


# -- the commands -------------------------------------------------------------------------------------


def _with_formatter(cfg: RunConfig, formatting_func: FormattingFunc | str | None, trust: bool = False) -> RunConfig:
    """A copy of ``cfg`` whose ``data.formatting_func`` names the given function (module:qualname).

    A function passed here is the caller's own choice, so it may run; one the config names may run only with
    ``trust`` (``trust_formatting_func=True``).
    """
    if formatting_func is None:
        return cfg.trusting_formatting_func() if trust else cfg
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
    return cfg.model_copy(update={"data": data}).trusting_formatting_func()


def prepare(
    config: RunConfig,
    *,
    formatting_func: FormattingFunc | str | None = None,
    trust_formatting_func: bool = False,
    output: str | Path | None = None,
    overwrite: bool = False,
) -> "PreparedData":
    """Prepare (or reuse) the tokenised dataset; ``formatting_func(row) -> text or messages`` replaces format detection
    (a function for ``datasets.map(batched=True)``, ``{column: [values]} -> {"text": [...]}``, works too).

    ``trust_formatting_func=True`` allows the function the config names in ``data.formatting_func`` to be
    imported and run (a config alone never can). ``overwrite=True`` prepares again even when a prepared folder
    with the same inputs exists.
    """
    from sftkit.data.prepare import prepare_data
    from sftkit.modeling import tokenizer_for

    cfg = _with_formatter(config, formatting_func, trust_formatting_func)
    return prepare_data(cfg, tokenizer=tokenizer_for(cfg), output=Path(output) if output else None, overwrite=overwrite)


def train(
    config: RunConfig,
    *,
    formatting_func: FormattingFunc | str | None = None,
    trust_formatting_func: bool = False,
    resume: str | None = None,
    overwrite: bool = False,
    progress: bool | str = False,
    nproc: int = 1,
    nnodes: int = 1,
    node_rank: int = 0,
    master_addr: str = "127.0.0.1",
    master_port: int = 29500,
) -> "TrainResult":
    """Train (SFT, DPO or KTO by ``config.trainer_type``); returns the run folder, model folder and final metrics.

    ``resume``: ``"latest"`` or a checkpoint folder; a finished run resumed with a larger ``train.max_iters`` trains
    the extra steps, without one nothing is trained and the run is returned as it is. ``progress``: ``True`` prints timestamped progress lines
    to stderr, ``"live"`` a live progress display (on a terminal), ``False`` nothing. ``nproc`` x ``nnodes``
    above 1 runs DDP through torchrun. ``trust_formatting_func=True`` allows the function the config names in
    ``data.formatting_func`` to be imported and run (a config alone never can).
    """
    from sftkit.training.launch import Processes, launch

    cfg = _with_formatter(config, formatting_func, trust_formatting_func)
    if cfg.data.formatting_func:  # refused here, before a run folder is created, rather than when the data is read
        from sftkit.data.custom import require_trust

        require_trust(cfg.data.formatting_func, cfg.formatting_func_trusted)
    processes = Processes(nproc, nnodes, node_rank, master_addr, master_port)
    return launch(cfg, resume=resume, overwrite=overwrite, processes=processes, console=_console(progress), live=progress == "live")


def evaluate(
    run: str | Path,
    *,
    data: str | Path | None = None,
    split: str | None = None,
    compare: str | None = None,
    template: str | None = None,
    batch_size: int | None = None,
    max_new_tokens: int | None = None,
    generate: bool = True,
    output: str | Path | None = None,
    write: bool = True,
    trust_formatting_func: bool = False,
    progress: bool = False,
    harness: str | Sequence[str] | None = None,
    num_fewshot: int | None = None,
    limit: int | None = None,
    chat_template: bool = True,
) -> "EvalResult":
    """The figures ``sftkit eval`` reports (eval_loss, eval_perplexity, ..., exact_match when there are references).

    ``harness``: lm-evaluation-harness tasks instead (names such as ``"arc_easy,hellaswag"`` or task YAML files; the
    ``lm-eval`` package), figures named ``<task>.<metric>``; ``num_fewshot``, ``limit`` (rows per task) and
    ``chat_template`` (prompts through the trained format, the default) apply to them.

    The result reads as a dict of the figures (``result["eval_loss"]``); with ``compare``, the base model's
    figures are under ``result["base"]``. It also holds the predictions and where the JSON was written.
    ``trust_formatting_func=True`` allows the function the run's config names in ``data.formatting_func`` to be
    imported and run (a run folder alone never can).
    """
    from sftkit.evaluation import evaluate as _evaluate

    return _evaluate(
        str(run),
        data=str(data) if data else None,
        split=split,
        compare=compare,
        template=template,
        batch_size=batch_size,
        max_new_tokens=max_new_tokens,
        generate=generate,
        output=Path(output) if output else None,
        write=write,
        trust_formatting_func=trust_formatting_func,
        console=_console(progress),
        harness=[t for t in harness.split(",")] if isinstance(harness, str) else list(harness) if harness else None,
        num_fewshot=num_fewshot,
        limit=limit,
        chat_template=chat_template,
    )


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
        batch_size: int = DEFAULT_BATCH_SIZE,
        max_new_tokens: int | None = None,
        max_length: int | None = None,
        do_sample: bool | None = None,
        temperature: float | None = None,
        top_p: float = DEFAULTS.top_p,
        top_k: int = DEFAULTS.top_k,
        repetition_penalty: float = DEFAULTS.repetition_penalty,
        seed: int | None = DEFAULTS.seed,
    ) -> Any:
        """One prompt -> one response; a list -> responses in order, ``batch_size`` prompts per forward pass.

        A prompt is an instruction string or a list of chat messages. Greedy unless ``temperature > 0``
        (or ``do_sample=True``; ``do_sample=False`` is greedy whatever the temperature). The response is at most
        ``max_new_tokens`` tokens (default 256), or, given ``max_length`` instead, ``max_length`` minus the
        prompt's own tokens (transformers' meaning: prompt and response together); ``max_new_tokens`` wins
        when both are given.
        """
        from sftkit.sampling import GenerationStats, SamplingOptions

        single = isinstance(prompts, str) or (isinstance(prompts, list) and bool(prompts) and isinstance(prompts[0], dict))
        options = SamplingOptions.from_keywords(
            max_new_tokens=max_new_tokens,
            max_length=max_length,
            do_sample=do_sample,
            temperature=temperature,
            top_p=top_p,
            top_k=top_k,
            repetition_penalty=repetition_penalty,
            seed=seed,
        )
        stats = GenerationStats()
        out = list(self.generate_iter([prompts] if single else list(prompts), batch_size=batch_size, options=options, stats=stats))
        self.last_stats = stats
        return out[0] if single else out

    def generate_response(self, instruction: str | list[dict[str, str]], max_length: int | None = None, **sampling: Any) -> str:
        """One response to one instruction: :meth:`generate` with ``max_length`` (prompt and response tokens
        together, as transformers counts it) and the sampling keywords of :meth:`generate`."""
        if not isinstance(instruction, str) and not (isinstance(instruction, list) and instruction and isinstance(instruction[0], dict)):
            raise SftkitError(
                f"generate_response takes one instruction (a string or a list of chat messages), got {type(instruction).__name__}",
                hint="for several instructions use batch_generate([...])",
                exit_code=EXIT_USAGE,
            )
        return self.generate(instruction, max_length=max_length, **_sampling(sampling, "generate_response"))

    def batch_generate(self, instructions: Sequence[Any], max_length: int | None = None, batch_size: int = DEFAULT_BATCH_SIZE, **sampling: Any) -> list[str]:
        """Responses to several instructions, in order, ``batch_size`` per forward pass: :meth:`generate` with
        ``max_length`` counted for each prompt on its own (prompt and response tokens together)."""
        if isinstance(instructions, (str, dict)) or (isinstance(instructions, list) and instructions and isinstance(instructions[0], dict)):
            raise SftkitError(
                "batch_generate takes a list of instructions, got a single one",
                hint="wrap it in a list, or use generate_response for one instruction",
                exit_code=EXIT_USAGE,
            )
        return self.generate(list(instructions), batch_size=batch_size, max_length=max_length, **_sampling(sampling, "batch_generate"))

    def evaluate_model(self, eval_dataset: Any = None, *, batch_size: int | None = None, trust_formatting_func: bool = False) -> dict[str, float]:
        """eval_loss, eval_perplexity, eval_runtime and eval_samples_per_second of this model, on the run's
        validation split or on ``eval_dataset`` (a data file, a ``datasets.Dataset`` or a list of rows in any
        format ``prepare`` reads), prepared as training prepared its data; nothing is written.

        :func:`evaluate` gives the generation figures (exact match, chrF, ...) too and writes them to the run.
        """
        from sftkit.evaluation import evaluate_loaded

        return evaluate_loaded(self.loaded, data=eval_dataset, batch_size=batch_size, trust_formatting_func=trust_formatting_func)

    def save_model(self, output_dir: str | Path | None = None, *, overwrite: bool = False) -> Path:
        """Save this model as it is (a LoRA adapter stays an adapter) with its tokenizer and ``sft_metadata.json``
        (the template it is used with, so :func:`load` of the folder generates alike); returns the folder.

        Without ``output_dir``: the run or model folder it was loaded from, which already holds it (nothing is
        written). A non-empty ``output_dir`` is replaced only with ``overwrite=True``. Adapters are not merged:
        :func:`export_model` writes a standalone merged model.
        """
        from sftkit.export import save

        return save(self.loaded, output_dir, overwrite=overwrite)

    def generate_iter(
        self,
        prompts: Iterable[Any],
        *,
        batch_size: int = DEFAULT_BATCH_SIZE,
        options: "SamplingOptions | None" = None,
        stats: "GenerationStats | None" = None,
        where: "Callable[[int], str] | None" = None,
    ) -> Iterator[str]:
        """Responses in input order, each batch yielded as it finishes; ``prompts`` may be read lazily (a pipe).
        A prompt longer than the model takes is refused; ``where(n)`` names the n-th prompt in that error."""
        return self.loaded.generate_iter(prompts, batch_size=batch_size, options=options, stats=stats, where=where)

    def stream(self, prompt: Any, options: "SamplingOptions | None" = None) -> Iterator[str]:
        """Pieces of one response as they are generated."""
        return self.loaded.stream(prompt, options)

    def chat(self, options: "SamplingOptions | None" = None, system: str | None = None) -> "ChatSession":
        """A multi-turn conversation: ``for piece in session.send("hi"): ...``."""
        from sftkit.generation import ChatSession

        return ChatSession(self.loaded, options, system)


#: the sampling keywords :meth:`Model.generate` takes besides the prompts, ``batch_size`` and ``max_length``
SAMPLING_KEYWORDS = ("max_new_tokens", "do_sample", "temperature", "top_p", "top_k", "repetition_penalty", "seed")


def _sampling(keywords: dict[str, Any], where: str) -> dict[str, Any]:
    """``keywords`` when each is one :meth:`Model.generate` takes, else an error naming the first that is not."""
    for name in keywords:
        if name not in SAMPLING_KEYWORDS:
            import difflib

            close = difflib.get_close_matches(name, SAMPLING_KEYWORDS, n=1)
            raise SftkitError(
                f"{where}: unknown keyword {name!r}",
                hint=f"did you mean {close[0]}?" if close else f"sftkit's generation takes max_length, {', '.join(SAMPLING_KEYWORDS)}",
                exit_code=EXIT_USAGE,
            )
    return keywords


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
    check: bool = True,
    tolerance: float | None = None,
    push_to_hub: str | None = None,
    public: bool = False,
    progress: bool = False,
    format: str = "hf",
    quant: str | None = None,
) -> "ExportResult":
    """Merge adapters and write a standalone model folder (checked against the un-merged model's logits).

    ``format="gguf"``: one GGUF file (``quant``: f16 by default, f32, bf16, q8_0) with the tokenizer and the trained
    chat template, checked by loading it back; ``"ollama"``: the same plus a ``Modelfile``. ``tolerance`` None: 1e-3
    (largest logit difference) for ``hf``, the quantisation's own (mean KL divergence) for GGUF.
    """
    from sftkit.export import export as _export

    return _export(
        str(run),
        output,
        dtype=dtype,
        max_shard_size=max_shard_size,
        overwrite=overwrite,
        check=check,
        tolerance=tolerance,
        push_to_hub=push_to_hub,
        public=public,
        console=_console(progress),
        format=format,
        quant=quant,
    )


# -- looking at runs ----------------------------------------------------------------------------------


def list_runs(folder: str | Path = "runs") -> list[dict[str, Any]]:
    """Every run folder in ``folder``, oldest start first: name, state (running, failed, interrupted, finished,
    killed), steps, last logged train loss, eval loss, start, duration and the main settings."""
    from sftkit.runs import list_runs as _list_runs

    return _list_runs(folder)


def show_run(run: str | Path, *, image: bool = False) -> dict[str, Any]:
    """One run's summary (as :func:`list_runs` gives it) with its loss history under ``history``
    (``{"train": [[step, loss], ...], "eval": [...]}``). ``image=True`` also draws ``loss.png`` in the run folder
    (needs matplotlib: ``pip install 'sftkit[plot]'``)."""
    from sftkit.runs import find_run, save_loss_plot
    from sftkit.runs import show_run as _show_run

    if image:
        save_loss_plot(find_run(run))
    return _show_run(run)


def compare_runs(runs: Sequence[str | Path]) -> dict[str, Any]:
    """Runs side by side: ``config`` maps each key whose value differs to the values (in the order given),
    ``metrics`` each figure to the values; ``history`` holds each run's loss history."""
    from sftkit.runs import compare_runs as _compare_runs

    return _compare_runs(list(runs))


# -- shell completion ---------------------------------------------------------------------------------


def completion_script(shell: str) -> str:
    """The completion script for ``bash``, ``zsh`` or ``fish``, generated from the installed command tree."""
    from sftkit.completion import script

    return script(shell)


def install_completion(shell: str) -> tuple[Path, str]:
    """Write the completion script where ``shell`` loads it from; returns the file and what to do next."""
    from sftkit.completion import install

    return install(shell)
