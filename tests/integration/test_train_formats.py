"""Training on data in the shapes users already have, through the real CLI on the tiny preset: a tool-calling file
(SFT, the assistant's tool calls trained, tool results not) and TRL's preference type with an implicit prompt (DPO)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

WORDS = ["cat", "door", "lamp", "tree", "sun", "book", "milk", "fish", "road", "bird", "king", "ship", "rock", "wind", "fire", "snow"]

#: a chat template for the tiny tokenizer that renders tools, tool calls and tool results (its own renders none)
TOOLS_TEMPLATE = (
    "{{ bos_token }}"
    "{% if tools %}<|system|>tools:{% for t in tools %} {{ t.function.name }}{% endfor %}<|end|>{% endif %}"
    "{% for m in messages %}"
    "{% if m.role == 'assistant' and m.tool_calls %}<|assistant|>"
    "{% for c in m.tool_calls %}call {{ c.function.name }} {{ c.function.arguments | tojson }}{% endfor %}<|end|>"
    "{% elif m.role == 'tool' %}<|user|>result {{ m.content }}<|end|>"
    "{% else %}{{ '<|' + m.role + '|>' + m.content + '<|end|>' }}{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)


def train(sftkit_proc, run: Path, *sets: str, trainer_type: str = "sft") -> dict:
    args = ["train", "--preset", "tiny", "--trainer-type", trainer_type, "--output-dir", str(run)]
    for s in ("data.validation_split=null", "train.save_steps=1000", "train.eval_steps=1000", "train.logging_steps=1", *sets):
        args += ["--set", s]
    proc = sftkit_proc(*args)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "done: model in" in proc.stderr
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    losses = [r["loss"] for r in records if "loss" in r]
    assert losses and all(math.isfinite(x) for x in losses)
    return json.loads((run / "prepared" / "manifest.json").read_text())


def test_tool_calling_file_trains_on_the_assistant_turns_and_its_tool_calls(tmp_path, sftkit_proc):
    from datasets import load_from_disk

    from sftkit.modeling import load_tokenizer

    rows = [
        {
            "messages": [
                {"role": "user", "content": word},
                {
                    "role": "assistant",
                    "tool_calls": [{"type": "function", "function": {"name": "upper", "arguments": json.dumps({"w": word})}}],
                },
                {"role": "tool", "name": "upper", "content": word.upper()},
                {"role": "assistant", "content": word.upper()},
            ],
            "tools": [
                {
                    "type": "function",
                    "function": {
                        "name": "upper",
                        "description": "upper-case",
                        "parameters": {"type": "object", "properties": {"w": {"type": "string"}}},
                    },
                }
            ],
        }
        for word in WORDS
    ]
    data = tmp_path / "tools.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    template = tmp_path / "tools.jinja"
    template.write_text(TOOLS_TEMPLATE, encoding="utf-8")
    run = tmp_path / "tools-run"
    manifest = train(
        sftkit_proc,
        run,
        f"data.dataset={data}",
        f"model.chat_template={template}",
        "model.max_seq_length=128",
        "train.max_iters=8",
        "train.batch_size=8",
    )
    assert (manifest["format"], manifest["rows_kept"], manifest["dropped"]) == ("messages", len(WORDS), {})
    tokenizer = load_tokenizer(str(run / "model"))
    assert tokenizer.chat_template == TOOLS_TEMPLATE  # the trained format travels with the model
    prepared = load_from_disk(str(run / "prepared" / "train"))
    for row, word in zip(prepared, WORDS):
        runs, current, previous = [], [], False
        for token, label in zip(row["input_ids"], row["labels"]):
            if label != -100:
                current.append(token)
            elif previous:
                runs.append(current)
                current = []
            previous = label != -100
        runs.append(current)
        assert [tokenizer.decode(r) for r in runs if r] == [f'call upper {{"w": "{word}"}}<|end|>', f"{word.upper()}<|end|>"]
        assert tokenizer.decode(row["input_ids"]).startswith(f"<|begin|><|system|>tools: upper<|end|><|user|>{word}<|end|>")


def test_implicit_prompt_preference_file_trains_dpo(tmp_path, sftkit_proc):
    rows = [
        {
            "chosen": [{"role": "user", "content": word}, {"role": "assistant", "content": word.upper()}],
            "rejected": [{"role": "user", "content": word}, {"role": "assistant", "content": word}],
        }
        for word in WORDS
    ]
    data = tmp_path / "prefs.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    run = tmp_path / "dpo-run"
    manifest = train(sftkit_proc, run, f"data.dataset={data}", "train.max_iters=6", "train.batch_size=8", trainer_type="dpo")
    assert (manifest["format"], manifest["rows_kept"], manifest["trainer_type"]) == ("chosen_rejected", len(WORDS), "dpo")
    assert "the prompt is the start chosen and rejected share" in manifest["format_reason"]
    from datasets import load_from_disk

    from sftkit.modeling import load_tokenizer

    tokenizer = load_tokenizer(str(run / "model"))
    prepared = load_from_disk(str(run / "prepared" / "train"))
    for row, word in zip(prepared, WORDS):
        assert tokenizer.decode(row["prompt_ids"]) == f"<|begin|><|user|>{word}<|end|><|assistant|>"
        assert (tokenizer.decode(row["chosen_ids"]), tokenizer.decode(row["rejected_ids"])) == (f"{word.upper()}<|end|>", f"{word}<|end|>")
    assert json.loads((run / "dpo_metadata.json").read_text())["trainer_type"] == "dpo"
