"""Where things live in a run folder and a prepared-data folder, declared once.

```
runs/x/
  sftkit.yaml            the resolved config the run used (CONFIG)
  state.json             running / failed / interrupted / finished (STATE)
  environment.json       versions, device, threads (ENVIRONMENT)
  metrics.jsonl          every logged event, one JSON object a line (METRICS)
  train.log              the same as plain timestamped lines (TRAIN_LOG)
  checkpoint-N/          trainer checkpoints
  prepared/              the tokenised data + manifest.json + dropped.jsonl (PREPARED)
  model/                 the final model or adapter, tokenizer, metadata, card (MODEL)
  sft_metadata.json      run metadata (metadata_name(trainer_type)); also in model/
  final_metrics.json     the final figures (FINAL_METRICS)
  loss.png               the loss curve, train and eval against steps (LOSS_PLOT; with the `plot` extra)
  README.md              the model card (CARD)
  eval/NAME.json         `sftkit eval` results (EVAL)
  tensorboard/           TensorBoard events, when that tracker is on (TENSORBOARD)
  .replaced/             the run an --overwrite replaces, until the new run has a checkpoint (REPLACED)
  .stop                  asks the processes of a multi-process run to stop at the next step (STOP)
```

A checkpoint folder is complete once it holds ``sftkit-complete.json`` (CHECKPOINT_COMPLETE), written after every
other file in it is on disk; ``--resume`` takes only complete checkpoints. The final model is written to
``.model.tmp`` (MODEL_TMP) and renamed to ``model`` when complete. The process running the run holds an
exclusive ``flock`` on the run folder itself.
"""

from __future__ import annotations

import typing
from pathlib import Path

from sftkit.config import TrainerType

CONFIG = "sftkit.yaml"
STATE = "state.json"
ENVIRONMENT = "environment.json"
METRICS = "metrics.jsonl"
TRAIN_LOG = "train.log"
PREPARED = "prepared"
MODEL = "model"
FINAL_METRICS = "final_metrics.json"
LOSS_PLOT = "loss.png"
CARD = "README.md"
EVAL = "eval"
TENSORBOARD = "tensorboard"
CHECKPOINT_PREFIX = "checkpoint-"
CHECKPOINT_COMPLETE = "sftkit-complete.json"
REPLACED = ".replaced"
STOP = ".stop"
MODEL_TMP = f".{MODEL}.tmp"
MODEL_OLD = f".{MODEL}.old"

# the prepared-data folder
MANIFEST = "manifest.json"
DROPPED = "dropped.jsonl"

def metadata_name(trainer_type: str) -> str:
    """``sft_metadata.json`` / ``dpo_metadata.json``."""
    return f"{trainer_type}_metadata.json"


METADATA_NAMES = tuple(metadata_name(t) for t in typing.get_args(TrainerType))


def run_config(run_dir: str | Path) -> Path:
    return Path(run_dir) / CONFIG


def prepared_dir(run_dir: str | Path) -> Path:
    return Path(run_dir) / PREPARED


def eval_file(run_dir: str | Path, name: str) -> Path:
    return Path(run_dir) / EVAL / f"{name}.json"
