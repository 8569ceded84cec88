"""Fixtures and helpers for the data-layer tests (imported by tests/unit/test_data_*.py and the prepare CLI tests).

Tokenizers are the real ones from ../shared (the test skips with a reason when it is absent) or the tiny
byte-level one sftkit builds itself.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from conftest import shared_path

SMOLLM2 = ("tokenizers", "smollm2")
QWEN = ("tokenizers", "qwen2.5")
ALPACA = ("data", "llamafactory", "alpaca_en_demo.json")
DPO_DEMO = ("data", "llamafactory", "dpo_en_demo.json")
HH = ("data", "hh-rlhf", "harmless-base-test.jsonl.gz")
SELF_INSTRUCT = ("data", "self-instruct", "user_oriented_instructions.jsonl")
XQUAD = ("data", "xquad", "xquad.ar.json")

_TOKENIZERS: dict[str, Any] = {}


def _load(path: str) -> Any:
    if path not in _TOKENIZERS:
        from sftkit.modeling import load_tokenizer

        _TOKENIZERS[path] = load_tokenizer(path)
    return _TOKENIZERS[path]


@pytest.fixture
def smollm2():
    """The real SmolLM2 tokenizer with its chat template (eos <|im_end|>)."""
    return _load(str(shared_path(*SMOLLM2)))


@pytest.fixture
def qwen():
    """The real Qwen2.5 tokenizer with the Qwen2.5-Instruct chat template."""
    return _load(str(shared_path(*QWEN)))


@pytest.fixture
def tiny_tok():
    """sftkit's tiny byte-level tokenizer (chat template ``<|begin|><|user|>..<|end|><|assistant|>..<|end|>``)."""
    if "tiny" not in _TOKENIZERS:
        from sftkit.tiny import build_tokenizer

        _TOKENIZERS["tiny"] = build_tokenizer()
    return _TOKENIZERS["tiny"]


@pytest.fixture
def plain_tok(tiny_tok):
    """The tiny tokenizer without a chat template (so ``auto`` falls back to chatml)."""
    import copy

    tok = copy.deepcopy(tiny_tok)
    tok.chat_template = None
    return tok


def make_cfg(*sets: str, trainer_type: str = "sft", **data: Any):
    """A RunConfig from the tiny preset with ``data.<key>=value`` overrides (validation off unless given)."""
    from sftkit.resolve import resolve_config

    items = [f"trainer_type={trainer_type}", "data.validation_split=null", *sets]
    for key, value in data.items():
        items.append(f"data.{key}={json.dumps(value) if not isinstance(value, str) else value}")
    return resolve_config(preset="tiny", sets=items).config


def write_jsonl(path: Path, rows: list[Any]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def trained_text(tokenizer: Any, row: dict[str, Any]) -> str:
    """Decode exactly the tokens a prepared SFT row trains on (labels != -100)."""
    return tokenizer.decode([t for t, label in zip(row["input_ids"], row["labels"]) if label != -100])


def trained_runs(tokenizer: Any, row: dict[str, Any]) -> list[str]:
    """Each contiguous run of trained tokens, decoded (one per assistant turn)."""
    runs: list[list[int]] = []
    previous = False
    for token, label in zip(row["input_ids"], row["labels"]):
        trained = label != -100
        if trained and not previous:
            runs.append([])
        if trained:
            runs[-1].append(token)
        previous = trained
    return [tokenizer.decode(r) for r in runs]


def assert_accounting(manifest: dict[str, Any]) -> None:
    """Nothing is lost silently: kept + dropped (every reason, invalid included) + capped by data.max_rows == rows in."""
    assert manifest["rows_kept"] + sum(manifest["dropped"].values()) + manifest["capped"] == manifest["rows_in"], manifest
