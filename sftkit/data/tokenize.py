"""Tokenisation and loss masks, batched through the fast tokenizer.

An example's rendered text is tokenised once, whole; each trained span's start and end become token
positions by tokenising the text up to that point and checking that those tokens are a prefix of the
whole (the prefix property). When a token merges across a boundary, the boundary moves to where the two
tokenisations diverge (as TRL does) and the row is counted in ``boundary_merges``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sftkit.data.templates import Rendered

IGNORE_INDEX = -100


@dataclass
class Encoded:
    input_ids: list[int]
    labels: list[int]
    boundary_merge: bool = False


def _common_prefix(a: list[int], b: list[int]) -> int:
    n = min(len(a), len(b))
    for i in range(n):
        if a[i] != b[i]:
            return i
    return n


def _encode(tokenizer: Any, texts: list[str]) -> list[list[int]]:
    if not texts:
        return []
    return tokenizer(texts, add_special_tokens=False, return_attention_mask=False)["input_ids"]


def encode_sft(rendered: list[Rendered], tokenizer: Any, completion_only: bool = True) -> list[Encoded]:
    """Token ids and labels (-100 outside the trained spans when ``completion_only``) for rendered examples."""
    full = _encode(tokenizer, [r.text for r in rendered])
    if not completion_only:
        return [Encoded(ids, list(ids)) for ids in full]
    # every span boundary that is not the very start or end of a text needs its own prefix tokenisation
    wanted: list[tuple[int, int]] = []  # (row, char position)
    for row, r in enumerate(rendered):
        for a, b in r.spans:
            for p in (a, b):
                if 0 < p < len(r.text):
                    wanted.append((row, p))
    unique = list(dict.fromkeys(wanted))
    prefix_ids = _encode(tokenizer, [rendered[row].text[:p] for row, p in unique])
    boundary: dict[tuple[int, int], int] = {}
    merged_rows: set[int] = set()
    for (row, p), ids in zip(unique, prefix_ids, strict=True):
        n = len(ids)
        if full[row][:n] != ids:
            n = _common_prefix(full[row], ids)
            merged_rows.add(row)
        boundary[(row, p)] = n
    out = []
    for row, (r, ids) in enumerate(zip(rendered, full, strict=True)):
        labels = [IGNORE_INDEX] * len(ids)
        for a, b in r.spans:
            ta = 0 if a == 0 else len(ids) if a >= len(r.text) else boundary[(row, a)]
            tb = len(ids) if b >= len(r.text) else boundary[(row, b)]
            labels[ta:tb] = ids[ta:tb]
        out.append(Encoded(ids, labels, row in merged_rows))
    return out


def truncate_sft(enc: Encoded, max_length: int) -> tuple[Encoded, bool]:
    """Keep the first ``max_length`` tokens; (result, whether anything was cut)."""
    if len(enc.input_ids) <= max_length:
        return enc, False
    return Encoded(enc.input_ids[:max_length], enc.labels[:max_length], enc.boundary_merge), True


def has_trained_tokens(enc: Encoded) -> bool:
    return any(label != IGNORE_INDEX for label in enc.labels)


@dataclass
class EncodedPair:
    prompt_ids: list[int]
    chosen_ids: list[int]
    rejected_ids: list[int]
    boundary_merge: bool = False


def encode_pairs(pairs: list[tuple[str, str, str]], tokenizer: Any) -> list[EncodedPair]:
    """(prompt text, chosen text, rejected text) -> ids; the responses start where prompt and prompt+response diverge."""
    texts: list[str] = []
    for prompt, chosen, rejected in pairs:
        texts += [prompt, prompt + chosen, prompt + rejected]
    ids = _encode(tokenizer, texts)
    out = []
    for k in range(len(pairs)):
        p, pc, pr = ids[3 * k : 3 * k + 3]
        n = min(_common_prefix(p, pc), _common_prefix(p, pr))
        out.append(EncodedPair(p[:n], pc[n:], pr[n:], n < len(p)))
    return out


def truncate_pair(enc: EncodedPair, max_prompt_length: int, max_length: int) -> tuple[EncodedPair, bool]:
    """Prompt keeps its last ``max_prompt_length`` tokens; each response is cut so prompt + response fits ``max_length``."""
    prompt = enc.prompt_ids[-max_prompt_length:] if len(enc.prompt_ids) > max_prompt_length else enc.prompt_ids
    room = max_length - len(prompt)
    chosen, rejected = enc.chosen_ids[:room], enc.rejected_ids[:room]
    cut = len(prompt) < len(enc.prompt_ids) or len(chosen) < len(enc.chosen_ids) or len(rejected) < len(enc.rejected_ids)
    return EncodedPair(prompt, chosen, rejected, enc.boundary_merge), cut


@dataclass
class EncodedUnpaired:
    prompt_ids: list[int]
    completion_ids: list[int]
    boundary_merge: bool = False


def encode_unpaired(items: list[tuple[str, str]], tokenizer: Any) -> list[EncodedUnpaired]:
    """(prompt text, completion text) -> ids; the completion starts where prompt and prompt+completion diverge
    (as TRL's KTOTrainer splits them)."""
    texts: list[str] = []
    for prompt, completion in items:
        texts += [prompt, prompt + completion]
    ids = _encode(tokenizer, texts)
    out = []
    for k in range(len(items)):
        p, pc = ids[2 * k : 2 * k + 2]
        n = _common_prefix(p, pc)
        out.append(EncodedUnpaired(p[:n], pc[n:], n < len(p)))
    return out


def truncate_unpaired(enc: EncodedUnpaired, max_prompt_length: int, max_length: int) -> tuple[EncodedUnpaired, bool]:
    """Prompt keeps its last ``max_prompt_length`` tokens; the completion is cut so prompt + completion fits ``max_length``."""
    prompt = enc.prompt_ids[-max_prompt_length:] if len(enc.prompt_ids) > max_prompt_length else enc.prompt_ids
    completion = enc.completion_ids[: max_length - len(prompt)]
    cut = len(prompt) < len(enc.prompt_ids) or len(completion) < len(enc.completion_ids)
    return EncodedUnpaired(prompt, completion, enc.boundary_merge), cut
