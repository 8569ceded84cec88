"""Loss curves: drawn in the terminal with plotille (Unicode braille dots, no dependencies of its own), and saved
as ``loss.png`` in the run folder with matplotlib, which the optional ``plot`` extra installs
(``pip install 'sftkit[plot]'``). Without matplotlib the image is skipped with a note, never an error, at the end
of a run; ``sftkit runs show RUN --image`` draws it later.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from sftkit.errors import SftkitError
from sftkit.yamlio import follow_umask

#: how to get matplotlib, for notes and hints
PLOT_EXTRA = "pip install 'sftkit[plot]'"


@dataclass
class Series:
    """One line of a chart: ``points`` are (step, loss); ``marker`` marks each point (else a braille line)."""

    label: str
    points: Sequence[tuple[int, float]]
    color: str
    marker: str | None = None


#: terminal colours given to the runs of a comparison, in order
COLORS = ("cyan", "yellow", "magenta", "green", "blue", "red")


def loss_series(
    train: Sequence[tuple[int, float]], evals: Sequence[tuple[int, float]]
) -> list[Series]:
    """A run's curve: train loss as a line, eval loss as a line with a mark at each evaluation."""
    series = [Series("train loss", train, "cyan")] if train else []
    return series + ([Series("eval loss", evals, "yellow", "o")] if evals else [])


def chart(
    series: Sequence[Series], *, width: int = 60, height: int = 10, color: bool = True
) -> str:
    """The series drawn in text, with a legend line under the x axis. ``color``: ANSI colours, which plotille
    adds only where stdout is a terminal and ``NO_COLOR`` is unset."""
    try:
        import plotille
    except ImportError:  # a dependency of sftkit: only a broken install lacks it
        raise SftkitError(
            "drawing the loss curve needs plotille, which is not installed",
            hint="pip install plotille",
        ) from None

    series = [s for s in series if s.points]
    if not series:
        return ""
    xs = [p[0] for s in series for p in s.points]
    ys = [p[1] for s in series for p in s.points]
    fig = plotille.Figure()
    fig.width, fig.height = max(width, 10), max(height, 3)
    fig.with_colors = color
    fig.origin = False
    fig.x_label, fig.y_label = "step", "loss"
    x_lo, x_hi = min(xs), max(xs)
    y_lo, y_hi = min(ys), max(ys)
    pad = (y_hi - y_lo) * 0.05 or abs(y_hi) * 0.05 or 1.0
    # plotille's upper limits are exclusive: stretch them by one dot so the last step is drawn
    dots = 2 * fig.width
    fig.set_x_limits(min_=x_lo, max_=x_lo + (max(x_hi - x_lo, 1)) * dots / (dots - 1))
    fig.set_y_limits(min_=y_lo - pad, max_=y_hi + pad)
    fig.x_ticks_fkt = lambda lo, hi: f"{lo:.0f}" if x_hi - x_lo >= 10 else f"{lo:.3g}"
    fig.y_ticks_fkt = lambda lo, hi: f"{lo:.4g}"
    for s in series:
        xs_, ys_ = [p[0] for p in s.points], [p[1] for p in s.points]
        fig.plot(xs_, ys_, lc=s.color, label=s.label, marker=s.marker)
    legend = "   ".join(
        _paint(
            f"{'─' + s.marker + '─' if s.marker else '──'} {s.label}", s.color, color
        )
        for s in series
    )
    return fig.show() + "\n" + " " * 13 + legend


def _paint(text: str, name: str, color: bool) -> str:
    if not color:
        return text
    import plotille

    return plotille.color(text, fg=name, mode="names")


def save_image(series: Sequence[Series], path: Path, title: str) -> Path:
    """Draw the series with matplotlib into a PNG at ``path`` (written whole or not at all)."""
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise SftkitError(
            "drawing loss.png needs matplotlib, which is not installed", hint=PLOT_EXTRA
        ) from None
    fig = Figure(figsize=(8, 4.5), dpi=100, layout="constrained")
    ax = fig.add_subplot()
    for s in series:
        if s.points:
            ax.plot(
                [p[0] for p in s.points],
                [p[1] for p in s.points],
                label=s.label,
                marker="o" if s.marker else None,
                markersize=4,
            )
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    if any(s.points for s in series):
        ax.legend()
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        fig.savefig(tmp, format="png")
        follow_umask(
            Path(tmp)
        )  # mkstemp made it private; the plot is an ordinary file of the run folder
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
