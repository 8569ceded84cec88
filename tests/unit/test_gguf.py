"""GGUF export on the tiny model sftkit builds itself (no training): what the file holds, the check that loads it
back, and the one-line refusals. Trained runs and the real SmolLM2 are in tests/integration and tests/realmodel."""

from __future__ import annotations

import json

import pytest
from data_fixtures import qwen, smollm2, tiny_tok  # noqa: F401 - fixtures

from sftkit.errors import SftkitError

gguf = pytest.importorskip("gguf")


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """builtin:tiny exported once as gguf f16: (folder, result)."""
    from sftkit.gguf import export_gguf

    out = tmp_path_factory.mktemp("gguf") / "tiny"
    return out, export_gguf("builtin:tiny", out, quant="f16")


def _fields(path):
    reader = gguf.GGUFReader(str(path))
    return reader, {
        name: field.contents()
        for name, field in reader.fields.items()
        if not name.startswith("GGUF.")
    }


def test_the_file_holds_the_weights_the_tokenizer_and_the_trained_template(exported):
    from sftkit import tiny

    out, result = exported
    assert (
        result.files == ["sft_metadata.json", "tiny-f16.gguf"]
        and sorted(p.name for p in out.iterdir()) == result.files
    )
    reader, fields = _fields(out / result.gguf_file)
    assert (
        fields["general.architecture"] == "llama"
        and fields["general.file_type"] == gguf.LlamaFileType.MOSTLY_F16
    )
    assert (
        fields["llama.block_count"] == tiny.NUM_LAYERS
        and fields["llama.embedding_length"] == tiny.HIDDEN_SIZE
    )
    assert (
        fields["tokenizer.ggml.model"] == "gpt2"
        and fields["tokenizer.ggml.pre"] == "default"
    )
    assert (
        fields["tokenizer.ggml.merges"] == []
    )  # llama.cpp refuses a BPE vocabulary without the key
    assert fields["tokenizer.chat_template"] == tiny.CHAT_TEMPLATE
    assert (
        fields["tokenizer.ggml.add_bos_token"] is False
    )  # the template writes the BOS itself
    tokens, types = fields["tokenizer.ggml.tokens"], fields["tokenizer.ggml.token_type"]
    assert tokens[fields["tokenizer.ggml.eos_token_id"]] == tiny.EOS_TOKEN
    assert {
        t for t, k in zip(tokens, types, strict=True) if k == gguf.TokenType.CONTROL
    } == set(tiny.SPECIAL_TOKENS)
    kinds = {t.name: t.tensor_type for t in reader.tensors}
    assert "output.weight" not in kinds  # tied to the embeddings, as in the model
    assert (
        kinds["token_embd.weight"] == gguf.GGMLQuantizationType.F16
        and kinds["blk.0.attn_norm.weight"] == gguf.GGMLQuantizationType.F32
    )


def test_the_check_loads_it_back(exported):
    from sftkit.gguf import TOLERANCES

    out, result = exported
    assert (
        0 <= result.kl_divergence <= TOLERANCES["f16"]
        and result.tolerance == TOLERANCES["f16"]
    )
    assert (
        result.top1_agreement == 1.0
        and result.greedy_equal is True
        and result.max_abs_diff < 0.01
    )
    meta = json.loads((out / "sft_metadata.json").read_text())["export"]
    assert (
        meta["format"] == "gguf"
        and meta["quantization"] == "f16"
        and meta["kl_divergence"] == result.kl_divergence
    )


def test_llama_attention_rows_are_in_llama_cpp_order(exported):
    """llama.cpp rotates interleaved pairs: q_proj rows are reordered (convert_hf_to_gguf's LlamaModel.permute)."""
    import numpy as np
    import torch
    from transformers import AutoModelForCausalLM

    from sftkit import tiny
    from sftkit.modeling import resolve_model_path

    out, result = exported
    reader, _ = _fields(out / result.gguf_file)
    stored = {t.name: t for t in reader.tensors}["blk.0.attn_q.weight"]
    q = np.asarray(gguf.dequantize(stored.data, stored.tensor_type)).reshape(
        tiny.HIDDEN_SIZE, tiny.HIDDEN_SIZE
    )
    model = AutoModelForCausalLM.from_pretrained(
        resolve_model_path("builtin:tiny")[0], dtype=torch.float32
    )
    hf = model.model.layers[0].self_attn.q_proj.weight.detach().numpy()
    head = tiny.HIDDEN_SIZE // tiny.NUM_HEADS
    expected = (
        hf.reshape(tiny.NUM_HEADS, 2, head // 2, -1).swapaxes(1, 2).reshape(hf.shape)
    )
    assert np.allclose(q, expected.astype(np.float16), atol=0) and not np.allclose(
        q, hf, atol=1e-3
    )


def test_a_failed_check_leaves_nothing_behind(tmp_path):
    from sftkit.gguf import export_gguf

    with pytest.raises(SftkitError, match="mean KL divergence") as info:
        export_gguf("builtin:tiny", tmp_path / "strict", quant="q8_0", tolerance=0.0)
    assert "nothing was written" in info.value.hint
    assert list(tmp_path.iterdir()) == []


def test_refusals_are_one_line_before_any_work(tmp_path):
    from sftkit.export import export

    with pytest.raises(SftkitError, match="unknown quantisation 'q4_k_m'") as info:
        export("builtin:tiny", tmp_path / "a", format="gguf", quant="q4_k_m")
    assert "llama-quantize" in info.value.hint and info.value.exit_code == 2
    with pytest.raises(SftkitError, match="quant applies to GGUF exports only"):
        export("builtin:tiny", tmp_path / "b", quant="q8_0")
    with pytest.raises(SftkitError, match="dtype applies to Hugging Face exports"):
        export("builtin:tiny", tmp_path / "c", format="gguf", dtype="bfloat16")
    assert list(tmp_path.iterdir()) == []


def test_other_architectures_are_refused_by_name():
    from transformers import GPT2Config

    from sftkit.gguf import architecture

    with pytest.raises(
        SftkitError, match="cannot write GPT2LMHeadModel models as GGUF"
    ) as info:
        architecture(GPT2Config(architectures=["GPT2LMHeadModel"]))
    assert "convert_hf_to_gguf" in info.value.hint


def test_scaled_rotary_embeddings_are_refused():
    from transformers import LlamaConfig

    from sftkit.gguf import architecture

    scaled = {
        "rope_type": "llama3",
        "rope_theta": 500000.0,
        "factor": 8.0,
        "low_freq_factor": 1.0,
        "high_freq_factor": 4.0,
        "original_max_position_embeddings": 8192,
    }
    with pytest.raises(SftkitError, match=r"rotary embedding is scaled \(llama3\)"):
        architecture(
            LlamaConfig(architectures=["LlamaForCausalLM"], rope_parameters=scaled)
        )
    assert (
        architecture(LlamaConfig(architectures=["LlamaForCausalLM"])).gguf_arch
        == "LLAMA"
    )


@pytest.mark.parametrize(
    "name, pre", [("smollm2", "smollm"), ("qwen", "qwen2"), ("tiny_tok", "default")]
)
def test_pre_tokenizer_names_are_llama_cpp_s(request, name, pre):
    from types import SimpleNamespace

    from sftkit.gguf import Vocabulary

    tok = request.getfixturevalue(name)
    vocab = Vocabulary.of(tok, SimpleNamespace(vocab_size=len(tok)))
    assert vocab.pre == pre and len(vocab.tokens) == len(tok)
    assert (
        vocab.types[tok.convert_tokens_to_ids(tok.eos_token)] == gguf.TokenType.CONTROL
    )


def test_a_tokenizer_llama_cpp_does_not_know_is_refused(smollm2):  # noqa: F811 - a fixture
    import copy
    from types import SimpleNamespace

    from tokenizers import pre_tokenizers

    from sftkit.gguf import Vocabulary

    tok = copy.deepcopy(smollm2)
    tok.backend_tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.Punctuation(), pre_tokenizers.ByteLevel(add_prefix_space=True)]
    )
    with pytest.raises(SftkitError, match="llama.cpp does not know its pre-tokenizer"):
        Vocabulary.of(tok, SimpleNamespace(vocab_size=len(tok)))


def test_the_help_shows_the_formats_and_quantisations_written():
    import typing

    from sftkit.cli import _facts
    from sftkit.gguf import FORMATS, QUANTS

    assert typing.get_args(_facts.ExportFormat) == ("hf", *FORMATS)
    assert typing.get_args(_facts.GGUFQuant) == tuple(QUANTS)


@pytest.mark.slow  # no training, but transformers reads a 150k-token vocabulary back from the file three times
@pytest.mark.parametrize(
    "name, config_class, extra",
    [
        (
            "qwen",
            "Qwen2Config",
            {"vocab_size": 151936, "num_key_value_heads": 2},
        ),  # more embeddings than tokens: [PAD] rows
        (
            "smollm2",
            "LlamaConfig",
            {
                "vocab_size": 49152,
                "num_key_value_heads": 2,
                "tie_word_embeddings": True,
            },
        ),
    ],
)
def test_small_models_with_real_tokenizers(
    request, tmp_path, name, config_class, extra
):
    """A randomly initialised Qwen2 (q/k/v biases, no row reordering) and Llama (grouped-query attention) with the
    real Qwen2.5 and SmolLM2 tokenizers: written, loaded back, checked; the pre-tokenizer is llama.cpp's name."""
    import torch
    import transformers

    from sftkit.gguf import export_gguf

    tok = request.getfixturevalue(name)
    config = getattr(transformers, config_class)(
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        max_position_embeddings=512,
        **extra,
    )
    torch.manual_seed(0)
    model = transformers.AutoModelForCausalLM.from_config(config)
    model.save_pretrained(tmp_path / "model")
    tok.save_pretrained(tmp_path / "model")
    result = export_gguf(str(tmp_path / "model"), tmp_path / "out", quant="f16")
    assert result.greedy_equal is True and result.kl_divergence <= result.tolerance
    reader, fields = _fields(tmp_path / "out" / result.gguf_file)
    arch = fields["general.architecture"]
    assert arch == {"Qwen2Config": "qwen2", "LlamaConfig": "llama"}[config_class]
    assert fields["tokenizer.ggml.pre"] == {"qwen": "qwen2", "smollm2": "smollm"}[name]
    assert (
        len(fields["tokenizer.ggml.tokens"]) == extra["vocab_size"]
        and fields["tokenizer.chat_template"] == tok.chat_template
    )
    names = {t.name for t in reader.tensors}
    assert ("blk.0.attn_q.bias" in names) == (arch == "qwen2") and (
        "output.weight" in names
    ) == (arch == "qwen2")
