"""Model cards and run metadata without training: Hub metadata read back with huggingface_hub, the license lookup,
the row counts of the prepared splits."""

from __future__ import annotations

import time

import pytest
from data_fixtures import make_cfg, tiny_tok  # noqa: F401 - fixtures

from sftkit.card import export_card, metadata, model_card

BASE = "TestOrg/Base-135M"


def _cfg(*sets: str):
    from sftkit.resolve import resolve_config

    return resolve_config(preset="tiny", sets=list(sets)).config


def _meta(cfg, metrics=None, **extra):
    meta = metadata(cfg, None, metrics or {}, time.time(), 10)
    return {**meta, **extra}


def _load(text: str, tmp_path):
    from huggingface_hub import ModelCard

    path = tmp_path / "README.md"
    path.write_text(text, encoding="utf-8")
    return ModelCard.load(path)


@pytest.fixture
def hub_cache(tmp_path, monkeypatch):
    """A Hugging Face cache (the layout huggingface_hub downloads into) holding ``BASE``'s README.md; the Hub
    itself stays unreachable (HF_HUB_OFFLINE)."""
    import huggingface_hub.constants

    cache = tmp_path / "hub"
    repo = cache / f"models--{BASE.replace('/', '--')}"
    commit = "0123456789abcdef0123456789abcdef01234567"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    snapshot = repo / "snapshots" / commit
    snapshot.mkdir(parents=True)
    (snapshot / "README.md").write_text(
        "---\nlicense: apache-2.0\nlibrary_name: transformers\n---\n\n# Base\n"
    )
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(cache))
    return cache


def test_card_metadata_of_a_hub_base_and_dataset(hub_cache, tmp_path):
    cfg = _cfg(
        f"model.name={BASE}",
        "data.dataset=TestOrg/instructions",
        "lora.enabled=true",
        "tracking.experiment_name=my-tune",
    )
    meta = _meta(
        cfg,
        {
            "train_loss": 1.5,
            "eval_loss": 1.25,
            "eval_perplexity": 3.49,
            "eval_runtime": 0.5,
            "eval_samples_per_second": 900.0,
        },
    )
    card = _load(model_card(cfg, meta), tmp_path)
    data = card.data
    assert data.license == "apache-2.0"  # read from the base model's own card
    assert data.base_model == BASE and data.datasets == ["TestOrg/instructions"]
    assert data.library_name == "peft" and data.pipeline_tag == "text-generation"
    assert data.tags == ["sftkit", "trl", "sft", "lora", "peft"]
    assert data.model_name == "my-tune"
    results = {r.metric_type: r for r in data.eval_results}
    assert set(results) == {
        "loss",
        "perplexity",
    }  # timings describe the evaluation, not the model
    assert (
        results["loss"].metric_value == 1.25
        and results["loss"].dataset_type == "TestOrg/instructions"
    )
    assert results["loss"].task_type == "text-generation"
    assert "| eval_runtime |" not in card.text and "| eval_loss | 1.25 |" in card.text
    assert (
        "## Framework versions" in card.text
        and "- transformers: " in card.text
        and "- peft: " in card.text
    )


def test_configured_license_wins_and_unknown_is_other(hub_cache, tmp_path):
    cfg = _cfg(f"model.name={BASE}", "model.license=mit")
    assert _load(model_card(cfg, _meta(cfg)), tmp_path).data.license == "mit"
    builtin = _cfg()
    card = _load(model_card(builtin, _meta(builtin)), tmp_path)
    assert card.data.license == "other"
    assert (
        card.data.base_model is None and card.data.datasets is None
    )  # builtin:tiny is no Hub id
    assert card.data.eval_results is None  # no evaluation ran


def test_local_base_folder_gives_its_license_but_no_base_model(tmp_path):
    base = tmp_path / "my-base"
    base.mkdir()
    (base / "config.json").write_text('{"model_type": "llama"}')
    (base / "README.md").write_text("---\nlicense: cc-by-4.0\n---\n")
    cfg = _cfg(f"model.name={base}", f"data.dataset={tmp_path / 'rows.jsonl'}")
    card = _load(model_card(cfg, _meta(cfg)), tmp_path)
    assert (
        card.data.license == "cc-by-4.0"
        and card.data.base_model is None
        and card.data.datasets is None
    )
    (base / "README.md").unlink()
    (base / "config.json").write_text('{"model_type": "llama", "license": "llama3.2"}')
    assert _load(model_card(cfg, _meta(cfg)), tmp_path).data.license == "llama3.2"


def test_export_card_metadata(hub_cache, tmp_path):
    meta = {
        "trainer_type": "sft",
        "method": "lora",
        "model": BASE,
        "dataset": "a/b",
        "lora": {"r": 8, "alpha": 16, "dropout": 0.0},
        "metrics": {"eval_loss": 1.23456},
    }
    text = export_card(
        meta,
        {"merged_lora": True, "dtype": "bfloat16", "max_abs_logit_diff": 0.01},
        "me/merged",
    )
    card = _load(text, tmp_path)
    assert (
        card.data.base_model == BASE
        and card.data.datasets == ["a/b"]
        and card.data.license == "apache-2.0"
    )
    assert (
        card.data.tags == ["sftkit", "trl", "sft", "merged-lora"]
        and card.data.library_name == "transformers"
    )
    assert [(r.metric_type, r.metric_value) for r in card.data.eval_results] == [
        ("loss", 1.23456)
    ]
    assert 'path = "me/merged"' in text  # the snippet loads what it was pushed as


def test_metadata_rows_are_the_prepared_splits(tmp_path, tiny_tok):  # noqa: F811 - fixture
    from sftkit.data.prepare import prepare_data

    cfg = make_cfg("data.validation_fraction=0.1", dataset="builtin:tiny", max_rows=300)
    prepared = prepare_data(cfg, tokenizer=tiny_tok, output=tmp_path / "p")
    rows = metadata(cfg, prepared, {}, time.time(), 0)["rows"]
    assert rows == {
        "train": len(prepared.train),
        "validation": len(prepared.validation),
    }
    assert (
        rows["validation"] > 0
        and rows["train"] + rows["validation"] == prepared.manifest["rows_kept"]
    )
    no_validation = make_cfg(dataset="builtin:tiny", max_rows=50)
    prepared = prepare_data(no_validation, tokenizer=tiny_tok, output=tmp_path / "q")
    assert metadata(no_validation, prepared, {}, time.time(), 0)["rows"] == {
        "train": 50,
        "validation": None,
    }
