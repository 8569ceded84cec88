"""sftkit: fine-tune causal language models (SFT and DPO, full, LoRA or QLoRA) from one resolved config."""

__version__ = "0.1.0"
