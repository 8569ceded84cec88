"""KTO (unpaired preference): formats, preparing rows for TRL's KTOTrainer, the SFT guard, config rules and the
trainer's arguments. Training runs are in tests/integration/test_kto_training.py."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import shared_path
from data_fixtures import (  # noqa: F401 - fixtures
    SMOLLM2,
    assert_accounting,
    make_cfg,
    smollm2,
    tiny_tok,
    write_jsonl,
)

from sftkit.data.formats import detect_format
from sftkit.data.normalize import normalize_row
from sftkit.data.prepare import prepare_data, summary
from sftkit.data.templates import prompt_ids
from sftkit.errors import ConfigError, DataError
from sftkit.resolve import resolve_config

KTO_DEMO = ("data", "llamafactory", "kto_en_demo.json")
DPO_DEMO = ("data", "llamafactory", "dpo_en_demo.json")
#: long enough for every kto_en_demo row, prompt and answer, in the SmolLM2 tokenizer
LONG = ["model.max_seq_length=8192", "kto.max_prompt_length=4096", "kto.max_length=8192"]


def _kto(*sets: str, **data):
    return make_cfg(*sets, trainer_type="kto", **data)


def test_kto_demo_is_its_own_format_with_its_labels_counted(tmp_path, smollm2):
    path = shared_path(*KTO_DEMO)
    p = prepare_data(_kto(*LONG, dataset=str(path)), tokenizer=smollm2, output=tmp_path / "p")
    m = p.manifest
    assert m["format"] == "sharegpt_kto" and m["trainer_type"] == "kto"
    assert (m["rows_in"], m["rows_kept"], m["dropped"], m["truncated"]) == (300, 300, {}, 0)
    assert m["labels"] == {"desirable": 150, "undesirable": 150}
    assert summary(p)["labels"] == {"desirable": 150, "undesirable": 150}
    assert_accounting(m)
    assert {"prompt_ids", "completion_ids", "label", "messages"} <= set(p.train.column_names)
    source = json.loads(path.read_text())
    assert p.train["label"] == [r["label"] for r in source]  # every row, in order, with its own label
    assert m["trained_tokens"] == sum(len(ids) for ids in p.train["completion_ids"])


def test_kto_loss_mask_is_the_judged_answer_and_nothing_else(tmp_path, smollm2):
    """The completion tokens (what TRL's KTO loss sums log-probabilities over) decode to exactly the last assistant
    answer and its end-of-turn token; the prompt tokens are the conversation before it with the generation prompt,
    so earlier assistant turns are context, never trained on or judged."""
    from trl.trainer.kto_trainer import DataCollatorForUnpairedPreference

    path = shared_path(*KTO_DEMO)
    p = prepare_data(_kto(*LONG, dataset=str(path)), tokenizer=smollm2, output=tmp_path / "p")
    source = json.loads(path.read_text())
    multi_turn = 0
    for row, src in zip(p.train.select(range(60)), source[:60], strict=True):
        turns = src["messages"]
        multi_turn += len(turns) > 2
        assert smollm2.decode(row["completion_ids"]) == turns[-1]["content"] + "<|im_end|>"
        assert row["prompt_ids"] == prompt_ids(turns[:-1], smollm2, "auto")
        assert row["label"] is src["label"]
    assert multi_turn > 0  # the demo has multi-turn rows: their earlier answers stay in the prompt
    # TRL's collator builds the loss mask from the two columns: it covers the answer tokens exactly
    rows = p.train.select(range(4)).to_list()
    batch = DataCollatorForUnpairedPreference(pad_token_id=smollm2.pad_token_id)([{k: r[k] for k in ("prompt_ids", "completion_ids", "label")} for r in rows])
    for i, row in enumerate(rows):
        masked = batch["input_ids"][i][batch["completion_mask"][i].bool()].tolist()
        assert masked == row["completion_ids"]
    assert batch["label"].tolist() == [r["label"] for r in rows]


def test_kto_lengths_cut_the_prompt_from_the_front_and_the_answer_at_the_end(tmp_path, smollm2):
    path = shared_path(*KTO_DEMO)
    cfg = _kto("model.max_seq_length=256", "kto.max_prompt_length=64", "kto.max_length=128", dataset=str(path))
    p = prepare_data(cfg, tokenizer=smollm2, output=tmp_path / "p")
    assert p.manifest["truncated"] > 0 and p.manifest["rows_kept"] == 300
    for row in p.train.select(range(30)):
        assert len(row["prompt_ids"]) <= 64 and len(row["prompt_ids"]) + len(row["completion_ids"]) <= 128
        assert smollm2.decode(row["prompt_ids"]).endswith("<|im_start|>assistant\n")  # the end of the prompt is kept
    dropped = prepare_data(cfg.model_copy(update={"data": cfg.data.model_copy(update={"too_long": "drop"})}), tokenizer=smollm2, output=tmp_path / "d")
    m = dropped.manifest
    assert m["dropped"]["too_long"] > 0 and m["rows_kept"] == 300 - m["dropped"]["too_long"]
    assert m["labels"]["desirable"] + m["labels"]["undesirable"] == m["rows_kept"]
    assert_accounting(m)


@pytest.mark.parametrize(
    ("row", "fmt", "example"),
    [
        (  # TRL's standard unpaired preference row
            {"prompt": "The sky is", "completion": " blue.", "label": True},
            "kto",
            {"prompt": [{"role": "user", "content": "The sky is"}], "completion": " blue.", "label": True},
        ),
        (  # TRL's conversational one
            {"prompt": [{"role": "user", "content": "Sky colour?"}], "completion": [{"role": "assistant", "content": "Green."}], "label": False},
            "kto",
            {"prompt": [{"role": "user", "content": "Sky colour?"}], "completion": "Green.", "label": False},
        ),
        (  # LLaMA-Factory's kto_tag on ShareGPT turns; a CSV-style text label
            {"conversations": [{"from": "human", "value": "hi"}, {"from": "gpt", "value": "hello"}], "kto_tag": "False"},
            "sharegpt_kto",
            {"prompt": [{"role": "user", "content": "hi"}], "completion": "hello", "label": False},
        ),
    ],
)
def test_unpaired_preference_rows(row, fmt, example):
    assert detect_format([row], "kto") == fmt
    assert normalize_row(row, fmt) == [example]


def test_a_label_that_is_not_true_or_false_is_not_a_kto_label():
    row = {"messages": [{"role": "user", "content": "u"}, {"role": "assistant", "content": "a"}], "label": "sports"}
    assert detect_format([row]) == "messages"  # a class label: plain SFT rows
    with pytest.raises(DataError, match="no desirable/undesirable labels, but trainer_type is kto"):
        detect_format([row], "kto")


def test_unusable_kto_rows_name_their_line(tmp_path, tiny_tok):
    turns = [{"role": "user", "content": "u"}, {"role": "assistant", "content": "a"}]
    path = write_jsonl(tmp_path / "k.jsonl", [{"messages": turns, "label": True}, {"messages": turns, "label": "maybe"}])
    with pytest.raises(DataError, match=r"k\.jsonl:2: 'label' should be true \(desirable\) or false \(undesirable\), got 'maybe'"):
        prepare_data(_kto(dataset=str(path)), tokenizer=tiny_tok, output=tmp_path / "p")
    p = prepare_data(_kto(dataset=str(path), skip_invalid=True), tokenizer=tiny_tok, output=tmp_path / "p")
    assert p.manifest["dropped"] == {"invalid": 1} and p.manifest["labels"] == {"desirable": 1, "undesirable": 0}


def test_sft_never_trains_on_kto_labelled_rows(tmp_path, tiny_tok):
    path = shared_path(*KTO_DEMO)
    with pytest.raises(DataError, match="holds answers labelled desirable or undesirable") as info:
        prepare_data(make_cfg(dataset=str(path)), tokenizer=tiny_tok, output=tmp_path / "a")
    assert "--trainer-type kto" in info.value.hint
    # forcing an SFT format does not make the label go away
    with pytest.raises(DataError, match=r"kto_en_demo\.json:\d+: the row is labelled for KTO \(label: true\), but trainer_type is sft") as info:
        prepare_data(make_cfg(dataset=str(path), format="messages"), tokenizer=tiny_tok, output=tmp_path / "b")
    assert "--trainer-type kto" in info.value.hint
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()
    # renaming the label away is the way to fine-tune on every row regardless
    p = prepare_data(make_cfg(dataset=str(path), field_map={"label": "quality"}), tokenizer=tiny_tok, output=tmp_path / "c")
    assert p.manifest["format"] == "messages" and p.manifest["rows_in"] == 300 and "invalid" not in p.manifest["dropped"]


def test_preference_pairs_are_unpaired_for_kto(tmp_path, tiny_tok):
    pairs = [
        {"prompt": "cat", "chosen": "CAT", "rejected": "cat"},
        {"prompt": "dog", "chosen": "DOG", "rejected": "DOG"},  # the same answer twice: nothing to learn
        {"prompt": "owl", "chosen": "OWL", "rejected": "OwL"},
    ]
    path = write_jsonl(tmp_path / "pairs.jsonl", pairs)
    p = prepare_data(_kto(dataset=str(path)), tokenizer=tiny_tok, output=tmp_path / "p")
    m = p.manifest
    assert m["format"] == "dpo" and (m["rows_in"], m["rows_kept"]) == (5, 4) and m["dropped"] == {"identical_responses": 1}
    assert_accounting(m)
    assert m["labels"] == {"desirable": 2, "undesirable": 2}
    answers = [(tiny_tok.decode(r["completion_ids"]), r["label"]) for r in p.train]
    assert answers == [("CAT<|end|>", True), ("cat<|end|>", False), ("OWL<|end|>", True), ("OwL<|end|>", False)]


def test_builtin_tiny_data_trains_kto_offline(tmp_path, tiny_tok):
    cfg = resolve_config(preset="tiny", sets=["trainer_type=kto", "data.max_rows=40"]).config
    p = prepare_data(cfg, tokenizer=tiny_tok, output=tmp_path / "p")
    assert p.manifest["labels"]["desirable"] > 0 and p.manifest["labels"]["undesirable"] > 0
    assert p.validation is not None and set(p.validation["label"]) == {True, False}
    assert p.manifest["validation"]["labels"]["desirable"] + p.manifest["validation"]["labels"]["undesirable"] == len(p.validation)


def test_a_formatting_func_can_give_kto_rows(tmp_path, tiny_tok):
    code = tmp_path / "fmt.py"
    code.write_text("def fmt(row):\n    return {'prompt': row['q'], 'completion': row['a'], 'label': row['ok']}\n")
    path = write_jsonl(tmp_path / "rows.jsonl", [{"q": "x", "a": "X", "ok": True}, {"q": "y", "a": "y", "ok": False}])
    cfg = _kto(dataset=str(path), formatting_func=f"{code}:fmt").trusting_formatting_func()
    p = prepare_data(cfg, tokenizer=tiny_tok, output=tmp_path / "p")
    assert p.train["label"] == [True, False] and p.manifest["labels"] == {"desirable": 1, "undesirable": 1}


# --------------------------------------------------------------------------- config and trainer arguments


def _problems(*sets: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        resolve_config(preset="tiny", sets=["trainer_type=kto", *sets])
    return [p.key for p in info.value.problems]


def test_kto_config_rules():
    assert _problems("train.batch_size=1") == ["train.batch_size"]
    assert _problems("kto.max_length=128") == ["kto.max_length"]  # the tiny preset's model.max_seq_length is 64
    assert _problems("kto.max_prompt_length=64") == ["kto.max_prompt_length"]
    assert _problems("kto.beta=0") == ["kto.beta"]
    assert _problems("train.group_by_length=true") == ["train.group_by_length"]
    # without the KL term a batch of one is fine, and so is any order
    resolve_config(preset="tiny", sets=["trainer_type=kto", "kto.loss_type=apo_zero_unpaired", "train.batch_size=1", "train.group_by_length=true"])
    # an SFT run does not care about the kto section
    resolve_config(preset="tiny", sets=["train.batch_size=1", "kto.max_length=128"])


def test_kto_settings_reach_ktoconfig():
    from sftkit.training.args import build_trainer_config

    sets = ["trainer_type=kto", "kto.beta=0.3", "kto.desirable_weight=1.5", "kto.undesirable_weight=0.5", "train.batch_size=4"]
    args = build_trainer_config(resolve_config(preset="tiny", sets=sets).config, train_rows=10)
    assert type(args).__name__ == "KTOConfig"
    assert (args.beta, args.desirable_weight, args.undesirable_weight, args.loss_type) == (0.3, 1.5, 0.5, "kto")
    assert args.max_length == 64 and args.per_device_train_batch_size == 4
    assert args.train_sampling_strategy == "sequential"  # what TRL's KL term requires
    assert args.precompute_ref_log_probs is True  # 200 steps of 4 rows see all 10 rows
    apo = build_trainer_config(resolve_config(preset="tiny", sets=[*sets, "kto.loss_type=apo_zero_unpaired"]).config)
    assert apo.loss_type == "apo_zero_unpaired" and apo.train_sampling_strategy == "random"


def test_dry_run_shows_the_kto_trainer(cli):
    result = cli("train", "--preset", "tiny", "--trainer-type", "kto", "--set", "kto.undesirable_weight=2", "--dry-run", "--json")
    assert result.exit_code == 0, result.output
    plan = json.loads(result.stdout)
    assert plan["trainer"]["class"] == "trl.KTOTrainer"
    assert plan["trainer"]["args"]["undesirable_weight"] == 2 and plan["config"]["kto"]["undesirable_weight"] == 2


def test_unbalanced_labels_get_the_papers_advice():
    from sftkit.training.trainers import kto_notes

    cfg = resolve_config(preset="tiny", sets=["trainer_type=kto"]).config
    assert kto_notes(cfg, {"labels": {"desirable": 150, "undesirable": 150}}) == []
    assert kto_notes(cfg, {"labels": {"desirable": 151, "undesirable": 150}}) == []
    (note,) = kto_notes(cfg, {"labels": {"desirable": 300, "undesirable": 100}})
    assert "is 3.00" in note and "kto.undesirable_weight=3" in note
    (note,) = kto_notes(cfg, {"labels": {"desirable": 100, "undesirable": 300}})
    assert "is 0.33" in note and "kto.desirable_weight=3" in note


def test_kl_completions_pair_each_row_with_its_batch_neighbour():
    from sftkit.training.trainers import _rotate_completions

    batch = {"completion_ids": [[1], [2, 2], [3]], "label": [True, False, True]}
    assert _rotate_completions(batch) == {"KL_completion_ids": [[3], [1], [2, 2]]}


def test_eval_references_leave_out_undesirable_answers():
    from sftkit.evaluation import EvalRows

    def row(answer: str, label: bool) -> dict:
        return {"messages": json.dumps([{"role": "user", "content": "q"}, {"role": "assistant", "content": answer}]), "label": label}

    rows = EvalRows("v", "v", "kto", [row("good", True), row("bad", False)])
    assert rows.references() == [([{"role": "user", "content": "q"}], "good")]


def test_the_wizard_sets_up_kto(tmp_path, monkeypatch):
    import yaml

    from sftkit.wizard.command import init_project

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv("SFTKIT_PRESET_PATH", raising=False)
    given = {"preset": "tiny", "trainer_type": "kto", "batch_size": 1, "max_seq_length": 32, "precision": "fp32"}
    init_project(given, Path("sftkit.yaml"), yes=True, hardware=("fp32", "test machine: no GPU"))
    out = yaml.safe_load(Path("sftkit.yaml").read_text())
    assert out["trainer_type"] == "kto" and out["kto"] == {"max_prompt_length": 16, "max_length": 32}
    assert out["train"]["batch_size"] == 2  # the KL term needs two rows a batch
    assert resolve_config(config_file="sftkit.yaml").config.trainer_type == "kto"
