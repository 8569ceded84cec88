"""Options shared by several commands, written once."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from sftkit.cli._facts import CONFIG_FILE
from sftkit.errors import ConfigError


def _complete_presets(incomplete: str) -> list[str]:
    from sftkit.presets import discover

    return [name for name in discover() if name.startswith(incomplete)]


def _complete_set(incomplete: str) -> list[str]:
    """``--set`` completes keys (``train.lea`` -> ``train.learning_rate=``) and, for choices, their values."""
    import typing

    from sftkit.keys import all_keys, field_info, type_members

    key, sep, value = incomplete.partition("=")
    if not sep:
        return [f"{k}=" for k in all_keys() if k.startswith(incomplete)]
    info = field_info(key)
    if info is None:
        return []
    choices: list[str] = []
    for member in type_members(info.annotation):
        if typing.get_origin(member) is typing.Literal:
            choices += [str(c) for c in typing.get_args(member)]
        elif member is bool:
            choices += ["true", "false"]
    return [f"{key}={c}" for c in choices if c.startswith(value)]


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
    typer.Option(
        "--set",
        "-s",
        help="Override one key, e.g. --set train.learning_rate=1e-4 (repeatable). Text keys take the value as written; "
        "other keys read it as YAML. `sftkit config keys` lists them.",
        metavar="KEY=VALUE",
        autocompletion=_complete_set,
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON to stdout.")]
OutputDirOpt = Annotated[
    Optional[Path], typer.Option("--output-dir", "-o", help="Run folder (train.output_dir).", file_okay=False)
]
TrainerTypeOpt = Annotated[
    Optional[str],
    typer.Option("--trainer-type", "-t", help="sft, dpo or kto (overrides the config's trainer_type).", case_sensitive=False),
]
OverwriteOpt = Annotated[bool, typer.Option("--overwrite", help="Replace what is already there.")]
TrustFormattingFuncOpt = Annotated[
    bool,
    typer.Option(
        "--trust-formatting-func",
        help="Allow importing and running the Python function the config names in data.formatting_func. "
        "Without it a config (or a run folder someone sent you) never makes sftkit run code: only for code you trust.",
    ),
]
#: library wording -> the flag, for naming_flags
TRUST_FLAG = {"trust_formatting_func=True": "--trust-formatting-func"}

# options of the commands that take a trained run or a model: eval, generate, export
RunOrModelArg = Annotated[
    str,
    typer.Argument(help="A run folder (runs/x), a model folder (runs/x/model, a checkpoint, an export) or a Hub id.", metavar="RUN_OR_MODEL", show_default=False),
]
TemplateOpt = Annotated[
    Optional[str],
    typer.Option("--template", help="Prompt template instead of the one the run trained with: auto, chat, chatml, alpaca, arabic or a custom string."),
]

DEFAULT_CONFIG = Path(CONFIG_FILE)


def load_config(
    preset: str | None,
    config: Path | None,
    sets: list[str] | None,
    flags: dict[str, tuple[str, Any]] | None = None,
):
    """Resolve the RunConfig from the shared options (a ./sftkit.yaml is used when nothing is named)."""
    from sftkit.api import resolve

    if config is None and preset is None:
        if DEFAULT_CONFIG.exists():
            config = DEFAULT_CONFIG
        else:
            raise ConfigError(
                "no config given and no ./sftkit.yaml here",
                hint="pass --preset NAME (e.g. --preset tiny) or --config FILE, or create one with `sftkit init`",
            )
    return resolve(preset, config, sets or [], flags or {})


class naming_flags:
    """Show a library error in the command line's words: parameter names (``max_shard_size``) become the
    flags that set them (``--max-shard-size``). The library names parameters, since it is also called from Python."""

    def __init__(self, flags: dict[str, str]) -> None:
        self.flags = flags

    def __enter__(self) -> "naming_flags":
        return self

    def __exit__(self, kind: Any, err: Any, tb: Any) -> bool:
        import re

        from sftkit.errors import SftkitError

        if isinstance(err, SftkitError):
            for name, flag in self.flags.items():
                pattern = re.compile(rf"(?<![\w.-]){re.escape(name)}(?![\w])")
                err.message = pattern.sub(flag, err.message)
                err.hint = pattern.sub(flag, err.hint) if err.hint else err.hint
                err.args = (err.message,)
        return False
