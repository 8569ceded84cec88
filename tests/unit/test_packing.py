"""Packed rows do not attend to each other: what `data.packing` relies on (TRL's BFD packing + position_ids)."""

from __future__ import annotations


def test_packed_sequences_give_the_same_logits_as_separate_ones():
    import torch

    from sftkit.tiny import build_model, build_tokenizer

    tok = build_tokenizer()
    model = build_model(tok, seed=0).eval()
    a = tok("first row", add_special_tokens=False)["input_ids"]
    b = tok("second, longer row", add_special_tokens=False)["input_ids"]
    with torch.no_grad():
        alone_b = model(torch.tensor([b])).logits[0]
        # as in training: no cache, no 2-D attention mask, position ids restarting at each packed row
        packed = model(
            torch.tensor([a + b]), position_ids=torch.tensor([list(range(len(a))) + list(range(len(b)))]), use_cache=False
        ).logits[0]
        leaky = model(torch.tensor([a + b]), use_cache=False).logits[0]  # without position ids: one long row
    assert torch.allclose(packed[len(a) :], alone_b, atol=1e-5)
    assert not torch.allclose(leaky[len(a) :], alone_b, atol=1e-3)  # the check above can fail
