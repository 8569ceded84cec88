"""The shell completion scripts in completions/ are current with the app."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from sftkit.completion import render_all

COMPLETIONS = Path(__file__).resolve().parents[2] / "completions"


@pytest.mark.parametrize("name", sorted(render_all()))
def test_completion_script_is_current(name):
    expected = render_all()[name]
    current = (COMPLETIONS / name).read_text(encoding="utf-8") if (COMPLETIONS / name).exists() else ""
    assert current == expected, f"completions/{name} is stale: run `python -m sftkit.completion completions`"


def test_scripts_cover_every_command():
    scripts = render_all()
    for command in ("init", "prepare", "train", "eval", "generate", "export", "presets"):
        assert all(command in text for text in scripts.values()), command


def test_bash_script_parses_and_completes_subcommands(tmp_path):
    bash = shutil.which("bash")
    if not bash:
        pytest.skip("bash not installed")
    script = COMPLETIONS / "sftkit.bash"
    probe = f'source "{script}"; COMP_WORDS=(sftkit pre); COMP_CWORD=1; _sftkit_complete; echo "${{COMPREPLY[@]}}"'
    out = subprocess.run([bash, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["presets", "prepare"] or set(out.stdout.split()) == {"presets", "prepare"}
    probe = f'source "{script}"; COMP_WORDS=(sftkit train --dry); COMP_CWORD=2; _sftkit_complete; echo "${{COMPREPLY[@]}}"'
    out = subprocess.run([bash, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["--dry-run"]
