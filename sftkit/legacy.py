"""``sftkit init --from-legacy``: convert an old SmolLM3 dataclass config (a ``.py`` file) to ``sftkit.yaml``.

The file is read as a syntax tree (:mod:`ast`) and never imported or run: its top-level code (``import os``,
``os.system(...)``, prints in ``__post_init__``) does nothing here. Only literal values are taken
(``batch_size: int = 6``, ``self.experiment_name = "x"`` in ``__post_init__``, keyword arguments of the
module-level ``config = SomeConfig(...)``); any other expression (``os.environ.get("TRACKIO_TOKEN")``) is
reported as skipped with its line. Secrets (tokens) are never written.

Fields equal to the old ``SmolLM3Config`` defaults need no line: the ``smollm3`` preset already holds them
(``smollm3-dpo`` for the old DPO config). Everything else is mapped to sftkit keys and compared with the
preset's resolved values, so the output holds ``extends:`` plus only what differs.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sftkit.errors import ConfigError

#: ``SmolLM3Config`` (config/train_smollm3.py) as the old project shipped it, after its ``__post_init__``.
LEGACY_BASE: dict[str, Any] = {
    "trainer_type": "sft",
    "model_name": "HuggingFaceTB/SmolLM3-3B",
    "max_seq_length": 4096,
    "use_flash_attention": True,
    "use_gradient_checkpointing": True,
    "batch_size": 4,
    "gradient_accumulation_steps": 4,
    "learning_rate": 2e-5,
    "weight_decay": 0.01,
    "warmup_steps": 100,
    "max_iters": 1000,
    "eval_interval": 100,
    "log_interval": 10,
    "save_interval": 500,
    "optimizer": "adamw_torch",
    "beta1": 0.9,
    "beta2": 0.95,
    "eps": 1e-8,
    "scheduler": "cosine",
    "min_lr": 1e-6,
    "fp16": True,
    "bf16": False,
    "ddp_backend": "nccl",
    "ddp_find_unused_parameters": False,
    "save_steps": 500,
    "eval_steps": 100,
    "logging_steps": 10,
    "save_total_limit": 3,
    "eval_strategy": "steps",
    "metric_for_best_model": "eval_loss",
    "greater_is_better": False,
    "load_best_model_at_end": True,
    "data_dir": "my_dataset",
    "train_file": "train.json",
    "validation_file": None,
    "test_file": None,
    "use_chat_template": True,
    "chat_template_kwargs": {"add_generation_prompt": True, "no_think_system_message": True},
    "enable_tracking": True,
    "trackio_url": None,
    "trackio_token": None,
    "log_artifacts": True,
    "log_metrics": True,
    "log_config": True,
    "experiment_name": None,
    "hf_token": None,
    "dataset_repo": None,
    "monitoring_mode": "both",
}

#: ``SmolLM3DPOConfig`` (config/train_smollm3_dpo.py) on top of the base, after its ``__post_init__``.
LEGACY_DPO_BASE: dict[str, Any] = {
    **LEGACY_BASE,
    "trainer_type": "dpo",
    "beta": 0.1,
    "max_prompt_length": 2048,
    "max_length": 4096,
    "dpo_beta": 0.1,
    "dpo_loss_type": "sigmoid",
    "dpo_alpha": 0.5,
    "ref_model_name": None,
    "ref_model_peft_config": None,
    "preference_dataset_format": "dpo",
    "preference_dataset_text_field": "text",
    "preference_dataset_prompt_field": "prompt",
    "preference_dataset_chosen_field": "chosen",
    "preference_dataset_rejected_field": "rejected",
    "dpo_gradient_checkpointing": True,
    "dpo_gradient_checkpointing_kwargs": {"use_reentrant": False},
    "dpo_precompute_ref_log_probs": False,
    "dpo_peft_config": {"r": 16, "lora_alpha": 32, "lora_dropout": 0.1, "bias": "none", "task_type": "CAUSAL_LM"},
}

BASE_CLASSES = {"SmolLM3Config": ("smollm3", LEGACY_BASE), "SmolLM3DPOConfig": ("smollm3-dpo", LEGACY_DPO_BASE)}

#: old flat name -> sftkit key, for values that carry over unchanged
DIRECT: dict[str, str] = {
    "trainer_type": "trainer_type",
    "model_name": "model.name",
    "max_seq_length": "model.max_seq_length",
    "use_flash_attention": "model.flash_attention",
    "use_gradient_checkpointing": "model.gradient_checkpointing",
    "trust_remote_code": "model.trust_remote_code",
    "batch_size": "train.batch_size",
    "eval_batch_size": "train.eval_batch_size",
    "gradient_accumulation_steps": "train.gradient_accumulation_steps",
    "learning_rate": "train.learning_rate",
    "weight_decay": "train.weight_decay",
    "warmup_steps": "train.warmup_steps",
    "warmup_ratio": "train.warmup_ratio",
    "max_iters": "train.max_iters",
    "num_train_epochs": "train.num_train_epochs",
    "save_total_limit": "train.save_total_limit",
    "optimizer": "train.optimizer",
    "beta1": "train.beta1",
    "beta2": "train.beta2",
    "eps": "train.eps",
    "scheduler": "train.scheduler",
    "min_lr": "train.min_lr",
    "fp16": "train.fp16",
    "bf16": "train.bf16",
    "seed": "train.seed",
    "max_grad_norm": "train.max_grad_norm",
    "group_by_length": "train.group_by_length",
    "dataloader_num_workers": "train.dataloader_num_workers",
    "load_best_model_at_end": "train.load_best_model_at_end",
    "metric_for_best_model": "train.metric_for_best_model",
    "dataset_name": "data.dataset",
    "dataset_split": "data.split",
    "dataset_config": "data.config_name",
    "enable_tracking": "tracking.enabled",
    "trackio_url": "tracking.trackio_url",
    "trackio_space": "tracking.trackio_space",
    "experiment_name": "tracking.experiment_name",
    "dpo_loss_type": "dpo.loss_type",
    "max_prompt_length": "dpo.max_prompt_length",
    "max_length": "dpo.max_length",
}

#: several old names for one sftkit key; when they disagree the transformers-style name (last) wins
ALIASES: dict[str, tuple[str, ...]] = {
    "train.eval_steps": ("eval_interval", "eval_steps"),
    "train.logging_steps": ("log_interval", "logging_steps"),
    "train.save_steps": ("save_interval", "save_steps"),
    "dpo.beta": ("beta", "dpo_beta"),
}

#: handled together below (data format and files, reference model, LoRA)
GROUPED = {
    "input_field", "target_field", "filter_bad_entries", "bad_entry_field",
    "data_dir", "train_file", "validation_file", "ref_model_name", "dpo_peft_config",
    "use_lora", "lora_r", "lora_alpha", "lora_dropout",
}

SECRETS = {"trackio_token", "hf_token", "wandb_api_key", "api_key", "token"}

#: old settings sftkit has no key for, and why
NO_EQUIVALENT: dict[str, str] = {
    "ddp_backend": "distributed settings are `sftkit train --nproc/--nnodes` options",
    "ddp_find_unused_parameters": "distributed settings are `sftkit train` options",
    "eval_strategy": "sftkit evaluates every train.eval_steps when there is validation data",
    "greater_is_better": "derived from train.metric_for_best_model",
    "use_chat_template": "sftkit uses the tokenizer's chat template (data.template)",
    "chat_template_kwargs": "set data.template or model.chat_template instead",
    "log_artifacts": "the run folder always keeps metrics and the final model",
    "log_metrics": "metrics are always logged",
    "log_config": "the resolved config is always saved in the run folder",
    "dataloader_pin_memory": "no sftkit setting",
    "dataloader_prefetch_factor": "no sftkit setting",
    "monitoring_mode": "choose tracking.backend",
    "dataset_repo": "no sftkit setting (push results with `sftkit export`)",
    "test_file": "evaluate with `sftkit eval`",
}


@dataclass
class Value:
    """One field's final value in the old config, and the line that set it."""

    name: str
    line: int
    value: Any = None
    skipped: str | None = None
    """Why the value could not be taken (an expression that is not a literal); None when it was."""


@dataclass
class Skipped:
    name: str
    line: int
    reason: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.name}: {self.reason}"


@dataclass
class Conversion:
    source: Path
    class_name: str
    extends: str
    values: dict[str, Any]
    """Nested sections: only the values that differ from the ``extends`` preset."""
    mapped: list[tuple[str, str, int]] = field(default_factory=list)
    """(old name, sftkit key, line) for every value written."""
    skipped: list[Skipped] = field(default_factory=list)
    """Everything that could not be carried over (unmappable, not a literal, or a secret), with its line."""
    notes: list[str] = field(default_factory=list)
    same_as_base: int = 0
    """Fields equal to the old base config's defaults (already in the preset)."""

    def data(self) -> dict[str, Any]:
        return {"extends": self.extends, **self.values}


# ------------------------------------------------------------------------------------------- reading


class _Reader:
    """Collect field values from the class chain, ``__post_init__`` and the module-level instance."""

    def __init__(self, tree: ast.Module) -> None:
        self.tree = tree
        self.classes = {n.name: n for n in tree.body if isinstance(n, ast.ClassDef)}
        self.values: dict[str, Value] = {}
        self.skipped: list[Skipped] = []

    def target(self) -> tuple[ast.ClassDef, ast.Call | None]:
        """The config class: the one instantiated as ``config = X(...)``, else the last *Config class."""
        for node in self.tree.body:
            if (
                isinstance(node, ast.Assign)
                and any(isinstance(t, ast.Name) and t.id == "config" for t in node.targets)
                and isinstance(node.value, ast.Call)
                and isinstance(node.value.func, ast.Name)
                and node.value.func.id in self.classes
            ):
                return self.classes[node.value.func.id], node.value
        candidates = [c for c in self.classes.values() if c.name.endswith("Config") or any(_name(b).endswith("Config") for b in c.bases)]
        if not candidates:
            raise ConfigError(
                "no config class found in the legacy file",
                hint="expected a dataclass like `class MyConfig(SmolLM3Config): ...` and `config = MyConfig()`",
            )
        return candidates[-1], None

    def chain(self, cls: ast.ClassDef) -> tuple[list[ast.ClassDef], str | None]:
        """Classes from the root down (those defined in this file) and the external base's name."""
        chain = [cls]
        seen = {cls.name}
        while True:
            bases = [_name(b) for b in chain[0].bases]
            local = next((self.classes[b] for b in bases if b in self.classes and b not in seen), None)
            if local is None:
                external = next((b for b in bases if b and b != "object"), None)
                return chain, external
            chain.insert(0, local)
            seen.add(local.name)

    def read_class(self, cls: ast.ClassDef) -> None:
        for stmt in cls.body:
            if isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name) and stmt.value is not None:
                self.set(stmt.target.id, stmt.value, stmt.lineno)
            elif isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name):
                self.set(stmt.targets[0].id, stmt.value, stmt.lineno)

    def post_inits(self, chain: list[ast.ClassDef]) -> list[ast.FunctionDef]:
        """The ``__post_init__`` bodies that run: the most derived one, and its parents' through super()."""
        runs: list[ast.FunctionDef] = []
        for cls in reversed(chain):
            fn = next((s for s in cls.body if isinstance(s, ast.FunctionDef) and s.name == "__post_init__"), None)
            if fn is None:
                continue
            runs.insert(0, fn)
            if not _calls_super_post_init(fn):
                break
        return runs

    def read_post_init(self, fn: ast.FunctionDef) -> None:
        for stmt in fn.body:
            attr = _self_assign(stmt)
            if attr:
                self.set(attr, stmt.value, stmt.lineno)  # type: ignore[union-attr]
            elif isinstance(stmt, ast.If):
                self._read_if(stmt)

    def _read_if(self, stmt: ast.If) -> None:
        """``if self.x is None: self.x = <literal>`` fills a default; other conditional assignments are skipped."""
        assigned = [(s, _self_assign(s)) for s in ast.walk(stmt) if _self_assign(s)]
        if not assigned:
            return  # validation or printing: nothing to carry over
        test = stmt.test
        is_none_check = (
            isinstance(test, ast.Compare)
            and len(test.ops) == 1
            and isinstance(test.ops[0], ast.Is)
            and isinstance(test.comparators[0], ast.Constant)
            and test.comparators[0].value is None
            and _self_attr(test.left)
        )
        if is_none_check and not stmt.orelse and all(_self_assign(s) == _self_attr(test.left) for s in stmt.body):
            name = _self_attr(test.left)
            current = self.values.get(name)
            if current is None or (current.skipped is None and current.value is None):
                for s in stmt.body:
                    self.set(name, s.value, s.lineno)  # type: ignore[attr-defined]
            return
        for s, name in assigned:
            self.values.pop(name, None)
            self.skipped.append(Skipped(name, s.lineno, "set under a condition in __post_init__: not evaluated"))

    def read_instance(self, call: ast.Call | None) -> None:
        if call is None:
            return
        for kw in call.keywords:
            if kw.arg is None:
                self.skipped.append(Skipped("**kwargs", kw.value.lineno, "not evaluated: " + _source(kw.value)))
            else:
                self.set(kw.arg, kw.value, kw.value.lineno)

    def set(self, name: str, node: ast.expr, line: int) -> None:
        try:
            value = _literal(node)
        except ValueError:
            self.values[name] = Value(name, line, skipped="not evaluated: " + _source(node))
            return
        self.values[name] = Value(name, line, value)


def _literal(node: ast.expr) -> Any:
    """A literal's value; ``field(default=<literal>)`` too. Raises ValueError for anything else."""
    if isinstance(node, ast.Call) and _name(node.func) in ("field", "dataclasses.field"):
        for kw in node.keywords:
            if kw.arg == "default":
                return ast.literal_eval(kw.value)
        raise ValueError("field() without a literal default")
    return ast.literal_eval(node)


def _name(node: ast.expr) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        inner = _name(node.value)
        return f"{inner}.{node.attr}" if inner else node.attr
    return ""


def _self_attr(node: ast.expr) -> str | None:
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "self":
        return node.attr
    return None


def _self_assign(stmt: ast.AST) -> str | None:
    if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1:
        return _self_attr(stmt.targets[0])
    if isinstance(stmt, ast.AnnAssign) and stmt.value is not None:
        return _self_attr(stmt.target)
    return None


def _calls_super_post_init(fn: ast.FunctionDef) -> bool:
    for node in ast.walk(fn):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "__post_init__"
            and isinstance(node.func.value, ast.Call)
            and _name(node.func.value.func) == "super"
        ):
            return True
    return False


def _source(node: ast.expr) -> str:
    text = ast.unparse(node)
    return text if len(text) <= 60 else text[:57] + "..."


@dataclass
class LegacyFile:
    """What parsing an old config file found."""

    class_name: str
    """The config class (the one ``config = ...()`` instantiates)."""
    base: str
    """The class it builds on: an imported one (``SmolLM3Config``), or the root of its in-file chain."""
    external: bool
    """Whether ``base`` is defined in another file (its values are then only known for the SmolLM3 bases)."""
    values: dict[str, Value]
    skipped: list[Skipped]


def read_legacy(path: Path) -> LegacyFile:
    """The config class, its base and every field's final value in an old config file, by parsing only."""
    path = Path(path)
    try:
        source = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"legacy config not found: {path}", hint="pass the path to the old config/*.py file") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text", hint="pass the old config/*.py file") from None
    try:
        tree = ast.parse(source, filename=str(path))  # parsed, never compiled to code or run
    except SyntaxError as e:
        raise ConfigError(f"{path}:{e.lineno}: not valid Python: {e.msg}", hint="pass the old config/*.py file") from None
    reader = _Reader(tree)
    cls, call = reader.target()
    chain, external = reader.chain(cls)
    for c in chain:
        reader.read_class(c)
    for fn in reader.post_inits(chain):
        reader.read_post_init(fn)
    reader.read_instance(call)
    return LegacyFile(cls.name, external or chain[0].name, external is not None, reader.values, reader.skipped)


# ---------------------------------------------------------------------------------------------- mapping


def convert_legacy(path: Path) -> Conversion:
    """Read an old config file (never running it) and map it onto the ``smollm3`` / ``smollm3-dpo`` preset."""
    from sftkit.resolve import resolve_config
    from sftkit.wizard import diff_against

    path = Path(path)
    legacy = read_legacy(path)
    class_name, base_class, values, skipped = legacy.class_name, legacy.base, legacy.values, legacy.skipped
    notes: list[str] = []
    trainer = values.get("trainer_type")
    is_dpo = base_class == "SmolLM3DPOConfig" or (trainer is not None and trainer.value == "dpo")
    extends, defaults = BASE_CLASSES["SmolLM3DPOConfig" if is_dpo else "SmolLM3Config"]
    if legacy.external and base_class not in BASE_CLASSES:
        notes.append(
            f"{class_name} builds on {base_class}, which is not in this file: its values are not seen here, "
            f"only the old SmolLM3Config defaults (add them by hand if it changed any)"
        )

    desired: dict[str, Any] = {}
    mapped: list[tuple[str, str, int]] = []
    same = 0
    live: dict[str, Value] = {}
    for name, v in values.items():
        if _is_secret(name):
            if v.skipped or v.value is not None:
                skipped.append(Skipped(name, v.line, "a secret: never written to a file (sftkit reads tokens from the environment)"))
            continue
        if v.skipped:
            skipped.append(Skipped(name, v.line, v.skipped))
            continue
        if name in defaults and _equal(v.value, defaults[name]):
            same += 1
            continue
        live[name] = v

    def put(key: str, value: Any, v: Value) -> None:
        desired[key] = value
        mapped.append((v.name, key, v.line))

    for name, v in live.items():
        if name in DIRECT:
            put(DIRECT[name], v.value, v)
    for key, names in ALIASES.items():
        given = [live[n] for n in names if n in live]
        if not given:
            continue
        winner = given[-1]
        put(key, winner.value, winner)
        for other in given[:-1]:
            if not _equal(other.value, winner.value):
                skipped.append(
                    Skipped(other.name, other.line, f"disagrees with {winner.name}={winner.value!r} (line {winner.line}), which was used")
                )
    _map_data(live, values, put, skipped, notes)
    _map_dpo_extras(live, values, put, skipped)

    for name, v in live.items():
        if name in DIRECT or name in GROUPED or any(name in names for names in ALIASES.values()):
            continue
        reason = NO_EQUIVALENT.get(name, "no sftkit setting with this name")
        skipped.append(Skipped(name, v.line, f"not mapped: {reason} (value {_short(v.value)})"))

    base = resolve_config(preset=extends, check=False).config
    sections = diff_against(desired, base)
    skipped.sort(key=lambda s: s.line)
    return Conversion(path, class_name, extends, sections, mapped, skipped, notes, same)


def _map_data(live: dict[str, Value], values: dict[str, Value], put, skipped: list[Skipped], notes: list[str]) -> None:
    """input/target fields and bad-entry filtering -> data.format / data.field_map; data_dir/train_file."""
    def val(name: str) -> Any:
        v = values.get(name)
        return v.value if v and not v.skipped else None

    inp, target = val("input_field"), val("target_field")
    filt, bad_field = val("filter_bad_entries"), val("bad_entry_field")
    anchor = next((live[n] for n in ("input_field", "target_field", "filter_bad_entries", "bad_entry_field") if n in live), None)
    if anchor is not None:
        openhermes = inp == "prompt" and target == "accepted_completion"
        bad_ok = not filt or (bad_field or "bad_entry") == "bad_entry"
        if openhermes and filt is not False and bad_ok:
            put("data.format", "openhermes", anchor)  # prompt -> accepted_completion, bad_entry rows dropped
        else:
            field_map = {}
            if inp and inp != "instruction":
                field_map[inp] = "instruction"
            if target and target != "output":
                field_map[target] = "output"
            if field_map:
                put("data.field_map", field_map, anchor)
            if filt:
                line = live["filter_bad_entries"].line if "filter_bad_entries" in live else anchor.line
                skipped.append(
                    Skipped("filter_bad_entries", line, f"not mapped: only the openhermes format drops rows by {bad_field!r}")
                )
            elif openhermes:
                notes.append("filter_bad_entries is off: rows marked bad_entry are kept (field_map used, not the openhermes format)")
    # a local file: data_dir/train_file (relative to where the old scripts ran)
    if "dataset_name" not in values or val("dataset_name") is None:
        train_file = val("train_file")
        if ("train_file" in live or "data_dir" in live) and train_file:
            folder = val("data_dir")
            joined = str(Path(folder) / train_file) if folder else train_file
            anchor_v = live.get("train_file") or live["data_dir"]
            put("data.train_file", joined, anchor_v)
            notes.append(f"data.train_file is {joined!r}, relative to the folder you run sftkit in")
        if "validation_file" in live and val("validation_file"):
            folder = val("data_dir")
            vf = val("validation_file")
            put("data.validation_file", str(Path(folder) / vf) if folder else vf, live["validation_file"])


def _map_dpo_extras(live: dict[str, Value], values: dict[str, Value], put, skipped: list[Skipped]) -> None:
    ref = live.get("ref_model_name")
    model = values.get("model_name")
    if ref is not None and ref.value is not None and not (model and ref.value == model.value):
        put("dpo.ref_model", ref.value, ref)
    peft = live.get("dpo_peft_config")
    if peft is not None and isinstance(peft.value, dict):
        put("lora.enabled", True, peft)
        for old, new in (("r", "lora.r"), ("lora_alpha", "lora.alpha"), ("lora_dropout", "lora.dropout")):
            if old in peft.value:
                put(new, peft.value[old], peft)
        rest = sorted(set(peft.value) - {"r", "lora_alpha", "lora_dropout", "bias", "task_type"})
        if rest:
            skipped.append(Skipped("dpo_peft_config", peft.line, f"not mapped: keys {', '.join(rest)}"))
    for old, new in (("use_lora", "lora.enabled"), ("lora_r", "lora.r"), ("lora_alpha", "lora.alpha"), ("lora_dropout", "lora.dropout")):
        if old in live:
            put(new, live[old].value, live[old])


def _is_secret(name: str) -> bool:
    lowered = name.lower()
    return lowered in SECRETS or lowered.endswith(("_token", "_api_key", "_password", "_secret"))


def _equal(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return float(a) == float(b)
    return a == b


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 50 else text[:47] + "..."


def write_conversion(conv: Conversion, path: Path) -> None:
    """Write the converted file after checking it resolves; values sftkit rejects are reported by key (exit 2)."""
    from sftkit.wizard import check_text, write_project

    text = render(conv)
    problems = check_text(text)
    if problems:
        lines = {key: line for _old, key, line in conv.mapped}
        for p in problems:
            first = (p.key or "").split(",")[0].strip()
            if first in lines:
                p.where = f"{conv.source}:{lines[first]}"
        error = ConfigError.from_problems(problems)
        error.message = f"the converted config is not valid, nothing was written: {error.message}"
        error.hint = error.hint or "fix these values in the legacy file, or write sftkit.yaml with `sftkit init`"
        raise error
    write_project(path, text)


def render(conv: Conversion) -> str:
    from sftkit.yamlio import dump_yaml

    header = [
        f"# Converted by `sftkit init --from-legacy` from {conv.source.name} ({conv.class_name}).",
        "# The file was read, not run. Values equal to the preset are left out:",
        f"# `sftkit presets show {conv.extends}` lists them.",
    ]
    return "\n".join(header) + "\n" + dump_yaml(conv.data())
