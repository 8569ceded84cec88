"""RunConfig -> a loaded model, with hardware checks that name the key to change."""

from __future__ import annotations

from typing import Any

from sftkit.config import RunConfig
from sftkit.errors import EXIT_USAGE, SftkitError
from sftkit.modeling import is_adapter_folder, resolve_model_path
from sftkit.names import is_local
from sftkit.training.args import model_load_args


def check_hardware(cfg: RunConfig) -> str:
    """Fail early, naming the key, when the precision, quantisation or tracker asked for cannot run here. Returns the device."""
    import torch

    cuda = torch.cuda.is_available() and not cfg.train.use_cpu
    t = cfg.train
    if (t.fp16 or t.precision == "fp16") and not cuda:
        raise SftkitError(
            f"{'train.fp16' if t.fp16 else 'train.precision=fp16'} needs a CUDA GPU, and none is in use here",
            hint="set train.fp16=false (or train.bf16=true on a CPU that supports it)" if t.fp16 else "set train.precision=auto",
            exit_code=EXIT_USAGE,
        )
    if (t.bf16 or t.precision == "bf16") and cuda and not torch.cuda.is_bf16_supported():
        raise SftkitError(
            f"{'train.bf16' if t.bf16 else 'train.precision=bf16'} is not supported by {torch.cuda.get_device_name()}",
            hint="set train.bf16=false and train.fp16=true on this GPU" if t.bf16 else "set train.precision=auto (fp16 on this GPU)",
            exit_code=EXIT_USAGE,
        )
    from sftkit.training.hardware import kernels_of

    kernels_of(cfg, cuda)  # train.kernels=liger where Liger cannot run fails here (the architecture: once loaded)
    if cfg.model.flash_attention and not cuda:
        raise SftkitError(
            "model.flash_attention needs a CUDA GPU, and none is in use here",
            hint="set model.flash_attention=false",
            exit_code=EXIT_USAGE,
        )
    if cfg.model.flash_attention:
        import importlib.util

        if importlib.util.find_spec("flash_attn") is None:
            raise SftkitError(
                "model.flash_attention is on but the flash-attn package is not installed",
                hint="pip install flash-attn, or set model.flash_attention=false",
                exit_code=EXIT_USAGE,
            )
    if cfg.lora.load_in_4bit or cfg.lora.load_in_8bit:
        import importlib.util

        if importlib.util.find_spec("bitsandbytes") is None:
            raise SftkitError(
                "4/8-bit loading needs the bitsandbytes package",
                hint="pip install bitsandbytes, or set lora.load_in_4bit=false and lora.load_in_8bit=false",
                exit_code=EXIT_USAGE,
            )
    from sftkit.modeling import quiet_transformers
    from sftkit.training.tracking import check_tracking

    with quiet_transformers():  # it imports transformers' integrations, and bitsandbytes' kernel notice with them
        check_tracking(cfg)  # the tracker's package, callback and settings, as --dry-run checks them
    return "cuda" if cuda else "cpu"


def load_model(cfg: RunConfig, name: str | None = None) -> Any:
    """Load the model the config names (or ``name``), dequantising GGUF files and quantising for QLoRA."""
    import torch
    from transformers import AutoModelForCausalLM, BitsAndBytesConfig

    from sftkit.hub import local_only, offline_error
    from sftkit.modeling import weights_problem

    kwargs = model_load_args(cfg)
    name = name or kwargs.pop("pretrained_model_name_or_path")
    kwargs.pop("pretrained_model_name_or_path", None)
    source, gguf = resolve_model_path(name)
    if not gguf and is_adapter_folder(source):
        return _merged_adapter(cfg, name, source)
    kwargs["dtype"] = getattr(torch, kwargs["dtype"])
    quant = kwargs.pop("quantization_config", None)
    if quant is not None:
        if "bnb_4bit_compute_dtype" in quant:
            quant["bnb_4bit_compute_dtype"] = getattr(torch, quant["bnb_4bit_compute_dtype"])
        kwargs["quantization_config"] = BitsAndBytesConfig(**quant)
    if gguf:
        kwargs["gguf_file"] = gguf
    if not is_local(name):
        kwargs["local_files_only"] = local_only()
    from safetensors import SafetensorError

    try:
        model = AutoModelForCausalLM.from_pretrained(source, **kwargs)
    except (OSError, SafetensorError) as e:
        if is_local(name):
            problem = None if gguf else weights_problem(source)  # (a .gguf file's folder holds no weights files)
            raise problem or SftkitError(f"could not load a model from {name}: {str(e).splitlines()[0]}") from None
        raise offline_error("model", name, e) from None
    except (RuntimeError, ValueError, ImportError) as e:
        if quant is not None:
            raise SftkitError(
                f"could not load {name} in {'4' if cfg.lora.load_in_4bit else '8'}-bit on this platform: {str(e).splitlines()[0]}",
                hint="QLoRA needs a bitsandbytes build for this device; set lora.load_in_4bit=false to train LoRA on full weights",
            ) from None
        raise
    if gguf:
        # a dequantised GGUF model is a plain model now: drop the quantiser so it trains and saves normally
        model.hf_quantizer = None
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
    model.config.use_cache = False
    return model


def _merged_adapter(cfg: RunConfig, name: str, folder: str) -> Any:
    """A LoRA adapter folder (a LoRA run's ``model/``) as a starting point: its base model (from the run's metadata,
    else the adapter's config) with the adapter merged into the weights, so a new run starts from exactly what
    that run produced (full fine-tuning, or new LoRA adapters on top). A base that is itself an adapter is merged
    the same way first."""
    from peft import PeftModel

    from sftkit.runinfo import locate

    base = locate(folder).base_model
    if not base:
        raise SftkitError(
            f"{name} is a LoRA adapter that does not say which base model it applies to",
            hint="set base_model_name_or_path in its adapter_config.json",
            exit_code=EXIT_USAGE,
        )
    if cfg.lora.load_in_4bit or cfg.lora.load_in_8bit:
        raise SftkitError(
            f"{name} is a LoRA adapter: it is merged into its base model ({base}) to start from, and a merged model cannot be loaded in 4/8-bit",
            hint=f"export it as a full model first (sftkit export {name} --output {name}-merged) and set model.name to that folder",
            exit_code=EXIT_USAGE,
        )
    base_cfg = cfg.model_copy(update={"model": cfg.model.model_copy(update={"name": base, "revision": None})})
    model = PeftModel.from_pretrained(load_model(base_cfg), folder).merge_and_unload()
    model.requires_grad_(True)  # peft loaded the base frozen; whether the new run trains it is the trainer's choice
    model.config.use_cache = False
    return model
