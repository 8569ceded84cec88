"""What users already have comes in: TRL's dataset types, content parts, tool calling, .txt files, LLaMA-Factory's
dataset_info.json, multimodal rows and multiple-choice files, prepared with real tokenizers and their loss masks decoded."""

from __future__ import annotations

import json
import random

import pytest
from conftest import shared_path
from data_fixtures import (  # noqa: F401 - fixtures
    ALPACA,
    DPO_DEMO,
    XQUAD,
    assert_accounting,
    make_cfg,
    qwen,
    smollm2,
    trained_runs,
    trained_text,
    write_jsonl,
)

from sftkit.data.plan import make_plan
from sftkit.data.prepare import prepare_data
from sftkit.errors import DataError

LONG = "model.max_seq_length=2048"
DPO_LENGTHS = ("model.max_seq_length=1024", "dpo.max_prompt_length=512", "dpo.max_length=1024")
SKY = [("What color is the sky?", "It is blue.", "It is green."), ("Where is Paris?", "In France.", "In Texas.")]
WEATHER = {
    "name": "get_weather",
    "description": "The weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}


def conversation(question: str, answer: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": question}, {"role": "assistant", "content": answer}]


def test_trl_language_modeling_and_prompt_completion_types(tmp_path, smollm2):
    files = {
        "text": ([{"text": "The sky is blue."}, {"text": "Paris is in France."}], ["The sky is blue.", "Paris is in France."]),
        "messages": ([{"messages": conversation(q, c)} for q, c, _ in SKY], [c for _, c, _ in SKY]),
        "prompt_completion": ([{"prompt": q, "completion": c} for q, c, _ in SKY], [c for _, c, _ in SKY]),
        "conversational_prompt_completion": (
            [{"prompt": conversation(q, c)[:1], "completion": conversation(q, c)[1:]} for q, c, _ in SKY],
            [c for _, c, _ in SKY],
        ),
        "content_parts": (
            [
                {
                    "messages": [
                        {"role": "user", "content": [{"type": "text", "text": q}]},
                        {"role": "assistant", "content": [{"type": "text", "text": c}]},
                    ]
                }
                for q, c, _ in SKY
            ],
            [c for _, c, _ in SKY],
        ),
    }
    formats = {"text": "text", "messages": "messages", "content_parts": "messages"}
    for name, (rows, answers) in files.items():
        p = prepare_data(make_cfg(dataset=str(write_jsonl(tmp_path / f"{name}.jsonl", rows))), tokenizer=smollm2, output=tmp_path / name)
        assert p.manifest["format"] == formats.get(name, "prompt_completion"), name
        assert p.manifest["rows_kept"] == len(rows) and p.manifest["format_reason"].startswith("columns ")
        assert [trained_text(smollm2, row) for row in p.train] == [a + "<|im_end|>" for a in answers], name
    parts = json.loads(p.train[0]["messages"])
    assert parts[0] == {"role": "user", "content": SKY[0][0]}


def test_trl_preference_types_explicit_and_implicit_prompt(tmp_path, smollm2):
    files = {
        "explicit": ([{"prompt": q, "chosen": c, "rejected": r} for q, c, r in SKY], "dpo"),
        "explicit_conversational": (
            [{"prompt": conversation(q, c)[:1], "chosen": conversation(q, c)[1:], "rejected": conversation(q, r)[1:]} for q, c, r in SKY],
            "dpo",
        ),
        "implicit_conversational": ([{"chosen": conversation(q, c), "rejected": conversation(q, r)} for q, c, r in SKY], "chosen_rejected"),
    }
    for name, (rows, fmt) in files.items():
        p = prepare_data(
            make_cfg(*DPO_LENGTHS, trainer_type="dpo", dataset=str(write_jsonl(tmp_path / f"{name}.jsonl", rows))),
            tokenizer=smollm2,
            output=tmp_path / name,
        )
        assert (p.manifest["format"], p.manifest["rows_kept"]) == (fmt, 2), name
        for row, (q, c, r) in zip(p.train, SKY):
            assert smollm2.decode(row["prompt_ids"]).endswith(f"<|im_start|>user\n{q}<|im_end|>\n<|im_start|>assistant\n"), name
            assert (smollm2.decode(row["chosen_ids"]), smollm2.decode(row["rejected_ids"])) == (c + "<|im_end|>", r + "<|im_end|>")
    # TRL's standard implicit type: the prompt is the texts' common start, the answers keep the space before them
    rows = [
        {"chosen": "The sky is blue.", "rejected": "The sky is green."},
        {"chosen": "Paris is in France.", "rejected": "Paris is in Texas."},
    ]
    p = prepare_data(
        make_cfg(*DPO_LENGTHS, trainer_type="dpo", dataset=str(write_jsonl(tmp_path / "implicit.jsonl", rows))),
        tokenizer=smollm2,
        output=tmp_path / "implicit",
    )
    assert p.manifest["format"] == "chosen_rejected" and "the prompt is the start chosen and rejected share" in p.manifest["format_reason"]
    assert [smollm2.decode(r["prompt_ids"]).rsplit("<|im_start|>user\n", 1)[1] for r in p.train] == [
        "The sky is<|im_end|>\n<|im_start|>assistant\n",
        "Paris is in<|im_end|>\n<|im_start|>assistant\n",
    ]
    assert [smollm2.decode(r["chosen_ids"]) for r in p.train] == [" blue.<|im_end|>", " France.<|im_end|>"]
    assert [smollm2.decode(r["rejected_ids"]) for r in p.train] == [" green.<|im_end|>", " Texas.<|im_end|>"]


def tool_rows() -> list[dict]:
    """The same two tool-calling conversations in the OpenAI shape (tool_calls, tool messages, a tools column)."""
    rows = []
    for city, temp in (("Paris", 21), ("Oslo", 4)):
        rows.append(
            {
                "messages": [
                    {"role": "system", "content": "You report the weather."},
                    {"role": "user", "content": f"How warm is it in {city}?"},
                    {
                        "role": "assistant",
                        "content": "",
                        "tool_calls": [
                            {
                                "id": "call_1",
                                "type": "function",
                                "function": {"name": "get_weather", "arguments": json.dumps({"city": city})},
                            }
                        ],
                    },
                    {"role": "tool", "tool_call_id": "call_1", "name": "get_weather", "content": json.dumps({"temp": temp})},
                    {"role": "assistant", "content": f"It is {temp} degrees in {city}."},
                ],
                "tools": [{"type": "function", "function": WEATHER}],
            }
        )
    return rows


def sharegpt_tool_rows() -> list[dict]:
    """The same conversations as LLaMA-Factory stores them: function_call / observation turns, tools as JSON text."""
    rows = []
    for row in tool_rows():
        system, user, call, result, answer = row["messages"]
        function = call["tool_calls"][0]["function"]
        rows.append(
            {
                "conversations": [
                    {"from": "human", "value": user["content"]},
                    {
                        "from": "function_call",
                        "value": json.dumps({"name": function["name"], "arguments": json.loads(function["arguments"])}),
                    },
                    {"from": "observation", "value": result["content"]},
                    {"from": "gpt", "value": answer["content"]},
                ],
                "system": system["content"],
                "tools": json.dumps([WEATHER]),
            }
        )
    return rows


def expected_tool_runs(city: str, temp: int) -> list[str]:
    """What Qwen2.5's chat template renders for the assistant's two turns (the call, then the answer)."""
    call = f'<tool_call>\n{{"name": "get_weather", "arguments": {{"city": "{city}"}}}}\n</tool_call><|im_end|>'
    return [call, f"It is {temp} degrees in {city}.<|im_end|>"]


def test_tool_calling_renders_through_the_chat_template_and_trains_only_the_assistant(tmp_path, qwen):
    for name, rows, fmt in (("openai", tool_rows(), "messages"), ("sharegpt", sharegpt_tool_rows(), "sharegpt")):
        p = prepare_data(make_cfg(LONG, dataset=str(write_jsonl(tmp_path / f"{name}.jsonl", rows))), tokenizer=qwen, output=tmp_path / name)
        assert (p.manifest["format"], p.manifest["rows_kept"]) == (fmt, 2)
        for row, (city, temp) in zip(p.train, (("Paris", 21), ("Oslo", 4))):
            assert trained_runs(qwen, row) == expected_tool_runs(city, temp)  # the call and the answer; no tool output
            text = qwen.decode(row["input_ids"])
            assert '<tools>\n{"type": "function", "function": {"name": "get_weather"' in text  # tools= reached the template
            assert f'<tool_response>\n{{"temp": {temp}}}\n</tool_response>' in text
        if name == "openai":
            openai_ids = p.train["input_ids"]
        else:
            assert p.train["input_ids"] == openai_ids  # both shapes give the same tokens


def test_a_template_that_cannot_render_tools_is_one_clear_error(tmp_path, smollm2, qwen):
    data = write_jsonl(tmp_path / "tools.jsonl", tool_rows())
    with pytest.raises(
        DataError,
        match=r"tools\.jsonl:1: the rows use tool definitions, tool calls, tool results, but the chat template ignores the tool definitions",
    ) as info:
        prepare_data(make_cfg(LONG, dataset=str(data)), tokenizer=smollm2, output=tmp_path / "s")
    assert "model.chat_template" in info.value.hint
    calls_only = write_jsonl(tmp_path / "calls.jsonl", [{k: v for k, v in r.items() if k != "tools"} for r in tool_rows()])
    with pytest.raises(DataError, match="the chat template leaves the assistant's tool calls out"):
        prepare_data(make_cfg(LONG, dataset=str(calls_only)), tokenizer=smollm2, output=tmp_path / "c")
    with pytest.raises(DataError, match="data.template=alpaca is plain text, with no place for them"):
        prepare_data(make_cfg(LONG, dataset=str(data), template="alpaca"), tokenizer=qwen, output=tmp_path / "a")
    assert not any((tmp_path / name).exists() for name in ("s", "c", "a"))


def test_txt_files_one_document_per_line_or_per_paragraph(tmp_path, smollm2):
    path = tmp_path / "corpus.txt"
    path.write_text("First line of one.\nSecond line of one.\n\n\nOnly line of two.\r\n   \nThree, a.\nThree, b.", encoding="utf-8")
    lines = prepare_data(make_cfg(dataset=str(path)), tokenizer=smollm2, output=tmp_path / "l")
    assert (lines.manifest["format"], lines.manifest["rows_kept"], lines.manifest["source"]["text_split"]) == ("text", 5, "line")
    assert [trained_text(smollm2, r) for r in lines.train] == [
        f"{t}<|im_end|>" for t in ("First line of one.", "Second line of one.", "Only line of two.", "Three, a.", "Three, b.")
    ]
    paragraphs = prepare_data(make_cfg(dataset=str(path), text_split="paragraph"), tokenizer=smollm2, output=tmp_path / "l")
    assert not paragraphs.reused and paragraphs.changed == ["source"]
    assert [trained_text(smollm2, r) for r in paragraphs.train] == [
        "First line of one.\nSecond line of one.<|im_end|>",
        "Only line of two.<|im_end|>",
        "Three, a.\nThree, b.<|im_end|>",
    ]
    with pytest.raises(DataError, match="format 'text' has no preference pairs"):
        prepare_data(make_cfg(trainer_type="dpo", dataset=str(path)), tokenizer=smollm2, output=tmp_path / "d")


def registry(tmp_path, shared: bool = True) -> str:
    """A LLaMA-Factory data folder: dataset_info.json with entries as its data/README.md documents them (``shared``:
    with LLaMA-Factory's own demo files from ../shared)."""
    folder = tmp_path / "data"
    folder.mkdir()
    for name in ("alpaca_en_demo.json", "dpo_en_demo.json") if shared else ():
        (folder / name).symlink_to(shared_path("data", "llamafactory", name))
    (folder / "glaive_toolcall_demo.json").write_text(json.dumps(sharegpt_tool_rows()), encoding="utf-8")
    (folder / "renamed.json").write_text(
        json.dumps(
            [
                {"q": "And 3+3?", "ctx": "", "a": "6", "sys": "Be brief.", "hist": [["2+2?", "4"]]},
                {"q": "Spell", "ctx": "cat", "a": "c-a-t", "sys": "", "hist": []},
            ]
        ),
        encoding="utf-8",
    )
    (folder / "chat.jsonl").write_text(
        "".join(
            json.dumps(r) + "\n"
            for r in [
                {"dialog": [{"speaker": "client", "text": "Hi"}, {"speaker": "agent", "text": "Hello!"}]},
                {"dialog": [{"speaker": "client", "text": "<image>Who?"}, {"speaker": "agent", "text": "Kane."}], "pictures": ["1.jpg"]},
                {"dialog": [{"speaker": "client", "text": "Bye"}, {"speaker": "agent", "text": "Goodbye!"}]},
            ]
        ),
        encoding="utf-8",
    )
    (folder / "notes.json").write_text(json.dumps([{"document": "Some pre-training text."}]), encoding="utf-8")
    info = {
        "alpaca_en_demo": {"file_name": "alpaca_en_demo.json"},
        "dpo_en_demo": {
            "file_name": "dpo_en_demo.json",
            "formatting": "sharegpt",
            "ranking": True,
            "columns": {"messages": "conversations", "chosen": "chosen", "rejected": "rejected"},
        },
        "glaive_toolcall_demo": {
            "file_name": "glaive_toolcall_demo.json",
            "formatting": "sharegpt",
            "columns": {"messages": "conversations", "system": "system", "tools": "tools"},
        },
        "renamed_alpaca": {
            "file_name": "renamed.json",
            "columns": {"prompt": "q", "query": "ctx", "response": "a", "system": "sys", "history": "hist"},
        },
        "chat_with_tags": {
            "file_name": "chat.jsonl",
            "formatting": "sharegpt",
            "columns": {"messages": "dialog", "images": "pictures"},
            "tags": {"role_tag": "speaker", "content_tag": "text", "user_tag": "client", "assistant_tag": "agent"},
        },
        "pretraining": {"file_name": "notes.json", "columns": {"prompt": "document"}},
        "sampled": {"file_name": "alpaca_en_demo.json", "num_samples": 100},
        "alpaca_en": {"hf_hub_url": "llamafactory/alpaca_en", "ms_hub_url": "llamafactory/alpaca_en"},
    }
    (folder / "dataset_info.json").write_text(json.dumps(info, indent=2), encoding="utf-8")
    return str(folder / "dataset_info.json")


def test_llamafactory_dataset_info_entries(tmp_path, smollm2, qwen):
    info = registry(tmp_path)
    alpaca = prepare_data(make_cfg(LONG, dataset=f"{info}#alpaca_en_demo"), tokenizer=smollm2, output=tmp_path / "a")
    assert (alpaca.manifest["format"], alpaca.manifest["rows_in"], alpaca.manifest["rows_kept"]) == ("alpaca", 999, 985)
    assert alpaca.manifest["source"]["registry"]["entry"] == "alpaca_en_demo" and alpaca.manifest["source"]["sha256"]
    first = json.loads(shared_path(*ALPACA).read_text())[0]
    assert trained_text(smollm2, alpaca.train[0]) == first["output"] + "<|im_end|>"

    dpo = prepare_data(
        make_cfg(*DPO_LENGTHS, trainer_type="dpo", dataset=f"{info}#dpo_en_demo", max_rows=20), tokenizer=smollm2, output=tmp_path / "d"
    )
    assert (dpo.manifest["format"], dpo.manifest["rows_in"], dpo.manifest["rows_kept"]) == ("sharegpt_dpo", 300, 20)
    pair = json.loads(shared_path(*DPO_DEMO).read_text())[0]
    assert smollm2.decode(dpo.train[0]["chosen_ids"]) == pair["chosen"]["value"] + "<|im_end|>"

    tools = prepare_data(make_cfg(LONG, dataset=f"{info}#glaive_toolcall_demo"), tokenizer=qwen, output=tmp_path / "t")
    assert (tools.manifest["format"], tools.manifest["rows_kept"]) == ("sharegpt", 2)
    assert trained_runs(qwen, tools.train[0]) == expected_tool_runs("Paris", 21)
    assert qwen.decode(tools.train[0]["input_ids"]).startswith("<|im_start|>system\nYou report the weather.\n\n# Tools")

    renamed = prepare_data(make_cfg(LONG, dataset=f"{info}#renamed_alpaca"), tokenizer=smollm2, output=tmp_path / "r")
    assert renamed.manifest["format"] == "alpaca"
    assert json.loads(renamed.train[0]["messages"]) == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "2+2?"},
        {"role": "assistant", "content": "4"},
        {"role": "user", "content": "And 3+3?"},
        {"role": "assistant", "content": "6"},
    ]
    assert trained_runs(smollm2, renamed.train[0]) == ["4<|im_end|>", "6<|im_end|>"]  # history answers are trained too
    assert json.loads(renamed.train[1]["messages"])[0] == {"role": "user", "content": "Spell", "input": "cat"}

    chat = prepare_data(make_cfg(LONG, dataset=f"{info}#chat_with_tags"), tokenizer=smollm2, output=tmp_path / "c")
    m = chat.manifest
    assert (m["format"], m["rows_in"], m["rows_kept"], m["dropped"]) == ("sharegpt", 3, 2, {"non_text": 1})
    assert_accounting(m)
    assert [trained_text(smollm2, r) for r in chat.train] == ["Hello!<|im_end|>", "Goodbye!<|im_end|>"]
    (dropped,) = [json.loads(line) for line in (tmp_path / "c" / "dropped.jsonl").read_text().splitlines()]
    assert dropped["where"].endswith("chat.jsonl:2") and dropped["message"] == "column 'images' holds 1 item(s)"

    text = prepare_data(make_cfg(dataset=f"{info}#pretraining"), tokenizer=smollm2, output=tmp_path / "x")
    assert text.manifest["format"] == "text" and trained_text(smollm2, text.train[0]) == "Some pre-training text.<|im_end|>"


def test_llamafactory_registry_mistakes_are_one_line(tmp_path):
    info = registry(tmp_path, shared=False)
    cases = [
        (f"{info}#alpaca_en_dem", "no entry 'alpaca_en_dem'", "did you mean 'alpaca_en_demo'?"),
        (f"{info}#sampled", "entry 'sampled': num_samples is not supported", "remove num_samples"),
        (str(tmp_path / "data"), "a LLaMA-Factory data folder", "dataset_info.json#NAME"),
        (f"{tmp_path}/missing/dataset_info.json#x", "registry file not found", "dataset_info.json#NAME"),
    ]
    for dataset, message, hint in cases:
        with pytest.raises(DataError) as info_:
            make_plan(make_cfg(dataset=dataset))
        assert message in info_.value.message and hint in info_.value.hint and "\n" not in info_.value.message
    hub = make_plan(make_cfg(dataset=f"{info}#alpaca_en")).train  # hf_hub_url wins over ms_hub_url, as in LLaMA-Factory
    assert (hub.kind, hub.name, hub.entry.name) == ("hub", "llamafactory/alpaca_en", "alpaca_en")


def test_multimodal_rows_are_counted_drops_never_silent(tmp_path, smollm2):
    rows = [
        {"messages": conversation("Hi", "Hello!")},
        {
            "messages": [
                {
                    "role": "user",
                    "content": [{"type": "image_url", "image_url": {"url": "x.png"}}, {"type": "text", "text": "What is it?"}],
                },
                {"role": "assistant", "content": "A cat."},
            ]
        },
        {"messages": conversation("<image>Who is this?", "Kane."), "images": ["mllm_demo_data/1.jpg"]},
        {"messages": conversation("Bye", "Goodbye!")},
    ]
    p = prepare_data(make_cfg(dataset=str(write_jsonl(tmp_path / "mm.jsonl", rows))), tokenizer=smollm2, output=tmp_path / "p")
    m = p.manifest
    assert (m["rows_in"], m["rows_kept"], m["dropped"]) == (4, 2, {"non_text": 2})
    assert_accounting(m)
    records = [json.loads(line) for line in (tmp_path / "p" / "dropped.jsonl").read_text().splitlines()]
    assert [(r["where"].rsplit(":", 1)[1], r["message"]) for r in records] == [
        ("2", "a user turn holds a 'image_url' part"),
        ("3", "column 'images' holds 1 item(s)"),
    ]
    assert [trained_text(smollm2, r) for r in p.train] == ["Hello!<|im_end|>", "Goodbye!<|im_end|>"]


def arabic_multiple_choice(n: int = 40) -> list[dict]:
    """Multiple-choice rows built from XQuAD-ar: each question with its answer and three other answers of its article."""
    article = json.loads(shared_path(*XQUAD).read_text(encoding="utf-8"))["data"][0]
    qas = [qa for p in article["paragraphs"] for qa in p["qas"]]
    rng = random.Random(0)
    rows = []
    for qa in qas[:n]:
        answer = qa["answers"][0]["text"]
        choices = [answer] + rng.sample([o["answers"][0]["text"] for o in qas if o["answers"][0]["text"] != answer], 3)
        rng.shuffle(choices)
        rows.append({"question": qa["question"], "choices": choices, "answer": choices.index(answer)})
    return rows


def test_arabic_multiple_choice_is_refused_not_trained_on_the_index(tmp_path, qwen):
    rows = arabic_multiple_choice()
    path = write_jsonl(tmp_path / "mc.jsonl", rows)
    with pytest.raises(DataError, match=r"mc\.jsonl:1: the rows look like multiple choice \(40 of 40 rows looked at\)") as info:
        prepare_data(make_cfg(LONG, dataset=str(path)), tokenizer=qwen, output=tmp_path / "p")
    assert f"'answer' is {rows[0]['answer']}" in info.value.message and "'choices'" in info.value.message
    assert "data.format=qa" in info.value.hint
    letters = write_jsonl(tmp_path / "letters.jsonl", [{**r, "answer": "أبجد"[r["answer"]]} for r in rows])
    with pytest.raises(DataError, match="look like multiple choice"):
        prepare_data(make_cfg(LONG, dataset=str(letters)), tokenizer=qwen, output=tmp_path / "p")
    forced = prepare_data(make_cfg(LONG, dataset=str(path), format="qa"), tokenizer=qwen, output=tmp_path / "p")
    assert forced.manifest["format_reason"] == "set by data.format"
    assert trained_text(qwen, forced.train[0]) == f"{rows[0]['answer']}<|im_end|>"  # what was asked for: the label
