"""Options shared by several commands, written once."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from sftkit.errors import ConfigError


def _complete_presets(incomplete: str) -> list[str]:
    from sftkit.presets import discover

    return [name for name in discover() if name.startswith(incomplete)]


PresetOpt = Annotated[
    Optional[str],
    typer.Option("--preset", "-p", help="Start from this preset (see `sftkit presets list`).", autocompletion=_complete_presets),
]
ConfigOpt = Annotated[
    Optional[Path],
    typer.Option("--config", "-c", help="Project config file (default: ./sftkit.yaml when present).", dir_okay=False),
]
SetOpt = Annotated[
    Optional[list[str]],
    typer.Option("--set", "-s", help="Override one key, e.g. --set train.learning_rate=1e-4 (repeatable).", metavar="KEY=VALUE"),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON to stdout.")]
OutputDirOpt = Annotated[
    Optional[Path], typer.Option("--output-dir", "-o", help="Run folder (train.output_dir).", file_okay=False)
]
TrainerTypeOpt = Annotated[
    Optional[str],
    typer.Option("--trainer-type", "-t", help="sft or dpo (overrides the config's trainer_type).", case_sensitive=False),
]

DEFAULT_CONFIG = Path("sftkit.yaml")


def load_config(
    preset: str | None,
    config: Path | None,
    sets: list[str] | None,
    flags: dict[str, tuple[str, Any]] | None = None,
):
    """Resolve the RunConfig from the shared options (a ./sftkit.yaml is used when nothing is named)."""
    from sftkit.resolve import resolve_config

    if config is None and preset is None:
        if DEFAULT_CONFIG.exists():
            config = DEFAULT_CONFIG
        else:
            raise ConfigError(
                "no config given and no ./sftkit.yaml here",
                hint="pass --preset NAME (e.g. --preset tiny) or --config FILE, or create one with `sftkit init`",
            )
    return resolve_config(preset=preset, config_file=config, sets=sets or [], flags=flags or {})
