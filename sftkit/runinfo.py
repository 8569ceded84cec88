"""What a ``RUN_OR_MODEL`` argument names: a run folder, a model folder (a run's ``model/``, a checkpoint, an
export, any HF folder) or a Hub id, and what its metadata says about how it was trained."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sftkit import layout
from sftkit.errors import SftkitError
from sftkit.names import looks_like_path


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
        if looks_like_path(path_or_name) or (path.parent != Path(".") and path.parent.is_dir()):
            raise SftkitError(
                f"no run or model at {path_or_name}",
                hint="pass a run folder (e.g. runs/tiny), a model folder or a Hub id (org/name)",
            )
        return RunInfo(path_or_name)
    if not path.is_dir():
        raise SftkitError(f"{path_or_name} is a file, not a run or model folder", hint="pass a run folder (e.g. runs/tiny) or a model folder")
    run_dir = None
    model_dir = path
    if (path / layout.MODEL).is_dir() and not (path / "config.json").exists() and not (path / "adapter_config.json").exists():
        run_dir, model_dir = path, path / layout.MODEL
    elif (path / layout.CONFIG).exists():
        run_dir = path
    elif (path.parent / layout.CONFIG).exists():
        run_dir = path.parent
    if not ((model_dir / "config.json").exists() or (model_dir / "adapter_config.json").exists()):
        if run_dir is not None:
            hint = f"the run has not finished; resume it with `sftkit train --config {run_dir / layout.CONFIG} --resume`"
        else:
            hint = "pass a run folder (with model/ inside) or a model folder holding config.json"
        raise SftkitError(f"{path_or_name} holds no model (no config.json or adapter_config.json)", hint=hint)
    metadata: dict[str, Any] = {}
    for name in layout.METADATA_NAMES:
        for folder in (model_dir, run_dir):
            if folder is not None and (folder / name).exists():
                metadata = json.loads((folder / name).read_text(encoding="utf-8"))
                break
        if metadata:
            break
    return RunInfo(model_dir, run_dir, metadata, (model_dir / "adapter_config.json").exists())
