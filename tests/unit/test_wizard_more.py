"""The wizard's more settings (what launch.sh asked in its custom flows, see docs/launch-sh.md): not asked in the
usual flow, offered under "Change an answer" in the summary, and given with `sftkit init --set KEY=VALUE`."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from prompt_toolkit.input import create_pipe_input
from prompt_toolkit.output import DummyOutput

from sftkit.errors import ConfigError
from sftkit.resolve import resolve_config
from sftkit.wizard.command import init_project
from sftkit.wizard.interactive import QuestionaryPrompter
from sftkit.wizard.parse import mapping, show
from sftkit.wizard.questions import MORE
from sftkit.wizard.state import Wizard

DOWN, ENTER, CLEAR = "\x1b[B", "\r", "\x15"
NO_GPU = ("fp32", "test machine: no GPU")


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv("SFTKIT_PRESET_PATH", raising=False)
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))


def written() -> dict:
    return yaml.safe_load(Path("sftkit.yaml").read_text(encoding="utf-8"))


def test_given_settings_land_in_the_file_and_resolve():
    given = {
        "preset": "tiny",
        "data.split": "validation",
        "data.format": "alpaca",
        "data.field_map": "question=instruction, answer=output",
        "data.chat_template_kwargs": 'enable_thinking=false, model_identity="You are X, a model."',
        "train.warmup_ratio": "0.1",
        "train.save_steps": "40",
    }
    init_project(given, Path("sftkit.yaml"), yes=True, hardware=NO_GPU)
    data = written()
    assert data["data"] == {
        "split": "validation",
        "format": "alpaca",
        "field_map": {"question": "instruction", "answer": "output"},
        "chat_template_kwargs": {
            "enable_thinking": False,
            "model_identity": "You are X, a model.",
        },
    }
    assert data["train"] == {"warmup_ratio": 0.1, "save_steps": 40}
    cfg = resolve_config(config_file="sftkit.yaml").config
    assert (cfg.data.split, cfg.train.save_steps) == ("validation", 40)


def test_a_warmup_ratio_replaces_the_presets_warmup_steps():
    result = init_project(
        {"preset": "smollm3", "dataset": "org/data", "train.warmup_ratio": "0.03"},
        Path("sftkit.yaml"),
        yes=True,
        hardware=NO_GPU,
    )
    assert (
        written()["train"]["warmup_steps"] == 0
        and written()["train"]["warmup_ratio"] == 0.03
    )
    assert any("warmup_steps 0" in n for n in result.project.notes)
    resolve_config(config_file="sftkit.yaml")


def test_bad_values_are_named_by_their_flag():
    with pytest.raises(ConfigError) as err:
        init_project(
            {"preset": "tiny", "train.warmup_ratio": "1.5", "data.format": "yaml"},
            Path("sftkit.yaml"),
            yes=True,
            hardware=NO_GPU,
            names={"train.warmup_ratio": "--set train.warmup_ratio"},
        )
    wheres = {p.where for p in err.value.problems}
    assert wheres == {"--set train.warmup_ratio", "data.format"}
    assert not Path("sftkit.yaml").exists()


def test_cli_set_takes_only_the_settings_init_offers(cli):
    ok = cli(
        "init",
        "--preset",
        "tiny",
        "--yes",
        "--set",
        "lora.dropout=0.2",
        "--set",
        "train.logging_steps=5",
    )
    assert ok.exit_code == 0, ok.output
    assert written()["lora"] == {"dropout": 0.2} and written()["train"] == {
        "logging_steps": 5
    }
    bad = cli(
        "init",
        "--preset",
        "tiny",
        "--yes",
        "--overwrite",
        "--set",
        "train.use_cpu=false",
    )
    assert (
        bad.exit_code == 2
        and "not one of the settings `sftkit init` takes" in bad.output
    )
    assert "train.warmup_ratio" in bad.output  # the hint lists them


def test_the_summary_offers_them_under_change_an_answer():
    w = Wizard({"preset": "tiny"}, hardware=NO_GPU)
    w.accept_defaults()
    order = [q.key for q in w.active()] + [q.key for q in w.more()]
    downs = order.index("train.warmup_ratio")
    asked = len(w.active()) - 1  # the preset was given
    keys = (
        [ENTER] * asked
        + [DOWN, ENTER]
        + [DOWN] * downs
        + [ENTER, CLEAR + "0.2" + ENTER, ENTER, "n"]
    )
    with create_pipe_input() as inp:
        inp.send_text("".join(keys))
        inp.close()
        prompter = QuestionaryPrompter(input=inp, output=DummyOutput())
        init_project(
            {"preset": "tiny"}, Path("sftkit.yaml"), prompter=prompter, hardware=NO_GPU
        )
    assert written() == {"extends": "tiny", "train": {"warmup_ratio": 0.2}}


def test_lora_settings_are_offered_with_lora_only():
    full = Wizard({"preset": "tiny", "method": "full"}, hardware=NO_GPU)
    lora = Wizard({"preset": "tiny", "method": "lora"}, hardware=NO_GPU)
    assert "lora.r" not in {q.key for q in full.more()} and "lora.r" in {
        q.key for q in lora.more()
    }


def test_mappings_read_back_what_the_wizard_shows():
    value = {
        "enable_thinking": False,
        "model_identity": "You are GPT-Tonic, a model.",
        "builtin_tools": ["browser"],
        "effort": "low",
    }
    assert mapping("variables", "a=b")(show(value)) == value
    with pytest.raises(ValueError, match="key=value"):
        mapping("variables", "a=b")("just text")


def test_every_more_setting_is_a_config_key_with_the_presets_default():
    from sftkit.keys import all_keys

    w = Wizard({"preset": "smollm3"}, hardware=NO_GPU)
    for q in MORE:
        assert q.key in all_keys() and q.label
        section, _, name = q.key.partition(".")
        assert w.default(q) == getattr(getattr(w.base(), section), name)
