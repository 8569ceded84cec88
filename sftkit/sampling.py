"""Decoding settings and generation counts: the one home of the sampling defaults (greedy, 256 new tokens,
batches of 8) that ``sftkit generate``, ``sftkit eval`` and the Python API share. No heavy imports."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sftkit.errors import EXIT_USAGE, SftkitError

#: prompts generated together by default: on a CPU, tokens/s grows almost in step with the batch up to about
#: this size (a pipe's prompts wait until 32 have arrived or the input ends)
DEFAULT_BATCH_SIZE = 32


@dataclass
class SamplingOptions:
    """Decoding settings; ``temperature == 0`` means greedy decoding (the default)."""

    max_new_tokens: int = 256
    temperature: float = 0.0
    top_p: float = 1.0
    top_k: int = 0
    repetition_penalty: float = 1.0
    seed: int | None = None
    max_length: int | None = None
    """Prompt and response tokens together, as transformers counts ``max_length``: each prompt gets
    ``max_length`` minus its own length as its budget; when set, ``max_new_tokens`` is not used."""

    @classmethod
    def from_keywords(
        cls,
        *,
        max_new_tokens: int | None = None,
        max_length: int | None = None,
        do_sample: bool | None = None,
        temperature: float | None = None,
        top_p: float = 1.0,
        top_k: int = 0,
        repetition_penalty: float = 1.0,
        seed: int | None = None,
    ) -> SamplingOptions:
        """Options from the keywords transformers' ``generate`` takes, with its meanings: ``max_new_tokens``
        wins over ``max_length`` when both are given; ``do_sample=False`` decodes greedily whatever the
        temperature; ``do_sample=True`` samples at ``temperature`` (1.0 when not given). Without ``do_sample``,
        sftkit's rule holds: a temperature above 0 samples."""
        if do_sample is True and temperature is not None and temperature <= 0:
            raise SftkitError(
                f"do_sample=True needs a temperature above 0, got {temperature}",
                hint="give a temperature such as 0.7, or do_sample=False for greedy decoding",
                exit_code=EXIT_USAGE,
            )
        if do_sample is False:
            temperature = 0.0
        elif temperature is None:
            temperature = 1.0 if do_sample else 0.0
        if max_new_tokens is not None:
            max_length = None
        return cls(
            max_new_tokens if max_new_tokens is not None else cls.max_new_tokens,
            temperature,
            top_p,
            top_k,
            repetition_penalty,
            seed,
            max_length,
        )

    def new_tokens(self, prompt_tokens: int) -> int:
        """The most tokens generated after a prompt of ``prompt_tokens`` tokens."""
        return self.max_length - prompt_tokens if self.max_length is not None else self.max_new_tokens

    def check(self) -> None:
        """Raise an SftkitError (exit 2) naming the setting when a value is out of range."""
        import math

        bad = None
        for name in ("temperature", "top_p", "repetition_penalty"):
            if not math.isfinite(getattr(self, name)):  # NaN passes every comparison below (a NaN temperature decoded greedily)
                raise SftkitError(f"{name} must be a finite number, got {getattr(self, name)}", exit_code=EXIT_USAGE)
        if self.max_new_tokens < 1:
            bad = ("max_new_tokens", "at least 1")
        elif self.max_length is not None and self.max_length < 2:
            bad = ("max_length", "at least 2 (it counts the prompt too)")
        elif self.temperature < 0:
            bad = ("temperature", "0 (greedy) or more")
        elif not 0 < self.top_p <= 1:
            bad = ("top_p", "in (0, 1]")
        elif self.top_k < 0:
            bad = ("top_k", "0 (off) or more")
        elif self.repetition_penalty <= 0:
            bad = ("repetition_penalty", "above 0 (1.0 is off)")
        if bad:
            raise SftkitError(f"{bad[0]} must be {bad[1]}", exit_code=EXIT_USAGE)

    @property
    def greedy(self) -> bool:
        return self.temperature == 0

    def generate_kwargs(self) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"max_new_tokens": self.max_new_tokens, "repetition_penalty": self.repetition_penalty}
        if self.temperature > 0:
            kwargs.update(do_sample=True, temperature=self.temperature, top_p=self.top_p, top_k=self.top_k)  # top_k 0: no limit
        else:
            kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        return kwargs


@dataclass
class GenerationStats:
    """Counts of one or more generate calls (pass one to ``generate_iter(stats=...)`` to fill it)."""

    prompts: int = 0
    batches: list[int] = field(default_factory=list)
    """The size of each batch generated, in order."""
    prompt_tokens: int = 0
    new_tokens: int = 0
    """Generated tokens, up to and including each response's stop token (padding not counted)."""
    seconds: float = 0.0
    """Time spent inside ``model.generate``."""

    @property
    def tokens_per_second(self) -> float:
        return self.new_tokens / self.seconds if self.seconds else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "prompts": self.prompts,
            "batches": self.batches,
            "prompt_tokens": self.prompt_tokens,
            "new_tokens": self.new_tokens,
            "seconds": round(self.seconds, 3),
            "tokens_per_second": round(self.tokens_per_second, 2),
        }


#: the defaults, for signatures that spell each setting out
DEFAULTS = SamplingOptions()
