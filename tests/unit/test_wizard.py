"""The init wizard, driven through real questionary prompts on a prompt_toolkit pipe input.

Keys are typed into the pipe as a person would type them; the answers are checked in the written
sftkit.yaml and by resolving it. Only the hardware is given (``hardware=``): there is no GPU here.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from prompt_toolkit.input import create_pipe_input
from prompt_toolkit.output import DummyOutput

from sftkit.cli.init import FLAGS
from sftkit.errors import ConfigError
from sftkit.resolve import resolve_config
from sftkit.wizard.command import init_project
from sftkit.wizard.environment import count_rows, data_summary, detect_hardware, precision_for
from sftkit.wizard.interactive import QuestionaryPrompter
from sftkit.wizard.mapping import build_project
from sftkit.wizard.parse import parse_dataset, parse_model
from sftkit.wizard.questions import BY_KEY, QUESTIONS
from sftkit.wizard.state import Wizard, check_given

DOWN, UP, ENTER, CLEAR = "\x1b[B", "\x1b[A", "\r", "\x15"  # Ctrl-U clears a pre-filled answer
NO_GPU = ("fp32", "test machine: no GPU")
GPU = ("bf16", "test machine: a GPU")


def type_(text: str) -> str:
    """Replace a text question's pre-filled default with ``text`` and press Enter."""
    return CLEAR + text + ENTER


def drive(keys: list[str], given: dict | None = None, path: Path | None = None, hardware=NO_GPU, **kw):
    """Run the real wizard with ``keys`` typed ahead; running out of keys raises EOFError instead of hanging."""
    with create_pipe_input() as inp:
        inp.send_text("".join(keys))
        inp.close()
        prompter = QuestionaryPrompter(input=inp, output=DummyOutput())
        return init_project(given or {}, path or Path("sftkit.yaml"), prompter=prompter, hardware=hardware, **kw)


def written(path: Path = Path("sftkit.yaml")) -> dict:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))  # no user presets
    monkeypatch.delenv("SFTKIT_PRESET_PATH", raising=False)
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.delenv("HUGGING_FACE_HUB_TOKEN", raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))  # no Hub login token
    monkeypatch.setenv("HOME", str(tmp_path))


# questions asked when --preset tiny is given (tiny has max_iters, so no epochs question; tracking none)
TINY_ORDER = [
    "trainer_type", "model", "dataset", "method", "learning_rate", "batch_size", "gradient_accumulation_steps",
    "max_iters", "max_seq_length", "precision", "tracking", "output_dir", "experiment_name",
]
SUMMARY_WRITE = [ENTER]  # "What now?" starts on "Write it"
NO_TRAINING = ["n"]  # "Start training now? (y/N)"


def test_all_defaults_write_only_extends():
    result = drive([ENTER] * len(TINY_ORDER) + SUMMARY_WRITE + NO_TRAINING, given={"preset": "tiny"})
    assert result.project is not None and not result.start_training
    assert written() == {"extends": "tiny"}
    assert resolve_config(config_file="sftkit.yaml").config == resolve_config(preset="tiny").config


def test_preset_is_chosen_from_the_list_and_defaults_follow_it():
    # no flags, on a GPU: trainer type sft (Enter), then the preset list starts on smollm3; pick tiny by moving to it
    w = Wizard(hardware=NO_GPU)
    w.answers["trainer_type"] = "sft"
    options = [o.value for o in BY_KEY["preset"].options(w)]
    moves = options.index("tiny") - options.index("smollm3")
    assert all("  " in o.title for o in BY_KEY["preset"].options(w))  # name + one-line description
    key = (DOWN if moves > 0 else UP) * abs(moves)
    drive([ENTER, key + ENTER] + [ENTER] * (len(TINY_ORDER) - 1) + SUMMARY_WRITE + NO_TRAINING, hardware=GPU)
    assert written() == {"extends": "tiny"}


def test_typed_answers_land_in_the_file(tmp_path, capsys):
    model_dir = tmp_path / "my-model"
    model_dir.mkdir()
    data = tmp_path / "train.jsonl"
    data.write_text('{"instruction": "a", "output": "b"}\n{"instruction": "c", "output": "d"}\n\n{"instruction": "e", "output": "f"}\n')
    keys = {
        "trainer_type": ENTER,
        "model": type_(str(model_dir)),
        "dataset": type_(str(data)),
        "method": DOWN + ENTER,  # tiny is full fine-tuning (the first); one down is LoRA
        "learning_rate": type_("3e-4"),
        "batch_size": type_("4"),
        "gradient_accumulation_steps": type_("2"),
        "max_iters": type_(""),  # empty: train by epochs -> the epochs question appears
        "num_train_epochs": type_("2"),
        "max_seq_length": type_("128"),
        "precision": ENTER,
        "tracking": UP * 2 + ENTER,  # from "none": up twice is tensorboard
        "output_dir": type_("runs/mine"),
        "experiment_name": type_("first-try"),
    }
    drive(list(keys.values()) + SUMMARY_WRITE + NO_TRAINING, given={"preset": "tiny"})
    out = written()
    assert out["extends"] == "tiny"
    assert out["model"] == {"name": str(model_dir), "max_seq_length": 128}
    assert out["data"] == {"dataset": str(data)}
    assert out["lora"] == {"enabled": True}
    assert out["train"] == {
        "output_dir": "runs/mine",
        "batch_size": 4,
        "gradient_accumulation_steps": 2,
        "learning_rate": 3e-4,
        "max_iters": None,
        "num_train_epochs": 2.0,
    }
    assert out["tracking"] == {"enabled": True, "backend": "tensorboard", "experiment_name": "first-try"}
    cfg = resolve_config(config_file="sftkit.yaml").config
    assert cfg.train.max_iters is None and cfg.train.num_train_epochs == 2.0 and cfg.lora.enabled
    assert "3 rows" in " ".join(capsys.readouterr().err.split())  # the local file's row count was shown


def test_invalid_text_is_refused_and_asked_again():
    keys = [ENTER, type_("./no-such-model"), CLEAR + "org/model" + ENTER] + [ENTER] * 2
    keys += [type_("fast"), CLEAR + "0" + ENTER, type_("1e-3")] + [ENTER] * 8 + SUMMARY_WRITE + NO_TRAINING
    drive(keys, given={"preset": "tiny"})
    out = written()
    assert out["model"] == {"name": "org/model"}
    assert out["train"] == {"learning_rate": 1e-3}


def test_going_back_changes_an_answer_before_writing():
    change = DOWN + ENTER  # "What now?": Write it / Change an answer / Cancel
    lr_row = DOWN * [q.key for q in QUESTIONS].index("learning_rate") + ENTER  # "Which answer?" lists them in order
    keys = [ENTER] * 4 + [type_("5e-3")] + [ENTER] * 8  # first pass: lr 5e-3
    keys += [change, lr_row, type_("7e-3")]  # back to the learning rate
    keys += SUMMARY_WRITE + NO_TRAINING
    drive(keys, given={"preset": "tiny"})
    assert written()["train"] == {"learning_rate": 7e-3}


def test_going_back_to_the_preset_moves_defaults_but_keeps_typed_answers():
    w = Wizard(hardware=NO_GPU)
    w.answers["trainer_type"] = "sft"
    presets = [o.value for o in BY_KEY["preset"].options(w)]
    to_tiny = DOWN * (presets.index("tiny") - presets.index("smollm3"))
    change, preset_row = DOWN + ENTER, DOWN + ENTER  # the preset is the second answer
    keys = [ENTER, ENTER]  # sft, smollm3
    keys += [type_("builtin:tiny"), type_("builtin:tiny")]  # typed: model and data
    keys += [ENTER] * 2 + [type_("16")] + [ENTER] * 7  # batch size typed (16), the rest defaults from smollm3
    keys += [change, preset_row, to_tiny + ENTER]  # back: switch the preset to tiny
    keys += SUMMARY_WRITE + NO_TRAINING
    drive(keys, hardware=GPU)  # on a GPU the list starts on smollm3
    out = written()
    assert out["extends"] == "tiny"
    # the defaults (learning rate, steps, output folder...) now come from tiny; the typed batch size stays
    assert out["train"] == {"batch_size": 16}
    assert "model" not in out and "data" not in out  # typed builtin:tiny equals tiny's own values


def test_changing_the_trainer_type_moves_a_defaulted_preset():
    change = DOWN + ENTER
    keys = [ENTER, ENTER, type_("builtin:tiny"), type_("builtin:tiny")] + [ENTER] * 10  # sft on smollm3
    keys += [change, ENTER, DOWN + ENTER]  # change the first answer (trainer type) to dpo
    keys += SUMMARY_WRITE + NO_TRAINING
    result = drive(keys, hardware=GPU)  # on a GPU the preferred presets are smollm3 and smollm3-dpo
    assert result.project.extends == "smollm3-dpo"
    out = written()
    assert out["extends"] == "smollm3-dpo" and "trainer_type" not in out


def test_cancel_writes_nothing():
    result = drive([ENTER] * len(TINY_ORDER) + [DOWN * 2 + ENTER], given={"preset": "tiny"})
    assert result.project is None
    assert not Path("sftkit.yaml").exists()


def test_flags_skip_their_questions():
    given = {"preset": "tiny", "trainer_type": "sft", "learning_rate": 1e-2, "output_dir": "runs/flagged", "precision": "fp32"}
    asked = [k for k in TINY_ORDER if k not in given]
    drive([ENTER] * len(asked) + SUMMARY_WRITE + NO_TRAINING, given=given)
    assert written()["train"] == {"output_dir": "runs/flagged", "learning_rate": 1e-2}


def test_existing_file_is_only_replaced_when_confirmed():
    Path("sftkit.yaml").write_text("extends: smollm3\n")
    result = drive(["n"], given={"preset": "tiny"})  # "sftkit.yaml already exists. Replace it?" -> no
    assert result.project is None and Path("sftkit.yaml").read_text() == "extends: smollm3\n"
    drive(["y"] + [ENTER] * len(TINY_ORDER) + SUMMARY_WRITE + NO_TRAINING, given={"preset": "tiny"})
    assert written() == {"extends": "tiny"}


def test_yes_with_an_existing_file_needs_overwrite():
    Path("sftkit.yaml").write_text("extends: smollm3\n")
    with pytest.raises(ConfigError) as err:
        init_project({"preset": "tiny"}, Path("sftkit.yaml"), yes=True, hardware=NO_GPU)
    assert err.value.exit_code == 2 and "overwrite=True" in err.value.hint
    init_project({"preset": "tiny"}, Path("sftkit.yaml"), yes=True, overwrite=True, hardware=NO_GPU)
    assert written() == {"extends": "tiny"}


def test_without_a_terminal_and_without_yes_it_fails_at_once():
    with pytest.raises(ConfigError) as err:
        init_project({"preset": "tiny"}, Path("sftkit.yaml"), interactive=False)
    assert err.value.exit_code == 2 and "yes=True" in err.value.hint
    assert not Path("sftkit.yaml").exists()


def test_yes_takes_preset_values_and_writes_a_resolving_file():
    result = init_project({"preset": "tiny", "output_dir": "runs/w"}, Path("sub/sftkit.yaml"), yes=True, hardware=NO_GPU)
    assert written(Path("sub/sftkit.yaml")) == {"extends": "tiny", "train": {"output_dir": "runs/w"}}
    assert result.project.extends == "tiny" and not result.start_training
    assert resolve_config(config_file="sub/sftkit.yaml").config.train.output_dir == "runs/w"


def test_yes_on_a_gpu_picks_its_precision():
    init_project({"preset": "smollm3", "dataset": "org/data"}, Path("sftkit.yaml"), yes=True, hardware=("bf16", "A100"))
    assert written()["train"] == {"fp16": False, "bf16": True}  # smollm3 says fp16; an A100 has bf16


def test_yes_without_a_dataset_names_the_answer_as_the_caller_calls_it():
    with pytest.raises(ConfigError) as err:
        init_project({"preset": "smollm3"}, Path("sftkit.yaml"), yes=True, hardware=NO_GPU)
    assert "give dataset" in err.value.hint
    with pytest.raises(ConfigError) as err:
        init_project({"preset": "smollm3"}, Path("sftkit.yaml"), yes=True, hardware=NO_GPU, names=FLAGS)
    assert "--data" in err.value.hint


def test_flag_values_are_checked_all_at_once():
    given = {"model": "./missing-folder", "learning_rate": -1.0, "preset": "smolm3", "max_iters": 5, "num_train_epochs": 2.0}
    with pytest.raises(ConfigError) as err:
        check_given(given)
    text = " ".join(str(p) for p in err.value.problems)  # answers by their keys
    assert "model:" in text and "learning_rate:" in text and "preset:" in text and "num_train_epochs" in text
    with pytest.raises(ConfigError) as err:
        check_given(given, names=FLAGS)
    text = " ".join(str(p) for p in err.value.problems)  # answers by the CLI's flags
    assert "--model" in text and "--lr" in text and "--preset" in text and "--epochs" in text
    assert "did you mean 'smollm3'" in " ".join(p.hint or "" for p in err.value.problems)


def test_epochs_flag_clears_the_presets_steps():
    init_project({"preset": "tiny", "num_train_epochs": 3.0}, Path("sftkit.yaml"), yes=True, hardware=NO_GPU)
    assert written()["train"] == {"max_iters": None, "num_train_epochs": 3.0}
    assert resolve_config(config_file="sftkit.yaml").config.train.max_iters is None


def test_learning_rate_below_the_presets_min_lr_keeps_the_config_valid():
    init_project(
        {"preset": "smollm3", "dataset": "org/data", "learning_rate": 5e-7, "precision": "fp16"},
        Path("sftkit.yaml"), yes=True, hardware=NO_GPU,
    )
    cfg = resolve_config(config_file="sftkit.yaml").config
    assert cfg.train.learning_rate == 5e-7 and 0 < cfg.train.min_lr < 5e-7


def test_dpo_lengths_fit_a_shorter_sequence():
    init_project({"preset": "tiny", "trainer_type": "dpo", "max_seq_length": 32}, Path("sftkit.yaml"), yes=True, hardware=NO_GPU)
    out = written()
    assert out["trainer_type"] == "dpo" and out["dpo"] == {"max_prompt_length": 16, "max_length": 32}
    resolve_config(config_file="sftkit.yaml")


def test_qlora_and_tracking_space_answers(capsys):
    init_project(
        {"preset": "tiny", "method": "qlora", "trackio_space": "me/my-space", "precision": "fp32"},
        Path("sftkit.yaml"), yes=True, hardware=NO_GPU,
    )
    out = written()
    assert out["lora"] == {"enabled": True, "load_in_4bit": True}
    assert out["tracking"] == {"enabled": True, "trackio_space": "me/my-space"}
    assert "needs a CUDA GPU" in " ".join(capsys.readouterr().err.split())


def test_tokens_are_reported_never_shown_or_written(monkeypatch, capsys):
    secret = "hf_notarealtoken_0123456789"
    monkeypatch.setenv("HF_TOKEN", secret)
    monkeypatch.setenv("WANDB_API_KEY", "wandb-secret-0123456789")
    # Hub ids for model and data; tracking: tiny has "none", one up is wandb
    keys = [ENTER, type_("org/some-model"), type_("org/some-data")] + [ENTER] * 7 + [UP + ENTER] + [ENTER] * 2
    keys += SUMMARY_WRITE + NO_TRAINING
    drive(keys, given={"preset": "tiny"})
    err = " ".join(capsys.readouterr().err.split())
    text = Path("sftkit.yaml").read_text()
    assert written()["tracking"]["backend"] == "wandb"
    assert "found in the environment" in err  # the HF token and the W&B key are both said to be there
    for value in (secret, "wandb-secret-0123456789"):
        assert value not in err and value not in text


def test_answers_equal_to_the_preset_give_no_lines():
    w = Wizard({"preset": "smollm3", "dataset": "org/data", "precision": "fp16"}, hardware=NO_GPU)
    w.accept_defaults()
    project = build_project(w.answers, w.base())
    assert project.values == {"data": {"dataset": "org/data"}}


def test_model_and_dataset_checks(tmp_path):
    (tmp_path / "folder").mkdir()
    (tmp_path / "d.jsonl").write_text("{}\n")
    assert parse_model("HuggingFaceTB/SmolLM3-3B") == "HuggingFaceTB/SmolLM3-3B"
    assert parse_model(str(tmp_path / "folder")) == str(tmp_path / "folder")
    assert parse_model("builtin:tiny") == "builtin:tiny"
    for bad in ("gpt2", "./missing", "a/b/c", "", "model.gguf", "builtin:huge"):
        with pytest.raises(ValueError):
            parse_model(bad)
    assert parse_dataset(str(tmp_path / "d.jsonl")) == str(tmp_path / "d.jsonl")
    assert parse_dataset("legmlai/openhermes-fr") == "legmlai/openhermes-fr"
    for bad in ("data/missing.jsonl", "missing.csv", "justaname", ""):
        with pytest.raises(ValueError):
            parse_dataset(bad)


def test_row_counts_for_local_files(tmp_path):
    (tmp_path / "a.jsonl").write_text('{"x": 1}\n\n{"x": 2}\n')
    (tmp_path / "b.json").write_text('[{"x": 1}, {"x": 2}, {"x": 3}]')
    (tmp_path / "c.json").write_text('{"train": [{"x": 1}], "test": [{"x": 2}]}')
    assert count_rows(tmp_path / "a.jsonl") == 2
    assert count_rows(tmp_path / "b.json") == 3
    assert count_rows(tmp_path / "c.json") == 2
    assert "2 rows" in data_summary(str(tmp_path / "a.jsonl"))
    assert data_summary("org/hub-dataset") is None


def test_precision_follows_the_hardware():
    assert precision_for(cuda=True, bf16_supported=True) == "bf16"
    assert precision_for(cuda=True, bf16_supported=False) == "fp16"
    assert precision_for(cuda=False, bf16_supported=False) == "fp32"
    import torch

    precision, found = detect_hardware()  # the real detection on this machine
    if not torch.cuda.is_available():
        assert precision == "fp32" and "no CUDA" in found
    else:
        assert precision in ("bf16", "fp16")


def test_every_question_has_a_flag_and_a_label():
    import typer

    from sftkit.cli import app

    command = typer.main.get_command(app).commands["init"]
    options = {name for param in command.params for name in param.opts}
    flags = [FLAGS[q.key] for q in QUESTIONS]
    assert all(f in options for f in flags) and len(set(flags)) == len(flags)
    assert all(flag in options for flag in FLAGS.values())  # the other names errors use are real flags too
    assert len({q.label for q in QUESTIONS}) == len(QUESTIONS)


def test_input_ending_early_is_a_clear_error_and_writes_nothing():
    from sftkit.errors import SftkitError

    with pytest.raises(SftkitError, match="input ended"):
        drive([ENTER, ENTER], given={"preset": "tiny"})
    assert not Path("sftkit.yaml").exists()


# -- the preset follows the hardware: a machine without a CUDA GPU starts from one that trains on the CPU --------


def test_yes_without_a_gpu_and_without_a_preset_starts_from_a_cpu_preset_and_says_why(capsys):
    result = init_project({}, Path("sftkit.yaml"), yes=True, hardware=NO_GPU, names=FLAGS)
    assert written() == {"extends": "tiny"}
    cfg = resolve_config(config_file="sftkit.yaml").config
    assert cfg.train.use_cpu and not cfg.model.flash_attention and not cfg.train.fp16
    err = " ".join(capsys.readouterr().err.split())
    assert "preset tiny: test machine: no GPU, so sftkit starts from a preset that trains on the CPU (--preset NAME picks another)" in err
    assert result.project.extends == "tiny"
    init_project({"dataset": "org/data"}, Path("gpu.yaml"), yes=True, hardware=GPU)
    assert written(Path("gpu.yaml"))["extends"] == "smollm3"  # on a GPU the usual preset


def test_yes_without_a_gpu_keeps_the_trainer_type_asked_for():
    init_project({"trainer_type": "dpo"}, Path("sftkit.yaml"), yes=True, hardware=NO_GPU)
    assert written() == {"extends": "tiny", "trainer_type": "dpo"}
    assert resolve_config(config_file="sftkit.yaml").config.trainer_type == "dpo"


def test_interactive_without_a_gpu_offers_the_cpu_preset_first():
    drive([ENTER] * (len(TINY_ORDER) + 1) + SUMMARY_WRITE + NO_TRAINING)  # Enter on every question: the defaults
    assert written() == {"extends": "tiny"}


def test_a_model_without_a_gpu_keeps_the_usual_preset_made_safe_for_the_cpu(capsys):
    init_project({"model": "org/model", "dataset": "org/data"}, Path("sftkit.yaml"), yes=True, hardware=NO_GPU)
    out = written()
    assert out["extends"] == "smollm3"  # a real model: the preset's training defaults, not the tiny task's
    assert out["model"] == {"name": "org/model", "flash_attention": False}
    assert out["train"] == {"fp16": False}
    err = " ".join(capsys.readouterr().err.split())
    assert "preset smollm3 is set up for a CUDA GPU (train.fp16, model.flash_attention)" in err
    assert "model.flash_attention off" in err
    init_project({"preset": "smollm3", "dataset": "org/data"}, Path("gpu.yaml"), yes=True, hardware=("bf16", "A100"))
    assert "model" not in written(Path("gpu.yaml"))  # with mixed precision flash attention stays as the preset has it
