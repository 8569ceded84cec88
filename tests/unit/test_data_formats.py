"""Format detection and normalisation into canonical examples; Arabic normalisation."""

from __future__ import annotations

import json

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
    with pytest.raises(InvalidRow, match="differ before their first Assistant turn: no prompt is shared"):
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


# --------------------------------------------------------------------------- TRL's dataset types, tools, parts

SKY_CHOSEN = [{"role": "user", "content": "What color is the sky?"}, {"role": "assistant", "content": "It is blue."}]
SKY_REJECTED = [{"role": "user", "content": "What color is the sky?"}, {"role": "assistant", "content": "It is green."}]
WEATHER_TOOL = {"name": "get_weather", "description": "Weather of a city", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}


def test_trl_dataset_types_are_detected():
    types = [
        ({"text": "The sky is blue."}, "text"),  # language modeling, standard
        ({"messages": SKY_CHOSEN}, "messages"),  # language modeling, conversational
        ({"prompt": "The sky is", "completion": " blue."}, "prompt_completion"),
        ({"prompt": SKY_CHOSEN[:1], "completion": SKY_CHOSEN[1:]}, "prompt_completion"),
        ({"prompt": "The sky is", "chosen": " blue.", "rejected": " green."}, "dpo"),  # explicit prompt
        ({"prompt": SKY_CHOSEN[:1], "chosen": SKY_CHOSEN[1:], "rejected": SKY_REJECTED[1:]}, "dpo"),
        ({"chosen": "The sky is blue.", "rejected": "The sky is green."}, "chosen_rejected"),  # implicit prompt
        ({"chosen": SKY_CHOSEN, "rejected": SKY_REJECTED}, "chosen_rejected"),
        ({"messages": SKY_CHOSEN, "tools": [{"type": "function", "function": WEATHER_TOOL}]}, "messages"),  # tool calling
    ]
    assert [detect_format([row]) for row, _ in types] == [fmt for _, fmt in types]


def test_implicit_prompt_is_the_common_start_as_trl_extract_prompt_finds_it():
    from trl.data_utils import extract_prompt

    (ex,) = normalize_row({"chosen": SKY_CHOSEN, "rejected": SKY_REJECTED}, "chosen_rejected")
    trl = extract_prompt({"chosen": SKY_CHOSEN, "rejected": SKY_REJECTED})
    assert ex == {"prompt": trl["prompt"], "chosen": trl["chosen"][0]["content"], "rejected": trl["rejected"][0]["content"]}
    for chosen, rejected in [("The sky is blue.", "The sky is green."), ("Paris is in France", "Paris is in Texas"), ("2+2=4", "2+2=5")]:
        (ex,) = normalize_row({"chosen": chosen, "rejected": rejected}, "chosen_rejected")
        trl = extract_prompt({"chosen": chosen, "rejected": rejected})
        assert (ex["prompt"], ex["chosen"], ex["rejected"]) == ([{"role": "user", "content": trl["prompt"]}], trl["chosen"], trl["rejected"])
    with pytest.raises(InvalidRow, match="share no prompt"):
        normalize_row({"chosen": "Yes.", "rejected": "No."}, "chosen_rejected")
    with pytest.raises(InvalidRow, match="should be one assistant turn"):
        normalize_row({"chosen": SKY_CHOSEN + SKY_CHOSEN, "rejected": SKY_REJECTED}, "chosen_rejected")
    with pytest.raises(InvalidRow, match="both be texts or both lists of turns"):
        normalize_row({"chosen": SKY_CHOSEN, "rejected": "It is green."}, "chosen_rejected")


def test_hh_is_told_from_plain_chosen_rejected_by_its_transcripts():
    assert detect_format([{"chosen": HH_CHOSEN, "rejected": HH_REJECTED}]) == "hh"
    assert detect_format([{"chosen": "Human: hi\n\nAssistant: a", "rejected": "Human: hi\n\nAssistant: b"}]) == "hh"
    assert detect_format([{"chosen": "I like humans.", "rejected": "I do not."}]) == "chosen_rejected"


def test_untrainable_trl_types_are_refused_in_one_line():
    with pytest.raises(DataError, match="prompt-only") as info:
        detect_format([{"prompt": "The sky is"}])
    assert "sftkit generate --input" in info.value.hint
    with pytest.raises(DataError, match="prompt-only"):
        detect_format([{"prompt": SKY_CHOSEN[:1]}])
    with pytest.raises(DataError, match="stepwise supervision") as info:
        detect_format([{"prompt": "Which is larger, 9.8 or 9.11?", "completions": ["11 > 8.", "So 9.11 is larger."], "labels": [True, False]}])
    assert "PRMTrainer" in info.value.hint and "\n" not in info.value.message


def test_content_part_lists_are_read_as_their_text_and_non_text_parts_drop_the_row():
    row = {
        "messages": [
            {"role": "user", "content": [{"type": "text", "text": "Describe"}, {"type": "text", "text": "the sky."}]},
            {"role": "assistant", "content": [{"type": "text", "text": "Blue."}]},
        ]
    }
    (ex,) = normalize_row(row, "messages")
    assert ex["messages"] == [{"role": "user", "content": "Describe\nthe sky."}, {"role": "assistant", "content": "Blue."}]
    image = {"messages": [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Who is this?"}]}, {"role": "assistant", "content": "Kane."}]}
    with pytest.raises(DroppedRow) as info:
        normalize_row(image, "messages")
    assert info.value.reason == "non_text" and "'image' part" in info.value.message
    llamafactory = {"messages": [{"role": "user", "content": "<image>Who is this?"}, {"role": "assistant", "content": "Kane."}], "images": ["1.jpg"]}
    with pytest.raises(DroppedRow, match="non_text") as info:
        normalize_row(llamafactory, "messages")
    assert info.value.message == "column 'images' holds 1 item(s)"
    assert normalize_row({**llamafactory, "images": []}, "messages")[0]["messages"][0]["content"] == "<image>Who is this?"
    with pytest.raises(InvalidRow, match="content parts should be objects with a 'type'"):
        normalize_row({"messages": [{"role": "user", "content": ["plain"]}, {"role": "assistant", "content": "a"}]}, "messages")


def test_openai_tool_calls_and_sharegpt_function_calls_become_the_same_messages():
    call = {"name": "get_weather", "arguments": {"city": "Paris"}}
    openai = {
        "messages": [
            {"role": "user", "content": "Weather in Paris?"},
            {"role": "assistant", "content": None, "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}]},
            {"role": "tool", "tool_call_id": "c1", "name": "get_weather", "content": '{"temp": 21}'},
            {"role": "assistant", "content": "21 degrees."},
        ],
        "tools": [{"type": "function", "function": WEATHER_TOOL}],
    }
    sharegpt = {
        "conversations": [
            {"from": "human", "value": "Weather in Paris?"},
            {"from": "function_call", "value": json.dumps(call)},
            {"from": "observation", "value": '{"temp": 21}'},
            {"from": "gpt", "value": "21 degrees."},
        ],
        "tools": json.dumps([WEATHER_TOOL]),  # LLaMA-Factory: bare function schemas, as JSON text
    }
    (a,) = normalize_row(openai, "messages")
    (b,) = normalize_row(sharegpt, "sharegpt")
    assert a["tools"] == b["tools"] == [{"type": "function", "function": WEATHER_TOOL}]
    assert a["messages"][1] == {"role": "assistant", "content": "", "tool_calls": [{"type": "function", "function": call, "id": "c1"}]}
    assert b["messages"][1] == {"role": "assistant", "content": "", "tool_calls": [{"type": "function", "function": call}]}
    assert a["messages"][2] == {"role": "tool", "content": '{"temp": 21}', "tool_call_id": "c1", "name": "get_weather"}
    assert b["messages"][2] == {"role": "tool", "content": '{"temp": 21}'}
    assert check_example(a) is None and check_example(b) is None  # a turn that only calls a tool is not empty
    parallel = {"conversations": [{"from": "human", "value": "x"}, {"from": "function_call", "value": json.dumps([call, call])}]}
    assert len(normalize_row(parallel, "sharegpt")[0]["messages"][1]["tool_calls"]) == 2
    broken = {"messages": [{"role": "user", "content": "x"}, {"role": "assistant", "tool_calls": [{"function": {"name": "f", "arguments": "{oops"}}]}]}
    with pytest.raises(InvalidRow, match="arguments of tool call 'f' are not JSON"):
        normalize_row(broken, "messages")
    with pytest.raises(InvalidRow, match="tools' should be a list of tool schemas"):
        normalize_row({**openai, "tools": "not json"}, "messages")
    with pytest.raises(InvalidRow, match="'tools', which are used with conversations"):
        normalize_row({"prompt": "p", "completion": "c", "tools": [WEATHER_TOOL]}, "prompt_completion")


def test_alpaca_history_and_system_columns_are_used():
    row = {"instruction": "And 3+3?", "input": "", "output": "6", "system": "Be brief.", "history": [["2+2?", "4"]]}
    (ex,) = normalize_row(row, "alpaca")
    assert ex["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "2+2?"},
        {"role": "assistant", "content": "4"},
        {"role": "user", "content": "And 3+3?"},
        {"role": "assistant", "content": "6"},
    ]
    with pytest.raises(InvalidRow, match="'history' entry should be"):
        normalize_row({**row, "history": [["only one"]]}, "alpaca")


def test_detection_says_what_it_chose_and_why():
    from sftkit.data.formats import explain_format

    plain = explain_format([{"instruction": "i", "output": "o"}] * 3)
    assert (plain.format, plain.reason) == ("alpaca", "columns instruction, output in 3 of 3 rows looked at")
    both = explain_format([{"prompt": "p", "completion": "c", "text": "t"}])
    assert both.format == "prompt_completion"
    assert "also fit text (columns text)" in both.reason and "data.format" in both.reason
    mixed = explain_format([{"instruction": "i", "output": "o"}] * 2 + [{"question": "q", "answer": "a"}])
    assert mixed.format == "alpaca" and "in 2 of 3 rows" in mixed.reason and "qa (1 rows)" in mixed.reason


def test_multiple_choice_answers_that_are_only_labels_are_refused():
    from sftkit.data.formats import explain_format

    multiple_choice = [
        {"question": "ما عاصمة فرنسا؟", "choices": ["برلين", "باريس", "روما", "مدريد"], "answer": 1},
        {"question": "ما عاصمة فرنسا؟", "choices": ["برلين", "باريس", "روما", "مدريد"], "answer": "ب"},
        {"question": "ما عاصمة فرنسا؟", "option_a": "برلين", "option_b": "باريس", "option_c": "روما", "answer": "B"},
        {"question": "Capital of France?", "choices": {"text": ["Berlin", "Paris"], "label": ["A", "B"]}, "answer": "(B)"},
        {"instruction": "Capital of France?", "A": "Berlin", "B": "Paris", "C": "Rome", "output": "b"},
    ]
    for row in multiple_choice:
        with pytest.raises(DataError, match="look like multiple choice") as info:
            explain_format([row, row], "sft")
        assert "data.format=" in info.value.hint and "formatting_func" in info.value.hint
        assert detect_format([row]) in ("qa", "alpaca")  # reading rows to evaluate or prompt with is not training on them
    # answers that are text, or short answers with nothing they could be the label of, are not multiple choice
    assert explain_format([{"question": "2+2?", "answer": "4"}]).format == "qa"
    assert explain_format([{"question": "Capital?", "choices": ["Berlin", "Paris"], "answer": "Paris"}]).format == "qa"
    assert explain_format([{"question": "Which letter?", "answer": "B", "explanation": "B comes after A"}]).format == "qa"
