"""`sftkit export` on real tiny runs: a merged LoRA that loads without peft and matches the adapter, atomic writes, the Hub."""

from __future__ import annotations

import json
import sys

import pytest

from sftkit import tiny

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("one_torch_thread")]

PROMPTS = [r["instruction"] for r in tiny.sft_rows(4)] + ["Hello there, how are you?"]


@pytest.fixture(autouse=True)
def _wide_console(monkeypatch):
    from sftkit.console import console

    monkeypatch.setattr(console, "width", 1000)


@pytest.fixture(scope="module")
def lora_export(lora_run, tmp_path_factory):
    """`sftkit export <lora run> --output DIR --json`, once: (DIR, the JSON report)."""
    from typer.testing import CliRunner

    from sftkit.cli import app

    out = tmp_path_factory.mktemp("export") / "merged"
    result = CliRunner().invoke(app, ["export", str(lora_run), "--output", str(out), "--json"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return out, json.loads(result.stdout)


def _siblings(path):
    return sorted(p.name for p in path.parent.iterdir() if p.name.startswith(f".{path.name}"))


def test_export_loads_without_peft_and_matches_the_adapter(lora_run, lora_export):
    import torch
    from transformers import AutoModelForCausalLM

    from sftkit.generation import load

    out, report = lora_export
    assert report["merged"] is True and report["dtype"] == "float32"
    assert report["max_abs_diff"] <= 1e-4
    assert not (out / "adapter_config.json").exists()
    merged = AutoModelForCausalLM.from_pretrained(str(out), dtype=torch.float32).eval()
    assert type(merged).__name__ == "LlamaForCausalLM" and not hasattr(merged, "peft_config")
    from peft import PeftModel

    adapter = load(str(lora_run))
    assert isinstance(adapter.model, PeftModel)
    with torch.inference_mode():
        for prompt in PROMPTS:
            ids = adapter.tokenizer(adapter.render(prompt), return_tensors="pt", add_special_tokens=False)["input_ids"]
            diff = (adapter.model(input_ids=ids).logits - merged(input_ids=ids).logits).abs().max().item()
            assert diff <= 1e-4, (prompt, diff)


def test_export_folder_holds_tokenizer_template_generation_config_and_card(lora_export):
    out, report = lora_export
    for name in ("config.json", "model.safetensors", "tokenizer.json", "chat_template.jinja", "generation_config.json", "README.md", "sft_metadata.json"):
        assert (out / name).is_file(), name
    assert sorted(report["files"]) == sorted(p.name for p in out.iterdir())
    meta = json.loads((out / "sft_metadata.json").read_text())
    assert meta["method"] == "lora" and meta["export"]["merged_lora"] is True
    card = (out / "README.md").read_text()
    assert card.startswith("---\n") and "\nlibrary_name: transformers\n" in card and "| method | lora |" in card and "merged" in card
    assert json.loads((out / "config.json").read_text())["dtype"] == "float32"
    assert _siblings(out) == []


def test_generation_from_the_export_equals_generation_from_the_run(lora_run, lora_export, cli):
    stdin = "".join(p + "\n" for p in PROMPTS)
    from_run = cli("generate", str(lora_run), "--max-new-tokens", "10", input=stdin)
    from_export = cli("generate", str(lora_export[0]), "--max-new-tokens", "10", input=stdin)
    assert from_run.exit_code == 0 and from_export.exit_code == 0, from_export.output
    assert len(from_run.stdout.splitlines()) == len(PROMPTS)
    assert from_export.stdout == from_run.stdout


def test_existing_output_is_refused_and_left_alone(lora_run, cli, tmp_path):
    out = tmp_path / "taken"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    result = cli("export", str(lora_run), "--output", str(out))
    assert result.exit_code == 1 and "exists and is not empty" in result.stderr and "--overwrite" in result.stderr
    assert [p.name for p in out.iterdir()] == ["keep.txt"]
    assert _siblings(out) == []


def test_a_failed_check_leaves_nothing_behind(lora_run, cli, tmp_path):
    out = tmp_path / "strict"
    result = cli("export", str(lora_run), "--output", str(out), "--tolerance", "0")  # merging is never bit-exact
    assert result.exit_code == 1 and "logits differ" in result.stderr, result.stderr
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_bad_shard_size_is_a_usage_error(lora_run, cli, tmp_path):
    result = cli("export", str(lora_run), "--output", str(tmp_path / "x"), "--max-shard-size", "huge")
    assert result.exit_code == 2 and "--max-shard-size" in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_small_shards(lora_run, cli, tmp_path):
    out = tmp_path / "sharded"
    result = cli("export", str(lora_run), "--output", str(out), "--max-shard-size", "1MB")
    assert result.exit_code == 0, result.output
    assert len(list(out.glob("model-*.safetensors"))) > 1 and (out / "model.safetensors.index.json").is_file()


def test_overwrite_replaces_and_full_runs_export_in_bfloat16(tiny_run, cli, tmp_path):
    out = tmp_path / "full"
    out.mkdir()
    (out / "old.txt").write_text("old")
    result = cli("export", str(tiny_run), "--output", str(out), "--dtype", "bfloat16", "--overwrite", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["merged"] is False and report["dtype"] == "bfloat16" and report["tolerance"] is None
    assert 0 <= report["max_abs_diff"] < 1.0
    assert not (out / "old.txt").exists() and json.loads((out / "config.json").read_text())["dtype"] == "bfloat16"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["full"]


def test_push_to_hub_offline_fails_fast_and_writes_nothing(lora_run, sftkit_proc, tmp_path):
    out = tmp_path / "pushed"
    proc = sftkit_proc("export", str(lora_run), "--output", str(out), "--push-to-hub", "someone/tiny", env={"HF_HUB_OFFLINE": "1"}, timeout=120)
    assert proc.returncode == 1 and "not reachable" in proc.stderr and "Traceback" not in proc.stderr
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_push_to_hub_uploads_in_one_private_commit(lora_run, cli, tmp_path, monkeypatch):
    """The Hub cannot be reached from the tests: only its two calls are replaced, the export itself is real."""
    import huggingface_hub

    from sftkit import hub

    calls = []
    monkeypatch.setattr(hub, "hub_reachable", lambda timeout=3.0: True)
    monkeypatch.setattr(huggingface_hub, "get_token", lambda: "hf_test")
    monkeypatch.setattr(huggingface_hub, "create_repo", lambda repo_id, **kw: calls.append(("create_repo", repo_id, kw)) or huggingface_hub.RepoUrl(f"https://huggingface.co/{repo_id}"))
    monkeypatch.setattr(huggingface_hub, "upload_folder", lambda **kw: calls.append(("upload_folder", kw["repo_id"], kw)))
    out = tmp_path / "pushed"
    result = cli("export", str(lora_run), "--output", str(out), "--push-to-hub", "someone/tiny")
    assert result.exit_code == 0, result.output
    assert [c[0] for c in calls] == ["create_repo", "upload_folder"]
    assert calls[0][2]["private"] is True
    assert calls[1][2]["folder_path"] == str(out) and calls[1][1] == "someone/tiny"
    assert "uploaded to https://huggingface.co/someone/tiny (private)" in result.stderr
    calls.clear()
    assert cli("export", str(lora_run), "--output", str(tmp_path / "public"), "--push-to-hub", "someone/tiny", "--public").exit_code == 0
    assert calls[0][2]["private"] is False


def test_not_logged_in_is_one_clear_line(lora_run, cli, tmp_path, monkeypatch):
    import huggingface_hub

    from sftkit import hub

    monkeypatch.setattr(hub, "hub_reachable", lambda timeout=3.0: True)
    monkeypatch.setattr(huggingface_hub, "get_token", lambda: None)
    result = cli("export", str(lora_run), "--output", str(tmp_path / "x"), "--push-to-hub", "someone/tiny")
    assert result.exit_code == 1 and "not logged in" in result.stderr and "hf auth login" in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_cli_import_stays_light():
    import subprocess

    code = "import sys, sftkit.cli.eval, sftkit.cli.generate, sftkit.cli.export; assert 'torch' not in sys.modules; print('ok')"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip() == "ok"
