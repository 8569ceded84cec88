"""The memory plan (sftkit.training.memory): exact parameter counts from a model's config alone, memory per
process for each setting that changes it, the devices, and the changes that make a run fit."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sftkit.api import resolve
from sftkit.training import memory
from sftkit.training.memory import memory_plan, plan_lines

PRESETS = sorted(p.stem for p in (Path(__file__).resolve().parents[2] / "presets").glob("*.yaml"))

#: the published architectures of the presets' Hub models (their config.json, the keys that size them)
SMOLLM3_3B = {
    "architectures": ["SmolLM3ForCausalLM"], "model_type": "smollm3", "hidden_size": 2048, "intermediate_size": 11008,
    "num_hidden_layers": 36, "num_attention_heads": 16, "num_key_value_heads": 4, "vocab_size": 128256,
    "max_position_embeddings": 65536, "rope_theta": 5000000.0, "rms_norm_eps": 1e-6, "tie_word_embeddings": True, "no_rope_layer_interval": 4,
}
QWEN25_1_5B = {
    "architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2", "hidden_size": 1536, "intermediate_size": 8960, "num_hidden_layers": 28,
    "num_attention_heads": 12, "num_key_value_heads": 2, "vocab_size": 151936, "max_position_embeddings": 32768, "rms_norm_eps": 1e-6,
    "tie_word_embeddings": True,
}
QWEN25_7B = {**QWEN25_1_5B, "hidden_size": 3584, "intermediate_size": 18944, "num_attention_heads": 28, "num_key_value_heads": 4, "vocab_size": 152064,
             "tie_word_embeddings": False}
#: their published parameter counts
PARAMETERS = {"smollm3": 3.075e9, "qwen2.5-1.5b": 1.544e9, "qwen2.5-7b": 7.616e9}


@pytest.fixture(scope="module")
def configs(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("configs")
    out = {}
    for name, config in (("smollm3", SMOLLM3_3B), ("qwen2.5-1.5b", QWEN25_1_5B), ("qwen2.5-7b", QWEN25_7B)):
        (root / name).mkdir()
        (root / name / "config.json").write_text(json.dumps(config), encoding="utf-8")
        out[name] = root / name
    return out


def config_of(preset: str | None, *sets: str):
    return resolve(preset, None, ["data.dataset=builtin:tiny", *sets], {}).config


def folder_for(preset: str, configs: dict[str, Path]) -> str:
    return "builtin:tiny" if preset == "tiny" else str(configs["qwen2.5-1.5b" if "qwen" in preset else "smollm3"])


@pytest.mark.parametrize("preset", PRESETS)
def test_every_preset_plans_offline_from_its_model_config(preset: str, configs):
    memory.memory_plan(config_of("tiny"))  # imports paid once, outside the timing
    started = time.perf_counter()
    plan = memory_plan(config_of(preset, f"model.name={folder_for(preset, configs)}"))
    took = time.perf_counter() - started
    assert took < 10, f"{preset}: {took:.1f} s (about 0.1-4 s measured, docs/benchmarks.md)"  # loose: a shared machine
    est = plan["estimate"]
    if preset != "tiny":
        expected = PARAMETERS["qwen2.5-1.5b" if "qwen" in preset else "smollm3"]
        assert abs(est["parameters"] - expected) / expected < 0.005
    parts = ("weights_bytes", "gradients_bytes", "optimizer_bytes", "activations_bytes", "runtime_bytes")
    assert est["total_bytes"] == sum(est[k] for k in parts) and all(est[k] > 0 for k in parts)
    assert plan["device"]["kind"] == "cpu" and plan["fits"] == (est["total_bytes"] <= plan["device"]["usable_bytes"])
    assert plan_lines(plan)[0].startswith(f"memory plan for {folder_for(preset, configs)}")


def test_lora_counts_peft_adapters_exactly(configs):
    # Qwen2.5-1.5B, r=16 on the seven projections of 28 layers: r x (in + out) each
    h, i, kv = 1536, 8960, 256
    per_layer = 16 * ((h + h) + (h + kv) * 2 + (h + h) + (h + i) * 2 + (i + h))
    plan = memory_plan(config_of("arabic-qwen-lora", f"model.name={configs['qwen2.5-1.5b']}"))
    assert plan["estimate"]["trainable_parameters"] == 28 * per_layer
    assert plan["setup"]["method"] == "LoRA"


def test_each_setting_changes_the_estimate_the_way_it_should(configs):
    name = f"model.name={configs['qwen2.5-7b']}"

    def est(*sets: str, processes: int = 1) -> dict:
        return memory_plan(config_of(None, name, *sets), processes)["estimate"]

    full = est()
    assert full["weights_bytes"] == full["parameters"] * 4 == full["gradients_bytes"] and full["optimizer_bytes"] == 2 * full["weights_bytes"]
    bf16 = est("model.dtype=bfloat16")
    assert bf16["weights_bytes"] == full["weights_bytes"] // 2 and bf16["activations_bytes"] < full["activations_bytes"]
    assert est("model.gradient_checkpointing=true")["activations_bytes"] < full["activations_bytes"] / 5
    assert est("train.batch_size=4")["activations_bytes"] == pytest.approx(full["activations_bytes"] / 2, rel=0.01)
    lora = est("lora.enabled=true")
    assert lora["gradients_bytes"] < full["gradients_bytes"] / 50 and lora["weights_bytes"] > full["weights_bytes"]
    qlora = est("lora.enabled=true", "lora.load_in_4bit=true")
    assert qlora["weights_bytes"] < lora["weights_bytes"] / 3
    assert est("train.optimizer=adamw_bnb_8bit")["optimizer_bytes"] == full["parameters"] * 2
    assert est("trainer_type=dpo", "dpo.max_length=2048", "model.max_seq_length=2048")["weights_bytes"] == 2 * full["weights_bytes"]  # the reference copy
    # sharding: DDP divides nothing; FSDP full_shard divides weights, gradients and optimizer; ZeRO-2 gradients and optimizer
    assert est(processes=4)["weights_bytes"] == full["weights_bytes"]
    fsdp = est("train.fsdp=full_shard auto_wrap", processes=4)
    assert [fsdp[k] * 4 for k in ("weights_bytes", "gradients_bytes", "optimizer_bytes")] == [full[k] for k in ("weights_bytes", "gradients_bytes", "optimizer_bytes")]
    assert fsdp["activations_bytes"] == full["activations_bytes"]


def test_zero_stage_comes_from_the_deepspeed_config(configs, tmp_path: Path):
    ds = tmp_path / "ds.json"
    ds.write_text(json.dumps({"zero_optimization": {"stage": 2}}), encoding="utf-8")
    plan = memory_plan(config_of(None, f"model.name={configs['qwen2.5-1.5b']}", f"train.deepspeed={ds}"), 2)
    assert plan["setup"]["sharded"] == ["gradients", "optimizer"]
    full = memory_plan(config_of(None, f"model.name={configs['qwen2.5-1.5b']}"))["estimate"]
    assert plan["estimate"]["optimizer_bytes"] == full["optimizer_bytes"] // 2 and plan["estimate"]["weights_bytes"] == full["weights_bytes"]


def fake_gpus(monkeypatch, free_gib: float, n: int = 1):
    device = {"name": "Fake GPU", "free_bytes": int(free_gib * 2**30), "total_bytes": int(free_gib * 2**30)}
    monkeypatch.setattr(memory, "devices", lambda cfg: {"kind": "cuda", "devices": [device] * n, "usable_bytes": int(device["free_bytes"] * memory.USABLE)})
    monkeypatch.setattr(memory, "runtime_bytes", lambda kind: 0)


def test_a_plan_that_does_not_fit_says_what_would_each_with_its_estimate(monkeypatch, configs):
    fake_gpus(monkeypatch, 80)
    cfg = config_of(None, f"model.name={configs['qwen2.5-1.5b']}", "model.dtype=bfloat16", "train.bf16=true", "train.batch_size=8",
                    "train.gradient_accumulation_steps=2", "model.max_seq_length=4096")
    plan = memory_plan(cfg)
    assert plan["fits"] is False and plan["suggestions"]
    budget = plan["device"]["usable_bytes"]
    for s in plan["suggestions"]:
        assert s["fits"] and s["total_bytes"] <= budget
        changed = config_of(None, f"model.name={configs['qwen2.5-1.5b']}", "model.dtype=bfloat16", "train.bf16=true", "train.batch_size=8",
                            "train.gradient_accumulation_steps=2", "model.max_seq_length=4096", *[x for x in s["set"] if not x.startswith("--")])
        processes = next((int(x.split()[1]) for x in s["set"] if x.startswith("--nproc")), 1)
        assert memory_plan(changed, processes)["estimate"]["total_bytes"] == s["total_bytes"]  # each estimate is the plan of that change
        if "train.batch_size=" in " ".join(s["set"]):
            batch = int(next(x for x in s["set"] if x.startswith("train.batch_size=")).split("=")[1])
            accumulation = int(next(x for x in s["set"] if x.startswith("train.gradient_accumulation_steps=")).split("=")[1])
            assert batch * accumulation == 16  # the effective batch is kept
    text = "\n".join(plan_lines(plan))
    assert "does NOT fit: Fake GPU 80.00 GiB free" in text and "to fit: gradient checkpointing: --set model.gradient_checkpointing=true ->" in text


def test_sharding_is_suggested_across_gpus_when_nothing_else_fits(monkeypatch, configs):
    fake_gpus(monkeypatch, 24)
    cfg = config_of(None, f"model.name={configs['qwen2.5-7b']}", "model.gradient_checkpointing=true", "train.batch_size=1", "lora.enabled=true",
                    "lora.load_in_4bit=true", "model.max_seq_length=32768")
    plan = memory_plan(cfg)
    assert not plan["fits"]
    assert any("FSDP across" in s["change"] and "--nproc" in " ".join(s["set"]) for s in plan["suggestions"])


def test_a_hub_model_without_a_cached_config_says_so_in_one_line():
    plan = memory_plan(config_of(None, "model.name=SomeOrg/not-in-any-cache"))
    assert plan["estimate"] is None
    assert plan_lines(plan) == [
        "memory plan: not estimated: the config of SomeOrg/not-in-any-cache is not in the Hugging Face cache "
        "(download it once, or --set model.name=FOLDER holding its config.json)"
    ]


def test_a_hub_model_with_a_cached_config_is_planned(monkeypatch, configs, tmp_path: Path):
    snapshot = tmp_path / "models--Qwen--Qwen2.5-1.5B-Instruct" / "snapshots" / "abc"
    snapshot.mkdir(parents=True)
    (snapshot / "config.json").write_text(json.dumps(QWEN25_1_5B), encoding="utf-8")
    import huggingface_hub

    monkeypatch.setattr(huggingface_hub, "try_to_load_from_cache", lambda repo, name, revision=None: str(snapshot / name))
    plan = memory_plan(config_of("arabic-qwen-lora"))
    assert plan["model"] == "Qwen/Qwen2.5-1.5B-Instruct (cached config)"
    assert abs(plan["estimate"]["parameters"] - PARAMETERS["qwen2.5-1.5b"]) / PARAMETERS["qwen2.5-1.5b"] < 0.005


def test_dry_run_prints_the_plan_in_words_and_in_json(configs):
    base = [sys.executable, "-m", "sftkit", "train", "--preset", "smollm3", "--set", f"model.name={configs['smollm3']}", "--set", "data.dataset=x.jsonl", "--dry-run"]
    text = subprocess.run(base, capture_output=True, text=True)
    assert text.returncode == 0, text.stderr
    assert f"# memory plan for {configs['smollm3']}: 3.08B parameters, 3.08B trainable" in text.stdout
    assert "#   per process: weights 11.46 GiB + gradients 11.46 GiB + optimizer 22.91 GiB + activations" in text.stdout
    done = subprocess.run([*base, "--json", "--nproc", "4", "--set", "train.fsdp=full_shard auto_wrap"], capture_output=True, text=True)
    plan = json.loads(done.stdout)["memory"]
    assert plan["setup"]["processes"] == 4 and plan["setup"]["sharded"] == ["gradients", "optimizer", "weights"]
    assert plan["estimate"]["weights_bytes"] == plan["estimate"]["parameters"] * 4 // 4


def test_out_of_memory_error_names_the_step_the_peak_and_the_suggestions(monkeypatch, configs):
    fake_gpus(monkeypatch, 80)
    monkeypatch.setattr(memory, "peak_bytes", lambda cuda: 79 * 2**30)
    err = memory.out_of_memory(config_of(None, f"model.name={configs['qwen2.5-1.5b']}"), 12, True)
    assert err.message.startswith("out of memory at step 12 (peak CUDA memory allocated 79.00 GiB, the plan estimated ")
    assert err.hint.startswith("the memory plan suggests: --set ")
