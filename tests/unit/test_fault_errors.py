"""Bad input ends as one plain line naming what and where, a hint, exit 2 (usage, config) or 1, no traceback and
no half-written output: one test (or a few) per fault, none of them training anything."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import typing
from pathlib import Path

import pytest

from sftkit.errors import ConfigError, DataError, SftkitError


def one_error(stderr: str) -> str:
    """The error line of a CLI run's stderr (and the check that there is exactly one, with no traceback)."""
    stderr = re.sub(r"\x1b\[[0-9;]*m", "", stderr)  # styles (FORCE_COLOR)
    assert "Traceback" not in stderr and "unexpected" not in stderr, stderr
    lines = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, stderr
    return lines[0]


@pytest.fixture(scope="module")
def tiny_model() -> Path:
    """The built tiny model folder (config, tokenizer, model.safetensors) in the test session's cache."""
    from sftkit.modeling import resolve_model_path

    return Path(resolve_model_path("builtin:tiny")[0])


def copy_model(source: Path, target: Path, *, weights: bool = True) -> Path:
    shutil.copytree(source, target, ignore=None if weights else shutil.ignore_patterns("*.safetensors", "*.bin"))
    return target


# --------------------------------------------------------------------------- 1. ./sftkit.yaml is a folder or unreadable


def test_a_project_file_that_is_a_folder_is_named(cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "sftkit.yaml").mkdir()
    result = cli("train", "--dry-run")
    assert result.exit_code == 2 and "sftkit.yaml is a folder, not a config file" in one_error(result.stderr)
    result = cli("prepare")  # (an explicit --config DIR is refused by click itself, as a usage error)
    assert result.exit_code == 2 and "sftkit.yaml is a folder" in one_error(result.stderr)


def test_an_unreadable_project_file_is_named(tmp_path, monkeypatch):
    # chmod 000 does not stop root (these tests may run as root), so the read itself is made to fail
    from sftkit.yamlio import load_yaml

    path = tmp_path / "sftkit.yaml"
    path.write_text("extends: tiny\n")

    def refuse(self, *args, **kwargs):
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "read_text", refuse)
    with pytest.raises(ConfigError, match=r"cannot read .*sftkit\.yaml: Permission denied"):
        load_yaml(path)


# --------------------------------------------------------------------------- 2. a model folder without weights


def test_a_model_folder_without_weights_says_so(cli, tiny_model, tmp_path):
    folder = copy_model(tiny_model, tmp_path / "noweights", weights=False)
    result = cli("generate", str(folder), "hello")
    line = one_error(result.stderr)
    assert result.exit_code == 1 and "cannot download" not in line
    assert f"{folder} has no weights" in line
    for expected in ("model.safetensors", "pytorch_model.bin", "model.safetensors.index.json"):
        assert expected in line


def test_training_from_a_model_folder_without_weights_says_so(tiny_model, tmp_path):
    from sftkit.resolve import resolve_config
    from sftkit.training.model import load_model

    folder = copy_model(tiny_model, tmp_path / "noweights", weights=False)
    cfg = resolve_config(preset="tiny", overrides={"model.name": str(folder)}).config
    with pytest.raises(SftkitError, match=r"has no weights: expected model\.safetensors"):
        load_model(cfg)


def test_a_sharded_model_with_a_missing_shard_names_it(tmp_path):
    from sftkit.modeling import weights_problem

    (tmp_path / "config.json").write_text("{}")
    (tmp_path / "model.safetensors.index.json").write_text(json.dumps({"weight_map": {"a": "model-00001-of-00002.safetensors"}}))
    problem = weights_problem(tmp_path)
    assert problem is not None and "model-00001-of-00002.safetensors" in problem.message and "missing" in problem.message


# --------------------------------------------------------------------------- 3. export of truncated weights


def test_export_of_a_truncated_safetensors_file_names_it_and_leaves_nothing(cli, tiny_model, tmp_path):
    folder = copy_model(tiny_model, tmp_path / "cut")
    weights = folder / "model.safetensors"
    os.truncate(weights, weights.stat().st_size // 2)
    out = tmp_path / "exports" / "cut"
    result = cli("export", str(folder), "-o", str(out))
    line = one_error(result.stderr)
    assert result.exit_code == 1 and str(weights) in line and "corrupt or truncated" in line
    assert not out.exists() and (not out.parent.exists() or not any(out.parent.iterdir()))  # no temp folder either
    # generate (the same loading) says the same
    assert "corrupt or truncated" in one_error(cli("generate", str(folder), "hello").stderr)


# --------------------------------------------------------------------------- 4. binary bytes on generate's stdin


def test_binary_stdin_names_the_line(runner, tiny_model):
    from sftkit.cli import app

    result = runner.invoke(app, ["generate", str(tiny_model), "--max-new-tokens", "1"], input=b"cat\n\xff\xfe\x00\x01garbage\n")
    assert result.exit_code == 1
    assert "stdin line 2 is not UTF-8 text" in one_error(result.stderr)


def test_a_prompt_file_that_is_not_utf8_names_the_line(cli, tiny_model, tmp_path):
    prompts = tmp_path / "prompts.txt"
    prompts.write_bytes(b"cat\ndog\n\xe9t\xe9\n")
    result = cli("generate", str(tiny_model), "--input", str(prompts), "--max-new-tokens", "1")
    assert result.exit_code == 1 and f"{prompts} line 3 is not UTF-8 text" in one_error(result.stderr)


# --------------------------------------------------------------------------- 5. a prompt longer than the model takes


def test_a_prompt_too_long_for_the_model_is_refused_naming_it(runner, tiny_model):
    from sftkit.cli import app

    long = "a " * 8000
    result = runner.invoke(app, ["generate", str(tiny_model), "--max-new-tokens", "1"], input=f"cat\n{long}\n")
    line = one_error(result.stderr)
    assert result.exit_code == 1 and result.stdout == ""
    assert re.search(r"stdin:2: the prompt is \d{5} tokens long and the model takes at most 256", line), line
    assert "--max-new-tokens" in result.stderr
    result = runner.invoke(app, ["generate", str(tiny_model), "--max-new-tokens", "1", "cat", long])
    assert result.exit_code == 1 and "argument 2:" in one_error(result.stderr)


def test_the_api_refuses_a_prompt_too_long_for_the_model(tiny_model):
    import sftkit

    model = sftkit.load(tiny_model)
    with pytest.raises(DataError, match=r"prompt 2: the prompt is \d+ tokens long and the model takes at most 256"):
        model.generate(["cat", "a " * 300], max_new_tokens=1)


# --------------------------------------------------------------------------- 6. deeply nested config files


def test_a_deeply_nested_legacy_file_is_named(tmp_path):
    from sftkit.legacy.read import read_legacy

    path = tmp_path / "deep.py"
    path.write_text("from x import SmolLM3Config\nclass MyConfig(SmolLM3Config):\n    batch_size: int = " + "-" * 5000 + "1\nconfig = MyConfig()\n")
    with pytest.raises(ConfigError, match=r"deep\.py: nested too deeply to read"):
        read_legacy(path)


def test_a_deeply_nested_yaml_config_is_named(cli, tmp_path):
    path = tmp_path / "deep.yaml"
    path.write_text("train:\n  learning_rate: " + "[" * 5000 + "]" * 5000 + "\n")
    result = cli("train", "--config", str(path), "--dry-run")
    assert result.exit_code == 2 and "deep.yaml: nested too deeply to read" in one_error(result.stderr)


# --------------------------------------------------------------------------- 7. --data - (stdin)


def test_data_from_stdin_is_refused_with_a_hint(cli):
    result = cli("prepare", "--preset", "tiny", "--data", "-", input='{"prompt": "a", "completion": "A"}\n')
    line = one_error(result.stderr)
    assert result.exit_code == 2 and "--data" in line and "data.dataset" in line and "stdin" in line
    assert "save the rows to a file" in result.stderr
    result = cli("train", "--preset", "tiny", "--set", "data.dataset=-", "--dry-run")
    assert result.exit_code == 2 and "stdin" in one_error(result.stderr) and result.stdout == ""


# --------------------------------------------------------------------------- 8. inf and nan values


def _float_keys() -> list[str]:
    from pydantic import BaseModel

    from sftkit.config import RunConfig

    keys = []
    for section, info in RunConfig.model_fields.items():
        if isinstance(info.annotation, type) and issubclass(info.annotation, BaseModel):
            for name, field in info.annotation.model_fields.items():
                if field.annotation is float or float in typing.get_args(field.annotation):
                    keys.append(f"{section}.{name}")
    return keys


FLOAT_KEYS = _float_keys()


def test_every_float_key_is_found():
    assert {"train.learning_rate", "dpo.beta", "data.validation_fraction", "lora.dropout"} <= set(FLOAT_KEYS)


@pytest.mark.parametrize("key", FLOAT_KEYS)
@pytest.mark.parametrize("value", [".inf", "-.inf", ".nan"])
def test_inf_and_nan_are_refused_in_a_config_file_and_in_set(key, value, tmp_path):
    from sftkit.resolve import resolve_config

    section, name = key.split(".")
    path = tmp_path / "c.yaml"
    path.write_text(f"extends: tiny\n{section}:\n  {name}: {value}\n")
    for kwargs in ({"config_file": path}, {"preset": "tiny", "sets": [f"{key}={value}"]}):
        with pytest.raises(ConfigError) as e:
            resolve_config(**kwargs)
        problem = next(p for p in e.value.problems if p.key == key)
        assert "finite" in problem.message and ("inf" in problem.message or "nan" in problem.message)


def test_inf_and_nan_in_a_config_file_name_key_value_and_line(cli, tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("extends: tiny\ntrain:\n  learning_rate: .inf\ndpo:\n  beta: .nan\n")
    result = cli("train", "--config", str(path), "--dry-run")
    assert result.exit_code == 2
    assert "c.yaml:3: train.learning_rate" in result.stderr and "got inf" in result.stderr
    assert "c.yaml:5: dpo.beta" in result.stderr and "got nan" in result.stderr


def test_non_finite_sampling_settings_are_refused(cli, tiny_model):
    result = cli("generate", str(tiny_model), "--repetition-penalty", "inf", "cat")
    assert result.exit_code == 2 and "--repetition-penalty must be a finite number" in one_error(result.stderr)


# --------------------------------------------------------------------------- 9. one broken user preset


@pytest.fixture
def user_presets(tmp_path, monkeypatch) -> Path:
    folder = tmp_path / "presets"
    folder.mkdir()
    (folder / "good.yaml").write_text("extends: tiny\ndescription: a working one\n")
    (folder / "badyaml.yaml").write_text("extends: tiny\ntrain: [\n")
    (folder / "badkey.yaml").write_text("extends: tiny\ntrain:\n  learnin_rate: 1\n")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("SFTKIT_PRESET_PATH", str(folder))
    return folder


def test_a_broken_user_preset_does_not_hide_the_others(cli, user_presets):
    result = cli("presets", "list")
    assert result.exit_code == 0, result.output
    for name in ("tiny", "smollm3", "good", "badyaml", "badkey"):
        assert name in result.stdout
    assert "broken" in result.stdout
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 2
    assert any("badkey" in w and "train.learnin_rate: unknown key" in w for w in warnings)
    assert any("badyaml" in w and "invalid YAML" in w for w in warnings)
    rows = {r["name"]: r for r in json.loads(cli("presets", "list", "--json").stdout)}
    assert rows["good"]["error"] is None and rows["good"]["trainer_type"] == "sft"
    assert "unknown key" in rows["badkey"]["error"] and rows["badkey"]["trainer_type"] is None
    assert "tiny" in cli("presets", "list", "--names").stdout


def test_showing_a_broken_preset_is_one_error(cli, user_presets):
    for name, expected in (("badyaml", "badyaml.yaml:3: invalid YAML"), ("badkey", "train.learnin_rate: unknown key")):
        result = cli("presets", "show", name)
        assert result.exit_code == 2 and expected in one_error(result.stderr)


# --------------------------------------------------------------------------- 10. no wrapping off a terminal


@pytest.mark.parametrize("env", [{}, {"FORCE_COLOR": "1"}, {"TTY_COMPATIBLE": "1"}], ids=["plain", "FORCE_COLOR", "TTY_COMPATIBLE"])
def test_errors_are_never_wrapped_when_stderr_is_not_a_terminal(tmp_path, env):
    # CI systems often set FORCE_COLOR: rich then treats a pipe as a terminal (80 columns) and wrapped each error
    long = tmp_path / ("a-folder-with-a-rather-long-name-" * 4) / "sftkit.yaml"
    run_env = {**os.environ, "COLUMNS": "80", **env}
    run_env.pop("NO_COLOR", None)
    out = subprocess.run(
        [sys.executable, "-m", "sftkit", "train", "--config", str(long), "--dry-run"],
        capture_output=True, text=True, env=run_env, stdin=subprocess.DEVNULL, check=False,
    )
    assert out.returncode == 2
    lines = out.stderr.splitlines()
    assert len(lines) == 2, out.stderr  # error + hint
    assert lines[0].endswith(f"config file not found: {long}") and "hint:" in lines[1]


def test_the_catch_all_line_is_never_wrapped_either(tmp_path):
    # a path that cannot be written (a folder under a file) reaches the catch-all as an OSError naming the path
    (tmp_path / "afile").write_text("")
    target = tmp_path / "afile" / ("a-folder-with-a-rather-long-name-" * 3) / "sftkit.yaml"
    out = subprocess.run(
        [sys.executable, "-m", "sftkit", "init", "--yes", "--preset", "tiny", "--config-path", str(target)],
        capture_output=True, text=True, env={**os.environ, "COLUMNS": "80", "FORCE_COLOR": "1", "NO_COLOR": "1"}, stdin=subprocess.DEVNULL, check=False,
    )
    assert out.returncode == 1
    line = one_error(out.stderr)
    assert line.endswith(f"cannot access {target.parent}: Not a directory"), out.stderr


# --------------------------------------------------------------------------- 11. data.formatting_func needs the user's permission


@pytest.fixture
def evil_project(tmp_path, monkeypatch) -> Path:
    """A project whose config names a formatter that, when imported, writes PWNED next to it."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "fmt.py").write_text(
        "import pathlib\npathlib.Path(__file__).with_name('PWNED').write_text('ran')\n"
        "def row(r):\n    return [{'role': 'user', 'content': r['w']}, {'role': 'assistant', 'content': r['w'].upper()}]\n"
    )
    (tmp_path / "words.jsonl").write_text('{"w": "cat"}\n{"w": "dog"}\n')
    (tmp_path / "sftkit.yaml").write_text(
        "extends: tiny\ndata:\n  dataset: words.jsonl\n  validation_split: null\n  formatting_func: fmt.py:row\ntrain:\n  output_dir: run\n"
    )
    return tmp_path


def _refused(result, spec: str = "fmt.py:row") -> None:
    line = one_error(result.stderr)
    assert result.exit_code == 2 and "data.formatting_func" in line and repr(spec) in line
    assert "--trust-formatting-func" in result.stderr


def test_prepare_and_train_never_run_a_formatting_func_without_the_flag(cli, evil_project):
    _refused(cli("prepare"))
    _refused(cli("train"))
    assert not (evil_project / "PWNED").exists()
    assert not (evil_project / "run").exists()  # refused before the run folder was made
    result = cli("prepare", "--trust-formatting-func")
    assert result.exit_code == 0, result.output
    assert (evil_project / "PWNED").exists()


def test_eval_of_a_run_folder_never_runs_its_formatting_func_without_the_flag(cli, evil_project, tiny_model):
    run = evil_project / "sent-to-me"
    copy_model(tiny_model, run / "model")
    shutil.copy(evil_project / "sftkit.yaml", run / "sftkit.yaml")
    _refused(cli("eval", str(run)))
    assert not (evil_project / "PWNED").exists()


def test_a_dotted_module_formatter_is_not_imported_either(cli, evil_project, monkeypatch):
    # finding a dotted module's file imports its parent package: that must not happen before the check either
    pkg = evil_project / "evilpkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("import pathlib\npathlib.Path(__file__).parent.with_name('PWNED').write_text('ran')\n")
    (pkg / "fmt.py").write_text("def row(r):\n    return r['w']\n")
    monkeypatch.syspath_prepend(str(evil_project))
    result = cli("prepare", "--set", "data.formatting_func=evilpkg.fmt:row")
    _refused(result, "evilpkg.fmt:row")
    assert not (evil_project / "PWNED").exists()


def test_the_api_needs_trust_formatting_func_too(evil_project):
    import sftkit

    cfg = sftkit.load_config(config="sftkit.yaml")
    for call in (sftkit.prepare, sftkit.train):
        with pytest.raises(ConfigError, match="data.formatting_func is 'fmt.py:row'") as e:
            call(cfg)
        assert "trust_formatting_func=True" in e.value.hint
    assert not (evil_project / "PWNED").exists() and not (evil_project / "run").exists()
    assert sftkit.prepare(cfg, trust_formatting_func=True).manifest["rows_kept"] == 2


# --------------------------------------------------------------------------- 12. outputs that cannot be written


def test_prepare_and_export_to_a_path_under_a_file_are_named(cli, tiny_model, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("afile").write_text("")
    result = cli("prepare", "--preset", "tiny", "-o", "afile/sub")
    assert result.exit_code == 2 and "cannot write to afile/sub: afile is a file, not a folder" in one_error(result.stderr)
    result = cli("export", str(tiny_model), "-o", "afile/sub")
    assert result.exit_code == 2 and "cannot write to afile/sub: afile is a file, not a folder" in one_error(result.stderr)
    assert Path("afile").read_text() == ""


def test_an_unwritable_output_folder_is_named(tmp_path, monkeypatch):
    # root writes anywhere, so the permission check is what is simulated
    from sftkit import yamlio

    monkeypatch.setattr(yamlio.os, "access", lambda path, mode: False)
    with pytest.raises(SftkitError, match=r"cannot write to .*out: permission denied") as e:
        yamlio.check_writable(tmp_path / "out")
    assert e.value.exit_code == 2


def test_the_catch_all_names_the_path_of_an_os_error(runner):
    import typer

    from sftkit.cli._app import SftkitGroup

    app = typer.Typer(cls=SftkitGroup)

    @app.command()
    def write() -> None:
        raise PermissionError(13, "Permission denied", "/x/y")

    @app.command()
    def other() -> None:
        raise OSError(28, "No space left on device")

    result = runner.invoke(app, ["write"])
    assert result.exit_code == 1
    assert one_error(result.stderr) == "error: cannot access /x/y: Permission denied"
    result = runner.invoke(app, ["other"])  # no path to name: still the one catch-all line
    assert result.exit_code == 1 and "unexpected OSError" in result.stderr and "Traceback" not in result.stderr
