"""`sftkit init --from-legacy` on the Arabic Qwen fine-tuning library's configs (tests/fixtures/legacy/arabic-qwen:
unchanged copies of its config/*.py and configs/qwen3_config.yaml, MIT-licensed, see the README there).

Its dataclasses read every value from an environment variable with a default (``os.getenv("SFT_LORA_R", "16")``),
and its YAML file has ``model:``/``training:``/``lora:`` sections: both come in with their real settings, on
sftkit's defaults (never as a SmolLM3 run), and what has no meaning in sftkit is listed with its line.
"""

from __future__ import annotations

from pathlib import Path
from typing import get_args

import pytest
import yaml

from sftkit.config import TrainerType
from sftkit.errors import ConfigError
from sftkit.legacy.convert import convert_legacy, write_conversion
from sftkit.legacy.fields import YAML_KEYS
from sftkit.projectfile import flatten
from sftkit.resolve import resolve_config

FOLDER = Path(__file__).resolve().parents[1] / "fixtures" / "legacy" / "arabic-qwen"
PROJECTIONS = [
    "q_proj",
    "v_proj",
    "k_proj",
    "o_proj",
    "gate_proj",
    "up_proj",
    "down_proj",
]

# config/base_config.py's defaults (the environment variables' fallbacks)
BASE = {
    "model.name": "Qwen/Qwen3-1.7B",
    "model.gradient_checkpointing": True,
    "model.max_seq_length": 2048,
    "train.output_dir": "./checkpoints",
    "train.fp16": True,
    "train.bf16": False,
    "train.batch_size": 4,
    "train.eval_batch_size": 8,
    "train.learning_rate": 5e-5,
    "train.weight_decay": 0.01,
    "train.warmup_ratio": 0.1,
    "train.num_train_epochs": 3.0,
    "train.eval_steps": 500,
    "train.save_steps": 500,
    "train.save_total_limit": 3,
    "train.logging_steps": 100,
    "train.seed": 42,
    "tracking.enabled": True,
    "tracking.backend": "tensorboard",  # REPORT_TO "tensorboard"
}
LORA = {
    "lora.enabled": True,
    "lora.r": 16,
    "lora.alpha": 32,
    "lora.dropout": 0.1,
    "lora.target_modules": PROJECTIONS,
}
SFT = {
    **BASE,
    **LORA,
    "trainer_type": "sft",
    "data.dataset": "riotu-lab/InstructAr-500k",
    "data.split": "train",
    "data.validation_split": "validation",
    "data.template": "### التعليمات:\n{instruction}\n\n### الإجابة:\n{response}",
    "data.response_marker": "### الإجابة:",
    "data.packing": False,
}
DPO = {
    **BASE,
    **LORA,
    "trainer_type": "dpo",
    "data.dataset": "HuggingFaceH4/ultrafeedback_binarized",
    "data.split": "train_prefs",
    "data.validation_split": "test_prefs",
    "dpo.beta": 0.1,
    "dpo.loss_type": "sigmoid",
    "dpo.label_smoothing": 0.0,
    "dpo.max_prompt_length": 1024,
    "dpo.max_length": 2048,
    "dpo.ref_model": None,
}
# configs/qwen3_config.yaml
YAML = {
    "trainer_type": "sft",
    "model.name": "Qwen/Qwen3-1.7B",
    "model.tokenizer": None,  # the model's own
    "model.trust_remote_code": True,
    "model.dtype": "bfloat16",
    "model.flash_attention": True,
    "model.max_seq_length": 2048,
    "model.gradient_checkpointing": True,
    "data.packing": False,
    "data.num_proc": 4,
    "data.dataset": None,
    "data.train_file": None,
    "train.output_dir": "./outputs",
    "train.batch_size": 2,
    "train.eval_batch_size": 2,
    "train.gradient_accumulation_steps": 4,
    "train.learning_rate": 5e-5,
    "train.weight_decay": 0.01,
    "train.beta1": 0.9,
    "train.beta2": 0.999,
    "train.eps": 1e-8,
    "train.max_grad_norm": 1.0,
    "train.scheduler": "cosine",
    "train.warmup_ratio": 0.1,
    "train.num_train_epochs": 3.0,
    "train.max_iters": None,
    "train.eval_steps": 50,
    "train.save_steps": 50,
    "train.save_total_limit": 3,
    "train.load_best_model_at_end": False,  # no validation data named (train_file/validation_file are null)
    "train.metric_for_best_model": "eval_loss",
    "train.logging_steps": 10,
    "train.fp16": False,
    "train.bf16": True,
    "train.tf32": True,
    "train.dataloader_num_workers": 2,
    "train.seed": 42,
    "dpo.beta": 0.1,
    "dpo.max_length": 2048,
    "dpo.max_prompt_length": 1024,
    "tracking.backend": "tensorboard",
    **LORA,
}


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv("SFTKIT_PRESET_PATH", raising=False)
    monkeypatch.setenv(
        "SFT_LORA_R", "64"
    )  # the old library read these first: the file's defaults are taken


def resolved(source: Path, complete: bool = True) -> tuple:
    conv = convert_legacy(source)
    write_conversion(conv, Path("sftkit.yaml"))
    written = yaml.safe_load(Path("sftkit.yaml").read_text(encoding="utf-8"))
    return (
        conv,
        written,
        flatten(
            resolve_config(
                config_file="sftkit.yaml", complete=complete
            ).config.to_dict()
        ),
    )


def mismatches(got: dict, want: dict) -> dict:
    out = {}
    for key, value in want.items():
        same = (
            got[key] == pytest.approx(value)
            if isinstance(value, float)
            else got[key] == value
        )
        if not same:
            out[key] = (got[key], value)
    return out


@pytest.mark.parametrize(
    ("name", "want"), [("config/sft_config.py", SFT), ("config/dpo_config.py", DPO)]
)
def test_dataclass_configs_come_in_with_their_settings_not_as_smollm3(name, want):
    conv, written, got = resolved(FOLDER / name)
    assert (
        "extends" not in written
    )  # on sftkit's defaults: nothing of the SmolLM3 preset
    assert not mismatches(got, want), mismatches(got, want)
    assert conv.family == "arabic"
    # the environment variables the old library read first are named, their defaults taken
    note = next(n for n in conv.notes if "environment variables" in n)
    assert "MODEL_NAME" in note
    # every field is accounted for; base_config.py's logging_dir has no meaning here and says so, with its line
    skipped = {s.name: s for s in conv.skipped}
    assert skipped["logging_dir"].path.name == "base_config.py"
    line = (
        skipped["logging_dir"]
        .path.read_text(encoding="utf-8")
        .splitlines()[skipped["logging_dir"].line - 1]
    )
    assert line.strip().startswith("logging_dir")


def test_yaml_config_comes_in_with_its_sections():
    source = FOLDER / "configs" / "qwen3_config.yaml"
    conv, written, got = resolved(source, complete=False)
    assert "extends" not in written and not conv.complete
    want = dict(YAML)
    if "kto" in get_args(TrainerType):
        want.update(
            {
                "kto.beta": 0.1,
                "kto.desirable_weight": 1.0,
                "kto.undesirable_weight": 1.0,
            }
        )
    assert not mismatches(got, want), mismatches(got, want)
    assert any("names no training data" in n for n in conv.notes)
    # every key of the file is accounted for: carried, the same as another key, or listed with its line
    data = yaml.safe_load(source.read_text(encoding="utf-8"))
    listed = {s.name: s for s in conv.skipped}
    for section, body in data.items():
        for key in _keys(body, section):
            name = YAML_KEYS.get(key, key)
            covered = (
                name in conv.accounted
                or key in conv.accounted
                or key in listed
                or section == "quantization"
            )
            assert covered, key
    # keys naming one value with two values: the second is listed, with the one used
    assert (
        "disagrees with training.save_steps=50"
        in listed["checkpointing.save_steps"].reason
    )
    assert listed["evaluation.temperature"].line == 162
    assert "IPO" in listed["ipo.beta"].reason


def _keys(body, prefix):
    if not isinstance(body, dict) or not body:
        return [prefix]
    out = []
    for key, value in body.items():
        out += _keys(value, f"{prefix}.{key}")
    return out


def test_yaml_without_data_is_written_but_says_what_is_missing(cli):
    source = FOLDER / "configs" / "qwen3_config.yaml"
    result = cli("init", "--from-legacy", str(source), "--yes")
    assert result.exit_code == 0, result.output
    assert "names no training data" in result.output
    text = Path("sftkit.yaml").read_text(encoding="utf-8")
    assert "# Not carried over" in text and "evaluation.metrics" in text
    with pytest.raises(ConfigError, match="no training data is set"):
        resolve_config(config_file="sftkit.yaml")
    cfg = resolve_config(
        config_file="sftkit.yaml", sets=["data.dataset=org/arabic-instructions"]
    ).config
    assert (cfg.model.name, cfg.lora.r) == ("Qwen/Qwen3-1.7B", 16)


def test_methods_sftkit_does_not_train_are_refused_with_the_reason():
    with pytest.raises(ConfigError) as err:
        convert_legacy(FOLDER / "config" / "ipo_config.py")
    assert "IPOConfig trains with IPO, which sftkit does not do" in err.value.message
    assert "dpo.loss_type: ipo" in err.value.hint


@pytest.mark.skipif(
    "kto" not in get_args(TrainerType), reason="this sftkit has no KTO trainer"
)
def test_kto_config_comes_in_as_kto():
    _, _, got = resolved(FOLDER / "config" / "kto_config.py")
    want = {
        **BASE,
        **LORA,
        "trainer_type": "kto",
        "kto.beta": 0.1,
        "kto.desirable_weight": 1.0,
        "kto.max_prompt_length": 1024,
        "kto.max_length": 2048,
    }
    assert not mismatches(got, want), mismatches(got, want)


def test_nothing_recognisable_is_refused_not_turned_into_smollm3(tmp_path):
    unknown = tmp_path / "settings.py"
    unknown.write_text(
        "from dataclasses import dataclass\n@dataclass\nclass ServerConfig:\n    port: int = 8080\n    host: str = 'x'\n"
    )
    with pytest.raises(
        ConfigError, match="nothing in ServerConfig is a setting sftkit knows"
    ):
        convert_legacy(unknown)
    no_model = tmp_path / "hparams.py"
    no_model.write_text(
        "class TrainConfig:\n    learning_rate: float = 1e-4\n    batch_size: int = 8\n"
    )
    with pytest.raises(ConfigError, match="names no model"):
        convert_legacy(no_model)
