"""LLaMA-Factory's dataset registry: ``data.dataset: path/to/dataset_info.json#name`` reads the entry ``name``.

An entry names a file (``file_name``, relative to the registry's folder) or a Hub dataset (``hf_hub_url``, with
``subset`` and ``split``), its ``formatting`` (``alpaca``, ``sharegpt`` or ``openai``), whether it holds preference
pairs (``ranking``), its column names (``columns``) and, for conversations, its tag names (``tags``), as LLaMA-Factory's
``data/README.md`` describes them. As in LLaMA-Factory, an entry that gives ``columns`` (or ``tags``) gives all of
them: the ones it leaves out are unset, not their defaults.

Each row is rewritten into the columns of one of sftkit's own formats and then read like any other row (so
``dropped.jsonl`` and errors still name the data file's ``file:line``):

- alpaca: ``instruction``, ``input``, ``output``, ``system``, ``history`` (format ``alpaca``); with ``ranking``,
  ``prompt`` (the history and the instruction as turns), ``chosen``, ``rejected`` (``dpo``); with a ``kto_tag``,
  ``prompt``, ``completion``, ``kto_tag``; an entry without a response column is pre-training text (``text``);
- sharegpt and openai: ``conversations`` of ``{from, value}`` turns whose roles are the entry's tags mapped to
  ``human``, ``gpt``, ``function_call``, ``observation`` and ``system`` (``sharegpt``), with ``system`` and ``tools``;
  with ``ranking``, ``chosen`` and ``rejected`` turns too (``sharegpt_dpo``); with a ``kto_tag``, ``kto_tag``.

Media columns (``images``, ``videos``, ``audios``) are kept under those names, so such rows are dropped as
``non_text``, counted, never read as text alone.
"""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sftkit.data.canonical import user_text
from sftkit.data.drops import InvalidRow
from sftkit.data.readers import SourceRow, decode, read_bytes
from sftkit.errors import DataError

#: the separator between the registry file and the entry name in ``data.dataset``
SEPARATOR = "#"
FORMATTINGS = ("alpaca", "sharegpt", "openai")
#: LLaMA-Factory's column defaults (used only when an entry gives no ``columns`` at all)
DEFAULT_COLUMNS = {"prompt": "instruction", "query": "input", "response": "output", "messages": "conversations"}
COLUMN_KEYS = (
    "prompt", "query", "response", "history", "messages", "system", "tools",
    "images", "videos", "audios", "chosen", "rejected", "kto_tag",
)  # fmt: skip
#: LLaMA-Factory's tag defaults (used only when an entry gives no ``tags`` at all)
DEFAULT_TAGS = {
    "role_tag": "from",
    "content_tag": "value",
    "user_tag": "human",
    "assistant_tag": "gpt",
    "observation_tag": "observation",
    "function_tag": "function_call",
    "system_tag": "system",
}
#: each role tag -> the ShareGPT role name sftkit reads
ROLE_NAMES = {
    "user_tag": "human",
    "assistant_tag": "gpt",
    "observation_tag": "observation",
    "function_tag": "function_call",
    "system_tag": "system",
}
#: turn keys of the OpenAI shape kept as they are
TURN_KEYS = ("tool_calls", "name", "tool_call_id")
MEDIA = ("images", "videos", "audios")
#: entry keys sftkit reads
KNOWN_KEYS = {"file_name", "hf_hub_url", "formatting", "ranking", "subset", "split", "columns", "tags"}
#: where else LLaMA-Factory finds an entry's data (before file_name, after hf_hub_url): not readable here
OTHER_SOURCES = ("ms_hub_url", "om_hub_url", "script_url", "cloud_file_name")
#: entry keys sftkit cannot apply, and why: refused by name rather than ignored
UNSUPPORTED = {
    "num_samples": "sftkit uses every row of an entry (data.max_rows caps the rows used)",
    "folder": "sftkit reads Hub datasets without a sub-folder",
}


@dataclass(frozen=True)
class Entry:
    """One entry of a ``dataset_info.json``, checked: where its rows are and how to read them."""

    registry: Path
    name: str
    spec: dict[str, Any] = field(compare=False)
    """The entry as written (recorded in the manifest and the cache fingerprint)."""
    file: Path | None = None
    hub: str | None = None
    subset: str | None = None
    split: str = "train"
    formatting: str = "alpaca"
    ranking: bool = False
    columns: dict[str, str | None] = field(default_factory=dict, compare=False)
    tags: dict[str, str | None] = field(default_factory=dict, compare=False)

    @property
    def label(self) -> str:
        return f"{self.registry}{SEPARATOR}{self.name}"

    def describe(self) -> dict[str, Any]:
        return {"registry": str(self.registry.resolve()), "entry": self.name, "spec": self.spec}

    def convert(self, row: SourceRow) -> SourceRow:
        """A row of the entry's data -> the same row in sftkit's columns (an unreadable one keeps its error)."""
        if row.error is not None:
            return row
        if not isinstance(row.data, dict):
            return SourceRow(row.data, row.where, row.line, f"expected a JSON object, got {type(row.data).__name__}")
        try:
            data = self._alpaca(row.data) if self.formatting == "alpaca" else self._conversation(row.data)
        except InvalidRow as e:
            return SourceRow(row.data, row.where, row.line, f"{e} ({self.label})")
        return SourceRow(data, row.where, row.line)

    # ----------------------------------------------------------------------- rows

    def _get(self, row: dict[str, Any], key: str, required: bool = True) -> Any:
        column = self.columns.get(key)
        if column is None:
            return None
        if column not in row:
            if required:
                raise InvalidRow(f"no column {column!r} (columns.{key})")
            return None
        return row[column]

    def _common(self, row: dict[str, Any], out: dict[str, Any]) -> dict[str, Any]:
        for key in ("system", "tools", *MEDIA):
            value = self._get(row, key, required=False)
            if value is not None:
                out[key] = value
        if self.columns.get("kto_tag"):
            out["kto_tag"] = self._get(row, "kto_tag")
        return out

    def _alpaca(self, row: dict[str, Any]) -> dict[str, Any]:
        instruction = self._get(row, "prompt") or ""
        query = self._get(row, "query", required=False) or ""
        history = self._get(row, "history", required=False)
        if self.ranking or self.columns.get("kto_tag"):
            turns = [{"role": "user", "content": user_text({"content": instruction, "input": query})}]
            if isinstance(history, list):
                turns = [t for pair in history for t in _pair_turns(pair)] + turns
            if self.ranking:
                out = {"prompt": turns, "chosen": self._get(row, "chosen"), "rejected": self._get(row, "rejected")}
            else:
                out = {"prompt": turns, "completion": self._get(row, "response")}
            return self._common(row, out)
        if not self.columns.get("response"):  # pre-training text: the prompt column is the document
            return self._common(row, {"text": "\n".join(t for t in (instruction, query) if t)})
        out = {"instruction": instruction, "input": query, "output": self._get(row, "response")}
        if history is not None:
            out["history"] = history
        return self._common(row, out)

    def _conversation(self, row: dict[str, Any]) -> dict[str, Any]:
        turns = self._get(row, "messages")
        if not isinstance(turns, list):
            raise InvalidRow(f"column {self.columns['messages']!r} should be a list of turns, got {type(turns).__name__}")
        out: dict[str, Any] = {"conversations": [self._turn(t) for t in turns]}
        if self.ranking:
            out["chosen"], out["rejected"] = self._turn(self._get(row, "chosen")), self._turn(self._get(row, "rejected"))
        return self._common(row, out)

    def _turn(self, turn: Any) -> dict[str, Any]:
        if not isinstance(turn, dict):
            raise InvalidRow(f"a turn should be an object, got {type(turn).__name__}")
        role_tag, content_tag = self.tags.get("role_tag"), self.tags.get("content_tag")
        if role_tag not in turn:
            raise InvalidRow(f"a turn has no {role_tag!r} (tags.role_tag)")
        role = turn[role_tag]
        names = {self.tags[k]: name for k, name in ROLE_NAMES.items() if self.tags.get(k) is not None}
        out = {"from": names.get(role, role), "value": turn.get(content_tag)}
        out.update({k: turn[k] for k in TURN_KEYS if k in turn})
        return out


def _pair_turns(pair: Any) -> list[dict[str, Any]]:
    if not (isinstance(pair, list) and len(pair) == 2 and all(isinstance(x, str) for x in pair)):
        raise InvalidRow("each 'history' entry should be [instruction, response] (two texts)")
    return [{"role": "user", "content": pair[0]}, {"role": "assistant", "content": pair[1]}]


# --------------------------------------------------------------------------- reading the registry


def split_reference(name: str) -> tuple[Path, str] | None:
    """``path/to/dataset_info.json#entry`` -> (registry file, entry name); None when ``name`` is not one."""
    left, sep, entry = name.rpartition(SEPARATOR)
    if not sep or not left.lower().endswith(".json"):
        return None
    path = Path(left).expanduser()
    if not path.is_file():
        raise DataError(
            f"{name}: registry file not found: {left}",
            hint="data.dataset=path/to/dataset_info.json#NAME names an entry of a LLaMA-Factory registry",
        )
    if not entry:
        raise DataError(f"{name}: no entry named after {SEPARATOR!r}", hint=f"e.g. {left}#alpaca_en_demo; entries: {_some(_load(path))}")
    return path, entry


def load_entry(path: Path, name: str) -> Entry:
    """The entry ``name`` of the registry ``path``, checked; a one-line DataError naming the key otherwise."""
    registry = _load(path)
    if name not in registry:
        close = difflib.get_close_matches(name, list(registry), n=1)
        hint = f"did you mean {close[0]!r}?" if close else f"entries: {_some(registry)}"
        raise DataError(f"{path}: no entry {name!r}", hint=hint)
    spec = registry[name]
    where = f"{path}: entry {name!r}"
    if not isinstance(spec, dict):
        raise DataError(f"{where} should be an object, got {type(spec).__name__}")
    for key, why in UNSUPPORTED.items():
        if key in spec:
            raise DataError(
                f"{where}: {key} is not supported: {why}", hint=f"remove {key} from the entry, or point data.dataset at the data itself"
            )
    other = next((k for k in OTHER_SOURCES if k in spec), None)
    if other and "hf_hub_url" not in spec:
        raise DataError(
            f"{where}: its data is at {other}, which sftkit does not read", hint="sftkit reads an entry's file_name or hf_hub_url"
        )
    unknown = sorted(set(spec) - KNOWN_KEYS - set(UNSUPPORTED) - set(OTHER_SOURCES))
    if unknown:
        raise DataError(
            f"{where}: unknown key(s) {', '.join(unknown)}", hint=f"LLaMA-Factory's entry keys: {', '.join(sorted(KNOWN_KEYS))}"
        )
    formatting = spec.get("formatting", "alpaca")
    if formatting not in FORMATTINGS:
        raise DataError(f"{where}: formatting {formatting!r} is not one of {', '.join(FORMATTINGS)}")
    columns = _names(spec, "columns", COLUMN_KEYS, DEFAULT_COLUMNS, where)
    tags = _names(spec, "tags", tuple(DEFAULT_TAGS), DEFAULT_TAGS, where)
    if formatting == "alpaca" and not columns.get("prompt"):
        raise DataError(f"{where}: an alpaca entry needs columns.prompt (the instruction column)")
    if formatting != "alpaca" and not (columns.get("messages") and tags.get("role_tag") and tags.get("content_tag")):
        raise DataError(f"{where}: a {formatting} entry needs columns.messages and tags.role_tag, tags.content_tag")
    ranking = spec.get("ranking", False)
    if not isinstance(ranking, bool):
        raise DataError(f"{where}: ranking should be true or false, got {ranking!r}")
    if ranking and not (columns.get("chosen") and columns.get("rejected")):
        raise DataError(f"{where}: a ranking entry needs columns.chosen and columns.rejected")
    common = {
        "spec": spec,
        "formatting": formatting,
        "ranking": ranking,
        "columns": columns,
        "tags": tags,
        "split": spec.get("split", "train"),
    }
    if "hf_hub_url" in spec:
        return Entry(path, name, hub=str(spec["hf_hub_url"]), subset=spec.get("subset"), **common)
    if "file_name" not in spec:
        raise DataError(f"{where} names no data: give file_name or hf_hub_url")
    file = path.parent / str(spec["file_name"])
    if not file.exists():
        raise DataError(
            f"{where}: file_name {spec['file_name']!r} not found ({file})", hint="file_name is relative to the folder of dataset_info.json"
        )
    return Entry(path, name, file=file, **common)


def _load(path: Path) -> dict[str, Any]:
    text = decode(path, read_bytes(path))
    try:
        registry = json.loads(text)
    except json.JSONDecodeError as e:
        raise DataError(f"{path}:{e.lineno}: invalid JSON ({e.msg}, column {e.colno})") from None
    if not isinstance(registry, dict):
        raise DataError(
            f"{path}: a dataset registry should be a JSON object of entries", hint="LLaMA-Factory's data/dataset_info.json is one"
        )
    return registry


def _names(spec: dict[str, Any], key: str, allowed: tuple[str, ...], defaults: dict[str, str], where: str) -> dict[str, str | None]:
    if key not in spec:
        return {k: defaults.get(k) for k in allowed}
    given = spec[key]
    if not isinstance(given, dict) or not all(isinstance(v, str) for v in given.values()):
        raise DataError(f"{where}: {key} should be an object of names")
    unknown = sorted(set(given) - set(allowed))
    if unknown:
        raise DataError(f"{where}: unknown {key} key(s) {', '.join(unknown)}", hint=f"{key} keys: {', '.join(allowed)}")
    return {k: given.get(k) for k in allowed}


def _some(registry: dict[str, Any]) -> str:
    names = list(registry)
    return ", ".join(names[:8]) + (f", ... ({len(names)} in all)" if len(names) > 8 else "")


def looks_like_registry(path: Path) -> bool:
    """Whether a folder's ``dataset_info.json`` is a LLaMA-Factory registry (not what ``save_to_disk`` writes)."""
    try:
        registry = json.loads((path / "dataset_info.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return (
        isinstance(registry, dict)
        and bool(registry)
        and all(isinstance(v, dict) and ({"file_name", "hf_hub_url", "ms_hub_url", "script_url"} & set(v)) for v in registry.values())
    )
