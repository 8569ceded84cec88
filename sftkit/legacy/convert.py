"""Mapping an old config's field values onto sftkit keys, and the project file they become.

Every field of the old config (its own and those it inherits) is accounted for, once:

- **mapped** to an sftkit key (directly, through one of several old names, or in groups: data location and
  format, chat template, schedule and warm-up, best-model selection, LoRA and quantisation, tracking);
- **equivalent**: its value is what sftkit does anyway (``log_metrics: True``);
- **not carried**: listed with its file, line and the reason, and written as comments into the project file;
- **unset**: ``None``, nothing to carry.

The converted file follows what the old file says. Where the old project's training script did not use a
setting the file gives (its SmolLM3 script never passed ``chat_template_kwargs`` on, its GPT-OSS script read
``max_steps`` but not ``max_iters``), a note says so once.

SmolLM3 configs are written on top of the ``smollm3`` / ``smollm3-dpo`` preset (which holds the old defaults);
every other config on top of sftkit's own defaults, so that nothing of SmolLM3 leaks into it. The output holds
only the values that differ from what it is written on.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sftkit.errors import ConfigError
from sftkit.layout import CONFIG
from sftkit.legacy.fields import (
    ALIASES,
    ANY,
    DIRECT,
    EQUIVALENT,
    METHOD_WORDS,
    NO_EQUIVALENT,
    PRESETS,
    READ_BY_OLD_SCRIPT,
    SMOLLM3_SYSTEM,
    SMOLLM3_SYSTEM_NO_THINK,
    SMOLLM3_VALIDATION_FRACTION,
    TEMPLATE_CALL_KWARGS,
    is_secret,
)
from sftkit.legacy.read import LegacyFile, read_legacy
from sftkit.legacy.static import Skipped, Value
from sftkit.projectfile import (
    ProjectFile,
    check_text,
    diff_against,
    flatten,
    same_value,
    write_project,
)
from sftkit.projectfile import render as render_project

#: what each account of an old field means (``Conversion.accounted``)
MAPPED, PRESET, EQUIV = "mapped", "preset", "equivalent"
SKIPPED, UNSET, SECRET = "skipped", "unset", "secret"


@dataclass(kw_only=True)
class Conversion(ProjectFile):
    """The project file a legacy config becomes, and the account of how each field got there."""

    source: Path
    class_name: str
    family: str = "other"
    """``smollm3``, ``gpt-oss``, ``arabic`` or ``other`` (see :mod:`sftkit.legacy.fields`)."""
    mapped: list[tuple[str, str, int]] = field(default_factory=list)
    """(old name, sftkit key, line) for every value carried over."""
    skipped: list[Skipped] = field(default_factory=list)
    """Everything that could not be carried over (unmappable, not evaluated, or a secret), with its line."""
    same_as_base: int = 0
    """Fields whose value is already what sftkit does, or what the preset holds."""
    accounted: dict[str, str] = field(default_factory=dict)
    """Every old field -> how it was accounted for (mapped, preset, equivalent, skipped, unset, secret)."""
    origins: dict[str, Value] = field(default_factory=dict)
    """sftkit key -> the old value it came from (its file and line)."""
    complete: bool = True
    """False when the old file names no training data: the project file is written without it (a note says so)."""


def convert_legacy(path: Path) -> Conversion:
    """Read an old config file (never running it) and map it onto sftkit keys."""
    from sftkit.resolve import resolve_config

    legacy = read_legacy(Path(path))
    m = _Mapper(legacy)
    m.run()
    preset = PRESETS.get(m.family, {}).get(m.trainer)
    base = resolve_config(preset=preset, check=False, complete=False).config
    m.fit(base)
    if not any(status == MAPPED for status in m.accounted.values()):
        raise ConfigError(
            f"{legacy.source}: nothing in {legacy.class_name} is a setting sftkit knows, so nothing would be carried over",
            hint="pass an old training config (model, data and hyper-parameters), or create sftkit.yaml with `sftkit init`",
        )
    desired = dict(m.desired)
    if (
        "data.train_file" in desired
        and desired.get("data.train_file")
        and "data.dataset" not in desired
        and base.data.dataset
    ):
        # the old config's file replaces the preset's data
        desired["data.dataset"] = None
    merged = {**flatten(base.to_dict()), **desired}
    if not merged.get("model.name"):
        raise ConfigError(
            f"{legacy.source}: {legacy.class_name} names no model, and nothing else says which one",
            hint="sftkit does not guess a model: add model_name to the old file, or create sftkit.yaml with `sftkit init`",
        )
    complete = bool(merged.get("data.dataset") or merged.get("data.train_file"))
    if not complete:
        m.notes.append(
            "the old file names no training data: set it before training, e.g. `sftkit train --config sftkit.yaml --set data.dataset=FILE`"
        )
    sections = diff_against(desired, base)
    kept = set(flatten(sections))
    # mapped, but the value is the preset's (or sftkit's default) already: counted as such
    for key, v in m.origins.items():
        if (
            key not in kept
            and m.accounted.get(v.name) == MAPPED
            and not any(k in kept for k, o in m.origins.items() if o.name == v.name)
        ):
            m.accounted[v.name] = PRESET
    same = sum(1 for status in m.accounted.values() if status in (PRESET, EQUIV))
    m.note_unread()
    skipped = sorted(m.skipped, key=lambda s: (str(s.path or ""), s.line))
    return Conversion(
        extends=preset,  # type: ignore[arg-type]
        values=sections,
        notes=m.notes,
        source=legacy.source,
        class_name=legacy.class_name,
        family=m.family,
        mapped=m.mapped,
        skipped=skipped,
        same_as_base=same,
        accounted=dict(m.accounted),
        origins=dict(m.origins),
        complete=complete,
    )


def family_of(legacy: LegacyFile) -> str:
    """Which old project a config comes from (see :mod:`sftkit.legacy.fields`)."""
    names = [*legacy.chain, legacy.class_name]
    files = [p.name for p in legacy.files]
    if any(n in ("SmolLM3Config", "SmolLM3DPOConfig") for n in names) or any(
        f.startswith("train_smollm3") for f in files[1:]
    ):
        return "smollm3"
    if any(n.upper().startswith("GPTOSS") for n in names):
        return "gpt-oss"
    if (
        legacy.chain
        and legacy.chain[0] == "BaseConfig"
        and "train_batch_size" in legacy.values
    ):
        return "arabic"
    return "other"


# --------------------------------------------------------------------------- the mapping


class _Mapper:
    """Old field values -> desired sftkit keys, accounting for every field."""

    def __init__(self, legacy: LegacyFile) -> None:
        self.legacy = legacy
        self.values = legacy.values
        self.family = family_of(legacy)
        self.trainer = "sft"
        self.desired: dict[str, Any] = {}
        self.origins: dict[str, Value] = {}
        self.mapped: list[tuple[str, str, int]] = []
        self.skipped: list[Skipped] = list(legacy.skipped)
        self.accounted: dict[str, str] = {}
        self.notes: list[str] = []
        self.explained: set[str] = set()
        """Old fields a note already explains (left out of the note on fields the old script did not read)."""
        self.envs: list[str] = []
        for dotted in legacy.same:
            self.accounted[dotted] = EQUIV

    # -- reading the old values -------------------------------------------------------------------
    def known(self, name: str) -> bool:
        v = self.values.get(name)
        return v is not None and v.skipped is None

    def val(self, name: str, default: Any = None) -> Any:
        v = self.values.get(name)
        return v.value if v is not None and v.skipped is None else default

    def given(self, name: str) -> bool:
        """Known and not None."""
        return self.known(name) and self.values[name].value is not None

    # -- accounting -------------------------------------------------------------------------------
    def open(self, name: str) -> bool:
        return name in self.values and name not in self.accounted

    def account(self, name: str, status: str) -> None:
        if name in self.values:
            self.accounted.setdefault(name, status)

    def put(self, key: str, value: Any, name: str | None) -> None:
        """Set sftkit ``key``; ``name`` is the old field it came from (None: a default of the old project). A
        ``dpo.*`` key of a config that trains with another preference method (KTO) goes to that method's section."""
        key = self.preference_key(key)
        self.desired[key] = value
        if name is not None and name in self.values:
            v = self.values[name]
            self.origins[key] = v
            self.mapped.append((name, key, v.line))
            self.account(name, MAPPED)

    def preference_key(self, key: str) -> str:
        if key.startswith("dpo.") and self.trainer not in ("sft", "dpo"):
            from sftkit.keys import all_keys

            other = f"{self.trainer}.{key[4:]}"
            if other in all_keys():
                return other
        return key

    def same(self, name: str) -> None:
        self.account(name, EQUIV)

    def unset(self, name: str) -> None:
        self.account(name, UNSET)

    def skip(self, name: str, reason: str, show_value: bool = True) -> None:
        if name not in self.values or name in self.accounted:
            return
        v = self.values[name]
        if show_value and v.skipped is None:
            reason = f"{reason} (value {_short(v.value)})"
        self.skipped.append(Skipped(name, v.line, reason, v.path))
        self.accounted[name] = SKIPPED

    # -- the groups, in order ---------------------------------------------------------------------
    def run(self) -> None:
        for name, v in self.values.items():
            if v.env and v.env not in self.envs and not is_secret(name, v.value):
                self.envs.append(v.env)
            if is_secret(name, v.value):
                if v.skipped or v.value is not None or v.env:
                    self.skip(
                        name,
                        "a secret: never written to a file (sftkit reads tokens from the environment)",
                        show_value=False,
                    )
                else:
                    self.account(name, SECRET)
            elif v.skipped:
                self.skip(name, v.skipped, show_value=False)
        for group in (
            self._trainer_type,
            self._model,
            self._aliases,
            self._schedule,
            self._data,
            self._template,
            self._evaluation,
            self._distributed,
            self._tracking,
            self._lora,
            self._dpo,
            self._method_sections,
        ):
            group()
        self._rest()
        if self.envs:
            shown = ", ".join(self.envs[:8]) + (", ..." if len(self.envs) > 8 else "")
            self.notes.append(
                f"the old config read environment variables first ({shown}): their defaults in the file were taken; "
                "set the values in sftkit.yaml instead"
            )
        if self.legacy.assumed:
            self.notes.append(
                f"{', '.join(self.legacy.assumed)} was not found next to the file: its known defaults were used "
                "(if your copy changed them, carry those by hand)"
            )

    def _trainer_type(self) -> None:
        from typing import get_args

        from sftkit.config import TrainerType

        supported = get_args(TrainerType)
        method = _method_of(self.legacy)
        given = self.val("trainer_type")
        trainer = given if isinstance(given, str) else method or "sft"
        trainer = trainer.lower()
        if trainer not in supported:
            what = f"trainer_type {given!r}" if given else self.legacy.class_name
            method = METHOD_WORDS_REV.get(trainer, trainer.upper())
            hint = f"write sftkit.yaml with `sftkit init` and a trainer_type sftkit has ({', '.join(supported)})"
            if trainer == "ipo" and "dpo" in supported:
                hint = "IPO is DPO with TRL's ipo loss: write sftkit.yaml with `sftkit init --trainer-type dpo` and set dpo.loss_type: ipo"
            raise ConfigError(
                f"{self.legacy.source}: {what} trains with {method}, which sftkit does not do (it trains {', '.join(supported)})",
                hint=hint,
            )
        self.trainer = trainer
        if self.known("trainer_type"):
            self.put("trainer_type", trainer, "trainer_type")
        else:
            self.desired["trainer_type"] = trainer

    def _model(self) -> None:
        if self.given("model_path"):
            self.put("model.name", self.val("model_path"), "model_path")
            if self.given("model_name"):
                self.skip(
                    "model_name",
                    f"model_path {self.val('model_path')!r} is used instead (the old config loaded it)",
                )
        for name in ("model_name", "model_path"):
            if self.open(name) and self.val(name) is None:
                self.unset(name)
        if (
            self.open("tokenizer_name")
            and self.given("tokenizer_name")
            and self.val("tokenizer_name")
            == self.val("model_path", self.val("model_name"))
        ):
            self.same("tokenizer_name")  # the model's own tokenizer
        if self.open("device") and self.val("device") == "cpu":
            self.put("train.use_cpu", True, "device")
        dtype = self.val("torch_dtype")
        if self.open("torch_dtype"):
            if dtype in ("auto", "float32", "bfloat16", "float16"):
                self.put("model.dtype", dtype, "torch_dtype")
            else:
                self.skip(
                    "torch_dtype",
                    "not a dtype sftkit loads in (auto, float32, bfloat16, float16)",
                )
        attn = self.val("attn_implementation")
        if self.open("attn_implementation"):
            if attn in ("flash_attention_2", "flash_attention_3"):
                self.put("model.flash_attention", True, "attn_implementation")
            elif attn in ("sdpa", "eager", None):
                self.skip(
                    "attn_implementation",
                    "sftkit uses transformers' default attention, or FlashAttention 2 with model.flash_attention",
                )
        kwargs = self.val("model_kwargs")
        if self.open("model_kwargs") and isinstance(kwargs, dict):
            rest = []
            for k, v in kwargs.items():
                if k in ("torch_dtype", "dtype") and v in (
                    "auto",
                    "float32",
                    "bfloat16",
                    "float16",
                ):
                    self.desired.setdefault("model.dtype", v)
                elif (k, v) in (("use_cache", False), ("low_cpu_mem_usage", True)):
                    continue
                elif k == "attn_implementation" and v in (
                    "flash_attention_2",
                    "flash_attention_3",
                ):
                    self.desired["model.flash_attention"] = True
                elif k == "attn_implementation" and v in ("eager", "sdpa"):
                    if self.val("use_flash_attention"):
                        self.desired["model.flash_attention"] = False
                        self.origins["model.flash_attention"] = self.values[
                            "model_kwargs"
                        ]
                        self.notes.append(
                            f"model.flash_attention is off: the old GPT-OSS script loaded the model with model_kwargs "
                            f"attn_implementation {v!r} (use_flash_attention was not read)"
                        )
                        self.account("use_flash_attention", EQUIV)
                    rest.append(f"attn_implementation={v!r}")
                else:
                    rest.append(f"{k}={v!r}")
            if rest:
                self.skip(
                    "model_kwargs",
                    f"not mapped: {', '.join(rest)} (sftkit loads the model itself; model.dtype and model.flash_attention carry the rest)",
                    show_value=False,
                )
            else:
                self.same("model_kwargs")

    def _aliases(self) -> None:
        for key, names in ALIASES.items():
            given = [n for n in names if self.open(n) and self.known(n)]
            if not given:
                continue
            # the one set last wins (a subclass's or the call's value over an inherited default); at the same
            # stage, the transformers-style name (listed last)
            winner = max(given, key=lambda n: (self.values[n].stage, names.index(n)))
            given = [n for n in given if n != winner] + [winner]
            value = self.val(winner)
            if key == "train.max_iters":
                value = (
                    value
                    if isinstance(value, int)
                    and not isinstance(value, bool)
                    and value > 0
                    else None
                )
                if (
                    self.family == "gpt-oss"
                    and winner == "max_iters"
                    and not self.given("max_steps")
                    and value
                ):
                    self.explained.add("max_iters")
                    self.notes.append(
                        f"train.max_iters is {value} as the file says; the old GPT-OSS script read max_steps, not max_iters, "
                        f"so its runs trained {self.val('num_train_epochs', 1.0):g} epoch(s) instead"
                    )
            if key == "dpo.ref_model" and (
                value is None or value == self.val("model_name")
            ):
                for n in given:
                    self.same(n) if value is not None else self.unset(n)
                continue
            if key.startswith("dpo.") and self.trainer == "sft" and value == 0.1:
                for n in given:
                    self.same(
                        n
                    )  # the DPO default, in a config that does not train with DPO
                continue
            if value is None and key != "train.max_iters":
                for n in given:
                    self.unset(n)
                continue
            self.put(key, value, winner)
            for other in given[:-1]:
                o = self.val(other)
                if key == "train.max_iters":
                    o = o if isinstance(o, int) and o > 0 else None
                # equal, or an inherited default the config overrides: nothing lost
                if (
                    same_value(o, value)
                    or self.values[other].stage < self.values[winner].stage
                ):
                    self.same(other)
                else:
                    w = self.values[winner]
                    self.skip(
                        other,
                        f"disagrees with {winner}={w.value!r} ({where(w, self.legacy.source)}), which was used",
                        show_value=False,
                    )

    def _schedule(self) -> None:
        from typing import get_args

        from sftkit.config import FLOOR_SCHEDULERS, Scheduler

        name = self.val("scheduler")
        kwargs = self.val("lr_scheduler_kwargs")
        kwargs = dict(kwargs) if isinstance(kwargs, dict) else {}
        if self.open("scheduler") and self.known("scheduler"):
            if name in get_args(Scheduler):
                self.put("train.scheduler", name, "scheduler")
            else:
                self.skip(
                    "scheduler",
                    f"not a schedule transformers has ({', '.join(get_args(Scheduler))})",
                )
                name = None
        floor_rate = kwargs.get("min_lr_rate")
        if self.open("lr_scheduler_kwargs"):
            if name not in FLOOR_SCHEDULERS:
                dropped = sorted(set(kwargs) & {"min_lr", "min_lr_rate"})
                if dropped and self.family == "gpt-oss":
                    self.notes.append(
                        f"lr_scheduler_kwargs {', '.join(dropped)}: the old GPT-OSS script dropped them for the {name!r} schedule, as sftkit does"
                    )
                for k in dropped:
                    kwargs.pop(k)
                floor_rate = None
            if "min_lr_rate" in kwargs:
                kwargs.pop(
                    "min_lr", None
                )  # transformers refuses both: the rate is what the old script passed
            if "min_lr" in kwargs:
                self.desired["train.min_lr"] = kwargs.pop("min_lr")
            for k in ("warmup_steps", "num_warmup_steps", "warmup_ratio"):
                kwargs.pop(k, None)
            if kwargs:
                self.put("train.scheduler_kwargs", kwargs, "lr_scheduler_kwargs")
            else:
                self.same("lr_scheduler_kwargs")
        if self.open("min_lr") and self.known("min_lr"):
            min_lr = self.val("min_lr")
            lr = self.val("learning_rate")
            if floor_rate is not None:
                if (
                    isinstance(lr, (int, float))
                    and isinstance(min_lr, (int, float))
                    and abs(lr * floor_rate - min_lr) <= 1e-12 + 1e-9 * abs(min_lr)
                ):
                    self.same("min_lr")
                else:
                    self.skip(
                        "min_lr",
                        f"lr_scheduler_kwargs min_lr_rate {floor_rate:g} sets the floor instead (the old script passed that one)",
                    )
                self.desired["train.min_lr"] = 0.0
            elif name in ("cosine", *FLOOR_SCHEDULERS) or name is None:
                self.put(
                    "train.min_lr", min_lr if min_lr is not None else 0.0, "min_lr"
                )
                if self.family == "gpt-oss" and name not in FLOOR_SCHEDULERS and min_lr:
                    self.notes.append(
                        f"train.min_lr {min_lr:g} as the file says: the old GPT-OSS script used min_lr only with "
                        f"cosine_with_min_lr, so its {name!r} runs decayed to 0"
                    )
            else:
                if min_lr:
                    self.skip(
                        "min_lr", f"the {name!r} schedule does not end at a floor"
                    )
                else:
                    self.same("min_lr")
                self.desired["train.min_lr"] = 0.0
        steps, ratio = self.val("warmup_steps"), self.val("warmup_ratio")
        if self.open("warmup_steps") and self.known("warmup_steps"):
            self.put("train.warmup_steps", steps or 0, "warmup_steps")
        if self.open("warmup_ratio") and self.known("warmup_ratio"):
            if steps and ratio:
                self.account("warmup_ratio", EQUIV)
                self.notes.append(
                    f"warm-up is given as both warmup_steps ({steps}) and warmup_ratio ({ratio:g}): transformers uses the "
                    f"steps when both are set, and so does the converted file (train.warmup_steps {steps}, train.warmup_ratio 0)"
                )
                self.desired["train.warmup_ratio"] = 0.0
            else:
                self.put("train.warmup_ratio", ratio or 0.0, "warmup_ratio")
                if ratio:
                    self.desired["train.warmup_steps"] = 0

    # -- data -------------------------------------------------------------------------------------
    def _data(self) -> None:
        self._data_location()
        if self.family == "gpt-oss":
            self._gpt_oss_format()
        else:
            self._field_format()
        for name in ("sample_size", "max_samples"):
            if self.open(name) and self.known(name):
                n = self.val(name)
                if n:
                    self.put("data.max_rows", n, name)
                    how = (
                        "a random sample (seed 42)"
                        if name == "sample_size" or self.family == "gpt-oss"
                        else "the rows"
                    )
                    self.notes.append(
                        f"data.max_rows {n}: sftkit keeps the first {n} rows after cleaning; the old script took {how}"
                    )
                else:
                    self.unset(name)
        if self.open("sample_seed"):
            if self.val("sample_size"):
                self.skip("sample_seed", NO_EQUIVALENT["sample_seed"])
            else:
                self.same("sample_seed")  # no sample drawn
        for name in (
            ("min_length", "max_length")
            if self.family == "gpt-oss"
            else ("min_length",)
        ):
            if self.open(name):
                value = self.val(name)
                if not value:
                    self.unset(name)
                else:
                    self.skip(
                        name,
                        "a filter on the characters of prompt + answer, which sftkit does not have (data.too_long works on tokens)",
                    )
        if self.open("text_column"):
            column = self.val("text_column")
            if column in (None, "text"):
                self.same("text_column")
            else:
                self.put(
                    "data.field_map",
                    {**self.desired.get("data.field_map", {}), column: "text"},
                    "text_column",
                )

    def _data_location(self) -> None:
        if self.given("dataset_name"):
            for name in ("data_dir", "train_file", "validation_file"):
                if self.open(name):
                    if self.val(name) is None:
                        self.unset(name)
                    else:
                        self.skip(
                            name,
                            f"dataset_name {self.val('dataset_name')!r} is used instead (the old script read the Hub dataset)",
                        )
            if self.family == "smollm3" and not self.given("validation_split"):
                self.desired["data.validation_fraction"] = SMOLLM3_VALIDATION_FRACTION
                self.notes.append(
                    "data.validation_fraction 0.01: the old SmolLM3 loader held out 1% of the training rows for validation "
                    "(and 1% for test) when the Hub dataset has no validation and test splits; set data.validation_split "
                    "instead if yours has one"
                )
            if self.family == "gpt-oss":
                self._gpt_oss_split()
            return
        if self.open("dataset_name"):
            self.unset("dataset_name")
        if self.family == "gpt-oss":
            self._gpt_oss_split()
        train_file, folder = self.val("train_file"), self.val("data_dir")
        if train_file:
            joined = str(Path(folder) / train_file) if folder else train_file
            source = "train_file" if self.known("train_file") else "data_dir"
            self.put("data.train_file", joined, source)
            self.account("data_dir", MAPPED)
            self.explained.update(
                ("train_file", "data_dir")
            )  # the note below says where it points
            where = (
                ""
                if self.values[source].path == self.legacy.source
                else f" (from {self.values[source].path.name if self.values[source].path else 'the base class'})"
            )
            self.notes.append(
                f"data.train_file is {joined!r}{where}, relative to the folder you run sftkit in"
            )
        else:
            for name in ("train_file", "data_dir"):
                if self.open(name):
                    self.unset(name) if self.val(name) is None else self.skip(
                        name, "no training file goes with it"
                    )
        vf = self.val("validation_file")
        if vf:
            self.put(
                "data.validation_file",
                str(Path(folder) / vf) if folder else vf,
                "validation_file",
            )
        elif self.open("validation_file"):
            self.unset("validation_file")

    def _gpt_oss_split(self) -> None:
        if self.open("eval_ratio") and self.known("eval_ratio"):
            ratio = self.val("eval_ratio")
            if ratio and 0 < ratio < 1:
                self.put("data.validation_fraction", ratio, "eval_ratio")
            else:
                self.same("eval_ratio")
        if self.open("test_ratio") and not self.val("test_ratio"):
            self.same("test_ratio")

    def _field_format(self) -> None:
        """input/target fields and bad-entry filtering -> data.format / data.field_map (the SmolLM3 loader's shape)."""
        inp, target = self.val("input_field"), self.val("target_field")
        filt, bad_field = self.val("filter_bad_entries"), self.val("bad_entry_field")
        names = ("input_field", "target_field", "filter_bad_entries", "bad_entry_field")
        if not any(self.open(n) for n in names):
            return
        openhermes = inp == "prompt" and target == "accepted_completion"
        bad_ok = not filt or (bad_field or "bad_entry") == "bad_entry"
        anchor = next(n for n in names if self.open(n))
        if openhermes and filt is not False and bad_ok:
            self.put(
                "data.format", "openhermes", anchor
            )  # prompt -> accepted_completion, bad_entry rows dropped
            for n in names:
                self.account(n, MAPPED)
            return
        field_map = dict(self.desired.get("data.field_map", {}))
        if inp and inp not in ("instruction", "messages", "text", "prompt"):
            field_map[inp] = "instruction"
        if target and target not in ("output", "completion"):
            field_map[target] = "output" if inp != "prompt" else "completion"
        if field_map:
            self.put("data.field_map", field_map, anchor)
        for n in ("input_field", "target_field"):
            self.account(n, MAPPED if field_map else EQUIV)
        if filt:
            self.skip(
                "filter_bad_entries",
                f"only the openhermes format drops rows, by 'bad_entry' (this config filters by {bad_field!r})",
            )
        elif openhermes:
            self.notes.append(
                "filter_bad_entries is off: rows marked bad_entry are kept (field_map used, not the openhermes format)"
            )
        self.account("filter_bad_entries", EQUIV)
        self.account("bad_entry_field", EQUIV)

    def _gpt_oss_format(self) -> None:
        """``dataset_format`` and its fields, as the old GPT-OSS script read them."""
        fmt = self.val("dataset_format")
        inp, target = self.val("input_field"), self.val("target_field")
        bad = ("bad_entry_field", "bad_prompt_field", "bad_response_field")
        if fmt is None and self.open("dataset_format"):
            self.unset("dataset_format")
        if fmt is None:
            fmt = "messages" if inp == "messages" else None
        if fmt == "openhermes_fr":
            self.put("data.format", "openhermes", "dataset_format")
            self._fields_used(inp, target, "prompt", "accepted_completion")
            if self.val("filter_bad_entries"):
                self.account("filter_bad_entries", MAPPED)
                if (self.val("bad_entry_field") or "bad_entry") == "bad_entry":
                    self.account("bad_entry_field", MAPPED)
                for n in ("bad_prompt_field", "bad_response_field"):
                    self.skip(
                        n,
                        "sftkit's openhermes format drops the rows marked bad_entry only",
                    )
                self.skip(
                    "bad_entry_field",
                    "sftkit's openhermes format drops rows by 'bad_entry' only",
                )
            else:
                self.skip(
                    "filter_bad_entries",
                    "sftkit's openhermes format always drops the rows marked bad_entry",
                )
                for n in bad:
                    self.same(n)
        elif fmt in ("messages", "text"):
            if self.known("dataset_format"):
                self.put("data.format", fmt, "dataset_format")
            else:  # no dataset_format: input_field 'messages' says it
                self.desired["data.format"] = fmt
            column = inp or fmt
            if column != fmt:
                self.put("data.field_map", {column: fmt}, "input_field")
            self.account("input_field", EQUIV)
            self.account("target_field", UNSET if target is None else EQUIV)
            self._no_filter(bad)
        elif fmt == "preference":
            self.put("data.format", "dpo", "dataset_format")
            field_map = {}
            for name, col in (
                ("chosen_field", "chosen"),
                ("rejected_field", "rejected"),
            ):
                if self.given(name) and self.val(name) != col:
                    field_map[self.val(name)] = col
            if field_map:
                self.put("data.field_map", field_map, "chosen_field")
            self.account("input_field", EQUIV)
            self.account("target_field", EQUIV)
            self._no_filter(bad)
        elif fmt == "custom" or (fmt is None and (inp or target)):
            field_map = {}
            if inp and inp != "prompt":
                field_map[inp] = "prompt"
            if target and target != "completion":
                field_map[target] = "completion"
            if field_map:
                self.put("data.field_map", field_map, "input_field")
            self.account("input_field", MAPPED if field_map else EQUIV)
            self.account("target_field", MAPPED if field_map else EQUIV)
            self._no_filter(bad)
            if fmt == "custom":
                self.account("dataset_format", MAPPED if field_map else EQUIV)
        elif fmt is not None:
            why = "a data format sftkit has no reader for"
            if fmt == "medical_o1_sft":
                why = "its answer joins Complex_CoT and Response with prefixes, which no sftkit format does: write a data.formatting_func"
            self.skip("dataset_format", why)
            for n in (
                "question_field",
                "reasoning_field",
                "response_field",
                "reason_prefix",
                "answer_prefix",
                "input_field",
                "target_field",
            ):
                self.skip(
                    n, f"part of dataset_format {fmt!r}, which is not carried over"
                )
            self._no_filter(bad)
        for n in (
            "question_field",
            "reasoning_field",
            "response_field",
            "reason_prefix",
            "answer_prefix",
        ):
            if self.open(n):
                self.account(n, EQUIV)  # read only by the medical_o1_sft format
        for n in ("chosen_field", "rejected_field"):
            if self.open(n) and self.val(n) is None:
                self.unset(n)

    def _fields_used(
        self, inp: Any, target: Any, want_in: str, want_target: str
    ) -> None:
        for name, value, want in (
            ("input_field", inp, want_in),
            ("target_field", target, want_target),
        ):
            if not self.open(name):
                continue
            if value in (want, None):
                self.account(name, EQUIV)
            else:
                self.put(
                    "data.field_map",
                    {**self.desired.get("data.field_map", {}), value: want},
                    name,
                )

    def _no_filter(self, bad: tuple[str, ...]) -> None:
        if self.val("filter_bad_entries"):
            self.skip(
                "filter_bad_entries",
                "only the openhermes format drops rows (by 'bad_entry')",
            )
        else:
            self.account("filter_bad_entries", EQUIV)
        for n in bad:
            self.account(n, EQUIV)

    # -- the chat template ------------------------------------------------------------------------
    def _template(self) -> None:
        use = self.val("use_chat_template")
        kwargs = self.val("chat_template_kwargs")
        kwargs = dict(kwargs) if isinstance(kwargs, dict) else {}
        variables: dict[str, Any] = {}
        gpt_oss = self.family == "gpt-oss"
        if self.open("chat_template_kwargs") and self.known("chat_template_kwargs"):
            call = []
            for k, v in kwargs.items():
                if k in TEMPLATE_CALL_KWARGS:
                    if k == "no_think_system_message" or (k, v) == ("tokenize", False):
                        continue
                    call.append(f"{k}={v!r}: {TEMPLATE_CALL_KWARGS[k]}")
                else:
                    variables[k] = v
            if variables:
                self.put("data.chat_template_kwargs", variables, "chat_template_kwargs")
            if call:
                v = self.values["chat_template_kwargs"]
                self.skipped.append(
                    Skipped(
                        "chat_template_kwargs",
                        v.line,
                        "not mapped: " + "; ".join(call),
                        v.path,
                    )
                )
                if not variables:
                    self.accounted["chat_template_kwargs"] = SKIPPED
            self.account("chat_template_kwargs", EQUIV)
        if (
            self.family == "smollm3"
        ):  # the SmolLM3 loader (src/data.py) and its system message
            if use is False:
                self.put("data.format", "text", "use_chat_template")
                self.notes.append(
                    "use_chat_template is off: the old loader trained on each row's 'text' column, as data.format text does"
                )
            else:
                no_think = kwargs.get("no_think_system_message") is True
                prompt = SMOLLM3_SYSTEM_NO_THINK if no_think else SMOLLM3_SYSTEM
                self.put(
                    "data.system_prompt",
                    prompt,
                    "chat_template_kwargs" if no_think else "use_chat_template",
                )
                self.account("use_chat_template", MAPPED)
                self.notes.append(
                    f"data.system_prompt {prompt!r}: the system message the old SmolLM3 loader put before every "
                    "conversation without one"
                    + (
                        "; /no_think in it turns SmolLM3's thinking off"
                        if no_think
                        else ""
                    )
                )
                self.explained.update(("use_chat_template", "chat_template_kwargs"))
                if no_think:
                    self.notes.append(
                        "the old training script (src/train.py) did not pass chat_template_kwargs to its data loader, so its "
                        "runs used the message without /no_think; the converted file follows the config"
                    )
        if gpt_oss:
            self._harmony(variables)
        elif self.open("use_chat_template"):
            if use is False:
                self.skip("use_chat_template", NO_EQUIVALENT["use_chat_template"])
            else:
                self.same("use_chat_template")
        template = self.val("instruction_template")
        if self.open("instruction_template") and template:
            if "{instruction}" in template:
                self.put("data.template", template, "instruction_template")
            else:
                self.skip(
                    "instruction_template",
                    "a template needs an {instruction} placeholder",
                )
        marker = self.val("response_template")
        if self.open("response_template") and marker:
            if template and marker in template.split("{response}")[0]:
                self.put("data.response_marker", marker, "response_template")
            else:
                self.skip(
                    "response_template",
                    "it does not occur before {response} in the template",
                )

    def _harmony(self, variables: dict[str, Any]) -> None:
        """The GPT-OSS script's own Harmony formatting -> gpt-oss's chat template and its variables."""
        if self.open("use_chat_template"):
            self.account(
                "use_chat_template", EQUIV
            )  # not read by the GPT-OSS script (use_harmony_format decides)
        harmony = self.val("use_harmony_format", True)
        if self.open("use_harmony_format") and harmony:
            self.same("use_harmony_format")  # gpt-oss's chat template renders Harmony
        system, developer = self.val("system_message"), self.val("developer_message")
        if harmony is not False:
            if system:
                identity = variables.get("model_identity")
                if identity not in (None, system):
                    self.skip(
                        "system_message",
                        f"chat_template_kwargs model_identity {identity!r} is used instead",
                    )
                else:
                    self.put(
                        "data.chat_template_kwargs",
                        {
                            **self.desired.get("data.chat_template_kwargs", {}),
                            "model_identity": system,
                        },
                        "system_message",
                    )
            elif self.open("system_message"):
                self.unset("system_message")
            if developer:
                self.put("data.system_prompt", developer, "developer_message")
                self.notes.append(
                    "data.system_prompt is the old developer_message: gpt-oss's chat template renders a system message as its developer block"
                )
            elif self.open("developer_message"):
                self.unset("developer_message")
            if self.open("field_separator"):
                self.account(
                    "field_separator", EQUIV
                )  # used only without the Harmony format
            return
        if self.val("concatenate_fields", True):
            sep = self.val("field_separator")
            if isinstance(sep, str) and "{" not in sep and "}" not in sep:
                self.put(
                    "data.template",
                    "{instruction}" + sep + "{response}",
                    "field_separator",
                )
                marker = sep.strip().splitlines()[-1] if sep.strip() else None
                if marker:
                    self.desired["data.response_marker"] = marker
                self.account("use_harmony_format", MAPPED)
        for name in ("system_message", "developer_message"):
            if self.open(name):
                if self.given(name):
                    self.put("data.system_prompt", self.val(name), name)
                else:
                    self.unset(name)

    # -- evaluation, distributed, tracking --------------------------------------------------------
    def _evaluation(self) -> None:
        strategy = self.val("eval_strategy")
        if self.open("eval_strategy") and self.known("eval_strategy"):
            if strategy in ("steps", None):
                self.same("eval_strategy")
            elif strategy == "no":
                self.skip(
                    "eval_strategy",
                    "sftkit evaluates every train.eval_steps whenever there is validation data (remove it to evaluate only with `sftkit eval`)",
                )
            else:
                self.skip(
                    "eval_strategy",
                    "sftkit evaluates every train.eval_steps: set it to the steps of one epoch",
                )
        if self.open("load_best_model_at_end") and self.known("load_best_model_at_end"):
            self.put(
                "train.load_best_model_at_end",
                bool(self.val("load_best_model_at_end")),
                "load_best_model_at_end",
            )
        if self.open("greater_is_better") and self.known("greater_is_better"):
            metric = self.val("metric_for_best_model", "eval_loss") or "eval_loss"
            derived = "loss" not in metric
            value = self.val("greater_is_better")
            if value is None or value == derived:
                self.same("greater_is_better")
            else:
                self.put("train.greater_is_better", bool(value), "greater_is_better")

    def _distributed(self) -> None:
        backend = self.val("ddp_backend")
        if self.open("ddp_backend") and self.known("ddp_backend"):
            if backend in (None, "nccl"):
                self.same(
                    "ddp_backend"
                )  # sftkit's own choice on GPUs (gloo on CPUs, where nccl cannot run)
            elif backend in ("gloo", "mpi", "xccl", "hccl", "cncl", "mccl"):
                self.put("train.ddp_backend", backend, "ddp_backend")
            else:
                self.skip("ddp_backend", "not a backend torch.distributed has")
        if self.open("ddp_find_unused_parameters") and self.known(
            "ddp_find_unused_parameters"
        ):
            value = self.val("ddp_find_unused_parameters")
            self.put(
                "train.ddp_find_unused_parameters", value, "ddp_find_unused_parameters"
            ) if value is not None else self.unset("ddp_find_unused_parameters")

    def _tracking(self) -> None:
        mode = self.val("monitoring_mode")
        if self.open("monitoring_mode") and self.known("monitoring_mode"):
            if mode == "none":
                self.put("tracking.enabled", False, "monitoring_mode")
            elif mode in ("trackio", "both"):
                self.put("tracking.backend", "trackio", "monitoring_mode")
                if mode == "both":
                    v = self.values["monitoring_mode"]
                    self.skipped.append(
                        Skipped(
                            "monitoring_mode",
                            v.line,
                            "not mapped: 'both' also logged metrics to a Hub dataset (dataset_repo), which sftkit does not do; the trackio part is tracking.backend trackio",
                            v.path,
                        )
                    )
            elif mode == "dataset":
                self.skip(
                    "monitoring_mode",
                    "sftkit does not log metrics to a Hub dataset (metrics.jsonl is in the run folder)",
                )
        report = self.val("report_to")
        if self.open("report_to") and self.known("report_to"):
            backends = [report] if isinstance(report, str) else list(report or [])
            backends = [b for b in backends if b not in ("none", None)]
            known = [b for b in backends if b in ("trackio", "tensorboard", "wandb")]
            if not backends:
                self.put("tracking.enabled", False, "report_to")
            elif known:
                self.put("tracking.backend", known[0], "report_to")
                self.put("tracking.enabled", True, "report_to")
                if len(backends) > 1:
                    v = self.values["report_to"]
                    self.skipped.append(
                        Skipped(
                            "report_to",
                            v.line,
                            f"not mapped: sftkit logs to one tracker ({known[0]} is used, not {', '.join(b for b in backends if b != known[0])})",
                            v.path,
                        )
                    )
            else:
                self.skip(
                    "report_to",
                    "not a tracker sftkit has (trackio, tensorboard, wandb)",
                )
        if self.open("tensorboard_enabled"):
            on = self.val("tensorboard_enabled")
            if on and self.desired.get("tracking.backend") in (None, "tensorboard"):
                self.put("tracking.backend", "tensorboard", "tensorboard_enabled")
            else:
                self.same("tensorboard_enabled")
        if self.open("wandb_enabled"):
            if self.val("wandb_enabled"):
                self.put("tracking.backend", "wandb", "wandb_enabled")
                if self.given("wandb_project"):
                    self.put(
                        "tracking.project", self.val("wandb_project"), "wandb_project"
                    )
            else:
                self.same("wandb_enabled")
                for n in ("wandb_project", "wandb_entity"):
                    if self.open(n):
                        self.same(n)  # not used while W&B is off
        if self.open("wandb_entity"):
            self.skip(
                "wandb_entity", "W&B reads the entity from WANDB_ENTITY"
            ) if self.given("wandb_entity") else self.unset("wandb_entity")

    # -- LoRA and quantisation --------------------------------------------------------------------
    def _lora(self) -> None:
        cfg = self.val("lora_config")
        use = self.val("use_lora")
        if self.open("use_lora") and self.known("use_lora"):
            self.put("lora.enabled", bool(use), "use_lora")
        if isinstance(cfg, dict) and self.open("lora_config"):
            if use is False:
                self.same("lora_config")  # not used without LoRA
            else:
                self._lora_dict(cfg, "lora_config")
        for old, key in (
            ("lora_r", "lora.r"),
            ("lora_alpha", "lora.alpha"),
            ("lora_dropout", "lora.dropout"),
            ("lora_target_modules", "lora.target_modules"),
        ):
            if self.open(old) and self.known(old):
                value = self.val(old)
                if (
                    key == "lora.target_modules"
                    and value == "all-linear"
                    or isinstance(value, (list, str))
                    and key == "lora.target_modules"
                ):
                    value = (
                        value
                        if value == "all-linear"
                        else list(value)
                        if isinstance(value, list)
                        else [value]
                    )
                self.put(key, value, old)
        for old, want in (("lora_bias", "none"), ("lora_task_type", "CAUSAL_LM")):
            if self.open(old):
                self.same(old) if self.val(old) == want else self.skip(
                    old, f"sftkit trains LoRA with {old.split('_')[1]} {want!r}"
                )
        peft = self.val("dpo_peft_config")
        if self.open("dpo_peft_config") and isinstance(peft, dict):
            if self.trainer == "dpo":
                self._lora_dict(peft, "dpo_peft_config")
            else:
                self.same("dpo_peft_config")
        self._quantisation()

    def _lora_dict(self, cfg: dict[str, Any], name: str) -> None:
        self.put("lora.enabled", True, name)
        self.put(
            "lora.dropout", cfg.get("lora_dropout", 0.0), name
        )  # peft's default when the dict has none
        for old, key in (
            ("r", "lora.r"),
            ("lora_alpha", "lora.alpha"),
            ("target_modules", "lora.target_modules"),
        ):
            if old in cfg:
                self.put(key, cfg[old], name)
        if "r" not in cfg:
            self.put("lora.r", 8, name)  # peft's default
        if "lora_alpha" not in cfg:
            self.put("lora.alpha", 8, name)
        if "target_modules" not in cfg:
            self.put("lora.target_modules", "all-linear", name)
        rest = []
        for k, v in cfg.items():
            if k in ("r", "lora_alpha", "lora_dropout", "target_modules") or (k, v) in (
                ("bias", "none"),
                ("task_type", "CAUSAL_LM"),
                ("modules_to_save", []),
            ):
                continue
            rest.append(f"{k}={_short(v)}")
        if rest:
            v = self.values[name]
            reason = (
                "not mapped: "
                + ", ".join(rest)
                + " (no sftkit setting"
                + (
                    ": LoRA on gpt-oss's expert weights is not done)"
                    if "target_parameters" in cfg
                    else ")"
                )
            )
            self.skipped.append(Skipped(name, v.line, reason, v.path))

    def _quantisation(self) -> None:
        q = self.val("quantization_config")
        q = q if isinstance(q, dict) else {}
        use = self.val("use_quantization", q.get("enabled", True))
        if not use:
            self.account("use_quantization", EQUIV)
            if self.open("quantization_config"):
                self.same("quantization_config")  # not used while off
            return
        if not (self.open("quantization_config") or self.open("use_quantization")):
            return
        if q.get("load_in_4bit"):
            self.put("lora.load_in_4bit", True, "quantization_config")
            if "bnb_4bit_quant_type" in q:
                self.put(
                    "lora.quant_type", q["bnb_4bit_quant_type"], "quantization_config"
                )
            if "bnb_4bit_use_double_quant" in q:
                self.put(
                    "lora.double_quant",
                    bool(q["bnb_4bit_use_double_quant"]),
                    "quantization_config",
                )
            self.account("use_quantization", MAPPED)
        elif q.get("load_in_8bit"):
            self.put("lora.load_in_8bit", True, "quantization_config")
            self.account("use_quantization", MAPPED)
        elif q.get("dequantize") or q.get("mxfp4_config"):
            self.skip(
                "quantization_config",
                "MXFP4 (gpt-oss's own quantisation) has no sftkit setting: transformers decides how it loads gpt-oss's weights",
            )
            self.account("use_quantization", EQUIV)
        elif q:
            self.skip("quantization_config", "no 4-bit or 8-bit loading in it")
            self.account("use_quantization", EQUIV)
        else:
            self.account("use_quantization", EQUIV)
            self.account("quantization_config", UNSET)

    # -- DPO and other methods --------------------------------------------------------------------
    def _dpo(self) -> None:
        if self.open("dpo_gradient_checkpointing") and self.val(
            "dpo_gradient_checkpointing"
        ) == self.desired.get(
            "model.gradient_checkpointing",
            self.val("use_gradient_checkpointing", self.val("gradient_checkpointing")),
        ):
            self.same(
                "dpo_gradient_checkpointing"
            )  # model.gradient_checkpointing covers DPO too
        for name in ("desirable_weight", "undesirable_weight"):
            if self.open(name) and self.known(name):
                if self.trainer == "kto":
                    self.put(f"kto.{name}", self.val(name), name)
                else:
                    self.skip(name, "used only by KTO")
        for name, key in (
            ("max_prompt_length", "dpo.max_prompt_length"),
            ("max_length", "dpo.max_length"),
        ):
            if not (self.open(name) and self.known(name)):
                continue
            if (
                self.trainer != "sft" or self.legacy.kind == "yaml"
            ):  # a YAML file's dpo: section
                self.put(key, self.val(name), name)
            elif name == "max_prompt_length":
                self.skip(
                    name,
                    "SFT in sftkit has no prompt limit (model.max_seq_length bounds the whole row)",
                )
            else:
                self.skip(name, "used only by DPO (dpo.max_length)")

    def _method_sections(self) -> None:
        """YAML sections of other methods (``kto:``, ``ipo:``): their keys, when sftkit has them, else listed."""
        from sftkit.keys import all_keys

        keys = set(all_keys())
        for name in list(self.values):
            section, _, sub = name.partition(".")
            if (
                not sub
                or not self.open(name)
                or section not in ("kto", "ipo", "cpo", "orpo", "simpo", "ppo", "grpo")
            ):
                continue
            if f"{section}.{sub}" in keys:
                self.put(f"{section}.{sub}", self.val(name), name)
            else:
                self.skip(name, f"sftkit does not train with {section.upper()}")

    # -- everything else --------------------------------------------------------------------------
    def _rest(self) -> None:
        from sftkit.keys import is_optional_key

        for name, v in self.values.items():
            if not self.open(name):
                continue
            value = v.value
            if name in DIRECT:
                key = DIRECT[name]
                if value is None and not is_optional_key(key):
                    self.unset(name)
                elif (
                    key.startswith("dpo.")
                    and self.trainer == "sft"
                    and value in (0.0, "sigmoid")
                ):
                    self.same(name)
                else:
                    self.put(key, value, name)
                continue
            if name == "mixed_precision" and value in ("bf16", "fp16", "no", "fp32"):
                precision = (
                    "bf16"
                    if self.desired.get("train.bf16")
                    else "fp16"
                    if self.desired.get("train.fp16")
                    else None
                )
                if precision == value or (
                    precision is None and value in ("no", "fp32")
                ):
                    self.same(name)
                    continue
            if name in EQUIVALENT:
                values = EQUIVALENT[name][0]
                if ANY in values or any(same_value(value, ok) for ok in values):
                    self.same(name)
                    continue
            if value is None or value == [] or value == {}:
                self.unset(name)
                continue
            reason = NO_EQUIVALENT.get(name) or (
                EQUIVALENT[name][1] + f", not {value!r}"
                if name in EQUIVALENT
                else "no sftkit setting with this name"
            )
            self.skip(name, f"not mapped: {reason}")

    # -- after mapping: what the written file needs -----------------------------------------------
    def fit(self, base: Any) -> None:
        """Adjust what would not resolve together, saying why (best-model selection needs validation data and
        checkpoints on evaluations)."""
        from sftkit.config import RunConfig

        merged = {**flatten(base.to_dict()), **self.desired}
        try:
            cfg = RunConfig.model_validate(_nest(merged))
        except Exception:  # noqa: BLE001 - a value sftkit rejects is reported by write_conversion, with its line
            return
        t = cfg.train
        if (
            t.group_by_length
            and cfg.data.packing
            and "train.group_by_length" in self.origins
        ):
            origin = self.origins.pop("train.group_by_length")
            self.desired["train.group_by_length"] = False
            self.mapped = [m for m in self.mapped if m[1] != "train.group_by_length"]
            self.accounted.pop(origin.name, None)
            self.skip(
                origin.name,
                "not carried: packed rows (data.packing) have no lengths to group by",
            )
        if t.load_best_model_at_end:
            origin = self.origins.get("train.load_best_model_at_end")
            why = None
            if not cfg.has_validation:
                why = "it needs validation data and the config names none (set data.validation_file, data.validation_split or data.validation_fraction)"
            elif t.save_steps % t.eval_steps:
                why = f"save_steps ({t.save_steps}) is not a multiple of eval_steps ({t.eval_steps}), so no checkpoint falls on an evaluation"
            if why:
                self.desired["train.load_best_model_at_end"] = False
                if origin is not None:
                    self.mapped = [
                        m for m in self.mapped if m[1] != "train.load_best_model_at_end"
                    ]
                    self.origins.pop("train.load_best_model_at_end", None)
                    self.accounted.pop(origin.name, None)
                    self.skip(origin.name, f"not carried: {why}", show_value=False)
                else:
                    self.notes.append(f"train.load_best_model_at_end is off: {why}")

    def note_unread(self) -> None:
        """One note naming the carried settings the old training script did not read."""
        read = READ_BY_OLD_SCRIPT.get(self.family)
        if not read:
            return
        unread = sorted(
            name
            for name, status in self.accounted.items()
            if status == MAPPED
            and name not in read
            and name not in self.explained
            and self.values[name].path is not None
        )
        if unread:
            script = (
                "src/train.py"
                if self.family == "smollm3"
                else "scripts/training/train_gpt_oss.py"
            )
            them = "them" if len(unread) > 1 else "it"
            self.notes.append(
                f"the old {script} did not read {', '.join(unread)}: the converted file applies {them} as the config sets {them}"
            )


METHOD_WORDS_REV = {v: k for k, v in METHOD_WORDS.items()}


def _method_of(legacy: LegacyFile) -> str | None:
    """The training method a config's class names (``DPOConfig`` -> dpo, ``KTOConfig`` -> kto), if any."""
    for name in reversed([*legacy.chain, legacy.class_name]):
        stem = name.removesuffix("Config")
        for word, method in sorted(METHOD_WORDS.items(), key=lambda kv: -len(kv[0])):
            if stem == word or stem.endswith(word) and not stem.endswith("Base"):
                return method
    return None


def _nest(flat: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in flat.items():
        section, _, name = key.partition(".")
        if name:
            out.setdefault(section, {})[name] = value
        else:
            out[key] = value
    return out


def _short(value: Any) -> str:
    text = repr(value)
    text = " ".join(text.split())
    return text if len(text) <= 50 else text[:47] + "..."


def where(item: Skipped | Value, source: Path) -> str:
    """``file:line`` of an old field (the file's name when it is the converted file's sibling)."""
    path = item.path
    if path is None:
        return "(a known base class default)"
    name = path.name if path.parent == Path(source).parent else str(path)
    return f"{name}:{item.line}"


def write_conversion(conv: Conversion, path: Path) -> None:
    """Write the converted file after checking it resolves; values sftkit rejects are reported by key (exit 2)."""
    text = render(conv)
    problems = check_text(text, complete=conv.complete)
    if problems:
        for p in problems:
            first = (p.key or "").split(",")[0].strip()
            origin = conv.origins.get(first)
            if origin is not None:
                p.where = (
                    where(origin, conv.source)
                    if origin.path != conv.source
                    else f"{conv.source}:{origin.line}"
                )
        error = ConfigError.from_problems(problems)
        error.message = (
            f"the converted config is not valid, nothing was written: {error.message}"
        )
        error.hint = (
            error.hint
            or f"fix these values in the legacy file, or write {CONFIG} with `sftkit init`"
        )
        raise error
    write_project(path, text, complete=conv.complete)


def render(conv: Conversion) -> str:
    """The converted project file's text: where it came from, the notes and every field not carried over as
    comments, then the values."""
    header = [
        f"Converted by `sftkit init --from-legacy` from {conv.source.name} ({conv.class_name}).",
        "The file was read, not run. Values equal to "
        + (f"the preset `{conv.extends}`" if conv.extends else "sftkit's defaults")
        + " are left out.",
    ]
    if conv.notes:
        header.append("")
        header.append("Notes:")
        header += [f"  {_one_line(n)}" for n in conv.notes]
    shown = [
        s
        for s in conv.skipped
        if conv.accounted.get(s.name) != SECRET and not is_secret(s.name)
    ]
    if shown:  # secrets are named on the terminal only: the file may be shared
        header.append("")
        header.append(f"Not carried over ({len(shown)}), one line per field:")
        header += [
            f"  {where(s, conv.source)}: {s.name}: {_one_line(s.reason)}" for s in shown
        ]
    header.append("")
    return render_project(conv, header)


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


__all__: list[str] = [
    "Conversion",
    "convert_legacy",
    "family_of",
    "render",
    "write_conversion",
]
