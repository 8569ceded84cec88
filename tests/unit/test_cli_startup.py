"""Start-up: help screens import nothing they do not show, and look exactly as they did.

``sftkit --help`` must stay about as fast as ``trl --help`` (see benchmarks/startup.py). So the help is built
without the config schema (pydantic), yaml, the wizard, the exporter or torch, and drawn without rich.markdown
and rich.traceback (sftkit.cli._startup). These tests keep it that way, and check that the few values the help
shows from those modules (sftkit.cli._facts) still match them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import typing

import pytest

#: help screens, then the usage errors typer draws (the same rich code): each argv list is one screen
SCREENS = [
    [],
    ["--help"],
    ["-h"],
    ["--version"],
    ["init", "--help"],
    ["prepare", "--help"],
    ["train", "--help"],
    ["eval", "--help"],
    ["generate", "--help"],
    ["export", "--help"],
    ["presets", "--help"],
    ["presets", "list", "--help"],
    ["presets", "show", "--help"],
    ["runs", "--help"],
    ["runs", "list", "--help"],
    ["runs", "show", "--help"],
    ["runs", "compare", "--help"],
    ["completion", "--help"],
    ["config"],
    ["config", "keys", "--help"],
    ["nosuch"],
    ["train", "--bogus"],
    ["export", "x"],
]

#: modules a help screen must not import
NOT_FOR_HELP = ("torch", "transformers", "pydantic", "yaml", "sftkit.config", "sftkit.wizard", "sftkit.export", "rich.markdown", "markdown_it", "pygments", "sftkit.runs", "plotille", "matplotlib")


def test_help_facts_match_their_sources():
    from sftkit import layout
    from sftkit.cli import _facts
    from sftkit.config import Dtype
    from sftkit.export import DEFAULT_TOLERANCE
    from sftkit.wizard.questions import PRECISIONS, TRACKING

    assert _facts.CONFIG_FILE == layout.CONFIG
    assert typing.get_args(_facts.Dtype) == typing.get_args(Dtype)
    assert _facts.EXPORT_TOLERANCE == DEFAULT_TOLERANCE
    assert _facts.PRECISIONS == tuple(PRECISIONS)
    assert _facts.TRACKING == tuple(TRACKING)


def _screens(with_startup: bool) -> list[dict]:
    """Every screen drawn in a fresh process, with or without sftkit.cli._startup installed."""
    code = (
        "import json, sys\n"
        + ("from sftkit.cli import _startup; _startup.install()\n" if with_startup else "")
        + "from typer.testing import CliRunner\n"
        "from sftkit.cli import app\n"
        f"screens = {SCREENS!r}\n"
        "out = []\n"
        "for argv in screens:\n"
        "    r = CliRunner().invoke(app, argv, prog_name='sftkit')\n"
        f"    heavy = [m for m in {NOT_FOR_HELP!r} if m in sys.modules]\n"
        "    out.append({'argv': argv, 'code': r.exit_code, 'stdout': r.stdout, 'stderr': r.stderr, 'heavy': sorted(heavy)})\n"
        "print(json.dumps(out))\n"
    )
    env = {**os.environ, "COLUMNS": "100", "TERMINAL_WIDTH": "100"}
    for name in ("FORCE_COLOR", "PY_COLORS", "GITHUB_ACTIONS", "NO_COLOR"):
        env.pop(name, None)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    return json.loads(proc.stdout)


def test_help_screens_are_the_same_with_the_startup_shortcuts():
    plain, fast = _screens(False), _screens(True)
    for before, after in zip(plain, fast):
        assert {**after, "heavy": None} == {**before, "heavy": None}, after["argv"]
    helped = [s for s in fast if s["argv"][-1:] == ["--help"]]
    assert all(s["code"] == 0 and "Usage: sftkit" in s["stdout"] for s in helped)
    # every help screen (they come first) was drawn with none of the heavy modules imported
    last_help = max(i for i, s in enumerate(fast) if s["argv"][-1:] == ["--help"] or s["argv"] in ([], ["config"], ["--version"]))
    assert fast[last_help]["heavy"] == [], f"help screens imported {fast[last_help]['heavy']}"


@pytest.mark.parametrize("argv", [["--help"], ["train", "--help"], ["generate", "--help"], ["init", "--help"], ["export", "--help"]])
def test_the_entry_point_help_imports_nothing_heavy(argv):
    code = (
        "import sys\n"
        f"sys.argv = ['sftkit', *{argv!r}]\n"
        "from sftkit.cli import main\n"
        "try:\n"
        "    main()\n"
        "except SystemExit:\n"
        "    pass\n"
        f"print([m for m in {NOT_FOR_HELP!r} if m in sys.modules], file=sys.stderr)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "Usage: sftkit" in proc.stdout
    assert proc.stderr.strip().splitlines()[-1] == "[]", proc.stderr


@pytest.mark.parametrize("flag", ["--version", "-V"])
def test_the_version_shortcut_says_what_the_app_says(flag, cli):
    proc = subprocess.run([sys.executable, "-m", "sftkit", flag], capture_output=True, text=True, check=True)
    assert proc.stdout == cli(flag).stdout and proc.stderr == ""


def test_the_stand_ins_build_the_real_classes():
    code = (
        "from sftkit.cli import _startup; _startup.install()\n"
        "import sys, typer.rich_utils as ru\n"
        "assert 'rich.markdown' not in sys.modules and 'rich.traceback' not in sys.modules\n"
        "from rich.markdown import Markdown\n"
        "from rich.traceback import Traceback\n"
        "md = ru.Markdown('# hi')\n"
        "assert type(md) is Markdown and isinstance(md, ru.Markdown)\n"
        "try:\n"
        "    1 / 0\n"
        "except ZeroDivisionError as e:\n"
        "    tb = ru.Traceback.from_exception(type(e), e, e.__traceback__)\n"
        "assert type(tb) is Traceback\n"
        "print('ok')\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.stdout.strip() == "ok", proc.stderr
