"""The few values the help texts show that live in heavier modules, written out here so that building the
help (``sftkit --help``, ``sftkit <command> --help``) imports none of them: the config schema (pydantic),
the wizard, the exporter (rich, yaml).

Each one is checked against the module that owns it by ``tests/unit/test_cli_startup.py``: change it there
and that test names the value to update here.
"""

from __future__ import annotations

from typing import Literal

#: ``sftkit.layout.CONFIG``: the project file ``sftkit init`` writes (and every command reads by default)
CONFIG_FILE = "sftkit.yaml"
#: ``sftkit.config.Dtype``: the dtypes ``sftkit export --dtype`` takes
Dtype = Literal["auto", "float32", "bfloat16", "float16"]
#: ``sftkit.export.DEFAULT_TOLERANCE``: the largest logit difference a float32 export may have
EXPORT_TOLERANCE = 1e-3
#: ``"hf"`` and ``sftkit.gguf.FORMATS``: what ``sftkit export --format`` writes
ExportFormat = Literal["hf", "gguf", "ollama"]
#: ``sftkit.gguf.QUANTS``: the quantisations ``sftkit export --quant`` writes
GGUFQuant = Literal["f32", "f16", "bf16", "q8_0"]
#: the keys of ``sftkit.wizard.questions.PRECISIONS``, in order
PRECISIONS = ("bf16", "fp16", "fp32")
#: the keys of ``sftkit.wizard.questions.TRACKING`` (the schema's tracking backends plus trackio-space), in order
TRACKING = ("trackio", "trackio-space", "tensorboard", "wandb", "none")
