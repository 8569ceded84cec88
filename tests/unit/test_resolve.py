"""Precedence and error reporting of config resolution."""

from __future__ import annotations

import pytest

from sftkit.errors import ConfigError
from sftkit.resolve import resolve_config


def write(path, text):
    path.write_text(text, encoding="utf-8")
    return path


def test_precedence_defaults_preset_file_set_flag(tmp_path):
    cfg_file = write(
        tmp_path / "sftkit.yaml",
        "extends: tiny\ntrain:\n  learning_rate: 1.0e-3\n  batch_size: 3\n  seed: 7\n",
    )
    r = resolve_config(
        config_file=cfg_file,
        sets=["train.batch_size=5", "train.seed=11"],
        flags={"--output-dir": ("train.output_dir", "out/x"), "--seed": ("train.seed", 13)},
    )
    c = r.config
    assert c.train.weight_decay == 0.0  # schema default
    assert c.model.name == "builtin:tiny"  # preset
    assert c.train.learning_rate == 1e-3  # file beats preset
    assert c.train.batch_size == 5  # --set beats file
    assert c.train.seed == 13  # flag beats --set
    assert c.train.output_dir == "out/x"
    assert r.sources["train.learning_rate"] == f"{cfg_file.name}:3" or r.sources["train.learning_rate"].endswith("sftkit.yaml:3")
    assert r.sources["train.batch_size"] == "--set"
    assert r.sources["train.seed"] == "--seed"


def test_trainer_type_flag_beats_config_beats_default(tmp_path):
    assert resolve_config(preset="tiny").config.trainer_type == "sft"
    assert resolve_config(preset="smollm3-dpo", complete=False).config.trainer_type == "dpo"
    r = resolve_config(preset="smollm3", flags={"--trainer-type": ("trainer_type", "dpo")}, complete=False)
    assert r.config.trainer_type == "dpo"
    r = resolve_config(preset="smollm3-dpo", flags={"--trainer-type": ("trainer_type", "sft")}, complete=False)
    assert r.config.trainer_type == "sft"


def test_set_values_are_typed_like_yaml():
    c = resolve_config(preset="tiny", sets=["train.learning_rate=1e-4", "lora.enabled=true", "lora.target_modules=[q_proj, v_proj]"]).config
    assert c.train.learning_rate == 1e-4
    assert c.lora.enabled is True
    assert c.lora.target_modules == ["q_proj", "v_proj"]


def test_unknown_key_did_you_mean():
    with pytest.raises(ConfigError) as e:
        resolve_config(preset="tiny", sets=["train.learnin_rate=1e-4"])
    assert "train.learnin_rate" in e.value.message
    assert "train.learning_rate" in (e.value.hint or "")
    assert e.value.exit_code == 2


def test_unknown_key_in_file_names_file_and_line(tmp_path):
    f = write(tmp_path / "c.yaml", "extends: tiny\ntrain:\n  batch_size: 4\n  lerning_rate: 0.1\n")
    with pytest.raises(ConfigError) as e:
        resolve_config(config_file=f)
    assert "c.yaml:4" in e.value.message and "train.lerning_rate" in e.value.message
    assert "train.learning_rate" in e.value.hint


def test_all_problems_reported_at_once(tmp_path):
    f = write(tmp_path / "c.yaml", "extends: tiny\ntrain:\n  batch_size: 0\n  lerning_rate: 0.1\n  scheduler: wavy\n")
    with pytest.raises(ConfigError) as e:
        resolve_config(config_file=f)
    keys = [p.key for p in e.value.problems]
    assert keys == ["train.batch_size", "train.lerning_rate", "train.scheduler"] or sorted(keys) == sorted(
        ["train.batch_size", "train.lerning_rate", "train.scheduler"]
    )
    assert all(p.where and p.where.startswith("c.yaml:") or (p.where and "c.yaml:" in p.where) for p in e.value.problems)


@pytest.mark.parametrize(
    "sets, keys",
    [
        (["train.fp16=true", "train.bf16=true"], ["train.fp16", "train.bf16"]),
        (["trainer_type=dpo", "dpo.beta=0"], ["dpo.beta"]),
        (["trainer_type=dpo", "dpo.beta=-1"], ["dpo.beta"]),
        (["trainer_type=dpo", "dpo.max_length=128", "model.max_seq_length=64"], ["dpo.max_length"]),
        (["train.warmup_steps=10", "train.warmup_ratio=0.1"], ["train.warmup_steps", "train.warmup_ratio"]),
        (["train.scheduler=linear", "train.min_lr=1e-6"], ["train.min_lr"]),
        (["lora.load_in_4bit=true", "lora.enabled=false"], ["lora.enabled"]),
        (["train.batch_size=0"], ["train.batch_size"]),
        (["train.gradient_accumulation_steps=-2"], ["train.gradient_accumulation_steps"]),
        (["lora.r=0"], ["lora.r"]),
    ],
)
def test_cross_field_and_range_errors_name_the_keys(sets, keys):
    with pytest.raises(ConfigError) as e:
        resolve_config(preset="tiny", sets=sets)
    text = e.value.message + " " + " ".join(str(p) for p in e.value.problems)
    for key in keys:
        assert key in text


def test_yaml_syntax_error_has_line(tmp_path):
    f = write(tmp_path / "bad.yaml", "train:\n  batch_size: 4\n   seed: [1\n")
    with pytest.raises(ConfigError, match=r"bad.yaml:\d+: invalid YAML"):
        resolve_config(config_file=f)


def test_unknown_preset_did_you_mean():
    with pytest.raises(ConfigError) as e:
        resolve_config(preset="smollm")
    assert "unknown preset 'smollm'" in e.value.message and "smollm3" in e.value.hint


def test_set_without_equals():
    with pytest.raises(ConfigError, match="expected key=value"):
        resolve_config(preset="tiny", sets=["train.seed"])


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("data.response_marker=### Response:", "### Response:"),
        ("tracking.experiment_name=run #2", "run #2"),
        ("data.system_prompt=Answer: briefly", "Answer: briefly"),
        ("data.system_prompt=Answer:", "Answer:"),
        ("data.template=### Instruction: {instruction}\n### Response: {response}", "### Instruction: {instruction}\n### Response: {response}"),
        ("data.system_prompt='quoted: as YAML'", "quoted: as YAML"),
        ("data.system_prompt=null", None),
        ("data.system_prompt='null'", "null"),
        ("data.system_prompt=1e-4", "1e-4"),
    ],
)
def test_set_takes_text_keys_as_written(raw, expected):
    key = raw.split("=", 1)[0]
    section, name = key.split(".")
    cfg = resolve_config(preset="tiny", sets=[raw]).config
    assert getattr(getattr(cfg, section), name) == expected


def test_set_reads_other_keys_as_yaml():
    cfg = resolve_config(preset="tiny", sets=["train.learning_rate=1e-4", "lora.target_modules=[q_proj, v_proj]", "data.field_map={q: instruction}", "train.fp16=false"]).config
    assert cfg.train.learning_rate == 1e-4 and cfg.lora.target_modules == ["q_proj", "v_proj"]
    assert cfg.data.field_map == {"q": "instruction"} and cfg.train.fp16 is False


@pytest.mark.parametrize("raw", ["train.learning_rate=.inf", "dpo.beta=.nan"])
def test_non_finite_numbers_are_refused(raw):
    with pytest.raises(ConfigError) as e:
        resolve_config(preset="tiny", sets=[raw, "trainer_type=dpo"] if raw.startswith("dpo") else [raw])
    assert raw.split("=")[0] in e.value.message + " ".join(str(p) for p in e.value.problems)
