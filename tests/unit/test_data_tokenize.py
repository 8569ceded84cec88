"""Tokenisation and loss masks with real tokenizers: exactly the assistant tokens and their EOS are trained on."""

from __future__ import annotations

from data_fixtures import qwen, smollm2, tiny_tok, trained_runs, trained_text  # noqa: F401 - fixtures

from sftkit.data.templates import prompt_ids, render_conversation, render_pair, resolve_template
from sftkit.data.tokenize import IGNORE_INDEX, encode_pairs, encode_sft, truncate_pair, truncate_sft

MULTI = [
    {"role": "user", "content": "Hi"},
    {"role": "assistant", "content": "Hello! How can I help?"},
    {"role": "user", "content": "Name a colour."},
    {"role": "assistant", "content": "Blue."},
]


def encode(messages, tok, spec="auto", completion_only=True):
    rendered = render_conversation(messages, tok, resolve_template(spec, tok))
    (enc,) = encode_sft([rendered], tok, completion_only)
    return {"input_ids": enc.input_ids, "labels": enc.labels}, enc, rendered


def test_multi_turn_trains_on_every_assistant_turn_and_its_eos(smollm2):
    row, enc, rendered = encode(MULTI, smollm2)
    assert enc.input_ids == smollm2(rendered.text, add_special_tokens=False)["input_ids"]
    assert trained_runs(smollm2, row) == ["Hello! How can I help?<|im_end|>", "Blue.<|im_end|>"]
    assert not enc.boundary_merge
    # the untrained tokens are exactly the rest of the rendered conversation
    masked = smollm2.decode([t for t, label in zip(enc.input_ids, enc.labels) if label == IGNORE_INDEX])
    assert "Hello!" not in masked and "<|im_start|>assistant\n" in masked and "Name a colour." in masked


def test_training_prompt_tokens_equal_generation_prompt_tokens(smollm2):
    row, enc, rendered = encode(MULTI, smollm2)
    first_trained = next(i for i, label in enumerate(enc.labels) if label != IGNORE_INDEX)
    assert enc.input_ids[:first_trained] == prompt_ids(MULTI[:1], smollm2, "auto")


def test_completion_only_off_trains_on_everything(smollm2):
    row, enc, _ = encode(MULTI, smollm2, completion_only=False)
    assert enc.labels == enc.input_ids


def test_arabic_text_with_qwen(qwen):
    messages = [{"role": "user", "content": "ما هي عاصمة فرنسا؟"}, {"role": "assistant", "content": "باريس"}]
    row, enc, rendered = encode(messages, qwen, "arabic")
    assert rendered.text.startswith("### التعليمات:\nما هي عاصمة فرنسا؟\n\n### الإجابة:\n")
    assert trained_text(qwen, row) == "باريس<|im_end|>"
    assert qwen.decode(enc.input_ids) == rendered.text  # Qwen tokenises Arabic losslessly


def test_a_token_merging_across_the_prompt_boundary_is_flagged(smollm2):
    # "A: " + "Paris": the space merges into " Paris", so the prompt's tokens are not a prefix of the whole
    row, enc, _ = encode([{"role": "user", "content": "Capital?"}, {"role": "assistant", "content": "Paris"}], smollm2, "{instruction}\nA: {response}")
    assert enc.boundary_merge
    assert trained_text(smollm2, row).strip() == "Paris<|im_end|>"


def test_truncation_keeps_the_start():
    from sftkit.data.tokenize import Encoded

    enc = Encoded([1, 2, 3, 4, 5], [IGNORE_INDEX, IGNORE_INDEX, 3, 4, 5])
    cut, was_cut = truncate_sft(enc, 3)
    assert was_cut and cut.input_ids == [1, 2, 3] and cut.labels == [IGNORE_INDEX, IGNORE_INDEX, 3]
    assert truncate_sft(enc, 10) == (enc, False)


def test_dpo_pair_ids(smollm2):
    tpl = resolve_template("auto", smollm2)
    prompt = [{"role": "user", "content": "Pick a number"}]
    p1, chosen = render_pair(prompt, "Seven.", smollm2, tpl)
    p2, rejected = render_pair(prompt, "No.", smollm2, tpl)
    assert p1 == p2 and chosen == "Seven.<|im_end|>" and rejected == "No.<|im_end|>"
    (pair,) = encode_pairs([(p1, chosen, rejected)], smollm2)
    eos = smollm2.eos_token_id
    assert pair.prompt_ids == prompt_ids(prompt, smollm2, "auto")
    assert smollm2.decode(pair.chosen_ids) == "Seven.<|im_end|>" and pair.chosen_ids.count(eos) == 1
    assert pair.rejected_ids[-1] == eos and pair.rejected_ids.count(eos) == 1


def test_dpo_truncation_keeps_the_prompt_end_and_fits_max_length():
    from sftkit.data.tokenize import EncodedPair

    pair = EncodedPair(list(range(10)), [100, 101, 102, 103], [200, 201])
    cut, was_cut = truncate_pair(pair, max_prompt_length=4, max_length=6)
    assert was_cut
    assert cut.prompt_ids == [6, 7, 8, 9] and cut.chosen_ids == [100, 101] and cut.rejected_ids == [200, 201]


def test_tiny_tokenizer_masks(tiny_tok):
    row, enc, rendered = encode([{"role": "user", "content": "upper: cat"}, {"role": "assistant", "content": "CAT"}], tiny_tok)
    assert rendered.text == "<|begin|><|user|>upper: cat<|end|><|assistant|>CAT<|end|>"
    assert trained_text(tiny_tok, row) == "CAT<|end|>"
