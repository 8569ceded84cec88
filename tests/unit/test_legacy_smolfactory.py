"""`sftkit init --from-legacy` on every config the old SmolLM3 project shipped (tests/fixtures/legacy/smolfactory:
unchanged copies of its config/ folder, see the README there).

Each file is converted, written and resolved as `sftkit train` would; every setting it carries is checked against
the value the original file gives, taken from the table below (written by reading the originals, not by the
converter). Every field the original declares or passes must be accounted for: carried, already what sftkit or the
preset does, or listed as not carried with its line and reason.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from sftkit.legacy.convert import convert_legacy, render, write_conversion
from sftkit.projectfile import flatten
from sftkit.resolve import resolve_config

FOLDER = (
    Path(__file__).resolve().parents[1]
    / "fixtures"
    / "legacy"
    / "smolfactory"
    / "config"
)
NO_THINK = (
    "Tu es TonicIA , un assistant francophone rigoureux et bienveillant. /no_think"
)
IDENTITY = "You are GPT-Tonic, a large language model trained by TonicAI."
HARMONY = {
    "reasoning_effort": "medium",
    "model_identity": IDENTITY,
    "builtin_tools": [],
}

# config/train_smollm3.py: SmolLM3Config's defaults (and what its __post_init__ sets)
SMOLLM3 = {
    "trainer_type": "sft",
    "model.name": "HuggingFaceTB/SmolLM3-3B",
    "model.max_seq_length": 4096,
    "model.flash_attention": True,
    "model.gradient_checkpointing": True,
    "train.batch_size": 4,
    "train.gradient_accumulation_steps": 4,
    "train.learning_rate": 2e-5,
    "train.weight_decay": 0.01,
    "train.warmup_steps": 100,
    "train.max_iters": 1000,
    "train.eval_steps": 100,
    "train.logging_steps": 10,
    "train.save_steps": 500,
    "train.save_total_limit": 3,
    "train.optimizer": "adamw_torch",
    "train.beta1": 0.9,
    "train.beta2": 0.95,
    "train.eps": 1e-8,
    "train.scheduler": "cosine",
    "train.min_lr": 1e-6,
    "train.fp16": True,
    "train.bf16": False,
    "train.ddp_find_unused_parameters": False,
    "train.metric_for_best_model": "eval_loss",
    # load_best_model_at_end: True needs validation data; the local default (my_dataset/train.json) has none
    "train.load_best_model_at_end": False,
    "data.train_file": "my_dataset/train.json",
    "data.system_prompt": NO_THINK,  # chat_template_kwargs no_think_system_message: True
    "tracking.enabled": True,
    "tracking.backend": "trackio",
}
# the OpenHermes-FR configs: a Hub dataset (1% held out for validation by the old loader), its format
OPENHERMES = {
    "data.dataset": "legmlai/openhermes-fr",
    "data.train_file": None,
    "data.split": "train",
    "data.format": "openhermes",
    "data.validation_fraction": 0.01,
    "train.load_best_model_at_end": True,
}
A100 = {
    **OPENHERMES,
    "model.gradient_checkpointing": False,
    "train.beta2": 0.999,
    "train.fp16": False,
    "train.bf16": True,
    "train.group_by_length": True,
    "train.max_grad_norm": 1.0,
}

# the GPT-OSS configs' shared values (each file defines them itself)
GPT_OSS = {
    "trainer_type": "sft",
    "model.name": "openai/gpt-oss-20b",
    "model.flash_attention": False,  # model_kwargs attn_implementation "eager"
    "model.gradient_checkpointing": True,
    "train.weight_decay": 0.01,
    "train.optimizer": "adamw_torch",
    "train.beta1": 0.9,
    "train.beta2": 0.95,
    "train.eps": 1e-8,
    "train.fp16": False,
    "train.bf16": True,
    "train.ddp_find_unused_parameters": False,
    "train.metric_for_best_model": "eval_loss",
    "lora.enabled": True,
    "lora.target_modules": "all-linear",
    "tracking.enabled": True,
    "tracking.backend": "trackio",
}
# the four standalone GPT-OSS dataclasses: Multilingual-Thinking messages, cosine_with_min_lr at 10% of the rate
THINKING = {
    **GPT_OSS,
    "data.dataset": "HuggingFaceH4/Multilingual-Thinking",
    "data.split": "train",
    "data.format": "messages",
    "data.validation_fraction": 0.01,
    "train.scheduler": "cosine_with_min_lr",
    "train.scheduler_kwargs": {"min_lr_rate": 0.1},
    "train.min_lr": 0.0,
    "train.load_best_model_at_end": True,
    "lora.dropout": 0.0,  # lora_config has no lora_dropout: peft's default
}
# GPTOSSEnhancedCustomConfig (config/train_gpt_oss_custom.py), which three configs instantiate
CUSTOM = {
    **GPT_OSS,
    "data.dataset": "legmlai/openhermes-fr",
    "data.format": "openhermes",
    "data.validation_fraction": 0.01,
    "data.chat_template_kwargs": HARMONY,
    "model.max_seq_length": 2048,
    "train.batch_size": 4,
    "train.gradient_accumulation_steps": 4,
    "train.learning_rate": 2e-4,
    "train.min_lr": 2e-5,
    "train.warmup_ratio": 0.03,
    "train.warmup_steps": 0,
    "train.num_train_epochs": 1.0,
    "train.max_iters": None,
    "train.max_grad_norm": 1.0,
    "train.scheduler": "cosine",
    "train.logging_steps": 10,
    "train.eval_steps": 100,
    "train.save_steps": 500,
    "train.save_total_limit": 3,
    "train.load_best_model_at_end": True,
    "train.group_by_length": True,
    "train.dataloader_num_workers": 4,
    "lora.r": 16,
    "lora.alpha": 32,
    "lora.dropout": 0.05,
}

EXPECTED: dict[str, dict] = {
    "train_smollm3.py": SMOLLM3,
    "train_smollm3_dpo.py": {
        **SMOLLM3,
        "trainer_type": "dpo",
        "dpo.beta": 0.1,
        "dpo.loss_type": "sigmoid",
        "dpo.max_prompt_length": 2048,
        "dpo.max_length": 4096,
        "dpo.ref_model": None,  # ref_model_name is the model itself
        "lora.enabled": True,  # dpo_peft_config
        "lora.r": 16,
        "lora.alpha": 32,
        "lora.dropout": 0.1,
    },
    "train_smollm3_long_context.py": {
        **SMOLLM3,
        "model.max_seq_length": 131072,
        "train.batch_size": 1,
        "train.gradient_accumulation_steps": 8,
        "train.learning_rate": 1e-5,
        "train.warmup_steps": 200,
        "train.max_iters": 500,
        "train.save_steps": 100,
        "train.eval_steps": 50,
        "train.logging_steps": 10,
    },
    "train_smollm3_no_think_test.py": {
        **SMOLLM3,
        "train.batch_size": 2,
        "train.max_iters": 100,
        "train.save_steps": 50,
        "train.eval_steps": 25,
    },
    "train_smollm3_h100_lightweight.py": {
        **SMOLLM3,
        **OPENHERMES,
        "data.format": "auto",  # input prompt, target completion: the prompt/completion columns, detected
        "data.field_map": {},
        "data.max_rows": 80000,  # sample_size
        "data.chat_template_kwargs": {"enable_thinking": False},
        "model.max_seq_length": 8192,
        "train.batch_size": 16,
        "train.learning_rate": 8e-6,
        "train.warmup_steps": 50,
        "train.max_iters": None,
        "train.eval_steps": 50,
        "train.logging_steps": 5,
        "train.save_steps": 200,
        "train.min_lr": 2e-6,
        "train.fp16": False,
        "train.bf16": True,
        "train.save_total_limit": 2,
        "train.dataloader_num_workers": 4,
        "train.group_by_length": True,
        "tracking.experiment_name": "smollm3_h100_lightweight",
    },
    "train_smollm3_openhermes_fr.py": {
        **SMOLLM3,
        **OPENHERMES,
        "train.batch_size": 2,
        "train.gradient_accumulation_steps": 8,
        "train.learning_rate": 1e-5,
        "train.warmup_steps": 500,
        "train.max_iters": 2000,
        "train.eval_steps": 200,
        # save_steps 500 is no multiple of eval_steps 200: transformers keeps no best checkpoint then
        "train.load_best_model_at_end": False,
        "tracking.experiment_name": "smollm3_openhermes_fr",
    },
    "train_smollm3_openhermes_fr_a100_balanced.py": {
        **SMOLLM3,
        **A100,
        "model.max_seq_length": 12288,
        "data.packing": False,
        "train.batch_size": 8,
        "train.gradient_accumulation_steps": 16,
        "train.learning_rate": 3.5e-6,
        "train.warmup_steps": 1200,
        "train.max_iters": 18000,
        "train.eval_steps": 1000,
        "train.logging_steps": 25,
        "train.save_steps": 2000,
        "train.min_lr": 3.5e-7,
        "train.save_total_limit": 5,
        "train.dataloader_num_workers": 10,
        "tracking.experiment_name": "smollm3_openhermes_fr_balanced",
    },
    "train_smollm3_openhermes_fr_a100_large.py": {
        **SMOLLM3,
        **A100,
        "model.max_seq_length": 8192,
        "train.batch_size": 8,
        "train.gradient_accumulation_steps": 16,
        "train.learning_rate": 5e-6,
        "train.warmup_steps": 1000,
        "train.max_iters": 8000,
        "train.eval_steps": 500,
        "train.logging_steps": 25,
        "train.save_steps": 1000,
        "train.min_lr": 5e-7,
        "train.save_total_limit": 5,
        "train.dataloader_num_workers": 8,
        "tracking.experiment_name": "smollm3_openhermes_fr_a100_large",
    },
    "train_smollm3_openhermes_fr_a100_max_performance.py": {
        **SMOLLM3,
        **A100,
        "model.max_seq_length": 16384,
        "train.batch_size": 12,
        "train.gradient_accumulation_steps": 12,
        "train.learning_rate": 4e-6,
        "train.warmup_steps": 1500,
        "train.max_iters": 20000,
        "train.eval_steps": 1000,
        "train.logging_steps": 25,
        "train.save_steps": 2000,
        "train.min_lr": 4e-7,
        "train.save_total_limit": 5,
        "train.dataloader_num_workers": 12,
        "tracking.experiment_name": "smollm3_openhermes_fr_max_performance",
    },
    "train_smollm3_openhermes_fr_a100_multiple_passes.py": {
        **SMOLLM3,
        **A100,
        "model.max_seq_length": 8192,
        "train.batch_size": 6,
        "train.gradient_accumulation_steps": 20,
        "train.learning_rate": 3e-6,
        "train.warmup_steps": 2000,
        "train.max_iters": 25000,
        "train.eval_steps": 1000,
        "train.logging_steps": 50,
        "train.save_steps": 2000,
        "train.min_lr": 3e-7,
        "train.save_total_limit": 8,
        "train.dataloader_num_workers": 8,
        "tracking.experiment_name": "smollm3_openhermes_fr_multiple_passes",
    },
    "train_gpt_oss_basic.py": {
        **THINKING,
        "model.max_seq_length": 2048,
        "train.batch_size": 4,
        "train.gradient_accumulation_steps": 4,
        "train.learning_rate": 2e-4,
        "train.warmup_steps": 100,
        "train.max_iters": 1000,
        "train.eval_steps": 100,
        "train.logging_steps": 10,
        "train.save_steps": 500,
        "train.save_total_limit": 3,
        "lora.r": 8,
        "lora.alpha": 16,
        "tracking.experiment_name": "gpt_oss_basic",
    },
    "train_gpt_oss_h100_optimized.py": {
        **THINKING,
        "model.max_seq_length": 4096,
        "train.batch_size": 8,
        "train.gradient_accumulation_steps": 2,
        "train.learning_rate": 3e-4,
        "train.warmup_steps": 50,
        "train.max_iters": 2000,
        "train.eval_steps": 50,
        "train.logging_steps": 5,
        "train.save_steps": 200,
        "train.save_total_limit": 2,
        "train.dataloader_num_workers": 8,
        "train.group_by_length": True,
        "train.max_grad_norm": 1.0,
        "lora.r": 16,
        "lora.alpha": 32,
        "tracking.experiment_name": "gpt_oss_h100_optimized",
    },
    "train_gpt_oss_multilingual_reasoning.py": {
        **THINKING,
        "model.max_seq_length": 2048,
        "train.batch_size": 4,
        "train.gradient_accumulation_steps": 4,
        "train.learning_rate": 2e-4,
        "train.warmup_steps": 100,
        "train.max_iters": 1000,
        "train.eval_steps": 100,
        "train.logging_steps": 10,
        "train.save_steps": 500,
        "train.save_total_limit": 3,
        "lora.r": 8,
        "lora.alpha": 16,
        "tracking.experiment_name": "gpt_oss_multilingual_reasoning",
    },
    "train_gpt_oss_memory_optimized.py": {
        **THINKING,
        "model.max_seq_length": 1024,
        "train.batch_size": 1,
        "train.gradient_accumulation_steps": 16,
        "train.learning_rate": 2e-4,
        "train.warmup_steps": 50,
        "train.max_iters": 500,
        "train.eval_steps": 50,
        "train.logging_steps": 5,
        "train.save_steps": 100,
        "train.save_total_limit": 2,
        "lora.r": 4,
        "lora.alpha": 8,
        "tracking.experiment_name": None,  # its __post_init__ sets none
    },
    "train_gpt_oss_custom.py": CUSTOM,
    "train_gpt_oss_openhermes_fr.py": {
        **CUSTOM,
        "model.max_seq_length": 3072,
        "train.num_train_epochs": 1.5,
        "train.batch_size": 6,
        "train.gradient_accumulation_steps": 6,
        "train.learning_rate": 2.5e-4,
        "train.min_lr": 2.5e-5,
        "train.warmup_ratio": 0.05,
        "train.dataloader_num_workers": 6,
        "train.eval_steps": 200,
        "train.logging_steps": 20,
        # save_steps 500 is no multiple of eval_steps 200: no checkpoint falls on an evaluation
        "train.load_best_model_at_end": False,
        "lora.r": 24,
        "lora.alpha": 48,
        "lora.dropout": 0.05,
    },
    "train_gpt_oss_openhermes_fr_memory_optimized.py": {
        **CUSTOM,
        "model.flash_attention": True,  # its model_kwargs names no attention implementation
        "data.max_rows": 800000,
        "data.num_proc": 8,
        "data.packing": True,
        "data.validation_fraction": 0.001,
        "train.group_by_length": False,  # packed rows have no lengths to group by
        "train.num_train_epochs": 1.0,
        "train.batch_size": 2,
        "train.gradient_accumulation_steps": 16,
        "train.warmup_ratio": 0.03,
        "train.tf32": True,
        "train.dataloader_num_workers": 8,
        "train.eval_steps": 200,
        "train.eval_batch_size": 1,
        "train.load_best_model_at_end": False,
        "lora.r": 8,
        "lora.alpha": 16,
        "lora.dropout": 0.1,
    },
    "train_gpt_oss_medical_o1_sft.py": {
        **CUSTOM,
        "data.dataset": "FreedomIntelligence/medical-o1-reasoning-SFT",
        "data.config_name": "en",
        "data.format": "auto",  # dataset_format medical_o1_sft has no sftkit format (listed as not carried)
        "data.validation_fraction": 0.001,
        "data.system_prompt": "You are are GPT-Tonic, an intelligent assistant that always answers health-related queries scientifically.",
        "data.chat_template_kwargs": {**HARMONY, "reasoning_effort": "low"},
        "train.num_train_epochs": 2.0,
        "train.warmup_steps": 50,  # warmup_steps and warmup_ratio both given: the steps win, as in transformers
        "train.warmup_ratio": 0.0,
        "train.tf32": True,
        "train.eval_batch_size": 1,
        "train.load_best_model_at_end": False,
    },
}

#: fields each file lists as not carried (a sample per file: what the issue names, and the shapes that matter)
NOT_CARRIED = {
    "train_smollm3.py": {
        "monitoring_mode",
        "chat_template_kwargs",
        "load_best_model_at_end",
    },
    "train_smollm3_dpo.py": {"dpo_alpha"},
    "train_smollm3_openhermes_fr_a100_balanced.py": {
        "max_prompt_length",
        "max_completion_length",
        "dataloader_prefetch_factor",
    },
    "train_gpt_oss_basic.py": {
        "test_ratio",
        "lora_config",
        "quantization_config",
        "model_kwargs",
    },
    "train_gpt_oss_medical_o1_sft.py": {
        "dataset_format",
        "reasoning_field",
        "min_length",
        "max_length",
        "save_only_model",
    },
    "train_gpt_oss_openhermes_fr.py": {
        "bad_prompt_field",
        "bad_response_field",
        "load_best_model_at_end",
    },
    "train_gpt_oss_openhermes_fr_memory_optimized.py": {
        "group_by_length",
        "generation_config",
    },
}


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv("SFTKIT_PRESET_PATH", raising=False)


def declared_fields(path: Path) -> set[str]:
    """Every field a config file declares (``name: type = value`` in a class) or passes (``name=value`` in a call)."""
    text = path.read_text(encoding="utf-8")
    return set(re.findall(r"^    (\w+)\s*:[^=\n]*=", text, re.MULTILINE)) | set(
        re.findall(r"^    (\w+)=", text, re.MULTILINE)
    )


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_original_config_converts_with_its_values(name):
    source = FOLDER / name
    conv = convert_legacy(source)
    write_conversion(conv, Path("sftkit.yaml"))
    written = yaml.safe_load(Path("sftkit.yaml").read_text(encoding="utf-8"))
    assert written.get("extends") == (
        {"sft": "smollm3", "dpo": "smollm3-dpo"}[EXPECTED[name]["trainer_type"]]
        if name.startswith("train_smollm3")
        else None
    )
    resolved = flatten(resolve_config(config_file="sftkit.yaml").config.to_dict())
    wrong = {}
    for key, want in EXPECTED[name].items():
        got = resolved[key]
        same = got == pytest.approx(want) if isinstance(want, float) else got == want
        if not same:
            wrong[key] = (got, want)
    assert not wrong, wrong
    # every field of the original is accounted for; each one not carried is listed once, on a line naming it
    assert declared_fields(source) <= set(conv.accounted), declared_fields(
        source
    ) - set(conv.accounted)
    names = [s.name for s in conv.skipped]
    assert len(names) == len(set(names)), names  # one line per field
    for item in conv.skipped:
        lines = Path(item.path).read_text(encoding="utf-8").splitlines()
        assert (
            item.name in lines[item.line - 1]
            or item.name.split(".")[0] in lines[item.line - 1]
        ), (item, lines[item.line - 1])
    assert NOT_CARRIED.get(name, set()) <= set(names)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_what_is_not_carried_is_written_into_the_file_as_comments(name):
    conv = convert_legacy(FOLDER / name)
    text = render(conv)
    comments = [line for line in text.splitlines() if line.startswith("#")]
    # every original has something sftkit cannot carry (monitoring_mode 'both', test_ratio, ...): listed in the file
    assert (
        conv.skipped
        and f"# Not carried over ({len([s for s in conv.skipped if 'secret' not in s.reason])})"
        in text
    )
    for item in conv.skipped:
        if "secret" in item.reason:
            continue  # named on the terminal only
        assert any(f":{item.line}: {item.name}: " in line for line in comments), item
    assert (
        yaml.safe_load(text)
        == ({"extends": conv.extends} if conv.extends else {}) | conv.values
    )


def test_conversion_never_runs_the_files():
    files = sorted(p.name for p in FOLDER.glob("train_*.py"))
    assert (
        files == sorted(EXPECTED)
        and sum(f.startswith("train_smollm3") for f in files) == 10
    )  # all 18 copies
    # the GPT-OSS configs print at import; configs' get_config() would exec files: nothing of it happens here
    import subprocess
    import sys

    code = (
        "import sys, builtins; from pathlib import Path\n"
        "calls = []\n"
        "builtins.print = lambda *a, **k: calls.append(a)\n"
        "from sftkit.legacy.convert import convert_legacy\n"
        f"for p in sorted(Path({str(FOLDER)!r}).glob('train_*.py')): convert_legacy(p)\n"
        "sys.stdout.write(str(len(calls)) + ' ' + str(sorted(m for m in sys.modules if m.startswith('config'))))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert out.stdout == "0 []"


def test_the_gpt_oss_scheduler_is_built_by_the_dry_run(cli):
    # cosine_with_min_lr with min_lr_rate, as the GPT-OSS configs give it, builds for real (not only validates)
    write_conversion(
        convert_legacy(FOLDER / "train_gpt_oss_basic.py"), Path("sftkit.yaml")
    )
    result = cli(
        "train",
        "--config",
        "sftkit.yaml",
        "--set",
        "train.bf16=false",
        "--dry-run",
        "--json",
    )
    assert result.exit_code == 0, result.output
    import json

    args = json.loads(result.stdout)["trainer"]["args"]
    assert (args["lr_scheduler_type"], args["lr_scheduler_kwargs"]) == (
        "cosine_with_min_lr",
        {"min_lr_rate": 0.1},
    )


def test_warmup_given_twice_is_a_note_not_an_error():
    conv = convert_legacy(FOLDER / "train_gpt_oss_medical_o1_sft.py")
    assert any(
        "warmup_steps (50) and warmup_ratio (0.03)" in n
        and "transformers uses the steps" in n
        for n in conv.notes
    )
    assert conv.accounted["warmup_ratio"] == "equivalent"
