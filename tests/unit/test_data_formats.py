"""Format detection and normalisation into canonical examples; Arabic normalisation."""

from __future__ import annotations

import pytest

from sftkit.data.arabic import normalize_arabic
from sftkit.data.canonical import add_system_prompt, check_example
from sftkit.data.drops import DroppedRow, InvalidRow
from sftkit.data.formats import apply_field_map, detect_format
from sftkit.data.normalize import normalize_row, parse_hh
from sftkit.errors import DataError

HH_CHOSEN = "\n\nHuman: hi there\n\nAssistant: hello!\n\nHuman: tell me a joke\n\nAssistant: Why did the chicken cross the road?"
HH_REJECTED = "\n\nHuman: hi there\n\nAssistant: hello!\n\nHuman: tell me a joke\n\nAssistant: No."


@pytest.mark.parametrize(
    ("row", "fmt"),
    [
        ({"instruction": "i", "input": "", "output": "o"}, "alpaca"),
        ({"instruction": "i", "response": "r"}, "instruction"),
        ({"prompt": "p", "completion": "c"}, "prompt_completion"),
        ({"question": "q", "answer": "a"}, "qa"),
        ({"messages": [{"role": "user", "content": "u"}, {"role": "assistant", "content": "a"}]}, "messages"),
        ({"conversations": [{"from": "human", "value": "u"}, {"from": "gpt", "value": "a"}]}, "sharegpt"),
        ({"text": "t"}, "text"),
        ({"prompt": "p", "accepted_completion": "c", "bad_entry": False}, "openhermes"),
        ({"title": "t", "paragraphs": []}, "squad"),
        ({"instruction": "i", "instances": [{"input": "", "output": "o"}]}, "self_instruct"),
        ({"prompt": "p", "chosen": "c", "rejected": "r"}, "dpo"),
        ({"conversations": [{"from": "human", "value": "u"}], "chosen": {"from": "gpt", "value": "c"}, "rejected": {"from": "gpt", "value": "r"}}, "sharegpt_dpo"),
        ({"chosen": HH_CHOSEN, "rejected": HH_REJECTED}, "hh"),
    ],
)
def test_detect_format(row, fmt):
    assert detect_format([row]) == fmt


def test_unknown_columns_list_what_was_found_and_what_is_accepted():
    with pytest.raises(DataError) as info:
        detect_format([{"foo": 1, "bar": 2}])
    assert "bar, foo" in info.value.message
    assert "alpaca: instruction, output" in info.value.hint and "data.format" in info.value.hint


def test_sft_format_with_dpo_and_the_other_way_round_are_clear_errors():
    with pytest.raises(DataError, match="no preference pairs, but trainer_type is dpo"):
        detect_format([{"instruction": "i", "output": "o"}], "dpo")
    with pytest.raises(DataError, match="holds preference pairs, but trainer_type is sft"):
        detect_format([{"prompt": "p", "chosen": "c", "rejected": "r"}], "sft")


def test_field_map_renames_before_detection():
    row = apply_field_map({"question_text": "q", "answer_text": "a"}, {"question_text": "instruction", "answer_text": "output"})
    assert detect_format([row]) == "alpaca"


def test_alpaca_empty_input_is_not_taken_as_anything():
    (ex,) = normalize_row({"instruction": "Say hi", "input": "", "output": "hi"}, "alpaca")
    assert ex == {"messages": [{"role": "user", "content": "Say hi"}, {"role": "assistant", "content": "hi"}]}
    (ex,) = normalize_row({"instruction": "Translate", "input": "chat", "output": "cat"}, "alpaca")
    assert ex["messages"][0] == {"role": "user", "content": "Translate", "input": "chat"}


def test_sharegpt_roles_and_system_turns():
    row = {
        "conversations": [
            {"from": "system", "value": "be brief"},
            {"from": "human", "value": "a"},
            {"from": "gpt", "value": "b"},
        ]
    }
    (ex,) = normalize_row(row, "sharegpt")
    assert [m["role"] for m in ex["messages"]] == ["system", "user", "assistant"]
    with pytest.raises(InvalidRow, match="unknown role 'robot'"):
        normalize_row({"conversations": [{"from": "robot", "value": "x"}]}, "sharegpt")


def test_openhermes_bad_entries_are_dropped():
    with pytest.raises(DroppedRow, match="bad_entry"):
        normalize_row({"prompt": "p", "accepted_completion": "c", "bad_entry": True}, "openhermes")
    (ex,) = normalize_row({"prompt": "p", "accepted_completion": "c", "bad_entry": False}, "openhermes")
    assert ex["messages"][1]["content"] == "c"


def test_squad_articles_expand_to_one_example_per_question_with_the_first_answer():
    article = {
        "title": "t",
        "paragraphs": [
            {"context": "Paris is in France.", "qas": [
                {"question": "Where is Paris?", "answers": [{"text": "France", "answer_start": 12}, {"text": "in France"}]},
                {"question": "What is in France?", "answers": [{"text": "Paris"}]},
            ]}
        ],
    }
    examples = normalize_row(article, "squad")
    assert len(examples) == 2
    assert examples[0]["messages"] == [
        {"role": "user", "content": "Paris is in France.\n\nWhere is Paris?"},
        {"role": "assistant", "content": "France"},
    ]


def test_self_instruct_expands_instances():
    row = {"instruction": "Add", "instances": [{"input": "1+1", "output": "2"}, {"input": "", "output": "0"}]}
    examples = normalize_row(row, "self_instruct")
    assert [e["messages"][0].get("input") for e in examples] == ["1+1", None]
    assert [e["messages"][1]["content"] for e in examples] == ["2", "0"]


def test_dpo_rows_with_text_or_message_lists():
    (ex,) = normalize_row({"prompt": "p", "chosen": "c", "rejected": "r"}, "dpo")
    assert ex == {"prompt": [{"role": "user", "content": "p"}], "chosen": "c", "rejected": "r"}
    row = {
        "prompt": [{"role": "user", "content": "p"}],
        "chosen": [{"role": "assistant", "content": "c"}],
        "rejected": [{"role": "assistant", "content": "r"}],
    }
    assert normalize_row(row, "dpo") == [ex]


def test_sharegpt_dpo():
    row = {
        "conversations": [{"from": "human", "value": "q1"}, {"from": "gpt", "value": "a1"}, {"from": "human", "value": "q2"}],
        "chosen": {"from": "gpt", "value": "good"},
        "rejected": {"from": "gpt", "value": "bad"},
    }
    (ex,) = normalize_row(row, "sharegpt_dpo")
    assert [m["role"] for m in ex["prompt"]] == ["user", "assistant", "user"]
    assert (ex["chosen"], ex["rejected"]) == ("good", "bad")


def test_hh_transcripts_split_at_the_last_assistant_turn():
    (ex,) = normalize_row({"chosen": HH_CHOSEN, "rejected": HH_REJECTED}, "hh")
    assert ex["prompt"] == parse_hh(HH_CHOSEN)[:-1]
    assert [m["role"] for m in ex["prompt"]] == ["user", "assistant", "user"]
    assert ex["prompt"][-1]["content"] == "tell me a joke"
    assert (ex["chosen"], ex["rejected"]) == ("Why did the chicken cross the road?", "No.")
    with pytest.raises(InvalidRow, match="differ before their last Assistant turn"):
        normalize_row({"chosen": HH_CHOSEN, "rejected": "\n\nHuman: something else\n\nAssistant: x"}, "hh")


def test_check_example_reasons():
    assert check_example({"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "  "}]}) == "empty"
    assert check_example({"text": ""}) == "empty"
    assert check_example({"prompt": [{"role": "user", "content": "p"}], "chosen": "a", "rejected": "a"}) == "identical_responses"
    with pytest.raises(InvalidRow, match="does not end with an assistant turn"):
        check_example({"messages": [{"role": "assistant", "content": "a"}, {"role": "user", "content": "q"}]})
    with pytest.raises(InvalidRow, match="no assistant turn"):
        check_example({"messages": [{"role": "user", "content": "q"}]})


def test_system_prompt_is_added_only_where_there_is_none():
    ex = {"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}
    assert add_system_prompt(ex, "S")["messages"][0] == {"role": "system", "content": "S"}
    with_system = {"messages": [{"role": "system", "content": "own"}, *ex["messages"]]}
    assert add_system_prompt(with_system, "S") == with_system


def test_arabic_normalisation():
    assert normalize_arabic("مُحَمَّدٌ") == "محمد"  # harakat, shadda, tanwin
    assert normalize_arabic("الـــعربية") == "العربيه"  # tatweel, taa marbuta
    assert normalize_arabic("أإآ") == "ااا"
    assert normalize_arabic("على") == "علي"
    assert normalize_arabic("Hello, world 123") == "Hello, world 123"
