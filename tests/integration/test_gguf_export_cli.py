"""`sftkit export --format gguf|ollama` on real tiny runs: the GGUF, loaded back with its own tokenizer and chat
template, answers as the run does (f16) or within the stated tolerance (q8_0); the Modelfile renders the trained
format; a failed check leaves nothing behind."""

from __future__ import annotations

import json

import pytest

from sftkit import tiny

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("one_torch_thread")]
gguf = pytest.importorskip("gguf")

PROMPTS = [r["instruction"] for r in tiny.heldout_rows(6)] + [
    "Hello there, how are you?"
]


@pytest.fixture(autouse=True)
def _wide_console(monkeypatch):
    from sftkit.console import console

    monkeypatch.setattr(console, "width", 1000)


@pytest.fixture(scope="module")
def exports(tiny_run, tmp_path_factory):
    """The tiny run exported as gguf f16 and q8_0 through the CLI: {quant: (folder, JSON report)}."""
    from typer.testing import CliRunner

    from sftkit.cli import app

    out = {}
    for quant in ("f16", "q8_0"):
        folder = tmp_path_factory.mktemp("gguf") / f"tiny-{quant}"
        result = CliRunner().invoke(
            app,
            [
                "export",
                str(tiny_run),
                "--format",
                "gguf",
                "--quant",
                quant,
                "--output",
                str(folder),
                "--json",
            ],
            catch_exceptions=False,
        )
        assert result.exit_code == 0, result.output
        out[quant] = (folder, json.loads(result.stdout))
    return out


def _from_gguf(path):
    """The model and tokenizer as transformers reads them from the GGUF alone (float32, dequantised)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)
    model = AutoModelForCausalLM.from_pretrained(
        str(path.parent), gguf_file=path.name, dtype=torch.float32
    ).eval()
    return model, tok


def _greedy(model, tok, prompt, max_new_tokens=10):
    """Greedy answer to ``prompt`` rendered with the tokenizer's own chat template (for the GGUF: the one it carries)."""
    import torch

    text = tok.apply_chat_template(
        [{"role": "user", "content": prompt}],
        tokenize=False,
        add_generation_prompt=True,
    )
    ids = tok(text, return_tensors="pt", add_special_tokens=False)["input_ids"]
    with torch.inference_mode():
        out = model.generate(
            ids,
            max_new_tokens=max_new_tokens,
            do_sample=False,
            eos_token_id=tok.eos_token_id,
            pad_token_id=tok.pad_token_id,
        )
    return tok.decode(out[0, ids.shape[1] :], skip_special_tokens=True)


def test_f16_gguf_answers_as_the_run_does(tiny_run, exports, cli):
    folder, report = exports["f16"]
    assert (
        report["format"] == "gguf"
        and report["dtype"] == "f16"
        and report["merged"] is False
    )
    assert (
        report["greedy_equal"] is True
        and report["top1_agreement"] == 1.0
        and report["kl_divergence"] <= report["tolerance"] == 1e-4
    )
    assert (
        sorted(report["files"])
        == sorted(p.name for p in folder.iterdir())
        == ["sft_metadata.json", "tiny-f16-f16.gguf"]
    )
    model, tok = _from_gguf(folder / report["gguf_file"])
    assert (
        tok.chat_template == tiny.CHAT_TEMPLATE
    )  # the trained format travels in the file
    answers = [_greedy(model, tok, p) for p in PROMPTS]
    from_run = cli(
        "generate",
        str(tiny_run),
        "--max-new-tokens",
        "10",
        input="".join(p + "\n" for p in PROMPTS),
    )
    assert from_run.exit_code == 0, from_run.output
    assert answers == from_run.stdout.splitlines()
    assert answers[:6] == [
        r["output"] for r in tiny.heldout_rows(6)
    ]  # and the run does its task


def test_q8_0_gguf_is_within_its_tolerance(tiny_run, exports):
    """The mean KL divergence from the Hugging Face export, computed here from both models' logits."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from sftkit.gguf import TOLERANCES

    folder, report = exports["q8_0"]
    assert (
        report["tolerance"] == TOLERANCES["q8_0"]
        and 0 < report["kl_divergence"] <= TOLERANCES["q8_0"]
    )
    reader = gguf.GGUFReader(str(folder / report["gguf_file"]))
    assert (
        reader.fields["general.file_type"].contents() == gguf.LlamaFileType.MOSTLY_Q8_0
    )
    assert {
        t.tensor_type for t in reader.tensors if t.name.endswith("attn_q.weight")
    } == {gguf.GGMLQuantizationType.Q8_0}
    model, tok = _from_gguf(folder / report["gguf_file"])
    hf = AutoModelForCausalLM.from_pretrained(
        str(tiny_run / "model"), dtype=torch.float32
    ).eval()
    hf_tok = AutoTokenizer.from_pretrained(str(tiny_run / "model"))
    kls = []
    with torch.inference_mode():
        for prompt in PROMPTS:
            text = hf_tok.apply_chat_template(
                [{"role": "user", "content": prompt}],
                tokenize=False,
                add_generation_prompt=True,
            )
            ids = hf_tok(text, return_tensors="pt", add_special_tokens=False)[
                "input_ids"
            ]
            assert tok(text)["input_ids"] == ids[0].tolist()
            p = torch.log_softmax(hf(input_ids=ids).logits[0].double(), -1)
            q = torch.log_softmax(model(input_ids=ids).logits[0].double(), -1)
            kls.append((p.exp() * (p - q)).sum(-1))
    assert float(torch.cat(kls).mean()) <= TOLERANCES["q8_0"]
    assert [_greedy(model, tok, p) for p in PROMPTS[:6]] == [
        r["output"] for r in tiny.heldout_rows(6)
    ]


def test_ollama_export_of_a_lora_run(lora_run, cli, tmp_path):
    from sftkit.ollama import ollama_values, render

    out = tmp_path / "Tiny LoRA"
    result = cli("export", str(lora_run), "--format", "ollama", "--output", str(out))
    assert result.exit_code == 0, result.output
    assert (
        "LoRA adapter merged" in result.stderr
        and "to run it with Ollama: ollama create tiny-lora -f" in result.stderr
    )
    assert sorted(p.name for p in out.iterdir()) == [
        "Modelfile",
        "Tiny LoRA-f16.gguf",
        "sft_metadata.json",
    ]
    text = (out / "Modelfile").read_text()
    assert "FROM ./Tiny LoRA-f16.gguf" in text.splitlines()
    template = text.split('TEMPLATE """', 1)[1].split('"""', 1)[0]
    _, tok = _from_gguf(out / "Tiny LoRA-f16.gguf")
    conversation = [
        {"role": "system", "content": "Upper-case it."},
        {"role": "user", "content": "cat"},
        {"role": "assistant", "content": "CAT"},
        {"role": "user", "content": "dog"},
    ]
    for messages in (conversation, conversation[1:], conversation[1:2]):
        assert render(
            template, ollama_values(messages, None)
        ) == tok.apply_chat_template(
            messages, tokenize=False, add_generation_prompt=True
        )


def test_a_failed_check_leaves_nothing_behind(tiny_run, cli, tmp_path):
    out = tmp_path / "strict"
    result = cli(
        "export",
        str(tiny_run),
        "--format",
        "gguf",
        "--quant",
        "q8_0",
        "--output",
        str(out),
        "--tolerance",
        "0",
    )
    assert (
        result.exit_code == 1
        and "mean KL divergence" in result.stderr
        and "nothing was written" in result.stderr
    )
    assert list(tmp_path.iterdir()) == []


def test_usage_errors_name_the_flags(tiny_run, cli, tmp_path):
    result = cli(
        "export", str(tiny_run), "--output", str(tmp_path / "a"), "--quant", "q8_0"
    )
    assert (
        result.exit_code == 2
        and "--quant applies to GGUF exports only" in result.stderr
        and "--format gguf" in result.stderr
    )
    result = cli(
        "export",
        str(tiny_run),
        "--output",
        str(tmp_path / "b"),
        "--format",
        "gguf",
        "--dtype",
        "bfloat16",
    )
    assert (
        result.exit_code == 2
        and "--dtype applies to Hugging Face exports" in result.stderr
        and "--quant" in result.stderr
    )
    result = cli(
        "export",
        str(tiny_run),
        "--output",
        str(tmp_path / "c"),
        "--format",
        "gguf",
        "--quant",
        "q4_k_m",
    )
    assert result.exit_code == 2 and "q4_k_m" in result.stderr
    assert list(tmp_path.iterdir()) == []
