"""The generation core without training: locating runs, prompts of data rows, batching, stops, output escaping."""

from __future__ import annotations

import json

import pytest

from sftkit.cli.generate import escape_line
from sftkit.errors import DataError, SftkitError
from sftkit.generation import LoadedModel
from sftkit.prompts import row_prompt
from sftkit.runinfo import RunInfo, locate
from sftkit.sampling import GenerationStats, SamplingOptions


# --------------------------------------------------------------------------- locate


def test_locate_a_run_a_model_folder_and_a_hub_id(tmp_path):
    run = tmp_path / "run"
    (run / "model").mkdir(parents=True)
    (run / "model" / "config.json").write_text("{}")
    (run / "sftkit.yaml").write_text("trainer_type: sft\n")
    (run / "sft_metadata.json").write_text(json.dumps({"template": "chatml", "model": "org/base"}))
    info = locate(str(run))
    assert info.run_dir == run and info.model_dir == run / "model" and info.template == "chatml" and not info.is_adapter
    assert locate(str(run / "model")).run_dir == run
    hub = locate("HuggingFaceTB/SmolLM2-135M")
    assert hub.model_dir == "HuggingFaceTB/SmolLM2-135M" and not hub.is_local and hub.template == "auto"


def test_locate_errors_say_what_to_do(tmp_path, monkeypatch):
    with pytest.raises(SftkitError, match="no run or model at") as e:
        locate(str(tmp_path / "missing"))
    assert "run folder" in e.value.hint
    monkeypatch.chdir(tmp_path)
    (tmp_path / "runs").mkdir()
    with pytest.raises(SftkitError, match="no run or model at runs/typo"):
        locate("runs/typo")  # a typo'd local run, not a Hub id
    (tmp_path / "f.txt").write_text("x")
    with pytest.raises(SftkitError, match="is a file"):
        locate(str(tmp_path / "f.txt"))
    unfinished = tmp_path / "unfinished"
    unfinished.mkdir()
    (unfinished / "sftkit.yaml").write_text("trainer_type: sft\n")
    with pytest.raises(SftkitError, match="holds no model") as e:
        locate(str(unfinished))
    assert "--resume" in e.value.hint


# --------------------------------------------------------------------------- prompts of rows


@pytest.mark.parametrize(
    "row, expected",
    [
        ("plain text", [{"role": "user", "content": "plain text"}]),
        ({"instruction": "do", "input": "this", "output": "done"}, [{"role": "user", "content": "do", "input": "this"}]),
        ({"instruction": "do"}, [{"role": "user", "content": "do"}]),
        ({"instruction": "do", "response": "r"}, [{"role": "user", "content": "do"}]),
        ({"prompt": "p"}, [{"role": "user", "content": "p"}]),
        ({"prompt": "p", "completion": "c"}, [{"role": "user", "content": "p"}]),
        ({"question": "q"}, [{"role": "user", "content": "q"}]),
        ({"text": "t"}, [{"role": "user", "content": "t"}]),
        ({"prompt": "p", "chosen": "a", "rejected": "b"}, [{"role": "user", "content": "p"}]),
        ({"prompt": "p", "accepted_completion": "a", "bad_entry": True}, [{"role": "user", "content": "p"}]),
        (
            {"messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "u"}, {"role": "assistant", "content": "a"}]},
            [{"role": "system", "content": "s"}, {"role": "user", "content": "u"}],
        ),
        (
            {"conversations": [{"from": "human", "value": "1"}, {"from": "gpt", "value": "2"}, {"from": "human", "value": "3"}]},
            [{"role": "user", "content": "1"}, {"role": "assistant", "content": "2"}, {"role": "user", "content": "3"}],
        ),
    ],
)
def test_row_prompt_is_the_row_without_its_answer(row, expected):
    assert row_prompt(row) == expected


def test_row_prompt_errors_name_the_row():
    with pytest.raises(DataError, match=r"^stdin:4: cannot tell the row format from its columns: a, b$"):
        row_prompt({"a": 1, "b": 2}, "stdin:4")
    with pytest.raises(DataError, match="stdin:1: expected a JSON object"):
        row_prompt([1, 2], "stdin:1")
    with pytest.raises(DataError, match="holds 2 prompts"):
        row_prompt({"paragraphs": [{"context": "c", "qas": [{"question": "a", "answers": [{"text": "x"}]}, {"question": "b", "answers": [{"text": "y"}]}]}]})
    with pytest.raises(DataError, match="no user message"):
        row_prompt({"messages": [{"role": "system", "content": "s"}]})


# --------------------------------------------------------------------------- options and output


def test_sampling_options():
    assert SamplingOptions().generate_kwargs()["do_sample"] is False
    sampled = SamplingOptions(temperature=0.7, top_k=0, top_p=0.9).generate_kwargs()
    assert sampled["do_sample"] is True and sampled["top_k"] == 0 and sampled["top_p"] == 0.9  # 0 disables top-k
    for bad in (SamplingOptions(max_new_tokens=0), SamplingOptions(temperature=-1), SamplingOptions(top_p=0), SamplingOptions(top_k=-2)):
        with pytest.raises(SftkitError) as e:
            bad.check()
        # the library names the setting (the same word as the keyword and, with dashes, the CLI flag)
        assert e.value.exit_code == 2 and e.value.message.split()[0] in ("max_new_tokens", "temperature", "top_p", "top_k")


def test_escape_line_keeps_one_record_per_line():
    assert escape_line("a\nb") == "a\\nb"
    assert escape_line("c:\\new\r\n") == "c:\\\\new\\r\\n"
    assert "\n" not in escape_line("x\n\ny") and escape_line("plain") == "plain"


# --------------------------------------------------------------------------- batching on an untrained tiny model


@pytest.fixture(scope="module")
def untrained():
    from sftkit import tiny

    tok = tiny.build_tokenizer()
    model = tiny.build_model(tok).eval()
    return LoadedModel(model, tok, RunInfo("builtin:tiny"), template="auto")


def test_batched_generation_equals_one_by_one(untrained):
    prompts = ["upper: cat", "a much longer prompt than the others, with padding", "hi", [{"role": "user", "content": "x"}], "upper: dog"]
    options = SamplingOptions(max_new_tokens=6)
    stats = GenerationStats()
    one = [untrained.generate([p], options=options)[0] for p in prompts]
    assert untrained.generate(prompts, batch_size=3, options=options, stats=stats) == one
    assert stats.prompts == len(prompts) and stats.batches == [3, 2]
    assert 0 < stats.new_tokens <= 6 * len(prompts) and stats.tokens_per_second > 0


def test_generate_iter_reads_prompts_lazily(untrained):
    seen = []

    def prompts():
        for p in ("a", "b", "c"):
            seen.append(p)
            yield p

    it = untrained.generate_iter(prompts(), batch_size=2, options=SamplingOptions(max_new_tokens=2))
    next(it)
    assert seen == ["a", "b"]  # the first batch only


def test_render_uses_the_trained_template(untrained):
    assert untrained.render("hi") == "<|begin|><|user|>hi<|end|><|assistant|>"
    chatml = LoadedModel(untrained.model, untrained.tokenizer, untrained.info, template="chatml", system_prompt="be brief")
    assert chatml.render("hi") == "<|im_start|>system\nbe brief<|im_end|>\n<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"


def test_text_end_markers_cut_responses(untrained):
    """A chatml template on a tokenizer without an <|im_end|> token: generation stops on the text marker."""
    chatml = LoadedModel(untrained.model, untrained.tokenizer, untrained.info, template="chatml")
    assert chatml._text_stops() == ["<|im_end|>"]
    ids = untrained.tokenizer("ABC<|im_end|>\nmore", add_special_tokens=False)["input_ids"]
    assert chatml._decode(ids) == "ABC"
    assert untrained._text_stops() == []
    assert untrained.tokenizer.eos_token_id in untrained.stop_ids()


def test_unknown_template_fails_before_generating(untrained):
    bad = LoadedModel(untrained.model, untrained.tokenizer, untrained.info, template="nonsense")
    with pytest.raises(SftkitError, match="unknown template"):
        bad.generate(["hi"])


# --------------------------------------------------------------------------- eval and export helpers


def test_eval_rows_references_and_result_names():
    from sftkit.evaluation import EvalRows, _name_of

    rows = EvalRows(
        "validation",
        "x",
        "sft",
        [
            {"messages": json.dumps([{"role": "user", "content": "q"}, {"role": "assistant", "content": "A"}])},
            {"messages": json.dumps([{"role": "assistant", "content": "raw text row"}])},
        ],
    )
    assert rows.references() == [([{"role": "user", "content": "q"}], "A")]
    assert _name_of("data/test.jsonl.gz", None) == "test"
    assert _name_of("org/dataset", "test") == "org_dataset.test"


def test_export_card_and_output_checks(tmp_path):
    from sftkit.card import export_card as model_card
    from sftkit.export import _check_output

    meta = {"trainer_type": "sft", "method": "lora", "model": "HuggingFaceTB/SmolLM2-135M", "dataset": "a/b", "lora": {"r": 8, "alpha": 16, "dropout": 0.0}, "metrics": {"eval_loss": 1.23456}}
    card = model_card(meta, {"merged_lora": True, "dtype": "bfloat16", "max_abs_logit_diff": 0.01})
    assert card.startswith("---\n") and "\nbase_model: HuggingFaceTB/SmolLM2-135M\ndatasets:\n- a/b\n" in card  # see test_card.py
    assert "merged-lora" in card and "| lora | r=8, alpha=16, dropout=0.0 |" in card and "| eval_loss | 1.235 |" in card
    _check_output(tmp_path / "new", overwrite=False)
    (tmp_path / "empty").mkdir()
    _check_output(tmp_path / "empty", overwrite=False)
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("x")
    with pytest.raises(SftkitError, match="not empty"):
        _check_output(tmp_path / "full", overwrite=False)
    _check_output(tmp_path / "full", overwrite=True)
    with pytest.raises(SftkitError, match="is a file"):
        _check_output(tmp_path / "full" / "x", overwrite=True)


def test_loss_is_the_mean_over_trained_tokens(untrained):
    import math

    import torch

    from sftkit.evaluation import EvalRows, loss_metrics
    from sftkit.scoring import IGNORE_INDEX

    tok = untrained.tokenizer
    rows = []
    for prompt, answer in (("upper: cat", "CAT"), ("a longer prompt to pad against", "SOME LONGER ANSWER")):
        p = tok(untrained.render(prompt), add_special_tokens=False)["input_ids"]
        a = tok(answer + tok.eos_token, add_special_tokens=False)["input_ids"]
        rows.append({"input_ids": p + a, "labels": [IGNORE_INDEX] * len(p) + a, "messages": "[]"})
    m = loss_metrics(untrained, EvalRows("x", "x", "sft", rows), batch_size=2)
    # the same figure as transformers' own loss, summed per row and divided by all trained tokens
    total, count = 0.0, 0
    for r in rows:
        with torch.inference_mode():
            out = untrained.model(input_ids=torch.tensor([r["input_ids"]]), labels=torch.tensor([r["labels"]]))
        n = sum(1 for x in r["labels"][1:] if x != IGNORE_INDEX)
        total, count = total + out.loss.item() * n, count + n
    assert m["eval_tokens"] == count
    assert m["eval_loss"] == pytest.approx(total / count, rel=1e-5)
    assert m["eval_perplexity"] == pytest.approx(math.exp(m["eval_loss"]))
    assert abs(m["eval_loss"] - math.log(len(tok))) < 1.0  # an untrained model is close to uniform


def test_dpo_rows_give_a_loss_and_a_preference_accuracy(untrained):
    from sftkit.evaluation import EvalRows, loss_metrics

    tok = untrained.tokenizer
    enc = lambda text: tok(text, add_special_tokens=False)["input_ids"]  # noqa: E731
    rows = [
        {"prompt_ids": enc(untrained.render(f"upper: {w}")), "chosen_ids": enc(w.upper() + tok.eos_token), "rejected_ids": enc(w + tok.eos_token), "messages": "[]"}
        for w in ("cat", "dog", "house")
    ]
    m = loss_metrics(untrained, EvalRows("x", "x", "dpo", rows), batch_size=2)
    assert m["eval_loss"] > 0 and 0.0 <= m["eval_preference_accuracy"] <= 1.0
    assert m["eval_tokens"] == sum(len(r["chosen_ids"]) for r in rows)
