"""Data: reading sources, detecting formats, templates, Arabic normalisation, tokenisation, preparation.

The pieces other commands reuse:

- :func:`prepare_data` (cfg -> :class:`PreparedData`) and :func:`summary`;
- :func:`read_rows` (rows of any supported source with ``file:line``) and :func:`read_examples`
  (canonical examples of a file, for eval/generate);
- :func:`detect_format` and :func:`normalize_row` (one row -> canonical examples);
- :func:`render_prompt` / :func:`prompt_ids` (the exact prompt text/ids the run trained with);
- :func:`peek` (first rows, row count and detected format, for the init wizard);
- :class:`Reason` (why a row was dropped: the codes in ``dropped.jsonl`` and the manifest).

Everything here imports only the standard library at module level; datasets/transformers are imported
inside the functions that need them.
"""

from sftkit.data.clean import peek, read_examples
from sftkit.data.drops import Reason
from sftkit.data.formats import detect_format
from sftkit.data.normalize import normalize_row
from sftkit.data.prepare import PreparedData, prepare_data, summary
from sftkit.data.sources import read_rows
from sftkit.data.templates import prompt_ids, render_prompt, resolve_template

__all__ = [
    "PreparedData",
    "Reason",
    "detect_format",
    "normalize_row",
    "peek",
    "prepare_data",
    "prompt_ids",
    "read_examples",
    "read_rows",
    "render_prompt",
    "resolve_template",
    "summary",
]
