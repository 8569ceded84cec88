"""Tiny, fully local model and task used by the ``tiny`` preset and the test suite.

Nothing here touches the network: the tokenizer is a byte-level vocabulary built
with the ``tokenizers`` library and the model is a freshly initialised, very small
``LlamaForCausalLM``. The built-in task (upper-casing short lowercase words) is
small enough that such a model learns it on CPU in well under a couple of minutes,
while an untrained model scores zero, which makes it a cheap end-to-end check that
fine-tuning actually works.

Heavy libraries (torch, transformers, tokenizers) are imported inside functions
only, so importing this module stays cheap.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import tempfile
import zlib
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover - typing only
    from transformers import LlamaForCausalLM, PreTrainedModel, PreTrainedTokenizerFast

TASK_DESCRIPTION = "Upper-case a random 3-5 letter lowercase word (prompt 'qzb' -> answer 'QZB')."

#: Special tokens of the tiny tokenizer, in id order after the 256 byte symbols.
BOS_TOKEN = "<|begin|>"
EOS_TOKEN = "<|end|>"
PAD_TOKEN = "<|pad|>"
ROLE_TOKENS = ("<|system|>", "<|user|>", "<|assistant|>")
SPECIAL_TOKENS = (PAD_TOKEN, BOS_TOKEN, EOS_TOKEN, *ROLE_TOKENS)

#: Chatml-like template: ``<|begin|><|user|>hi<|end|><|assistant|>HI<|end|>``.
#: The assistant turn ends with the eos token, so SFT on conversational
#: prompt/completion data teaches the model to stop.
CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{% for message in messages %}"
    "{{ '<|' + message['role'] + '|>' + message['content'] + '<|end|>' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|assistant|>' }}{% endif %}"
)

#: Architecture of the tiny model (460k parameters with tied embeddings). Chosen
#: by measurement: 2 layers of width 128 learn the task as reliably as 3-4
#: layers or width 192 and are the cheapest per step.
HIDDEN_SIZE = 128
INTERMEDIATE_SIZE = 384
NUM_LAYERS = 2
NUM_HEADS = 4
MAX_POSITIONS = 256  # RoPE: no parameters; only caps the tokenizer's model_max_length

#: Task parameters.
#: Prompts are the bare word: an instruction prefix such as ``"upper: "`` makes
#: the prompt longer and measurably slows learning (90-96% instead of 100%
#: held-out exact match after 400 steps).
INSTRUCTION_PREFIX = ""
MIN_WORD_LEN = 3
MAX_WORD_LEN = 5
_ALPHABET = "abcdefghijklmnopqrstuvwxyz"
#: One word in ``_HELDOUT_MODULUS`` (by CRC32) is reserved for evaluation.
_HELDOUT_MODULUS = 8

#: File in a saved tiny model recording what it was built with (see ``ensure_tiny_model``).
MARKER_FILE = "sftkit_tiny.json"

#: Default seed of the tiny model weights.
DEFAULT_SEED = 0

#: Number of ``sft_rows`` to train on (``SFT_HPARAMS`` makes about 3 passes over them).
SFT_TRAIN_ROWS = 2000

#: ``trl.SFTConfig`` settings measured to take the tiny model from 0% to ~100%
#: held-out exact match on CPU (conversational prompt/completion data, so the
#: loss covers the completion only). Also pass ``use_cpu=True``, ``bf16=False``
#: and ``activation_checkpointing=False`` (TRL defaults both bf16 and activation
#: checkpointing to on; the measurements had both off).
SFT_HPARAMS: Mapping[str, float | int | str] = MappingProxyType(
    {
        "learning_rate": 2e-3,
        "lr_scheduler_type": "cosine",
        "warmup_steps": 0.05,  # a float < 1 is a fraction of max_steps
        "weight_decay": 0.0,
        "per_device_train_batch_size": 32,
        "gradient_accumulation_steps": 1,
        "max_steps": 200,
        "max_length": 64,
    }
)

#: Intra-op threads to give torch (``torch.set_num_threads``) when training the
#: tiny model on CPU. Its matrices are too small to gain from a second thread,
#: and with other work on the machine two threads ran 4-10x slower than one
#: (200 steps: ~13 s with one thread, 54-135 s with two, on a busy 2-core box).
TORCH_THREADS = 1


def build_tokenizer() -> PreTrainedTokenizerFast:
    """Build the byte-level tokenizer of the tiny model.

    Every byte is its own token (a ByteLevel BPE with the 256 byte symbols and
    no merges), followed by the special tokens in ``SPECIAL_TOKENS``. The chat
    template is ``CHAT_TEMPLATE``. No special tokens are added implicitly when
    encoding plain text; the chat template adds the bos token itself.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    # Token id == byte value, which keeps ids readable when debugging.
    vocab = _byte_level_vocab()
    backend = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    backend.decoder = decoders.ByteLevel()
    backend.add_special_tokens(list(SPECIAL_TOKENS))

    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        bos_token=BOS_TOKEN,
        eos_token=EOS_TOKEN,
        pad_token=PAD_TOKEN,
        extra_special_tokens=list(ROLE_TOKENS),
        chat_template=CHAT_TEMPLATE,
        padding_side="left",
        model_max_length=MAX_POSITIONS,
    )
    return tokenizer


def _byte_level_vocab() -> dict[str, int]:
    """Map each ByteLevel symbol (GPT-2's ``bytes_to_unicode`` table) to its byte value."""
    printable = [
        *range(ord("!"), ord("~") + 1),
        *range(ord("\N{INVERTED EXCLAMATION MARK}"), ord("\N{NOT SIGN}") + 1),
        *range(ord("\N{REGISTERED SIGN}"), ord("\N{LATIN SMALL LETTER Y WITH DIAERESIS}") + 1),
    ]
    vocab = {chr(byte): byte for byte in printable}
    shifted = 256
    for byte in range(256):
        if byte not in vocab.values():
            vocab[chr(shifted)] = byte
            shifted += 1
    return vocab


def build_model(tokenizer: PreTrainedTokenizerFast, seed: int = DEFAULT_SEED) -> LlamaForCausalLM:
    """Build a freshly initialised tiny ``LlamaForCausalLM`` matching ``tokenizer``.

    The weights depend only on ``seed``. Pad, bos and eos ids are copied from the
    tokenizer into both the model config and its generation config.
    """
    import torch
    from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=HIDDEN_SIZE,
        intermediate_size=INTERMEDIATE_SIZE,
        num_hidden_layers=NUM_LAYERS,
        num_attention_heads=NUM_HEADS,
        num_key_value_heads=NUM_HEADS,
        max_position_embeddings=MAX_POSITIONS,
        tie_word_embeddings=True,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    # Seed a forked RNG so that the weights depend only on ``seed`` and the
    # caller's global RNG state is left untouched.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = LlamaForCausalLM(config)
    model.generation_config = GenerationConfig(
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        do_sample=False,
        max_new_tokens=MAX_WORD_LEN + 3,
    )
    return model


def ensure_tiny_model(path: Path, seed: int = DEFAULT_SEED) -> Path:
    """Save the tiny tokenizer and model into ``path`` unless an up-to-date copy is there.

    A marker file (``MARKER_FILE``) records the architecture, tokenizer and seed
    the copy was built with; a copy built differently (an older sftkit, another
    seed) is replaced. The directory is written atomically: everything goes to a
    temporary directory next to ``path`` that is then renamed into place, so a
    crash never leaves a half-written model behind. Returns ``path``.
    """
    path = Path(path)
    if _is_current(path, seed):
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.tmp-", dir=path.parent))
    stale: Path | None = None
    try:
        tokenizer = build_tokenizer()
        model = build_model(tokenizer, seed=seed)
        tokenizer.save_pretrained(tmp)
        model.save_pretrained(tmp)
        (tmp / MARKER_FILE).write_text(json.dumps(_fingerprint(seed), indent=2) + "\n", encoding="utf-8")
        if _is_current(path, seed):  # another process finished first
            return path
        if path.exists():
            stale = Path(tempfile.mkdtemp(prefix=f".{path.name}.stale-", dir=path.parent))
            os.replace(path, stale / path.name)
        try:
            os.rename(tmp, path)
        except OSError:
            # Another process renamed its copy in between; keep it if it is good.
            if not _is_current(path, seed):
                raise
    finally:
        for leftover in (tmp, stale):
            if leftover is not None and leftover.exists():
                shutil.rmtree(leftover, ignore_errors=True)
    return path


def _fingerprint(seed: int) -> dict[str, object]:
    """What a saved tiny model must have been built with to be reused."""
    return {
        "format": 1,
        "seed": seed,
        "hidden_size": HIDDEN_SIZE,
        "intermediate_size": INTERMEDIATE_SIZE,
        "num_layers": NUM_LAYERS,
        "num_heads": NUM_HEADS,
        "max_positions": MAX_POSITIONS,
        "special_tokens": list(SPECIAL_TOKENS),
        "chat_template": CHAT_TEMPLATE,
    }


def _is_current(path: Path, seed: int) -> bool:
    """Whether ``path`` holds a complete tiny model built as ``_fingerprint(seed)`` describes."""
    names = ("config.json", "generation_config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json")
    if not all((path / name).is_file() for name in names):
        return False
    try:
        marker = json.loads((path / MARKER_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return bool(marker == _fingerprint(seed))


# --------------------------------------------------------------------------- task


def _is_heldout(word: str) -> bool:
    """Whether ``word`` belongs to the evaluation partition of the word space."""
    return zlib.crc32(word.encode("ascii")) % _HELDOUT_MODULUS == 0


def _words(n: int, seed: int, heldout: bool) -> list[str]:
    """``n`` random lowercase words from one side of the train/held-out split."""
    rng = random.Random(f"sftkit-tiny-{seed}")
    words: list[str] = []
    while len(words) < n:
        length = rng.randint(MIN_WORD_LEN, MAX_WORD_LEN)
        word = "".join(rng.choice(_ALPHABET) for _ in range(length))
        if _is_heldout(word) == heldout:
            words.append(word)
    return words


def _instruction(word: str) -> str:
    return f"{INSTRUCTION_PREFIX}{word}"


def sft_rows(n: int, seed: int = 0) -> list[dict[str, str]]:
    """``n`` training rows such as ``{"instruction": "cat", "output": "CAT"}``."""
    return [{"instruction": _instruction(w), "output": w.upper()} for w in _words(n, seed, heldout=False)]


def heldout_rows(n: int, seed: int = 0) -> list[dict[str, str]]:
    """``n`` evaluation rows, shaped like ``sft_rows``, whose words never occur in training rows."""
    return [{"instruction": _instruction(w), "output": w.upper()} for w in _words(n, seed, heldout=True)]


def dpo_rows(n: int, seed: int = 0) -> list[dict[str, str]]:
    """``n`` preference rows ``{"prompt", "chosen", "rejected"}`` from the training words.

    ``chosen`` is the correct answer; ``rejected`` is a plausible mistake: the word
    left unchanged, only partly upper-cased, or upper-cased with one letter changed.
    """
    rng = random.Random(f"sftkit-tiny-dpo-{seed}")
    rows = []
    for word in _words(n, seed, heldout=False):
        answer = word.upper()
        kind = rng.randrange(3)
        if kind == 0:
            rejected = word
        elif kind == 1:
            cut = rng.randint(1, len(word) - 1)
            rejected = answer[:cut] + word[cut:]
        else:
            pos = rng.randrange(len(word))
            letter = rng.choice([c for c in _ALPHABET.upper() if c != answer[pos]])
            rejected = answer[:pos] + letter + answer[pos + 1 :]
        rows.append({"prompt": _instruction(word), "chosen": answer, "rejected": rejected})
    return rows


# --------------------------------------------------------------------------- evaluation


def exact_match(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerFast,
    rows: list[dict[str, str]],
    batch_size: int = 64,
    max_new_tokens: int = MAX_WORD_LEN + 3,
) -> float:
    """Fraction of ``rows`` whose greedy answer equals ``row["output"]`` (both stripped).

    Prompts are rendered with the chat template (one user turn plus the
    generation prompt) and left-padded.
    """
    import torch

    if not rows:
        return 0.0
    was_training = model.training
    model.eval()
    padding_side = tokenizer.padding_side
    tokenizer.padding_side = "left"
    correct = 0
    try:
        for start in range(0, len(rows), batch_size):
            batch = rows[start : start + batch_size]
            prompts = [
                tokenizer.apply_chat_template(
                    [{"role": "user", "content": row["instruction"]}],
                    tokenize=False,
                    add_generation_prompt=True,
                )
                for row in batch
            ]
            enc = tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=False)
            enc = enc.to(model.device)
            with torch.no_grad():
                out = model.generate(
                    **enc,
                    max_new_tokens=max_new_tokens,
                    do_sample=False,
                    pad_token_id=tokenizer.pad_token_id,
                    eos_token_id=tokenizer.eos_token_id,
                )
            texts = tokenizer.batch_decode(out[:, enc["input_ids"].shape[1] :], skip_special_tokens=True)
            correct += sum(text.strip() == row["output"].strip() for text, row in zip(texts, batch, strict=True))
    finally:
        tokenizer.padding_side = padding_side
        if was_training:
            model.train()
    return correct / len(rows)
