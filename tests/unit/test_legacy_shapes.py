"""The shapes old configs come in, read without running them: module-level assignments, factory functions,
configs derived from others (``dataclasses.replace``, changed after they are made), classes and configs in sibling
files of the same folder, environment variables with defaults, and ``__post_init__`` logic."""

from __future__ import annotations

from pathlib import Path

import pytest

from sftkit.errors import ConfigError
from sftkit.legacy.convert import convert_legacy
from sftkit.legacy.read import read_legacy

BASE = """
from dataclasses import dataclass, field

@dataclass
class TrainConfig:
    model_name: str = "org/base-model"
    learning_rate: float = 1e-4
    batch_size: int = 8
    max_iters: int = 100
    dataset_name: str = "org/data"
    experiment_name: str = None
    tags: list = field(default_factory=lambda: ["a"])

    def __post_init__(self):
        if self.experiment_name is None:
            self.experiment_name = f"run-{self.batch_size}x{self.max_iters}"
        self._check()

    def _check(self):
        if self.batch_size > 64:
            raise ValueError("too big")
        self.eval_steps = self.max_iters // 4
"""


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def values(path: Path) -> dict:
    legacy = read_legacy(path)
    return {k: v.value for k, v in legacy.values.items() if v.skipped is None}


@pytest.fixture
def config_dir(tmp_path):
    folder = tmp_path / "project" / "config"
    write(folder, "base.py", BASE)
    return folder


def test_module_level_instance_of_a_sibling_class(config_dir):
    path = write(
        config_dir,
        "run.py",
        "from config.base import TrainConfig\n\nconfig = TrainConfig(batch_size=16, learning_rate=2e-5)\n",
    )
    got = values(path)
    assert (got["batch_size"], got["learning_rate"], got["model_name"]) == (
        16,
        2e-5,
        "org/base-model",
    )
    # __post_init__ ran after the arguments, and called its helper method
    assert (got["experiment_name"], got["eval_steps"]) == ("run-16x100", 25)


def test_factory_function(config_dir):
    path = write(
        config_dir,
        "factory.py",
        "from .base import TrainConfig\n"
        "def get_config(steps=300):\n"
        "    cfg = TrainConfig(max_iters=steps)\n"
        "    cfg.batch_size = 4\n"
        "    return cfg\n",
    )
    got = values(path)
    assert (got["max_iters"], got["batch_size"], got["eval_steps"]) == (300, 4, 75)


def test_config_derived_from_another_config_in_a_sibling_file(config_dir):
    write(
        config_dir,
        "shared.py",
        "from config.base import TrainConfig\nbase = TrainConfig(batch_size=32)\n",
    )
    path = write(
        config_dir,
        "derived.py",
        "import dataclasses\n"
        "from config.shared import base\n"
        "LR = 3e-5\n"
        "config = dataclasses.replace(base, learning_rate=LR * 2, experiment_name=None)\n"
        "config.max_iters = config.max_iters * 10\n",
    )
    got = values(path)
    assert got["batch_size"] == 32 and got["learning_rate"] == pytest.approx(6e-5)
    # replace() runs __post_init__ again (a new name from the new values); the later change is applied after it
    assert (got["experiment_name"], got["max_iters"]) == ("run-32x100", 1000)


def test_environment_variables_give_their_defaults_and_are_named(tmp_path, monkeypatch):
    monkeypatch.setenv("LR", "0.5")
    path = write(
        tmp_path,
        "env.py",
        "import os\nfrom dataclasses import dataclass, field\n"
        "@dataclass\nclass MyConfig:\n"
        "    model_name: str = field(default_factory=lambda: os.getenv('MODEL', 'org/m'))\n"
        "    learning_rate: float = field(default_factory=lambda: float(os.getenv('LR', '2e-5')))\n"
        "    use_lora: bool = field(default_factory=lambda: os.getenv('LORA', 'TRUE').lower() == 'true')\n"
        "    lora_target_modules: list = field(default_factory=lambda: os.getenv('T', 'q_proj,v_proj').split(','))\n",
    )
    legacy = read_legacy(path)
    v = legacy.values
    assert (v["learning_rate"].value, v["learning_rate"].env) == (2e-5, "LR")
    assert v["use_lora"].value is True and v["lora_target_modules"].value == [
        "q_proj",
        "v_proj",
    ]
    conv = convert_legacy(path)
    assert conv.values["lora"] == {
        "enabled": True,
        "target_modules": ["q_proj", "v_proj"],
    }
    assert any("MODEL, LR, LORA, T" in n for n in conv.notes)


def test_what_needs_the_code_to_run_is_reported_not_run(tmp_path):
    marker = tmp_path / "RAN"
    path = write(
        tmp_path,
        "odd.py",
        "import os, json\n"
        f"os.system('touch {marker}')\n"
        "class OddConfig:\n"
        "    model_name: str = 'org/m'\n"
        f"    batch_size: int = len(open('{marker}', 'w').name)\n"
        "    def __post_init__(self):\n"
        "        if os.path.exists('/etc/passwd'):\n"
        "            self.learning_rate = 1e-3\n"
        "        for i in range(3):\n"
        "            self.max_iters = i\n"
        "def get_config():\n"
        f"    os.system('touch {marker}')\n"
        "    return OddConfig()\n"
        "config = get_config()\n",
    )
    legacy = read_legacy(path)
    assert not marker.exists()
    v = legacy.values
    assert v["batch_size"].skipped.startswith("not evaluated: len(open(")
    assert (
        "condition" in v["learning_rate"].skipped and "loop" in v["max_iters"].skipped
    )


def test_a_base_class_in_a_file_that_is_not_there_is_a_clear_error(tmp_path):
    path = write(
        tmp_path,
        "lonely.py",
        "from config.train_gpt_oss_custom import GPTOSSEnhancedCustomConfig\nconfig = GPTOSSEnhancedCustomConfig(batch_size=2)\n",
    )
    with pytest.raises(ConfigError) as err:
        read_legacy(path)
    assert (
        "GPTOSSEnhancedCustomConfig (from config.train_gpt_oss_custom), which was not found next to it"
        in err.value.message
    )
    assert "train_gpt_oss_custom.py" in err.value.message


def test_a_known_base_class_without_its_file_uses_its_known_defaults(tmp_path):
    path = write(
        tmp_path,
        "mine.py",
        "from config.train_smollm3 import SmolLM3Config\nconfig = SmolLM3Config(batch_size=2)\n",
    )
    conv = convert_legacy(path)
    assert conv.extends == "smollm3" and conv.values["train"]["batch_size"] == 2
    assert any("SmolLM3Config was not found next to the file" in n for n in conv.notes)


def test_a_module_that_only_assigns_values_names_its_config(tmp_path):
    path = write(
        tmp_path,
        "flat.py",
        "from config.train_smollm3 import SmolLM3Config\nBATCH = 3\nmy_run = SmolLM3Config(batch_size=BATCH, max_iters=BATCH * 100)\n",
    )
    got = values(path)
    assert (got["batch_size"], got["max_iters"]) == (3, 300)
