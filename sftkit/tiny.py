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

import os
import random
import shutil
import tempfile
import zlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover - typing only
    from transformers import LlamaForCausalLM, PreTrainedModel, PreTrainedTokenizerFast

TASK_DESCRIPTION = "Upper-case a short lowercase word: 'upper: cat' -> 'CAT'."

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

#: Architecture of the tiny model (chosen by measurement, see ``build_model``).
HIDDEN_SIZE = 128
INTERMEDIATE_SIZE = 384
NUM_LAYERS = 3
NUM_HEADS = 4
MAX_POSITIONS = 64

#: Task parameters.
INSTRUCTION_PREFIX = "upper: "
MIN_WORD_LEN = 3
MAX_WORD_LEN = 5
_ALPHABET = "abcdefghijklmnopqrstuvwxyz"
#: One word in ``_HELDOUT_MODULUS`` (by CRC32) is reserved for evaluation.
_HELDOUT_MODULUS = 8

#: Default seed of the tiny model weights.
DEFAULT_SEED = 0


def build_tokenizer() -> PreTrainedTokenizerFast:
    """Build the byte-level tokenizer of the tiny model.

    Every byte is its own token (a ByteLevel BPE with the 256 byte symbols and
    no merges), followed by the special tokens in ``SPECIAL_TOKENS``. The chat
    template is ``CHAT_TEMPLATE``. No special tokens are added implicitly when
    encoding plain text; the chat template adds the bos token itself.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet(), key=_byte_of_symbol)
    vocab = {symbol: index for index, symbol in enumerate(alphabet)}
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


def _byte_of_symbol(symbol: str) -> int:
    """Byte value that the GPT-2 byte-to-unicode table maps to ``symbol``."""
    return _unicode_to_byte()[symbol]


def _unicode_to_byte() -> dict[str, int]:
    """Inverse of the GPT-2 ``bytes_to_unicode`` table used by ByteLevel."""
    printable = (
        list(range(ord("!"), ord("~") + 1))
        + list(range(ord("¡"), ord("¬") + 1))
        + list(range(ord("®"), ord("ÿ") + 1))
    )
    codepoints = list(printable)
    extra = 0
    for byte in range(256):
        if byte not in printable:
            printable.append(byte)
            codepoints.append(256 + extra)
            extra += 1
    return {chr(code): byte for byte, code in zip(printable, codepoints, strict=True)}


def build_model(tokenizer: PreTrainedTokenizerFast, seed: int = DEFAULT_SEED) -> LlamaForCausalLM:
    """Build a freshly initialised tiny ``LlamaForCausalLM`` matching ``tokenizer``.

    The weights depend only on ``seed``. Pad, bos and eos ids are copied from the
    tokenizer into both the model config and its generation config.
    """
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
    with _torch_seed(seed):
        model = LlamaForCausalLM(config)
    model.generation_config = GenerationConfig(
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        do_sample=False,
        max_new_tokens=MAX_WORD_LEN + 3,
    )
    return model


class _torch_seed:
    """Context manager seeding torch's CPU RNG and restoring its state on exit."""

    def __init__(self, seed: int) -> None:
        self._seed = seed
        self._state: Any = None

    def __enter__(self) -> None:
        import torch

        self._state = torch.random.get_rng_state()
        torch.manual_seed(self._seed)

    def __exit__(self, *exc: object) -> None:
        import torch

        torch.random.set_rng_state(self._state)


def ensure_tiny_model(path: Path, seed: int = DEFAULT_SEED) -> Path:
    """Save the tiny tokenizer and model into ``path`` unless already there.

    The directory is written atomically: everything goes to a temporary
    directory next to ``path`` that is then renamed into place, so a crash never
    leaves a half-written model behind. Returns ``path``.
    """
    path = Path(path)
    if (path / "config.json").is_file() and (path / "tokenizer.json").is_file():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    try:
        tokenizer = build_tokenizer()
        model = build_model(tokenizer, seed=seed)
        tokenizer.save_pretrained(tmp)
        model.save_pretrained(tmp)
        try:
            os.rename(tmp, path)
        except OSError:
            # Another process won the race; keep its copy if it is complete.
            if not (path / "config.json").is_file():
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return path


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
    """``n`` training rows ``{"instruction": "upper: cat", "output": "CAT"}``."""
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
