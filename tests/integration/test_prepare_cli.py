"""`sftkit prepare` through the real CLI: summaries, reuse, preview, and bad input as one clear line."""

from __future__ import annotations

import json

import pytest
from conftest import SHARED, shared_path
from data_fixtures import ALPACA, DPO_DEMO, SMOLLM2, assert_accounting, write_jsonl


@pytest.fixture
def prep(cli, tmp_path, monkeypatch):
    """Run `sftkit prepare --preset tiny --tokenizer <smollm2> --output <tmp> ARGS...` (on a wide console: no wrapping).

    Without ../shared the tiny preset's own tokenizer is used, so the bad-input tests still run in a user's clone.
    """
    from sftkit.console import console

    monkeypatch.setattr(console, "width", 1000)
    smollm2 = SHARED.joinpath(*SMOLLM2)
    tokenizer = ["--tokenizer", str(smollm2)] if smollm2.exists() else []

    def run(*args: str, output: str = "prepared"):
        return cli("prepare", "--preset", "tiny", *tokenizer, "--output", str(tmp_path / output), *args)

    return run


def one_error_line(result) -> str:
    """The error output: one red `error:` line (plus at most a hint line), no traceback."""
    lines = [line for line in result.stderr.splitlines() if line.strip() and not line.startswith("note:")]
    errors = [line for line in lines if line.startswith("error:")]
    assert len(errors) == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert all(line.startswith(("error:", "hint:")) for line in lines), result.stderr
    return errors[0]


def test_prepare_alpaca_json_summary_then_reuse(prep):
    data = str(shared_path(*ALPACA))
    result = prep("--data", data, "--set", "model.max_seq_length=1024", "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["format"] == "alpaca" and summary["reused"] is False
    assert (summary["rows_in"], summary["rows_kept"], summary["dropped"]) == (999, 985, {"duplicate": 14})
    assert_accounting(summary)
    assert "prepared data" in result.stderr and "985" in result.stderr  # the summary table is for people, on stderr
    again = prep("--data", data, "--set", "model.max_seq_length=1024", "--json")
    assert json.loads(again.stdout)["reused"] is True and "reusing" in again.stderr


def test_changed_settings_prepare_again(prep, tmp_path):
    qwen = str(shared_path("tokenizers", "qwen2.5"))
    data = str(write_jsonl(tmp_path / "d.jsonl", [{"instruction": f"q{i}", "output": f"a{i}"} for i in range(20)]))
    assert json.loads(prep("--data", data, "--json").stdout)["reused"] is False
    assert json.loads(prep("--data", data, "--json").stdout)["reused"] is True
    changed = prep("--data", data, "--set", "model.max_seq_length=512", "--json")
    assert json.loads(changed.stdout)["reused"] is False and "max_seq_length" in changed.stderr
    other_template = prep("--data", data, "--set", "model.max_seq_length=512", "--template", "alpaca", "--json")
    out = json.loads(other_template.stdout)
    assert out["reused"] is False and out["template"] == "alpaca" and "template" in out["changed"]
    other_tokenizer = prep("--data", data, "--set", "model.max_seq_length=512", "--template", "alpaca", "--json", "--tokenizer", qwen)
    assert json.loads(other_tokenizer.stdout)["changed"] == ["tokenizer"], other_tokenizer.stderr


def test_preview_shows_the_loss_mask(prep, tmp_path):
    data = write_jsonl(tmp_path / "d.jsonl", [{"instruction": "Say hi", "input": "", "output": "Hello there"}])
    result = prep("--data", str(data), "--preview", "1")
    assert result.exit_code == 0, result.output
    assert "example 0" in result.stderr and "Hello there" in result.stderr
    assert "trained" in result.stderr and result.stdout == ""


def test_dpo_via_cli(prep):
    result = prep("--data", str(shared_path(*DPO_DEMO)), "-t", "dpo", "--set", "dpo.max_prompt_length=256", "--set", "dpo.max_length=512", "--set", "model.max_seq_length=512", "--set", "data.max_rows=40", "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["splits"]["train"] == 40 and summary["capped"] > 200
    assert summary["format"] == "sharegpt_dpo" and summary["trainer_type"] == "dpo" and summary["rows_in"] == 300


def test_forced_format_and_sft_data_for_dpo(prep, tmp_path):
    data = write_jsonl(tmp_path / "d.jsonl", [{"prompt": "p", "completion": "c", "text": "ignored"}])
    result = prep("--data", str(data), "--format", "prompt_completion", "--json")
    assert result.exit_code == 0 and json.loads(result.stdout)["format"] == "prompt_completion"
    result = prep("--data", str(data), "-t", "dpo")
    assert result.exit_code == 1
    assert "no preference pairs, but trainer_type is dpo" in one_error_line(result)


def test_malformed_jsonl_line_names_file_and_line(prep, tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"instruction": "a", "output": "A"}\n{"instruction": "b", "output": \n{"instruction": "c", "output": "C"}\n')
    result = prep("--data", str(path))
    assert result.exit_code == 1
    line = one_error_line(result)
    assert f"{path}:2: invalid JSON" in line and '"instruction": "b"' in line
    assert not (tmp_path / "prepared").exists()


def test_skip_invalid_counts_every_row(prep, tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text(
        '{"instruction": "a", "output": "A"}\n'
        '{"instruction": "b", "output": \n'
        '{"instruction": "a", "output": "A"}\n'
        '{"instruction": "", "output": ""}\n'
        '{"conversations": "not a list"}\n'
        '{"instruction": "c", "output": "C"}\n'
    )
    result = prep("--data", str(path), "--skip-invalid", "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["rows_in"] == 6 and summary["rows_kept"] == 2
    assert summary["dropped"] == {"duplicate": 1, "empty": 1, "invalid": 2}
    assert_accounting(summary)
    rejects = [r for line in (tmp_path / "prepared" / "dropped.jsonl").read_text().splitlines() if (r := json.loads(line))["reason"] == "invalid"]
    assert [r["where"] for r in rejects] == [f"{path}:2", f"{path}:5"]


def test_dropped_rows_are_listed_and_the_hint_names_the_flag(prep, tmp_path):
    data = str(write_jsonl(tmp_path / "d.jsonl", [{"instruction": f"q{i % 3}", "output": f"a{i % 3}"} for i in range(5)]))
    first = prep("--data", data, "--json")
    assert first.exit_code == 0, first.output
    assert json.loads(first.stdout)["dropped"] == {"duplicate": 2} and "dropped.jsonl" in first.stderr
    lines = [json.loads(line) for line in (tmp_path / "prepared" / "dropped.jsonl").read_text().splitlines()]
    assert [(r["reason"], r["where"], r["message"]) for r in lines] == [("duplicate", f"{data}:4", f"same as {data}:1"), ("duplicate", f"{data}:5", f"same as {data}:2")]
    assert json.loads(prep("--data", data, "--json").stdout)["reused"] is True
    assert json.loads(prep("--data", data, "--overwrite", "--json").stdout)["reused"] is False
    assert prep("--data", data, "--force").exit_code == 2  # the old name is gone
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"instruction": "a", "output": "A"}\n{oops\n')
    result = prep("--data", str(bad), output="bad")
    assert result.exit_code == 1 and f"{bad}:2: invalid JSON" in one_error_line(result)
    assert "data.skip_invalid=true (--skip-invalid)" in result.stderr


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("empty.jsonl", b"", "the file is empty"),
        ("latin1.jsonl", '{"instruction": "café", "output": "x"}\n'.encode("latin-1"), "latin1.jsonl:1: not UTF-8"),
        ("cols.jsonl", b'{"foo": 1, "bar": 2}\n', "cannot tell the data format from its columns: bar, foo"),
    ],
)
def test_bad_files_fail_with_one_line(prep, tmp_path, name, content, message):
    path = tmp_path / name
    path.write_bytes(content)
    result = prep("--data", str(path))
    assert result.exit_code == 1
    assert message in one_error_line(result)


def test_missing_file(prep, tmp_path):
    result = prep("--data", str(tmp_path / "nope.jsonl"))
    assert result.exit_code == 1
    assert "data file not found" in one_error_line(result)


def test_unknown_template_and_format_are_config_errors(prep, tmp_path):
    data = write_jsonl(tmp_path / "d.jsonl", [{"instruction": "a", "output": "b"}])
    result = prep("--data", str(data), "--template", "mistral")
    assert result.exit_code == 2
    assert "unknown template 'mistral'" in one_error_line(result)
    result = prep("--data", str(data), "--format", "yaml-ish")
    assert result.exit_code == 2
    assert "data.format" in result.stderr and "'yaml-ish' is not one of" in result.stderr


def test_hub_id_offline_fails_fast(prep):
    result = prep("--data", "sftkit-test-org/not-a-cached-dataset")
    assert result.exit_code == 1
    assert "Hub is not reachable" in one_error_line(result)


def test_prepare_says_why_it_chose_the_format_and_counts_notes(prep, tmp_path):
    data = write_jsonl(tmp_path / "d.jsonl", [{"prompt": f"p{i}", "completion": f"c{i}", "text": f"t{i}"} for i in range(3)])
    result = prep("--data", str(data), "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["format"] == "prompt_completion"
    assert summary["format_reason"] == "columns prompt, completion in 3 of 3 rows looked at; the rows also fit text (columns text): set data.format to use another"
    assert "the rows also fit text (columns text)" in result.stderr
    hh = write_jsonl(
        tmp_path / "hh.jsonl",
        [{"chosen": "\n\nHuman: Hi\n\nAssistant: Hello!\n\nHuman: Joke?\n\nAssistant: No.", "rejected": "\n\nHuman: Hi\n\nAssistant: Go away."}],
    )
    result = prep("--data", str(hh), "-t", "dpo", "--json", output="hh")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert (summary["format"], summary["rows_kept"], summary["notes"]) == ("hh", 1, {"prompt_from_common_prefix": 1})
    assert "note: prompt_from_common_prefix" in result.stderr


def test_llamafactory_registry_entry_and_multiple_choice_refusal(prep, tmp_path):
    folder = tmp_path / "data"
    folder.mkdir()
    write_jsonl(folder / "qa.jsonl", [{"q": "ما عاصمة فرنسا؟", "options": ["برلين", "باريس"], "a": 1}] * 2)
    write_jsonl(folder / "chat.jsonl", [{"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}]}])
    info = {
        "chat": {"file_name": "chat.jsonl", "formatting": "sharegpt", "columns": {"messages": "messages"}, "tags": {"role_tag": "role", "content_tag": "content", "user_tag": "user", "assistant_tag": "assistant"}},
    }
    (folder / "dataset_info.json").write_text(json.dumps(info), encoding="utf-8")
    result = prep("--data", f"{folder}/dataset_info.json#chat", "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert (summary["format"], summary["rows_kept"]) == ("sharegpt", 1)
    result = prep("--data", str(folder / "qa.jsonl"), "--set", "data.field_map={q: question, a: answer}", output="mc")
    assert result.exit_code == 1
    line = one_error_line(result)
    assert f"{folder / 'qa.jsonl'}:1: the rows look like multiple choice" in line and "'options'" in line
    assert "data.format=qa" in result.stderr
