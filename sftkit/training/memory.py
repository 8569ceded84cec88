"""The memory plan of a run, before it starts: parameters, and the memory of weights, gradients, optimizer states and
activations at the configured batch, sequence length, precision, LoRA/QLoRA, gradient checkpointing and sharding;
the devices found and whether the run fits; when it does not, the cheapest changes that make it fit.

Only the model's config is read: the model is built on the meta device (accelerate's ``init_empty_weights``, as
``accelerate estimate-memory`` does) so every parameter, and every LoRA parameter peft would add, is counted exactly
without loading a weight. The bytes per parameter follow accelerate's ``estimate_training_usage`` (weights,
gradients the same size, Adam's two states), adjusted for what sftkit trains: only the trainable parameters have
gradients and optimizer states, 4-bit/8-bit base weights for QLoRA, peft's float32 adapters, and the precision's
dtype. Activations are counted per token from the tensors a decoder layer keeps for the backward pass (see
:func:`activation_bytes`).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sftkit.config import RunConfig

GiB = 1024**3
#: share of a device's free memory a plan may use: allocator fragmentation and the CUDA context take the rest
USABLE = 0.9


@dataclass
class ModelShape:
    """What the estimate needs from a model: its parameter counts and its decoder's dimensions."""

    total: int
    lora: int  # the LoRA parameters peft adds with the config's lora.* settings (counted with LoRA off too)
    linear: int  # parameters in the decoder's linear layers (what 4/8-bit quantisation stores in fewer bytes)
    layers: int
    hidden: int
    intermediate: int
    kv_dim: int  # key/value width (grouped-query attention: kv heads x head size)
    vocab: int
    source: str


@dataclass
class Estimate:
    """Bytes per process for one configuration."""

    weights: int
    gradients: int
    optimizer: int
    activations: int
    runtime: int = 0  # what the process holds besides the model on a CPU run (Python, torch, libraries, data)
    parameters: int = 0
    trainable: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        return self.weights + self.gradients + self.optimizer + self.activations + self.runtime

    def as_dict(self) -> dict[str, Any]:
        return {
            "parameters": self.parameters,
            "trainable_parameters": self.trainable,
            "weights_bytes": self.weights,
            "gradients_bytes": self.gradients,
            "optimizer_bytes": self.optimizer,
            "activations_bytes": self.activations,
            "runtime_bytes": self.runtime,
            "total_bytes": self.total,
        }


class NoModelConfig(Exception):
    """The model's config cannot be read here without loading or downloading anything (the reason, in one line)."""


# -- the model's config and parameters ---------------------------------------------------------------


def model_config(cfg: RunConfig) -> tuple[Any, str]:
    """The model's transformers config and where it was read (a local folder, ``builtin:tiny``, or the Hub
    cache); raises :class:`NoModelConfig` when it is nowhere on this machine."""
    from transformers import AutoConfig

    from sftkit.modeling import is_adapter_folder, resolve_model_path
    from sftkit.names import is_local

    name = cfg.model.name
    if not name:
        raise NoModelConfig("no model.name is set")
    if name.endswith(".gguf"):
        raise NoModelConfig(f"{name} is a GGUF file: its parameters are counted when it is loaded")
    if is_local(name):
        folder, _ = resolve_model_path(name)
        if is_adapter_folder(folder):
            raise NoModelConfig(f"{name} is a LoRA adapter (merged into its base when the run starts)")
        if not (Path(folder) / "config.json").is_file():
            raise NoModelConfig(f"{name} has no config.json")
        return AutoConfig.from_pretrained(folder, trust_remote_code=cfg.model.trust_remote_code), name
    from huggingface_hub import try_to_load_from_cache

    cached = try_to_load_from_cache(name, "config.json", revision=cfg.model.revision)
    if not isinstance(cached, str):
        raise NoModelConfig(
            f"the config of {name} is not in the Hugging Face cache (download it once, or --set model.name=FOLDER holding its config.json)"
        )
    return AutoConfig.from_pretrained(str(Path(cached).parent), trust_remote_code=cfg.model.trust_remote_code), f"{name} (cached config)"


def model_shape(cfg: RunConfig) -> ModelShape:
    """Count the parameters of the model the config names, built on the meta device (no weights), with peft's
    LoRA layers added there when LoRA is on."""
    import torch
    from accelerate import init_empty_weights
    from transformers import AutoModelForCausalLM

    from sftkit.modeling import quiet_transformers

    config, source = model_config(cfg)
    with quiet_transformers(), init_empty_weights():
        model = AutoModelForCausalLM.from_config(config, dtype=torch.float32, trust_remote_code=cfg.model.trust_remote_code)
    model.tie_weights()  # built empty, tied output embeddings start as a tensor of their own (tied outside the context)
    total = sum(p.numel() for p in _unique(model.parameters()))
    head = model.get_output_embeddings()
    linear = sum(m.weight.numel() for m in model.modules() if isinstance(m, torch.nn.Linear) and m is not head)
    lora = _lora_parameters(cfg, model)  # also without LoRA: a suggestion may be to turn it on
    text = config.get_text_config() if hasattr(config, "get_text_config") else config
    hidden = int(text.hidden_size)
    heads = int(getattr(text, "num_attention_heads", 1) or 1)
    head_dim = int(getattr(text, "head_dim", None) or hidden // heads)
    return ModelShape(
        total=total,
        lora=lora,
        linear=linear,
        layers=int(text.num_hidden_layers),
        hidden=hidden,
        intermediate=int(getattr(text, "intermediate_size", None) or 4 * hidden),
        kv_dim=int(getattr(text, "num_key_value_heads", None) or heads) * head_dim,
        vocab=int(text.vocab_size),
        source=source,
    )


def _unique(params) -> list[Any]:
    seen: dict[int, Any] = {}
    for p in params:  # tied embeddings are one tensor
        seen.setdefault(id(p), p)
    return list(seen.values())


def _lora_parameters(cfg: RunConfig, model: Any) -> int:
    """The parameters peft adds (its own module matching, on the meta model)."""
    import warnings

    from peft import get_peft_model

    from sftkit.training.args import build_peft_config

    with_lora = cfg.model_copy(update={"lora": cfg.lora.model_copy(update={"enabled": True})})
    with warnings.catch_warnings():  # deprecation notices of transformers' API peft calls: not the user's to act on
        warnings.simplefilter("ignore")
        peft_model = get_peft_model(model, build_peft_config(with_lora))
    return sum(p.numel() for n, p in peft_model.named_parameters() if "lora_" in n)


# -- bytes ---------------------------------------------------------------------------------------------


def _dtype_bytes(dtype: str) -> int:
    return 2 if dtype in ("bfloat16", "float16") else 4


def optimizer_states_bytes(optimizer: str, param_bytes: int) -> float:
    """Bytes of optimizer state per trainable parameter: Adam-like optimizers keep two states in the parameters'
    dtype (accelerate's estimate: twice the weights), 8-bit ones two bytes, Lion and SGD with momentum one
    state, plain SGD none; Adafactor's factored states are a small fraction."""
    name = optimizer.lower()
    if "8bit" in name:
        return 2
    if "adafactor" in name:
        return 0.1 * param_bytes
    if "lion" in name:
        return param_bytes
    if name == "sgd":
        return param_bytes
    return 2 * param_bytes


def activation_bytes(shape: ModelShape, tokens: int, act_bytes: int, checkpointing: bool, vocab_tokens: int) -> int:
    """Activations kept for the backward pass, for ``tokens`` tokens per step (batch x sequence length).

    Per token and decoder layer (sdpa/flash attention: no seq x seq scores kept): the two norms' inputs and outputs
    (4 x hidden), queries, keys, values and the rotated queries and keys (2 x hidden + 4 x kv width), the attention
    output and the output projection's input (2 x hidden), and the MLP's gate, up, activated gate and product
    (4 x intermediate). With gradient checkpointing only each layer's input is kept, and one layer's activations
    are recomputed at a time. The logits of ``vocab_tokens`` tokens: the projection's output, its float32 copy and
    the log-softmax kept for the loss (two float32 tensors besides the output).
    """
    per_layer = (8 * shape.hidden + 4 * shape.kv_dim + 4 * shape.intermediate) * act_bytes
    layers = (shape.layers * shape.hidden * act_bytes + per_layer) if checkpointing else shape.layers * per_layer
    return int(tokens * layers + vocab_tokens * shape.vocab * (act_bytes + 8))


@dataclass
class Setup:
    """The settings of a configuration that change its memory."""

    batch: int
    accumulation: int
    checkpointing: bool
    lora: bool
    bits: int  # 16/32: full-precision base weights; 8 or 4: quantised (QLoRA)
    processes: int
    shard: frozenset[str]  # what is divided across processes: "weights", "gradients", "optimizer"

    @classmethod
    def of(cls, cfg: RunConfig, processes: int) -> Setup:
        lo = cfg.lora
        bits = 4 if lo.load_in_4bit else 8 if lo.load_in_8bit else 32
        return cls(
            cfg.train.batch_size, cfg.train.gradient_accumulation_steps, cfg.model.gradient_checkpointing, lo.enabled, bits, processes, sharded(cfg)
        )


def sharded(cfg: RunConfig) -> frozenset[str]:
    """What FSDP (train.fsdp) or DeepSpeed ZeRO (train.deepspeed's zero_optimization.stage) divides across
    processes; DDP divides nothing."""
    fsdp = (cfg.train.fsdp or "").lower()
    if "full_shard" in fsdp or "hybrid_shard" in fsdp:
        return frozenset({"weights", "gradients", "optimizer"})
    if "shard_grad_op" in fsdp:
        return frozenset({"gradients", "optimizer"})
    stage = _zero_stage(cfg.train.deepspeed)
    return frozenset(["optimizer", "gradients", "weights"][: max(0, min(stage, 3))])


def _zero_stage(path: str | None) -> int:
    if not path:
        return 0
    try:
        stage = json.loads(Path(path).read_text(encoding="utf-8")).get("zero_optimization", {}).get("stage", 0)
    except (OSError, ValueError, AttributeError):
        return 0
    return stage if isinstance(stage, int) else 0


def estimate(cfg: RunConfig, shape: ModelShape, setup: Setup, runtime: int = 0) -> Estimate:
    """Bytes per process for ``setup`` (the config's precision, optimizer, trainer and sequence length)."""
    from sftkit.training.args import resolved_dtype

    dtype = resolved_dtype(cfg)
    param_bytes = _dtype_bytes(dtype)
    mixed = cfg.train.bf16 or cfg.train.fp16
    act_bytes = 2 if (mixed or param_bytes == 2) else 4
    notes: list[str] = []
    if setup.bits in (4, 8):
        # quantised linear layers: 4 bits (+ about 0.5 bit of quantisation constants) or 8 bits; the rest in dtype
        per_linear = 0.5 + 0.0625 if setup.bits == 4 else 1.0
        base = int(shape.linear * per_linear + (shape.total - shape.linear) * param_bytes)
    else:
        base = shape.total * param_bytes
    if setup.lora:
        trainable, lora = shape.lora, shape.lora
        weights = base + lora * 4  # peft keeps adapters in float32 when the base is 16-bit
        train_bytes = 4
    else:
        trainable, weights, train_bytes = shape.total, base, param_bytes
    gradients = trainable * train_bytes
    optimizer = int(trainable * optimizer_states_bytes(cfg.train.optimizer, train_bytes))
    if cfg.trainer_type in ("dpo", "kto") and not setup.lora:
        weights += base  # the frozen reference model (unless its log-probabilities are computed before training)
        notes.append("full DPO/KTO keeps a frozen reference copy of the weights")
    n = max(setup.processes, 1)
    if n > 1:
        weights = weights // n if "weights" in setup.shard else weights
        gradients = gradients // n if "gradients" in setup.shard else gradients
        optimizer = optimizer // n if "optimizer" in setup.shard else optimizer
    rows_per_step = setup.batch * (2 if cfg.trainer_type in ("dpo", "kto") else 1)  # chosen+rejected / row+KL row
    length = cfg.dpo.max_length if cfg.trainer_type == "dpo" else cfg.kto.max_length if cfg.trainer_type == "kto" else cfg.model.max_seq_length
    tokens = rows_per_step * length
    activations = activation_bytes(shape, tokens, act_bytes, setup.checkpointing, tokens)
    return Estimate(weights, gradients, optimizer, activations, runtime, shape.total, trainable, notes)


# -- devices ------------------------------------------------------------------------------------------


def devices(cfg: RunConfig) -> dict[str, Any]:
    """The devices the run would use: each CUDA device's free and total memory, else this machine's RAM."""
    import torch

    if torch.cuda.is_available() and not cfg.train.use_cpu:
        found = []
        for i in range(torch.cuda.device_count()):
            free, total = torch.cuda.mem_get_info(i)
            found.append({"name": torch.cuda.get_device_name(i), "free_bytes": int(free), "total_bytes": int(total)})
        return {"kind": "cuda", "devices": found, "usable_bytes": int(min(d["free_bytes"] for d in found) * USABLE)}
    import psutil

    vm = psutil.virtual_memory()
    return {"kind": "cpu", "devices": [{"name": "CPU RAM", "free_bytes": int(vm.available), "total_bytes": int(vm.total)}], "usable_bytes": int(vm.available)}


def runtime_bytes(kind: str) -> int:
    """On a CPU run the model shares the process with Python, torch, the libraries and the data: this process's
    resident memory now (measured). On a GPU they live in host memory and count for nothing there."""
    if kind != "cpu":
        return 0
    import psutil

    return int(psutil.Process().memory_info().rss)


# -- the plan ---------------------------------------------------------------------------------------------


def memory_plan(cfg: RunConfig, processes: int = 1, out_of_memory: bool = False) -> dict[str, Any]:
    """The memory plan (a dict for --dry-run's output and --json). ``processes``: how many processes train (the
    sharded parts are divided by it). ``out_of_memory``: the run ran out of memory whatever the plan said, so the
    suggestions are the changes that cut the estimate by a third or more. Never raises for a model it cannot
    read: says why instead."""
    from sftkit.modeling import quiet_transformers

    with quiet_transformers():
        return _memory_plan(cfg, processes, out_of_memory)


def _memory_plan(cfg: RunConfig, processes: int, out_of_memory: bool) -> dict[str, Any]:
    try:
        shape = model_shape(cfg)
    except NoModelConfig as why:
        return {"model": cfg.model.name, "estimate": None, "why_not": str(why)}
    except Exception as err:  # an architecture transformers cannot build from its config alone
        return {"model": cfg.model.name, "estimate": None, "why_not": f"cannot build {cfg.model.name} from its config: {str(err).splitlines()[0] if str(err) else type(err).__name__}"}
    found = devices(cfg)
    runtime = runtime_bytes(found["kind"])
    setup = Setup.of(cfg, processes)
    current = estimate(cfg, shape, setup, runtime)
    per_device = _per_device(found, processes)
    fits = current.total <= per_device
    from sftkit.training.args import resolved_dtype

    plan: dict[str, Any] = {
        "model": shape.source,
        "setup": {
            "batch_size": setup.batch,
            "gradient_accumulation_steps": setup.accumulation,
            "sequence_length": _length(cfg),
            "dtype": resolved_dtype(cfg),
            "mixed_precision": "bf16" if cfg.train.bf16 else "fp16" if cfg.train.fp16 else None,
            "method": _method(setup),
            "gradient_checkpointing": setup.checkpointing,
            "processes": processes,
            "sharded": sorted(setup.shard) if processes > 1 else [],
            "optimizer": cfg.train.optimizer,
        },
        "estimate": current.as_dict(),
        "device": found,
        "fits": fits,
    }
    if current.notes:
        plan["notes"] = current.notes
    if not fits or out_of_memory:
        plan["suggestions"] = suggestions(cfg, shape, setup, found, runtime, budget=int(current.total * 2 / 3) if out_of_memory else None)
    return plan


def _per_device(found: dict[str, Any], processes: int) -> int:
    """Memory one process may use: a GPU's usable memory (one process per GPU), or the RAM shared by the
    processes of a CPU run."""
    usable = found["usable_bytes"]
    return usable if found["kind"] == "cuda" else usable // max(processes, 1)


def _length(cfg: RunConfig) -> int:
    return cfg.dpo.max_length if cfg.trainer_type == "dpo" else cfg.kto.max_length if cfg.trainer_type == "kto" else cfg.model.max_seq_length


def _method(setup: Setup) -> str:
    if setup.bits in (4, 8):
        return f"QLoRA ({setup.bits}-bit base)"
    return "LoRA" if setup.lora else "full fine-tuning"


def suggestions(
    cfg: RunConfig, shape: ModelShape, setup: Setup, found: dict[str, Any], runtime: int, budget: int | None = None
) -> list[dict[str, Any]]:
    """The cheapest changes that make the run fit, each with its new estimate, cheapest first: a smaller batch with
    more gradient accumulation (the same effective batch), gradient checkpointing, LoRA, QLoRA, sharding across GPUs;
    when no single change fits, them together."""
    from dataclasses import replace

    budget = budget or _per_device(found, setup.processes)
    out: list[dict[str, Any]] = []

    def add(changed: Setup, sets: list[str], why: str) -> bool:
        est = estimate(cfg, shape, changed, runtime)
        fits = est.total <= budget
        out.append({"change": why, "set": sets, "total_bytes": est.total, "fits": fits})
        return fits

    batch = setup.batch
    while batch > 1:
        batch //= 2
        smaller = replace(setup, batch=batch, accumulation=setup.accumulation * (setup.batch // batch))
        if estimate(cfg, shape, smaller, runtime).total <= budget or batch == 1:
            add(smaller, [f"train.batch_size={batch}", f"train.gradient_accumulation_steps={smaller.accumulation}"], "smaller batch, same effective batch")
            break
    if not setup.checkpointing:
        add(replace(setup, checkpointing=True), ["model.gradient_checkpointing=true"], "gradient checkpointing")
    if not setup.lora:
        add(replace(setup, lora=True), ["lora.enabled=true"], "LoRA")
    if setup.bits not in (4,):
        add(replace(setup, lora=True, bits=4), ["lora.enabled=true", "lora.load_in_4bit=true"], "QLoRA (4-bit base; CUDA and bitsandbytes)")
    if found["kind"] == "cuda" or setup.processes > 1:
        for n in (2, 4, 8):
            if n <= setup.processes:
                continue
            full = frozenset({"weights", "gradients", "optimizer"})
            if add(replace(setup, processes=n, shard=full), ["train.fsdp='full_shard auto_wrap'", f"--nproc {n}"], f"FSDP across {n} GPUs"):
                break
    if not any(s["fits"] for s in out):
        together = replace(setup, batch=1, accumulation=setup.accumulation * setup.batch, checkpointing=True, lora=True, bits=4)
        add(together, ["train.batch_size=1", f"train.gradient_accumulation_steps={together.accumulation}", "model.gradient_checkpointing=true",
                       "lora.enabled=true", "lora.load_in_4bit=true"], "all of these together")
    for s in out:
        s["set"] = [x for x in s["set"] if x.startswith("--") or not _already(cfg, x)]
    fitting = [s for s in out if s["fits"]]
    return fitting or out


def _already(cfg: RunConfig, assignment: str) -> bool:
    """``--set key=value`` that the config already has."""
    key, _, value = assignment.partition("=")
    section, _, name = key.partition(".")
    current = getattr(getattr(cfg, section), name)
    return str(current).lower() == value.lower()


# -- words -------------------------------------------------------------------------------------------------


def size(n: float) -> str:
    for unit, scale in (("GiB", GiB), ("MiB", 1024**2), ("KiB", 1024)):
        if n >= scale:
            return f"{n / scale:.2f} {unit}"
    return f"{int(n)} B"


def count(n: int) -> str:
    for unit, scale in (("B", 1e9), ("M", 1e6), ("k", 1e3)):
        if n >= scale:
            return f"{n / scale:.2f}{unit}"
    return str(n)


def plan_lines(plan: dict[str, Any]) -> list[str]:
    """The plan in a few lines, as --dry-run and the start of a run print them (and train.log keeps)."""
    est = plan.get("estimate")
    if est is None:
        return [f"memory plan: not estimated: {plan['why_not']}"]
    s = plan["setup"]
    dev = plan["device"]
    where = ", ".join(f"{d['name']} {size(d['free_bytes'])} free of {size(d['total_bytes'])}" for d in dev["devices"])
    shard = f", {s['processes']} processes" + (f" sharding {'/'.join(s['sharded'])}" if s["sharded"] else "") if s["processes"] > 1 else ""
    lines = [
        (
            f"memory plan for {plan['model']}: {count(est['parameters'])} parameters, {count(est['trainable_parameters'])} trainable "
            f"({s['method']}, {s['dtype']}{', ' + s['mixed_precision'] if s['mixed_precision'] else ''}, batch {s['batch_size']} x {s['sequence_length']} tokens"
            f"{', gradient checkpointing' if s['gradient_checkpointing'] else ''}{shard})"
        ),
        f"  per process: weights {size(est['weights_bytes'])} + gradients {size(est['gradients_bytes'])} + optimizer {size(est['optimizer_bytes'])} "
        f"+ activations {size(est['activations_bytes'])}" + (f" + runtime {size(est['runtime_bytes'])}" if est["runtime_bytes"] else "")
        + f" = {size(est['total_bytes'])}",
        f"  {'fits' if plan['fits'] else 'does NOT fit'}: {where}",
    ]
    for s in plan.get("suggestions", []):
        sets = " ".join(x if x.startswith("--") else f"--set {x}" for x in s["set"])
        lines.append(f"  to fit: {s['change']}: {sets} -> {size(s['total_bytes'])}{'' if s['fits'] else ' (still too much)'}")
    return lines


def suggestion_hint(plan: dict[str, Any]) -> str:
    """The plan's suggestions in one line, for an out-of-memory error."""
    found = plan.get("suggestions") or []
    if not found:
        return "lower train.batch_size (raising train.gradient_accumulation_steps keeps the effective batch), or turn on model.gradient_checkpointing"
    parts = [f"{' '.join(x if x.startswith('--') else f'--set {x}' for x in s['set'])} ({size(s['total_bytes'])})" for s in found[:3]]
    return "the memory plan suggests: " + "; or ".join(parts)


def peak_bytes(cuda: bool) -> int:
    """The peak memory this process used: torch's peak CUDA allocation on a GPU, else the peak resident size."""
    if cuda:
        import torch

        return int(torch.cuda.max_memory_allocated())
    import resource

    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024


def env_processes() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def announce_plan(cfg: RunConfig, processes: int, console: Any, log: Path) -> dict[str, Any]:
    """Print the plan at the start of a run and keep it in train.log; a plan that does not fit is a warning (the
    estimate may be pessimistic: the run goes on)."""
    from sftkit.console import escape
    from sftkit.training.callbacks import append_log

    plan = memory_plan(cfg, processes)
    lines = plan_lines(plan)
    for line in lines:
        append_log(log, line)
    if console is not None:
        style = "dim" if plan.get("fits", True) else "bold yellow"
        for line in lines:
            console.print(f"[{style}]{escape(line)}[/]")
    return plan


def out_of_memory(cfg: RunConfig, step: int, cuda: bool, processes: int = 1) -> Exception:
    """The one-line error for running out of CUDA memory at ``step``: the measured peak and the plan's suggestions."""
    from sftkit.errors import SftkitError

    peak = peak_bytes(cuda)
    what = "peak CUDA memory allocated" if cuda else "peak resident memory"
    plan = memory_plan(cfg, processes, out_of_memory=True)
    est = plan.get("estimate")
    planned = f", the plan estimated {size(est['total_bytes'])}" if est else ""
    return SftkitError(f"out of memory at step {step} ({what} {size(peak)}{planned})", hint=suggestion_hint(plan))
