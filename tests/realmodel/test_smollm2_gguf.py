"""The real SmolLM2-135M-Instruct exported as GGUF (f16 for Ollama, q8_0): loaded back with its own tokenizer and
chat template it answers as the Hugging Face model does (f16) or stays within the stated tolerance (q8_0), and the
Modelfile renders SmolLM2's chat format, default system prompt included."""

from __future__ import annotations

import pytest

gguf = pytest.importorskip("gguf")

PROMPTS = [
    "What is the capital of France?",
    "Write one sentence about the sea.",
    "List three colours.",
]
CONVERSATION = [
    {"role": "user", "content": "Hi!"},
    {"role": "assistant", "content": "Hello! How can I help you today?"},
    {"role": "user", "content": "Name a fruit."},
]


def _from_gguf(path):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)
    return AutoModelForCausalLM.from_pretrained(
        str(path.parent), gguf_file=path.name, dtype=torch.float32
    ).eval(), tok


def _prompt_ids(tok, prompt):
    text = tok.apply_chat_template(
        [{"role": "user", "content": prompt}],
        tokenize=False,
        add_generation_prompt=True,
    )
    return tok(text, return_tensors="pt", add_special_tokens=False)["input_ids"]


def test_f16_for_ollama_answers_as_the_hf_model(smollm2_dir, tmp_path):
    import torch

    import sftkit
    from sftkit.gguf import TOLERANCES
    from sftkit.ollama import ollama_values, render

    out = tmp_path / "smollm2"
    result = sftkit.export_model(smollm2_dir, out, format="ollama", quant="f16")
    assert result.greedy_equal is True and result.kl_divergence <= TOLERANCES["f16"]
    model, tok = _from_gguf(out / result.gguf_file)
    with torch.inference_mode():
        answers = []
        for prompt in PROMPTS:
            ids = _prompt_ids(tok, prompt)
            new = model.generate(
                ids,
                max_new_tokens=12,
                do_sample=False,
                eos_token_id=tok.eos_token_id,
                pad_token_id=tok.pad_token_id,
            )
            answers.append(tok.decode(new[0, ids.shape[1] :], skip_special_tokens=True))
    del model
    assert answers == sftkit.load(smollm2_dir).generate(PROMPTS, max_new_tokens=12)

    text = (out / "Modelfile").read_text()
    template = text.split('TEMPLATE """', 1)[1].split('"""', 1)[0]
    system = text.split('SYSTEM """', 1)[1].split('"""', 1)[0]
    assert (
        system == "You are a helpful AI assistant named SmolLM, trained by Hugging Face"
    )
    for messages in (
        CONVERSATION,
        [{"role": "system", "content": "Be brief."}, *CONVERSATION],
    ):
        assert render(
            template, ollama_values(messages, system)
        ) == tok.apply_chat_template(
            messages, tokenize=False, add_generation_prompt=True
        )


def test_q8_0_is_within_its_tolerance(smollm2_dir, tmp_path):
    import torch
    from transformers import AutoModelForCausalLM

    import sftkit
    from sftkit.gguf import TOLERANCES

    result = sftkit.export_model(
        smollm2_dir, tmp_path / "q8", format="gguf", quant="q8_0"
    )
    assert 0 < result.kl_divergence <= result.tolerance == TOLERANCES["q8_0"]
    assert result.top1_agreement >= 0.9
    model, tok = _from_gguf(tmp_path / "q8" / result.gguf_file)
    hf = AutoModelForCausalLM.from_pretrained(
        str(smollm2_dir), dtype=torch.float32
    ).eval()
    kls = []
    with torch.inference_mode():
        for prompt in PROMPTS:
            ids = _prompt_ids(tok, prompt)
            p = torch.log_softmax(hf(input_ids=ids).logits[0].double(), -1)
            q = torch.log_softmax(model(input_ids=ids).logits[0].double(), -1)
            kls.append((p.exp() * (p - q)).sum(-1))
    assert float(torch.cat(kls).mean()) <= TOLERANCES["q8_0"]
