"""The Arabic fine-tuning library's generate_response / batch_generate / evaluate_model / save_model calls on a
trained tiny run (the shared session runs: no training of its own)."""

from __future__ import annotations

import json

import pytest

import sftkit

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def model(tiny_run):
    return sftkit.load(tiny_run)


def prompt_tokens(model, prompt):
    return len(model.tokenizer(model.render(prompt), add_special_tokens=False)["input_ids"])


def test_generate_response_and_batch_generate_with_max_length(model):
    assert model.generate_response("cat", max_length=256) == "CAT"
    assert model.generate_response("cat", prompt_tokens(model, "cat") + 2) == "CA"  # the prompt counts: 2 tokens are left
    words = ["lamp", "river", "moon", "tea"]
    assert model.batch_generate(words, max_length=64, batch_size=2) == [w.upper() for w in words]
    assert model.last_stats.batches == [2, 2]
    # each prompt's budget is its own: the longer prompt is cut, the shorter one in the same batch is not
    assert model.batch_generate(["tea", "river"], max_length=prompt_tokens(model, "river") + 3, batch_size=2) == ["TEA", "RIV"]
    assert model.generate_response("cat", max_length=256, do_sample=False, temperature=0.8) == "CAT"


def test_evaluate_model_gives_the_loss_figures_of_sftkit_eval(model, tiny_run):
    figures = model.evaluate_model()
    reference = sftkit.evaluate(tiny_run, generate=False, write=False)
    for key in ("eval_loss", "eval_perplexity"):
        assert figures[key] == pytest.approx(reference[key], rel=1e-5)
    assert figures["eval_runtime"] > 0 and figures["eval_samples_per_second"] > 0


def test_save_model_of_a_full_run(model, tiny_run, tmp_path):
    assert model.save_model() == tiny_run / "model"  # training saved it there already
    folder = model.save_model(tmp_path / "arabic_sft_v1")
    meta = json.loads((folder / "sft_metadata.json").read_text(encoding="utf-8"))
    run_meta = json.loads((tiny_run / "sft_metadata.json").read_text(encoding="utf-8"))
    assert meta["template"] == meta["instruction_template"] == run_meta["template"]
    assert meta["max_seq_length"] == run_meta["max_length"] and meta["training_completed_at"] == run_meta["completed_at"]
    assert sftkit.load(folder).generate(["cat", "moon"]) == ["CAT", "MOON"]


def test_save_model_keeps_a_lora_adapter(lora_run, tmp_path):
    lora = sftkit.load(lora_run)
    folder = lora.save_model(tmp_path / "adapter")
    assert (folder / "adapter_config.json").exists() and not (folder / "model.safetensors").exists()
    words = ["cat", "lamp", "tea"]
    assert sftkit.load(folder).generate(words, max_new_tokens=8) == lora.generate(words, max_new_tokens=8)
