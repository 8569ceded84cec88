"""The wizard's state: the answers so far (given, defaulted or asked) and everything derived from them."""

from __future__ import annotations

from typing import Any, Callable, Mapping, Protocol

from sftkit.config import RunConfig
from sftkit.errors import ConfigError, Problem, SftkitError
from sftkit.projectfile import ProjectFile
from sftkit.wizard.environment import detect_hardware
from sftkit.wizard.parse import show
from sftkit.wizard.questions import (
    BY_KEY,
    CHOICES,
    MORE,
    QUESTIONS,
    TRACKIO_SPACE,
    Option,
    Question,
    default_preset,
)

#: how errors name what is not an answer when the caller says nothing else (a Python keyword argument)
DEFAULT_NAMES = {"yes": "yes=True"}


def namer(names: Mapping[str, str] | None) -> Callable[[str], str]:
    """``key -> what the caller calls it``: the CLI passes its flags (``{"learning_rate": "--lr"}``), so errors
    name what the user typed; otherwise an answer is named by its key."""
    table = {**DEFAULT_NAMES, **(names or {})}
    return lambda key: table.get(key, key)


class Prompter(Protocol):
    """How questions reach a person. :class:`~sftkit.wizard.interactive.QuestionaryPrompter` is the real one."""

    def select(self, message: str, options: list[Option], default: str) -> str: ...

    def text(self, message: str, default: str, validate: Callable[[str], str | None]) -> str: ...

    def confirm(self, message: str, default: bool) -> bool: ...


class Wizard:
    """Answers (given, defaults or from a person) and everything derived from them."""

    def __init__(
        self,
        given: dict[str, Any] | None = None,
        hardware: tuple[str, str] | None = None,
        names: Mapping[str, str] | None = None,
    ) -> None:
        self.name = namer(names)
        self.given: dict[str, Any] = check_given(given or {}, names)
        self.answers: dict[str, Any] = dict(self.given)
        self.defaulted: set[str] = set()
        """Answers that took their default; they follow the default when an earlier answer changes."""
        self._hardware = hardware
        self._bases: dict[str, RunConfig] = {}
        self._presets: dict[str, Any] | None = None
        self._noted: set[str] = set()

    # -- lookups ------------------------------------------------------------------------------------
    def presets(self) -> dict[str, Any]:
        if self._presets is None:
            from sftkit.presets import discover

            self._presets = discover()
            if not self._presets:
                raise SftkitError("no presets found", hint="reinstall sftkit: its presets/ folder is missing")
        return self._presets

    def hardware(self) -> tuple[str, str]:
        if self._hardware is None:
            self._hardware = detect_hardware()
        return self._hardware

    def base(self, preset: str | None = None) -> RunConfig:
        """The chosen preset fully resolved (what the project file's values are compared with)."""
        name = preset or self.answers.get("preset") or default_preset(self)
        if name not in self._bases:
            from sftkit.resolve import resolve_config

            self._bases[name] = resolve_config(preset=name, check=False).config
        return self._bases[name]

    def preset_trainer_type(self) -> str | None:
        name = self.answers.get("preset")
        return self.base(name).trainer_type if name else None

    def active(self) -> list[Question]:
        return [q for q in QUESTIONS if q.when(self)]

    def default(self, q: Question) -> Any:
        return q.default(self)

    # -- answering ----------------------------------------------------------------------------------
    def accept_defaults(self) -> None:
        """Nothing is asked: every question not answered yet takes its default, in order."""
        for q in QUESTIONS:
            if not q.when(self):
                continue
            if q.key not in self.answers:
                value = self.default(q)
                if value is None and not _may_be_empty(q):
                    raise ConfigError(
                        f"no {q.label} in preset {self.answers['preset']!r}",
                        hint=f"give {self.name(q.key)}: with {self.name('yes')}, every answer is given or comes from the preset",
                    )
                self.answers[q.key] = value
                self.defaulted.add(q.key)
            self._show_note(q, self.answers[q.key])

    def set_answer(self, key: str, value: Any, *, defaulted: bool) -> None:
        """Record an answer; answers that took defaults after it follow their new defaults."""
        changed = key in self.answers and self.answers[key] != value
        self.answers[key] = value
        if defaulted:
            self.defaulted.add(key)
        else:
            self.defaulted.discard(key)
        if changed:
            self._rebase(after=key)

    def _rebase(self, after: str) -> None:
        keys = [q.key for q in QUESTIONS]
        if after not in keys:
            return  # one of the more settings: no answer depends on it
        start = keys.index(after) + 1
        for q in QUESTIONS[start:]:
            if not q.when(self):
                self.answers.pop(q.key, None)
                self.defaulted.discard(q.key)
            elif q.key in self.defaulted and q.key in self.answers:
                self.answers[q.key] = self.default(q)

    def _show_note(self, q: Question, value: Any) -> None:
        if q.note is None:
            return
        line = q.note(self, value)
        if line:
            from sftkit.console import console, escape

            console.print(f"  [dim]{escape(line)}[/]")

    def ask(self, prompter: Prompter, q: Question) -> None:
        """Ask one question, pre-filled with the current answer (or the default)."""
        default = self.answers[q.key] if q.key in self.answers else self.default(q)
        if q.is_select:
            options = q.options(self)
            values = [o.value for o in options]
            start = default if default in values else values[0]
            value = prompter.select(q.message, options, start)
        else:

            def validate(text: str) -> str | None:
                try:
                    q.parse(text)
                except ValueError as e:
                    return str(e)
                return None

            value = q.parse(prompter.text(q.message, show(default), validate))
        fresh = q.key not in self.answers
        self.set_answer(q.key, value, defaulted=fresh and value == default)
        self._show_note(q, value)

    def ask_missing(self, prompter: Prompter) -> None:
        """Ask every active question without an answer, in order (notes for given answers shown on the way)."""
        while True:
            todo = [q for q in self.active() if q.key not in self.answers]
            for q in self.active():
                if todo and q is todo[0]:
                    break
                if q.key in self.given and q.key not in self._noted:
                    self._noted.add(q.key)
                    self._show_note(q, self.answers[q.key])
            if not todo:
                return
            self.ask(prompter, todo[0])

    # -- results ------------------------------------------------------------------------------------
    def project(self) -> ProjectFile:
        from sftkit.wizard.mapping import build_project

        return build_project(self.answers, self.base())

    def more(self) -> list[Question]:
        """The more settings that apply (offered under "Change an answer", given with ``--set KEY=VALUE``)."""
        return [q for q in MORE if q.when(self)]

    def summary_rows(self) -> list[tuple[str, str]]:
        rows = [(q.label, show(self.answers.get(q.key)) or "-") for q in self.active()]
        return rows + [(q.label, show(self.answers[q.key]) or "-") for q in self.more() if q.key in self.answers]


def _may_be_empty(q: Question) -> bool:
    try:
        return q.parse("") is None
    except ValueError:
        return False


def check_given(given: dict[str, Any], names: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Check given answers with the questions' own parsers; every problem reported at once (exit 2).

    Each problem names the answer as ``names`` calls it (see :func:`namer`).
    """
    name = namer(names)
    out: dict[str, Any] = {}
    problems: list[Problem] = []
    for key, value in given.items():
        if value is None:
            continue
        q = BY_KEY.get(key)
        if q is None:
            raise ValueError(f"not a wizard question: {key}")
        if q.is_select:
            out[key] = value  # checked against its choices below
            continue
        try:
            out[key] = q.parse(show(value))
        except ValueError as e:
            problems.append(Problem(str(e), where=name(key)))
    if "preset" in out:
        from sftkit.presets import find

        try:
            find(out["preset"])
        except ConfigError as e:
            problems.append(Problem(e.message, where=name("preset"), hint=e.hint))
    for key, choices in CHOICES.items():
        if key in out and out[key] not in choices:
            problems.append(Problem(f"{out[key]!r} is not one of: {', '.join(choices)}", where=name(key)))
    if "trackio_space" in out:
        if out.get("tracking", TRACKIO_SPACE) != TRACKIO_SPACE:
            problems.append(Problem(f"only goes with {name('tracking')} {TRACKIO_SPACE}", where=name("trackio_space")))
        out["tracking"] = TRACKIO_SPACE
    if "max_iters" in out and "num_train_epochs" in out:
        steps, epochs = name("max_iters"), name("num_train_epochs")
        problems.append(
            Problem(f"give {steps} or {epochs}, not both", where=epochs, hint=f"{steps} trains by steps, {epochs} by epochs")
        )
    elif "num_train_epochs" in out:
        out["max_iters"] = None  # training by epochs: the preset's step count must not override them
    if problems:
        raise ConfigError.from_problems(problems)
    return out
