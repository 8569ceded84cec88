"""Reading rows from every supported kind of source, with the line each row came from."""

from __future__ import annotations

import gzip
import json
import time

import pytest

from sftkit.data.sources import count_rows, has_split, read_rows, resolve_source
from sftkit.errors import DataError


def test_jsonl_rows_carry_their_line_and_bad_lines_are_reported(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text('{"text": "a"}\n\n{"text": "b"}\n{"text": oops}\n', encoding="utf-8")
    rows = list(read_rows(path))
    assert [(r.line, r.error is None) for r in rows] == [(1, True), (3, True), (4, False)]
    assert rows[1].data == {"text": "b"} and rows[1].where == f"{path}:3"
    assert "invalid JSON" in rows[2].error and "oops" in rows[2].error


def test_jsonl_lines_split_on_newlines_only(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text('{"text": "a\u2028b"}\r\n{"text": "c"}\r\n', encoding="utf-8")
    assert [(r.data["text"], r.line) for r in read_rows(path)] == [("a\u2028b", 1), ("c", 2)]


def test_json_list_rows_carry_their_line(tmp_path):
    path = tmp_path / "d.json"
    path.write_text('[\n  {"text": "a"},\n  {"text":\n "b"},\n  {"text": "c"}\n]\n', encoding="utf-8")
    assert [(r.data["text"], r.line) for r in read_rows(path)] == [("a", 2), ("b", 3), ("c", 5)]


def test_json_object_of_splits(tmp_path):
    path = tmp_path / "d.json"
    path.write_text(json.dumps({"train": [{"text": "a"}], "validation": [{"text": "v1"}, {"text": "v2"}]}, indent=1))
    assert [r.data["text"] for r in read_rows(path)] == ["a"]
    assert [r.data["text"] for r in read_rows(path, "validation")] == ["v1", "v2"]
    assert has_split(str(path), "validation") and not has_split(str(path), "test")
    with pytest.raises(DataError, match="no split 'test'.*train, validation"):
        list(read_rows(path, "test"))


def test_malformed_json_document_names_file_and_line(tmp_path):
    path = tmp_path / "d.json"
    path.write_text('[\n {"text": "a"},\n {"text": "b",,}\n]\n')
    with pytest.raises(DataError, match=r"d\.json:3: invalid JSON"):
        list(read_rows(path))


def test_csv_with_quoted_newlines_keeps_record_start_lines(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text('instruction,output\n"two\nlines",x\nsecond,"y, z"\n', encoding="utf-8")
    rows = list(read_rows(path))
    assert [(r.data, r.line) for r in rows] == [
        ({"instruction": "two\nlines", "output": "x"}, 2),
        ({"instruction": "second", "output": "y, z"}, 4),
    ]


def test_parquet_and_gzip(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table({"instruction": ["a", "b"], "output": ["A", "B"]})
    pq.write_table(table, tmp_path / "d.parquet")
    rows = list(read_rows(tmp_path / "d.parquet"))
    assert [r.data["output"] for r in rows] == ["A", "B"] and rows[1].where.endswith("d.parquet row 2")
    (tmp_path / "p.parquet.gz").write_bytes(gzip.compress((tmp_path / "d.parquet").read_bytes()))
    assert count_rows(tmp_path / "p.parquet.gz") == 2
    (tmp_path / "d.jsonl.gz").write_bytes(gzip.compress(b'{"text": "x"}\n{"text": "y"}\n'))
    assert [r.data["text"] for r in read_rows(tmp_path / "d.jsonl.gz")] == ["x", "y"]


def test_saved_dataset_folder(tmp_path):
    from datasets import Dataset, DatasetDict

    DatasetDict(
        {"train": Dataset.from_dict({"text": ["a", "b"]}), "test": Dataset.from_dict({"text": ["t"]})}
    ).save_to_disk(str(tmp_path / "saved"))
    assert resolve_source(str(tmp_path / "saved")).kind == "saved"
    assert [r.data["text"] for r in read_rows(tmp_path / "saved")] == ["a", "b"]
    assert [r.data["text"] for r in read_rows(tmp_path / "saved", "test")] == ["t"]
    assert has_split(str(tmp_path / "saved"), "test") is True


@pytest.mark.parametrize(
    ("content", "message"),
    [(b"", "the file is empty"), (b'{"text": "caf\xe9"}\n', r"d\.jsonl:1: not UTF-8")],
)
def test_file_level_problems_are_one_line(tmp_path, content, message):
    path = tmp_path / "d.jsonl"
    path.write_bytes(content)
    with pytest.raises(DataError, match=message) as info:
        list(read_rows(path))
    assert "\n" not in info.value.message


def test_missing_paths_and_unsupported_files(tmp_path):
    with pytest.raises(DataError, match="data file not found"):
        resolve_source(str(tmp_path / "nope.jsonl"))
    with pytest.raises(DataError, match="data file not found"):
        resolve_source("./data/train.json")
    (tmp_path / "notes.md").write_text("hello")
    with pytest.raises(DataError, match="unsupported file type"):
        list(read_rows(tmp_path / "notes.md"))
    assert resolve_source("org/some-dataset").kind == "hub"
    assert resolve_source("builtin:tiny").kind == "builtin"


def test_hub_dataset_offline_fails_fast_with_one_line(monkeypatch):
    from sftkit.hub import hub_reachable

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    hub_reachable.cache_clear()
    started = time.monotonic()
    with pytest.raises(Exception) as info:
        list(read_rows("sftkit-test-org/surely-not-cached-dataset"))
    hub_reachable.cache_clear()
    assert time.monotonic() - started < 20
    assert "Hub is not reachable" in info.value.message and "\n" not in info.value.message
