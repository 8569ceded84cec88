"""The documented calls of the Arabic fine-tuning library the arabic-qwen-lora preset replaces, on sftkit's own
API objects: generation keywords (max_length counts the prompt, as in transformers), evaluate_model, save_model,
batched formatting functions and custom templates without {response}. On the untrained tiny model: fast."""

from __future__ import annotations

import json
import math

import pytest

import sftkit
from sftkit.sampling import SamplingOptions

QA_ROWS = [
    {"question": "ما عاصمة مصر؟", "answer": "القاهرة"},
    {"question": "كم يوما في الأسبوع؟", "answer": "سبعة"},
    {"question": "sun", "answer": "SUN"},
]
WORD_ROWS = [{"instruction": w, "response": w.upper()} for w in ("cat", "dog", "sky")]


# the library's own examples (docs/USAGE.md, docs/api/training/sft_trainer.md), as written there


def format_qa_data(examples):
    formatted_texts = []
    for question, answer in zip(examples["question"], examples["answer"]):
        text = f"السؤال: {question}\nالجواب: {answer}"
        formatted_texts.append(text)
    return {"text": formatted_texts}


def custom_formatting(examples):
    instructions = examples["instruction"]
    responses = examples["response"]
    formatted_texts = []
    for inst, resp in zip(instructions, responses):
        formatted_text = f"السؤال: {inst}\nالجواب: {resp}"
        formatted_texts.append(formatted_text)
    return {"text": formatted_texts}


def one_row(row):
    return [{"role": "user", "content": row["instruction"]}, {"role": "assistant", "content": row["response"]}]


def batched_dpo(examples):
    return {"prompt": examples["q"], "chosen": [a.upper() for a in examples["a"]], "rejected": examples["a"]}


def write_rows(path, rows):
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return str(path)


def config(tmp_path, rows, **overrides):
    tmp_path.mkdir(parents=True, exist_ok=True)
    data = write_rows(tmp_path / "rows.jsonl", rows)
    return sftkit.load_config(preset="tiny", overrides={"data.dataset": data, "data.validation_split": None, **overrides}, output_dir=tmp_path / "run")


def texts(prepared):
    return [prepared.tokenizer.decode(r["input_ids"]) for r in prepared.train]


def trained(prepared, i=0):
    row = prepared.train[i]
    return prepared.tokenizer.decode([t for t, label in zip(row["input_ids"], row["labels"]) if label != -100])


# --------------------------------------------------------------------------- formatting functions


def test_a_batched_formatting_function_gives_one_example_per_text(tmp_path):
    prepared = sftkit.prepare(config(tmp_path, QA_ROWS, **{"model.max_seq_length": 256}), formatting_func=format_qa_data)
    assert prepared.manifest["rows_kept"] == 3 and prepared.manifest["format"] == "custom"
    assert texts(prepared) == [f"السؤال: {r['question']}\nالجواب: {r['answer']}<|end|>" for r in QA_ROWS]


def test_the_documented_custom_formatting_and_a_row_function_both_work(tmp_path):
    batched = sftkit.prepare(config(tmp_path / "b", WORD_ROWS), formatting_func=custom_formatting)
    assert texts(batched)[1] == "السؤال: dog\nالجواب: DOG<|end|>"
    single = sftkit.prepare(config(tmp_path / "s", WORD_ROWS), formatting_func=one_row)
    assert single.manifest["rows_kept"] == 3 and trained(single, 2) == "SKY<|end|>"


def test_a_batched_formatting_function_for_dpo(tmp_path):
    rows = [{"q": "cat", "a": "cat"}, {"q": "dog", "a": "dog"}]
    prepared = sftkit.prepare(config(tmp_path, rows, trainer_type="dpo"), formatting_func=batched_dpo)
    assert prepared.manifest["rows_kept"] == 2
    row = prepared.train[0]
    assert prepared.tokenizer.decode(row["chosen_ids"]).startswith("CAT") and prepared.tokenizer.decode(row["rejected_ids"]).startswith("cat")


def test_a_function_returning_neither_shape_is_still_named(tmp_path):
    with pytest.raises(sftkit.SftkitError, match=r"rows.jsonl:1: .*data.formatting_func returned dict") as e:
        sftkit.prepare(config(tmp_path, WORD_ROWS), formatting_func=dict)
    assert "{'text': [...]}" in str(e.value)


# --------------------------------------------------------------------------- templates without {response}


def test_a_template_without_response_gets_it_appended_with_a_note(tmp_path):
    cfg = config(tmp_path, WORD_ROWS, **{"data.template": "User: {instruction}\nAssistant: "})
    prepared = sftkit.prepare(cfg)
    assert texts(prepared)[0] == "User: cat\nAssistant: CAT<|end|>"
    assert trained(prepared) == "CAT<|end|>"  # the prompt part is masked, as with {response} at the end
    assert len(prepared.notes) == 1 and "has no {response}" in prepared.notes[0]
    assert sftkit.prepare(cfg).reused and sftkit.prepare(cfg).notes == prepared.notes


def test_prepare_prints_the_note(cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    data = write_rows(tmp_path / "rows.jsonl", WORD_ROWS)
    result = cli("prepare", "--preset", "tiny", "--data", data, "--set", "data.validation_split=null", "--template", "User: {instruction}\nAssistant: ")
    assert result.exit_code == 0, result.output
    assert "note: data.template has no {response}: the response follows its text directly" in " ".join(result.stderr.split())


# --------------------------------------------------------------------------- generation keywords


@pytest.fixture(scope="module")
def tiny_model():
    return sftkit.load("builtin:tiny")


def prompt_tokens(model, prompt):
    return len(model.tokenizer(model.render(prompt), add_special_tokens=False)["input_ids"])


def test_max_length_counts_the_prompt_and_the_response(tiny_model):
    n = prompt_tokens(tiny_model, "cat")
    response = tiny_model.generate_response("cat", max_length=n + 4)
    assert tiny_model.last_stats.new_tokens == 4  # (the untrained model never stops early on these prompts)
    assert response == tiny_model.generate("cat", max_new_tokens=4)
    # max_new_tokens wins over max_length, as in transformers
    tiny_model.generate("cat", max_length=n + 4, max_new_tokens=2)
    assert tiny_model.last_stats.new_tokens == 2


def test_batch_generate_gives_each_prompt_its_own_budget(tiny_model):
    prompts = ["cat", "a much longer prompt than the other"]
    lengths = [prompt_tokens(tiny_model, p) for p in prompts]
    limit = max(lengths) + 3
    out = tiny_model.batch_generate(prompts, max_length=limit, batch_size=2)
    assert tiny_model.last_stats.batches == [2] and tiny_model.last_stats.new_tokens == sum(limit - n for n in lengths)
    assert out == [tiny_model.generate_response(p, max_length=limit) for p in prompts]


def test_the_documented_sampling_call_works_and_is_seeded(tiny_model):
    kwargs = {"max_length": 40, "do_sample": True, "temperature": 0.8, "top_p": 0.9, "repetition_penalty": 1.1, "seed": 3}
    assert tiny_model.generate_response("cat", **kwargs) == tiny_model.generate_response("cat", **kwargs)
    assert tiny_model.batch_generate(["cat", "dog"], max_length=40, batch_size=2, top_k=5, do_sample=True, seed=1)


def test_transformers_meaning_of_do_sample():
    assert SamplingOptions.from_keywords(do_sample=False, temperature=0.8).greedy
    assert SamplingOptions.from_keywords(do_sample=True).temperature == 1.0
    assert SamplingOptions.from_keywords(temperature=0.5).generate_kwargs()["do_sample"] is True  # sftkit's rule without do_sample
    with pytest.raises(sftkit.SftkitError, match="do_sample=True needs a temperature above 0"):
        SamplingOptions.from_keywords(do_sample=True, temperature=0)


def test_generation_keyword_errors_name_the_problem(tiny_model):
    n = prompt_tokens(tiny_model, "cat")
    with pytest.raises(sftkit.SftkitError, match=f"the prompt is {n} tokens long, so max_length={n} .* leaves no room") as e:
        tiny_model.generate_response("cat", max_length=n)
    assert "max_new_tokens" in e.value.hint
    with pytest.raises(sftkit.SftkitError, match="batch_generate: unknown keyword 'num_beams'"):
        tiny_model.batch_generate(["cat"], num_beams=2)
    with pytest.raises(sftkit.SftkitError, match="unknown keyword 'do_smaple'") as e:
        tiny_model.generate_response("cat", do_smaple=True)
    assert e.value.hint == "did you mean do_sample?"
    with pytest.raises(sftkit.SftkitError, match="takes one instruction"):
        tiny_model.generate_response(["cat", "dog"])
    with pytest.raises(sftkit.SftkitError, match="takes a list of instructions"):
        tiny_model.batch_generate("cat")


# --------------------------------------------------------------------------- evaluate_model and save_model


def test_evaluate_model_on_rows_a_dataset_or_a_file(tiny_model, tmp_path):
    from datasets import Dataset

    figures = tiny_model.evaluate_model(WORD_ROWS)
    assert {"eval_loss", "eval_perplexity", "eval_runtime", "eval_samples_per_second"} <= set(figures)
    assert figures["eval_loss"] > 0 and math.isclose(figures["eval_perplexity"], math.exp(figures["eval_loss"]), rel_tol=1e-6)
    assert tiny_model.evaluate_model(Dataset.from_list(WORD_ROWS))["eval_loss"] == pytest.approx(figures["eval_loss"])
    assert tiny_model.evaluate_model(write_rows(tmp_path / "rows.jsonl", WORD_ROWS))["eval_loss"] == pytest.approx(figures["eval_loss"])
    with pytest.raises(sftkit.SftkitError, match="not a run folder, so it has no validation split"):
        tiny_model.evaluate_model()
    with pytest.raises(sftkit.SftkitError, match="eval_dataset is a dict, not rows"):
        tiny_model.evaluate_model({"instruction": "cat", "response": "CAT"})


def test_save_model_writes_a_folder_that_loads_back_alike(tiny_model, tmp_path):
    folder = tiny_model.save_model(tmp_path / "saved")
    assert folder == tmp_path / "saved"
    meta = json.loads((folder / "sft_metadata.json").read_text(encoding="utf-8"))
    assert meta["template"] == meta["instruction_template"] == "auto" and meta["training_method"] == "sft"
    assert meta["model"] == meta["model_name"] == "builtin:tiny"
    assert (folder / "config.json").exists() and (folder / "tokenizer.json").exists()
    again = sftkit.load(folder)
    assert again.generate("cat", max_new_tokens=5) == tiny_model.generate("cat", max_new_tokens=5)
    assert again.save_model() == folder  # already saved there: nothing to write
    with pytest.raises(sftkit.SftkitError, match="exists and is not empty"):
        tiny_model.save_model(folder)
    assert tiny_model.save_model(folder, overwrite=True) == folder
    with pytest.raises(sftkit.SftkitError, match="holds the model folder being saved"):
        again.save_model(tmp_path)
    with pytest.raises(sftkit.SftkitError, match="needs a folder to save to"):
        tiny_model.save_model()
