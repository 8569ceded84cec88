"""Shell completion: `sftkit completion SHELL` prints the installed sftkit's scripts, they complete in a real
bash, and the copies in completions/ are current with the app."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from sftkit.completion import SHELLS, render_all

COMPLETIONS = Path(__file__).resolve().parents[2] / "completions"


@pytest.mark.parametrize("name", sorted(render_all()))
def test_completion_script_is_current(name):
    expected = render_all()[name]
    current = (
        (COMPLETIONS / name).read_text(encoding="utf-8")
        if (COMPLETIONS / name).exists()
        else ""
    )
    assert current == expected, (
        f"completions/{name} is stale: run `python -m sftkit.completion completions`"
    )


def test_scripts_cover_every_command():
    scripts = render_all()
    for command in (
        "init",
        "prepare",
        "train",
        "eval",
        "generate",
        "export",
        "runs",
        "presets",
        "completion",
    ):
        assert all(command in text for text in scripts.values()), command


def test_bash_script_parses_and_completes_subcommands(tmp_path):
    bash = shutil.which("bash")
    if not bash:
        pytest.skip("bash not installed")
    script = COMPLETIONS / "sftkit.bash"
    probe = f'source "{script}"; COMP_WORDS=(sftkit pre); COMP_CWORD=1; _sftkit_complete; echo "${{COMPREPLY[@]}}"'
    out = subprocess.run(
        [bash, "-c", probe], capture_output=True, text=True, check=True
    )
    assert out.stdout.split() == ["presets", "prepare"] or set(out.stdout.split()) == {
        "presets",
        "prepare",
    }
    probe = f'source "{script}"; COMP_WORDS=(sftkit train --dry); COMP_CWORD=2; _sftkit_complete; echo "${{COMPREPLY[@]}}"'
    out = subprocess.run(
        [bash, "-c", probe], capture_output=True, text=True, check=True
    )
    assert out.stdout.split() == ["--dry-run"]


def _sftkit(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "sftkit", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        check=True,
    )


@pytest.mark.parametrize("shell", sorted(SHELLS))
def test_the_installed_package_prints_each_script(shell, tmp_path):
    """Run away from the repository: the script comes from the package, not from completions/."""
    printed = _sftkit("completion", shell, cwd=tmp_path)
    assert printed.stdout == render_all()[SHELLS[shell]] and printed.stderr == ""


@pytest.fixture(scope="module")
def bash_complete(tmp_path_factory):
    """complete(words...) -> what bash offers for the last word, with the script `sftkit completion bash` printed."""
    bash = shutil.which("bash")
    if not bash:
        pytest.skip("bash not installed")
    folder = tmp_path_factory.mktemp("bash")
    script = folder / "sftkit.bash"
    script.write_text(
        _sftkit("completion", "bash", cwd=folder).stdout, encoding="utf-8"
    )
    # the script asks `sftkit presets list --names` for preset names: the sftkit installed beside this Python
    env = {
        **os.environ,
        "PATH": os.pathsep.join(
            [str(Path(sys.executable).parent), os.environ.get("PATH", "")]
        ),
    }

    def complete(*words: str) -> list[str]:
        quoted = " ".join(f"'{w}'" for w in words)
        probe = f'source "{script}"; COMP_WORDS=({quoted}); COMP_CWORD={len(words) - 1}; _sftkit_complete; printf "%s\\n" "${{COMPREPLY[@]}}"'
        out = subprocess.run(
            [bash, "-c", probe],
            capture_output=True,
            text=True,
            check=True,
            cwd=folder,
            env=env,
        )
        return [line for line in out.stdout.splitlines() if line]

    return complete


def test_bash_completes_set_keys(bash_complete):
    assert bash_complete("sftkit", "train", "--set", "train.lea") == [
        "train.learning_rate="
    ]
    assert "lora.enabled=" in bash_complete("sftkit", "prepare", "-s", "lora.")


def test_bash_completes_commands_options_choices_and_presets(bash_complete):
    assert bash_complete("sftkit", "ru") == ["runs"]
    assert bash_complete("sftkit", "runs", "co") == ["compare"]
    assert bash_complete("sftkit", "runs", "show", "--i") == ["--image"]
    assert bash_complete("sftkit", "completion", "") == [
        "bash",
        "zsh",
        "fish",
        "--install",
        "--help",
    ]
    assert bash_complete("sftkit", "export", "--dtype", "bf") == ["bfloat16"]
    assert "tiny" in bash_complete("sftkit", "train", "--preset", "ti")


@pytest.mark.parametrize(
    ("shell", "where"),
    [
        ("bash", ".local/share/bash-completion/completions/sftkit"),
        ("fish", ".config/fish/completions/sftkit.fish"),
        ("zsh", ".zfunc/_sftkit"),
    ],
)
def test_install_writes_the_script_where_the_shell_loads_it(shell, where, tmp_path):
    env = {
        k: v
        for k, v in os.environ.items()
        if k
        not in (
            "XDG_DATA_HOME",
            "XDG_CONFIG_HOME",
            "BASH_COMPLETION_USER_DIR",
            "ZDOTDIR",
        )
    }
    env["HOME"] = str(tmp_path)
    done = _sftkit("completion", shell, "--install", cwd=tmp_path, env=env)
    path = tmp_path / where
    assert path.read_text(encoding="utf-8") == render_all()[SHELLS[shell]]
    assert f"wrote {path}" in done.stderr and done.stdout == ""
