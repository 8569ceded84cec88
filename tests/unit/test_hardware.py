"""Precision and fused kernels chosen from the hardware (train.precision, train.kernels), with CUDA mocked."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from sftkit.errors import SftkitError


def _cfg(*sets: str):
    from sftkit.resolve import resolve_config

    return resolve_config(preset="tiny", sets=["train.use_cpu=false", *sets]).config


@pytest.fixture
def gpu(monkeypatch):
    """A CUDA GPU as torch reports it; ``gpu(bf16=False)`` for one older than Ampere."""
    import torch

    def make(bf16: bool = True, name: str = "NVIDIA H100 80GB HBM3") -> None:
        monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
        monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: bf16)
        monkeypatch.setattr(torch.cuda, "get_device_name", lambda *a, **k: name)

    return make


@pytest.fixture
def no_gpu(monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)


@pytest.fixture
def liger(tmp_path: Path, monkeypatch):
    """An installed liger-kernel (0.8.5) whose kernel table has ``llama``."""
    pkg = tmp_path / "site" / "liger_kernel" / "transformers"
    pkg.mkdir(parents=True)
    (pkg.parent / "__init__.py").write_text("")
    (pkg / "__init__.py").write_text("")
    (pkg / "monkey_patch.py").write_text("MODEL_TYPE_TO_APPLY_LIGER_FN = {'llama': None, 'qwen3': None}\n")
    dist = tmp_path / "site" / "liger_kernel-0.8.5.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: liger-kernel\nVersion: 0.8.5\n")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    for name in [m for m in sys.modules if m.startswith("liger_kernel")]:
        monkeypatch.delitem(sys.modules, name)


def _model(model_type: str):
    class Config:
        pass

    class Model:
        config = Config()

    Model.config.model_type = model_type
    return Model()


# -- precision ----------------------------------------------------------------------------------------


def test_auto_precision_is_float32_on_the_cpu(no_gpu):
    from sftkit.training.args import model_load_args, trainer_args
    from sftkit.training.hardware import with_precision

    cfg, record = with_precision(_cfg())
    assert record == {"precision": "fp32", "precision_chosen_from": "train.precision=auto: no CUDA GPU in use"}
    assert not cfg.train.bf16 and not cfg.train.fp16
    assert trainer_args(cfg)["bf16"] is False and model_load_args(cfg)["dtype"] == "float32"


def test_auto_precision_is_float32_with_use_cpu_even_on_a_gpu(gpu):
    from sftkit.training.hardware import with_precision

    gpu()
    _, record = with_precision(_cfg("train.use_cpu=true"))
    assert record["precision"] == "fp32" and "train.use_cpu" in record["precision_chosen_from"]


def test_auto_precision_is_bf16_on_a_gpu_that_supports_it(gpu):
    from sftkit.training.args import model_load_args, trainer_args
    from sftkit.training.hardware import with_precision

    gpu(bf16=True, name="NVIDIA A100-SXM4-80GB")
    cfg, record = with_precision(_cfg())
    assert record == {"precision": "bf16", "precision_chosen_from": "train.precision=auto: NVIDIA A100-SXM4-80GB supports bfloat16"}
    args = trainer_args(cfg)
    assert args["bf16"] is True and args["fp16"] is False
    assert model_load_args(cfg)["dtype"] == "bfloat16"


def test_auto_precision_is_fp16_on_an_older_gpu(gpu):
    from sftkit.training.args import model_load_args, trainer_args
    from sftkit.training.hardware import with_precision

    gpu(bf16=False, name="Tesla T4")
    cfg, record = with_precision(_cfg())
    assert record["precision"] == "fp16" and "Tesla T4 does not support bfloat16" in record["precision_chosen_from"]
    assert trainer_args(cfg)["fp16"] is True and trainer_args(cfg)["bf16"] is False
    assert model_load_args(cfg)["dtype"] == "float32"  # fp16 mixed precision keeps float32 master weights


@pytest.mark.parametrize(
    "sets, precision, why",
    [
        (["train.precision=fp32"], "fp32", "train.precision=fp32"),
        (["train.bf16=true"], "bf16", "train.bf16"),
        (["train.fp16=true"], "fp16", "train.fp16"),
        (["train.fp16=true", "train.precision=fp16"], "fp16", "train.fp16"),
    ],
)
def test_a_precision_asked_for_is_taken_as_asked(gpu, sets, precision, why):
    from sftkit.training.hardware import with_precision

    gpu(bf16=True)
    cfg, record = with_precision(_cfg(*sets))
    assert record == {"precision": precision, "precision_chosen_from": why}
    assert (cfg.train.bf16, cfg.train.fp16) == (precision == "bf16", precision == "fp16")


def test_precision_contradicting_a_mixed_precision_flag_is_a_problem():
    from sftkit.errors import ConfigError

    with pytest.raises(ConfigError) as err:
        _cfg("train.bf16=true", "train.precision=fp32")
    assert "train.precision" in str(err.value) and "train.bf16" in str(err.value)
    assert "train.precision=auto" in (err.value.hint or "")


def test_precision_fp16_without_a_gpu_fails_naming_the_key(no_gpu):
    from sftkit.training.model import check_hardware

    with pytest.raises(SftkitError) as err:
        check_hardware(_cfg("train.precision=fp16"))
    assert str(err.value).startswith("train.precision=fp16 needs a CUDA GPU") and err.value.hint == "set train.precision=auto"


def test_precision_bf16_on_an_older_gpu_fails_naming_the_key(gpu):
    from sftkit.training.model import check_hardware

    gpu(bf16=False, name="Tesla V100")
    with pytest.raises(SftkitError) as err:
        check_hardware(_cfg("train.precision=bf16"))
    assert "train.precision=bf16 is not supported by Tesla V100" in str(err.value)


# -- kernels ------------------------------------------------------------------------------------------


def test_auto_kernels_are_none_on_the_cpu(no_gpu, liger):
    from sftkit.training.args import trainer_args
    from sftkit.training.hardware import with_kernels

    cfg, record = with_kernels(_cfg(), model=_model("llama"))
    assert record == {"kernels": "none", "kernels_chosen_from": "train.kernels=auto: no CUDA GPU in use"}
    assert trainer_args(cfg)["use_liger_kernel"] is False


def test_auto_kernels_without_the_package_are_none_and_say_how_to_get_it(gpu):
    from sftkit.training.hardware import kernels_of, liger_installed

    gpu()
    if liger_installed():
        pytest.skip("liger-kernel is installed here")
    kernels, why = kernels_of(_cfg(), model_type="llama")
    assert kernels == "none" and "liger-kernel is not installed" in why and "pip install liger-kernel" in why


def test_auto_kernels_are_liger_on_a_gpu_for_a_supported_architecture(gpu, liger):
    from sftkit.training.args import trainer_args
    from sftkit.training.hardware import with_kernels

    gpu()
    cfg, record = with_kernels(_cfg(), model=_model("llama"))
    assert record == {"kernels": "liger", "kernels_chosen_from": "train.kernels=auto: Liger kernels for llama"}
    assert trainer_args(cfg)["use_liger_kernel"] is True


def test_auto_kernels_are_none_for_an_architecture_liger_lacks(gpu, liger):
    from sftkit.training.hardware import with_kernels

    gpu()
    cfg, record = with_kernels(_cfg(), model=_model("gpt2"))
    assert record == {"kernels": "none", "kernels_chosen_from": "train.kernels=auto: Liger has no kernels for gpt2 models"}
    assert cfg.train.kernels == "none"


def test_auto_kernels_before_the_model_is_loaded_leave_the_architecture_to_the_run(gpu, liger):
    from sftkit.training.hardware import kernels_of

    gpu()
    kernels, why = kernels_of(_cfg())
    assert kernels == "liger" and "architecture is checked at the start of the run" in why


def test_no_kernels_when_asked_for_none(gpu, liger):
    from sftkit.training.hardware import kernels_of

    gpu()
    assert kernels_of(_cfg("train.kernels=none"), model_type="llama") == ("none", "train.kernels=none")


def test_liger_on_the_cpu_is_an_error_naming_the_key(no_gpu, liger):
    from sftkit.training.model import check_hardware

    with pytest.raises(SftkitError) as err:
        check_hardware(_cfg("train.kernels=liger"))
    assert str(err.value) == "train.kernels=liger needs a CUDA GPU, and none is in use here"
    assert "train.kernels=auto" in err.value.hint


def test_liger_without_the_package_is_an_error_with_the_install_hint(gpu):
    from sftkit.training.hardware import kernels_of, liger_installed

    gpu()
    if liger_installed():
        pytest.skip("liger-kernel is installed here")
    with pytest.raises(SftkitError) as err:
        kernels_of(_cfg("train.kernels=liger"))
    assert "needs the liger-kernel package" in str(err.value) and "pip install liger-kernel" in err.value.hint


def test_liger_for_an_architecture_it_lacks_is_an_error(gpu, liger):
    from sftkit.training.hardware import with_kernels

    gpu()
    with pytest.raises(SftkitError) as err:
        with_kernels(_cfg("train.kernels=liger"), model=_model("gpt2"))
    assert "Liger has no kernels for gpt2 models" in str(err.value) and "train.kernels=auto" in err.value.hint


# -- the dry run --------------------------------------------------------------------------------------


def test_dry_run_shows_the_precision_the_kernels_and_why(cli, no_gpu):
    import json

    result = cli("train", "--preset", "tiny", "--dry-run", "--json")
    assert result.exit_code == 0, result.output
    plan = json.loads(result.stdout)
    assert plan["hardware"] == {
        "precision": "fp32",
        "precision_chosen_from": "train.precision=auto: no CUDA GPU in use (train.use_cpu)",
        "kernels": "none",
        "kernels_chosen_from": "train.kernels=auto: no CUDA GPU in use",
    }
    assert plan["trainer"]["args"]["use_liger_kernel"] is False
    assert plan["config"]["train"]["precision"] == "auto"  # the config as given; the choice is under hardware


def test_dry_run_refuses_liger_on_a_cpu_machine(cli, no_gpu):
    result = cli("train", "--preset", "tiny", "--set", "train.kernels=liger", "--dry-run")
    assert result.exit_code == 2, result.output
    assert "train.kernels=liger needs a CUDA GPU" in result.stderr and "train.kernels=auto" in result.stderr
