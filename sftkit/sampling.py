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

    def check(self) -> None:
        """Raise an SftkitError (exit 2) naming the setting when a value is out of range."""
        import math

        bad = None
        for name in ("temperature", "top_p", "repetition_penalty"):
            if not math.isfinite(getattr(self, name)):  # NaN passes every comparison below (a NaN temperature decoded greedily)
                raise SftkitError(f"{name} must be a finite number, got {getattr(self, name)}", exit_code=EXIT_USAGE)
        if self.max_new_tokens < 1:
            bad = ("max_new_tokens", "at least 1")
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
