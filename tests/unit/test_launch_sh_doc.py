"""docs/launch-sh.md answers every question the old project's launch.sh asks (tests/fixtures/legacy/smolfactory has
an unchanged copy of it), and every answer it gives exists: the flags of `sftkit init` and the keys of its
``--set``."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LAUNCH = ROOT / "tests" / "fixtures" / "legacy" / "smolfactory" / "launch.sh"
DOC = ROOT / "docs" / "launch-sh.md"
HELPERS = ("get_input", "select_option", "get_secure_token_input")


def helper_lines(lines: list[str]) -> set[int]:
    """Line numbers inside the bodies of the three helpers that do the asking."""
    inside: set[int] = set()
    current = None
    for number, line in enumerate(lines, 1):
        match = re.match(r"^(\w+)\(\)\s*\{", line)
        if match:
            current = match.group(1) if match.group(1) in HELPERS else None
        elif line.startswith("}"):
            current = None
        elif current:
            inside.add(number)
    return inside


def launch_prompts() -> list[str]:
    """Every question launch.sh asks: the first argument of each helper call, and each `read -p` of its own."""
    lines = LAUNCH.read_text(encoding="utf-8").splitlines()
    inside = helper_lines(lines)
    prompts: list[str] = []
    for number, line in enumerate(lines, 1):
        code = line.strip()
        if code.startswith("#"):
            continue
        call = re.match(rf"^({'|'.join(HELPERS)})\s+(.*)$", code)
        if call:
            prompts.append(shlex.split(call.group(2).rstrip("\\"), posix=True)[0])
            continue
        bare = re.sub(
            r'"(?:\\.|[^"\\])*"|\'[^\']*\'', '""', code
        )  # the words of strings are not commands
        if re.search(r"(^|[;&|(]\s*|\b(?:then|do|else)\s+)read\s", bare):
            if number in inside:
                continue  # the helpers' own reads: their call sites are the questions
            prompt = re.search(r'read\s+(?:-\w+\s+)*-p\s+"([^"]*)"', code)
            assert prompt, f"launch.sh:{number}: a read without a prompt: {code}"
            prompts.append(prompt.group(1))
    return prompts


def doc_rows() -> list[tuple[str, str]]:
    rows = []
    for line in DOC.read_text(encoding="utf-8").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 4 and cells[0].isdigit():
            asked = re.fullmatch(r"`(.*)`", cells[1])
            assert asked, line
            rows.append((asked.group(1), cells[2]))
    return rows


def test_every_question_launch_sh_asks_has_a_row():
    prompts = launch_prompts()
    assert (
        len(prompts) >= 60
        and "Dataset split" in prompts
        and "Proceed with this configuration? (y/N): " in prompts
    )
    covered = {asked for asked, _ in doc_rows()}
    missing = [p for p in dict.fromkeys(prompts) if p not in covered]
    assert not missing, missing


def test_every_row_is_a_question_launch_sh_asks_and_says_how_init_answers_it():
    prompts = set(launch_prompts())
    for asked, answer in doc_rows():
        assert asked in prompts, asked
        assert answer, asked


def test_the_flags_and_keys_the_rows_name_exist():
    import typer.main

    from sftkit.cli import app
    from sftkit.wizard.questions import MORE

    command = typer.main.get_command(app)
    init = command.commands["init"]  # type: ignore[attr-defined]
    options = {opt for param in init.params for opt in getattr(param, "opts", [])}
    more = {q.key for q in MORE}
    for asked, answer in doc_rows():
        for flag in re.findall(r"(?<![\w-])(--[a-z][a-z-]*)", answer):
            if "sftkit export" in answer or "sftkit generate" in answer:
                continue  # another command's flag
            assert flag in options, (asked, flag)
        for key in re.findall(r"--set \"?([a-z_]+\.[a-z_]+)=", answer):
            assert key in more, (asked, key)


@pytest.mark.parametrize(
    "key",
    [
        "data.split",
        "data.format",
        "data.field_map",
        "data.system_prompt",
        "data.chat_template_kwargs",
        "train.warmup_ratio",
        "lora.r",
    ],
)
def test_the_more_settings_the_doc_names_are_wizard_questions(key):
    from sftkit.wizard.questions import BY_KEY, MORE

    assert key in {q.key for q in MORE} and BY_KEY[key].label
