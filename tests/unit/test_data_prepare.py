"""prepare_data on the real shared datasets and tokenizers: formats, counts, masks, cache, splits, failures."""

from __future__ import annotations

import gzip
import json
import os
import re

import pytest
from conftest import shared_path
from data_fixtures import (  # noqa: F401 - fixtures
    ALPACA,
    DPO_DEMO,
    HH,
    QWEN,
    SELF_INSTRUCT,
    SMOLLM2,
    XQUAD,
    assert_accounting,
    make_cfg,
    qwen,
    smollm2,
    tiny_tok,
    trained_runs,
    trained_text,
    write_jsonl,
)

from sftkit.data.clean import peek, read_examples
from sftkit.data.drops import Reason
from sftkit.data.normalize import normalize_row, parse_hh
from sftkit.data.prepare import prepare_data
from sftkit.data.templates import prompt_ids
from sftkit.errors import ConfigError, DataError
from sftkit.layout import DROPPED

LONG = "model.max_seq_length=2048"


def test_alpaca_demo_with_smollm2(tmp_path, smollm2):
    path = shared_path(*ALPACA)
    p = prepare_data(make_cfg(LONG, dataset=str(path)), tokenizer=smollm2, output=tmp_path / "p")
    m = p.manifest
    assert m["format"] == "alpaca" and m["template"]["name"] == "chat"
    assert (m["rows_in"], m["rows_kept"], m["dropped"]) == (999, 985, {"duplicate": 14})
    assert_accounting(m)
    assert m["source"]["sha256"] and m["tokenizer"]["fingerprint"] and m["token_lengths"]["max"] <= 2048
    assert set(p.train.column_names) == {"input_ids", "labels", "messages"}
    source = json.loads(path.read_text())
    expected = {(r["instruction"], r["input"]): r["output"] for r in source}
    for row in p.train.select(range(25)):
        messages = json.loads(row["messages"])
        user = messages[-2]
        answer = expected[(user["content"], user.get("input", ""))]
        assert messages[-1]["content"] == answer
        assert trained_text(smollm2, row) == answer + "<|im_end|>"
        first = row["labels"].index(next(x for x in row["labels"] if x != -100))
        assert row["input_ids"][:first] == prompt_ids(messages[:-1], smollm2, "auto")


def test_dpo_demo_as_dpo(tmp_path, smollm2):
    cfg = make_cfg("model.max_seq_length=1024", "dpo.max_prompt_length=256", "dpo.max_length=1024", trainer_type="dpo", dataset=str(shared_path(*DPO_DEMO)))
    p = prepare_data(cfg, tokenizer=smollm2, output=tmp_path / "p")
    m = p.manifest
    assert m["format"] == "sharegpt_dpo" and m["rows_in"] == 300 and m["rows_kept"] >= 290
    assert_accounting(m)
    assert {"prompt_ids", "chosen_ids", "rejected_ids", "prompt", "chosen", "rejected", "messages"} <= set(p.train.column_names)
    eos = smollm2.eos_token_id
    for row in p.train.select(range(40)):
        assert len(row["prompt_ids"]) <= 256
        assert len(row["prompt_ids"]) + max(len(row["chosen_ids"]), len(row["rejected_ids"])) <= 1024
        for side in ("chosen_ids", "rejected_ids"):
            ids = row[side]
            if len(row["prompt_ids"]) + len(ids) < 1024:  # not cut by max_length: ends in exactly one EOS
                assert ids[-1] == eos and ids.count(eos) == 1
        assert smollm2.decode(row["prompt_ids"]).endswith("<|im_start|>assistant\n")


def test_hh_rlhf_as_dpo(tmp_path, smollm2):
    path = shared_path(*HH)
    sets = ("model.max_seq_length=1024", "dpo.max_length=512", "dpo.max_prompt_length=384")
    p = prepare_data(make_cfg(*sets, trainer_type="dpo", dataset=str(path), max_rows=300), tokenizer=smollm2, output=tmp_path / "p")
    m = p.manifest
    assert m["format"] == "hh" and m["rows_in"] == 2312 and m["rows_kept"] == 300 and m["capped"] > 1900
    assert "Human:/Assistant: transcript" in m["format_reason"]
    assert "invalid" not in m["dropped"] and m["notes"] == {"prompt_from_common_prefix": 5}
    assert_accounting(m)
    row = p.train[0]
    assert "Human" not in row["chosen"] and row["chosen"].endswith("<|im_end|>")
    assert json.loads(row["messages"])[-1]["role"] == "assistant"

    # the 5 pairs whose transcripts differ before their last turn are kept as TRL's HH processing keeps them: the
    # prompt is the transcripts' common start up to an Assistant turn, each answer the rest of its own transcript
    rows = [json.loads(line) for line in gzip.open(path, "rt", encoding="utf-8")]
    diverging = [r for r in rows if parse_hh(r["chosen"])[:-1] != parse_hh(r["rejected"])[:-1]]
    assert len(diverging) == 5
    for r in diverging:
        (ex,) = normalize_row(r, "hh")
        prompt = "".join(f"\n\n{'Human' if t['role'] == 'user' else 'Assistant'}: {t['content']}" for t in ex["prompt"])
        assert (r["chosen"], r["rejected"]) == (f"{prompt}\n\nAssistant: {ex['chosen']}", f"{prompt}\n\nAssistant: {ex['rejected']}")
        assert "\n\nAssistant: " not in os.path.commonprefix([ex["chosen"], ex["rejected"]])  # the longest such prompt
        assert ex["prompt"][-1]["role"] == "user"
    assert sum("\n\nAssistant: " in normalize_row(r, "hh")[0]["chosen"] for r in diverging) == 4  # a later turn stays in its answer
    data = write_jsonl(tmp_path / "diverging.jsonl", diverging)
    d = prepare_data(make_cfg(*sets, trainer_type="dpo", dataset=str(data)), tokenizer=smollm2, output=tmp_path / "d")
    assert (d.manifest["rows_kept"], d.manifest["notes"]) == (5, {"prompt_from_common_prefix": 5})
    first = normalize_row(diverging[0], "hh")[0]
    assert smollm2.decode(d.train[0]["chosen_ids"]).startswith(first["chosen"][:80])
    assert smollm2.decode(d.train[0]["prompt_ids"]).endswith(first["prompt"][-1]["content"] + "<|im_end|>\n<|im_start|>assistant\n")


def test_self_instruct_instances_are_expanded(tmp_path, smollm2):
    path = shared_path(*SELF_INSTRUCT)
    tasks = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    # the real file has one instance per task; add a task with three to see them expanded
    tasks.append({"instruction": "Double it.", "instances": [{"input": str(n), "output": str(2 * n)} for n in (1, 2, 3)]})
    data = write_jsonl(tmp_path / "si.jsonl", tasks)
    p = prepare_data(make_cfg(LONG, dataset=str(data)), tokenizer=smollm2, output=tmp_path / "p")
    m = p.manifest
    assert m["format"] == "self_instruct" and m["source_rows"] == 253
    assert m["rows_in"] == sum(len(t["instances"]) for t in tasks) == 255
    assert_accounting(m)
    for row, task in zip(p.train.select(range(10)), tasks):
        messages = json.loads(row["messages"])
        instance = task["instances"][0]
        assert messages[0] == {"role": "user", "content": task["instruction"], **({"input": instance["input"]} if instance["input"].strip() else {})}
        assert trained_text(smollm2, row) == instance["output"] + "<|im_end|>"
    doubled = [json.loads(r)[-1]["content"] for r in p.train["messages"][-3:]]
    assert doubled == ["2", "4", "6"]


def test_xquad_arabic_template_with_qwen(tmp_path, qwen):
    path = shared_path(*XQUAD)
    cfg = make_cfg(LONG, dataset=str(path), template="arabic", max_rows=60)
    p = prepare_data(cfg, tokenizer=qwen, output=tmp_path / "p")
    m = p.manifest
    assert m["format"] == "squad" and m["template"]["name"] == "arabic" and m["rows_in"] == 1190
    assert p.manifest["splits"]["train"] == 60
    assert_accounting(m)
    article = json.loads(path.read_text(encoding="utf-8"))["data"][0]
    first_qa = normalize_row(article, "squad")[0]
    row = p.train[0]
    text = qwen.decode(row["input_ids"])
    assert text.startswith("### التعليمات:\n") and "\n\n### الإجابة:\n" in text
    assert trained_text(qwen, row) == first_qa["messages"][1]["content"] + "<|im_end|>"

    normalised = prepare_data(make_cfg(LONG, dataset=str(path), template="arabic", max_rows=20, arabic_normalize=True), tokenizer=qwen, output=tmp_path / "n")
    content = json.loads(normalised.train[0]["messages"])[0]["content"]
    assert not re.search("[\u064b-\u0652\u0640أإآىة]", content)


def test_openai_messages_and_sharegpt_multi_turn_with_smollm2(tmp_path, smollm2):
    conversations = [
        [("system", "You answer in one word."), ("user", "Sky colour?"), ("assistant", "Blue."), ("user", "Grass?"), ("assistant", "Green.")],
        [("user", "Hello"), ("assistant", "Hi! How can I help you today?")],
    ]
    messages_file = write_jsonl(tmp_path / "m.jsonl", [{"messages": [{"role": r, "content": c} for r, c in conv]} for conv in conversations])
    who = {"system": "system", "user": "human", "assistant": "gpt"}
    sharegpt_file = write_jsonl(tmp_path / "s.jsonl", [{"conversations": [{"from": who[r], "value": c} for r, c in conv]} for conv in conversations])
    for path, fmt in ((messages_file, "messages"), (sharegpt_file, "sharegpt")):
        p = prepare_data(make_cfg(dataset=str(path), system_prompt="Default system."), tokenizer=smollm2, output=tmp_path / fmt)
        assert p.manifest["format"] == fmt and p.manifest["rows_kept"] == 2
        for row, conv in zip(p.train, conversations):
            assert trained_runs(smollm2, row) == [c + "<|im_end|>" for r, c in conv if r == "assistant"]
        text = smollm2.decode(p.train[1]["input_ids"])
        assert text.startswith("<|im_start|>system\nDefault system.<|im_end|>")  # added where there was none
        assert smollm2.decode(p.train[0]["input_ids"]).startswith("<|im_start|>system\nYou answer in one word.")


def test_reuse_and_invalidation(tmp_path, smollm2, qwen):
    data = write_jsonl(tmp_path / "d.jsonl", [{"instruction": f"q{i}", "output": f"a{i}"} for i in range(30)])
    out = tmp_path / "p"
    cfg = make_cfg(dataset=str(data))
    first = prepare_data(cfg, tokenizer=smollm2, output=out)
    assert not first.reused
    again = prepare_data(cfg, tokenizer=smollm2, output=out)
    assert again.reused and again.manifest["fingerprint"] == first.manifest["fingerprint"] and len(again.train) == 30
    other_tok = prepare_data(cfg, tokenizer=qwen, output=out)
    assert not other_tok.reused and other_tok.changed == ["template", "tokenizer"]
    assert prepare_data(cfg, tokenizer=qwen, output=out).reused
    changed = prepare_data(make_cfg(dataset=str(data), template="alpaca"), tokenizer=qwen, output=out)
    assert not changed.reused and "template" in changed.changed
    shorter = prepare_data(make_cfg("model.max_seq_length=48", dataset=str(data), template="alpaca"), tokenizer=qwen, output=out)
    assert not shorter.reused and shorter.changed == ["data setting max_seq_length"]
    write_jsonl(data, [{"instruction": f"q{i}", "output": f"b{i}"} for i in range(30)])
    edited = prepare_data(make_cfg("model.max_seq_length=48", dataset=str(data), template="alpaca"), tokenizer=qwen, output=out)
    assert not edited.reused and edited.changed == ["source"]
    forced = prepare_data(make_cfg("model.max_seq_length=48", dataset=str(data), template="alpaca"), tokenizer=qwen, output=out, overwrite=True)
    assert not forced.reused
    assert not list(tmp_path.glob(".p.*"))  # no temp or old folders left behind


def test_validation_fraction_is_seeded_and_disjoint(tmp_path, tiny_tok):
    data = write_jsonl(tmp_path / "d.jsonl", [{"instruction": f"upper: w{i}", "output": f"W{i}"} for i in range(100)])
    a = prepare_data(make_cfg(dataset=str(data), validation_fraction=0.1), tokenizer=tiny_tok, output=tmp_path / "a")
    b = prepare_data(make_cfg(dataset=str(data), validation_fraction=0.1), tokenizer=tiny_tok, output=tmp_path / "b")
    c = prepare_data(make_cfg("train.seed=7", dataset=str(data), validation_fraction=0.1), tokenizer=tiny_tok, output=tmp_path / "c")
    assert len(a.train) == 90 and len(a.validation) == 10 and a.manifest["rows_kept"] == 100
    assert_accounting(a.manifest)
    assert a.validation["messages"] == b.validation["messages"] != c.validation["messages"]
    assert not set(a.validation["messages"]) & set(a.train["messages"])


def test_validation_file_and_json_splits(tmp_path, tiny_tok):
    train = write_jsonl(tmp_path / "t.jsonl", [{"instruction": f"upper: a{i}", "output": f"A{i}"} for i in range(8)])
    val = write_jsonl(tmp_path / "v.jsonl", [{"prompt": "upper: z", "completion": "Z"}, {"prompt": "upper: y", "completion": "Y"}])
    p = prepare_data(make_cfg(dataset=str(train), validation_file=str(val)), tokenizer=tiny_tok, output=tmp_path / "p")
    assert len(p.validation) == 2 and p.manifest["validation"]["format"] == "prompt_completion"
    splits = tmp_path / "s.json"
    splits.write_text(json.dumps({"train": [{"text": "abc"}, {"text": "def"}], "test": [{"text": "ghi"}]}))
    p = prepare_data(make_cfg(dataset=str(splits), validation_split="test"), tokenizer=tiny_tok, output=tmp_path / "s")
    assert (len(p.train), len(p.validation)) == (2, 1)
    assert trained_text(tiny_tok, p.train[0]) == "abc<|end|>"
    with pytest.raises(ConfigError, match="has no such split"):
        prepare_data(make_cfg(dataset=str(train), validation_split="validation"), tokenizer=tiny_tok, output=tmp_path / "x")


def test_too_long_truncate_or_drop_and_max_rows(tmp_path, tiny_tok):
    rows = [{"instruction": "upper: " + "x" * n, "output": "Y" * n} for n in (2, 20, 40)]
    data = write_jsonl(tmp_path / "d.jsonl", rows)
    cut = prepare_data(make_cfg("model.max_seq_length=40", dataset=str(data)), tokenizer=tiny_tok, output=tmp_path / "t")
    m = cut.manifest
    assert m["rows_kept"] == 2 and m["truncated"] == 1 and m["dropped"] == {"prompt_too_long": 1}
    assert max(len(r) for r in cut.train["input_ids"]) == 40
    dropped = prepare_data(make_cfg("model.max_seq_length=40", dataset=str(data), too_long="drop"), tokenizer=tiny_tok, output=tmp_path / "d")
    assert dropped.manifest["dropped"] == {"too_long": 2} and dropped.manifest["truncated"] == 0
    capped = prepare_data(make_cfg(dataset=str(data), max_rows=1), tokenizer=tiny_tok, output=tmp_path / "c")
    assert capped.manifest["rows_kept"] == 1 and capped.manifest["dropped"] == {} and capped.manifest["capped"] == 2
    for p in (cut, dropped, capped):
        assert_accounting(p.manifest)


def test_cleaning_counts_empty_duplicates_and_bad_entries(tmp_path, tiny_tok):
    rows = [
        {"prompt": "p1", "accepted_completion": "c1", "bad_entry": False},
        {"prompt": "p1", "accepted_completion": "c1", "bad_entry": False},
        {"prompt": "p2", "accepted_completion": "  ", "bad_entry": False},
        {"prompt": "p3", "accepted_completion": "c3", "bad_entry": True},
    ]
    p = prepare_data(make_cfg(dataset=str(write_jsonl(tmp_path / "d.jsonl", rows))), tokenizer=tiny_tok, output=tmp_path / "p")
    assert p.manifest["format"] == "openhermes"
    assert p.manifest["dropped"] == {"bad_entry": 1, "duplicate": 1, "empty": 1} and p.manifest["rows_kept"] == 1
    keep = prepare_data(make_cfg(dataset=str(tmp_path / "d.jsonl"), drop_duplicates=False), tokenizer=tiny_tok, output=tmp_path / "k")
    assert keep.manifest["rows_kept"] == 2


def test_builtin_tiny_sft_and_dpo(tmp_path, tiny_tok):
    from sftkit.resolve import resolve_config

    cfg = resolve_config(preset="tiny", sets=["data.max_rows=100"]).config
    p = prepare_data(cfg, tokenizer=tiny_tok, output=tmp_path / "s")
    assert p.manifest["format"] == "alpaca" and len(p.train) == 100 and len(p.validation) > 190
    assert trained_text(tiny_tok, p.train[0]) == json.loads(p.train[0]["messages"])[-1]["content"] + "<|end|>"
    train_words = {json.loads(m)[0]["content"] for m in p.train["messages"]}
    assert not train_words & {json.loads(m)[0]["content"] for m in p.validation["messages"]}
    cfg = resolve_config(preset="tiny", sets=["trainer_type=dpo", "data.max_rows=50"]).config
    d = prepare_data(cfg, tokenizer=tiny_tok, output=tmp_path / "d")
    assert d.manifest["format"] == "dpo" and len(d.train) == 50 and len(d.validation) > 190
    assert tiny_tok.decode(d.train[0]["prompt_ids"]).endswith("<|assistant|>")


def test_skip_invalid_lists_rows_in_dropped_jsonl_and_keeps_accounts(tmp_path, tiny_tok):
    path = tmp_path / "d.jsonl"
    path.write_text(
        '{"instruction": "a", "output": "A"}\n'
        "{broken\n"
        '{"instruction": "b", "output": 3.5}\n'
        '{"instruction": "c", "output": ["not", "text"]}\n'
        '["a list"]\n'
        '{"instruction": "d", "output": "D"}\n',
        encoding="utf-8",
    )
    with pytest.raises(DataError, match=r"d\.jsonl:2: invalid JSON"):
        prepare_data(make_cfg(dataset=str(path)), tokenizer=tiny_tok, output=tmp_path / "strict")
    p = prepare_data(make_cfg(dataset=str(path), skip_invalid=True), tokenizer=tiny_tok, output=tmp_path / "p")
    m = p.manifest
    assert (m["rows_in"], m["rows_kept"], m["dropped"]) == (6, 3, {"invalid": 3})
    assert_accounting(m)
    rejects = [json.loads(line) for line in (tmp_path / "p" / "dropped.jsonl").read_text().splitlines()]
    assert [r["where"].rsplit(":", 1)[1] for r in rejects] == ["2", "4", "5"]
    assert "should be text" in rejects[1]["message"]


def test_every_dropped_row_is_in_dropped_jsonl_with_its_reason(tmp_path, tiny_tok):
    rows = [
        {"instruction": "upper: ab", "output": "AB"},
        {"instruction": "upper: ab", "output": "AB"},  # a duplicate of line 1
        {"instruction": "upper: " + "x" * 80, "output": "X" * 80},  # too long for 40 tokens
        '{"instruction": "broken"',  # not JSON
        {"instruction": "c", "output": ["not", "text"]},  # not a usable row
        {"instruction": "upper: cd", "output": "CD"},
    ]
    path = tmp_path / "d.jsonl"
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows), encoding="utf-8")
    val = write_jsonl(tmp_path / "v.jsonl", [{"instruction": "upper: z", "output": "Z"}, {"instruction": "upper: y", "output": "  "}])
    cfg = make_cfg("model.max_seq_length=40", dataset=str(path), validation_file=str(val), too_long="drop", skip_invalid=True)
    p = prepare_data(cfg, tokenizer=tiny_tok, output=tmp_path / "p")
    lines = [json.loads(line) for line in (tmp_path / "p" / DROPPED).read_text(encoding="utf-8").splitlines()]
    by_place = {r["where"]: r for r in lines}
    assert list(by_place) == [f"{path}:2", f"{path}:4", f"{path}:5", f"{path}:3", f"{val}:2"]  # read order, then encoding
    assert [r["reason"] for r in lines] == ["duplicate", "invalid", "invalid", "too_long", "empty"]
    duplicate, too_long = by_place[f"{path}:2"], by_place[f"{path}:3"]
    assert duplicate["row"] == rows[1] and duplicate["message"] == f"same as {path}:1"
    assert duplicate["example"]["messages"][-1] == {"role": "assistant", "content": "AB"}
    assert too_long["row"] == rows[2] and "model.max_seq_length=40" in too_long["message"]
    assert by_place[f"{path}:4"]["row"] == rows[3] and "invalid JSON" in by_place[f"{path}:4"]["message"]
    assert "should be text" in by_place[f"{path}:5"]["message"]
    assert [r["split"] for r in lines] == ["train"] * 4 + ["validation"]
    for r in lines:
        assert r["explanation"] == Reason(r["reason"]).explanation
    m = p.manifest
    assert m["files"]["dropped"] == DROPPED and m["dropped"] == {"duplicate": 1, "invalid": 2, "too_long": 1}
    assert m["validation"]["dropped"] == {"empty": 1} and (m["rows_kept"], len(p.validation)) == (2, 1)
    assert_accounting(m)
    assert_accounting(m["validation"])

    capped = prepare_data(make_cfg("model.max_seq_length=40", dataset=str(path), too_long="drop", skip_invalid=True, max_rows=1), tokenizer=tiny_tok, output=tmp_path / "c")
    assert capped.manifest["capped"] == 1 and capped.manifest["dropped"] == m["dropped"]  # a cap, not a drop: not listed
    assert len((tmp_path / "c" / DROPPED).read_text().splitlines()) == 4
    assert_accounting(capped.manifest)


def test_refuses_to_replace_a_folder_that_is_not_prepared_data(tmp_path, tiny_tok):
    data = write_jsonl(tmp_path / "d.jsonl", [{"text": "hello"}])
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    with pytest.raises(DataError, match="not a prepared-data folder"):
        prepare_data(make_cfg(dataset=str(data)), tokenizer=tiny_tok, output=tmp_path / "mine")
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep me"


def test_field_map_and_formatting_func(tmp_path, tiny_tok):
    data = write_jsonl(tmp_path / "d.jsonl", [{"q": "upper: ab", "a": "AB"}])
    p = prepare_data(make_cfg(dataset=str(data), field_map={"q": "question", "a": "answer"}), tokenizer=tiny_tok, output=tmp_path / "f")
    assert p.manifest["format"] == "qa"
    with pytest.raises(DataError, match="field_map names column"):
        prepare_data(make_cfg(dataset=str(data), field_map={"missing": "question"}), tokenizer=tiny_tok, output=tmp_path / "g")
    fmt = tmp_path / "fmt.py"
    fmt.write_text("def row(r):\n    return [{'role': 'user', 'content': r['q']}, {'role': 'assistant', 'content': r['a'].lower()}]\n")
    p = prepare_data(make_cfg(dataset=str(data), formatting_func=f"{fmt}:row").trusting_formatting_func(), tokenizer=tiny_tok, output=tmp_path / "c")
    assert p.manifest["format"] == "custom" and trained_text(tiny_tok, p.train[0]) == "ab<|end|>"


def test_num_proc_gives_the_same_result(tmp_path, tiny_tok):
    data = write_jsonl(tmp_path / "d.jsonl", [{"instruction": f"upper: w{i}", "output": f"W{i}"} for i in range(1200)])
    one = prepare_data(make_cfg(dataset=str(data)), tokenizer=tiny_tok, output=tmp_path / "one")
    two = prepare_data(make_cfg(dataset=str(data), num_proc=2), tokenizer=tiny_tok, output=tmp_path / "two")
    assert two.reused is False and one.train["input_ids"] == two.train["input_ids"] and one.train["labels"] == two.train["labels"]


def test_read_examples_and_peek(tmp_path):
    path = shared_path(*ALPACA)
    rows, total, fmt = peek(path, 3)
    assert (len(rows), total, fmt) == (3, 999, "alpaca")
    examples, fmt = read_examples(shared_path(*SELF_INSTRUCT))
    assert fmt == "self_instruct" and examples[0][1].endswith("user_oriented_instructions.jsonl:1")
    assert examples[0][0]["messages"][-1]["role"] == "assistant"


def test_shared_tokenizers_are_present():
    shared_path(*SMOLLM2)
    shared_path(*QWEN)
