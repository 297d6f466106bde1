"""The equity chart of the equity-curve documentation, drawn with matplotlib (extra ``plot``).

Time against total value, and the API wallet's starting balance as a dashed
grey line. Drawn on a bare ``Figure`` with the Agg canvas, so no GUI backend is
ever loaded and nothing depends on a display.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path

from .._extras import require
from ..models.account import EquityPoint

__all__ = ["BASELINE_COLOR", "LINE_COLOR", "plot_equity"]

#: The curve's colour (matplotlib's first default colour) and the baseline's.
LINE_COLOR = "#1f77b4"
BASELINE_COLOR = "#808080"


def check_available() -> None:
    """Fail before any request when matplotlib is missing.

    Raises:
        MissingDependencyError: matplotlib is not installed; the message names
            the ``plot`` extra.
    """
    require("matplotlib.figure", "plot", feature="polysim equity --plot")


def plot_equity(points: Sequence[EquityPoint], baseline: Decimal | None, path: Path) -> None:
    """Write the chart of ``points`` (oldest first) to ``path`` as a PNG (1000x500 pixels).

    Args:
        points: the hourly snapshots to draw.
        baseline: the starting balance drawn as a dashed line (``None``: no line).
        path: the PNG file to create or replace.

    Raises:
        MissingDependencyError: matplotlib is not installed (``polysim-async[plot]``).
        OSError: ``path`` cannot be written.
    """
    figure_module = require("matplotlib.figure", "plot", feature="polysim equity --plot")
    dates = require("matplotlib.dates", "plot", feature="polysim equity --plot")
    ticker = require("matplotlib.ticker", "plot", feature="polysim equity --plot")
    figure = figure_module.Figure(figsize=(10, 5), dpi=100)
    ax = figure.subplots()
    times = [p.timestamp for p in points]
    # Plot coordinates only: the figures printed elsewhere stay exact decimals.
    ax.plot(times, [float(p.total_value) for p in points], color=LINE_COLOR, linewidth=2)
    if baseline is not None:
        ax.axhline(
            y=float(baseline),
            color=BASELINE_COLOR,
            linestyle="--",
            linewidth=1.5,
            label=f"Starting balance ({baseline})",
        )
        ax.legend(loc="best")
    locator = dates.AutoDateLocator()
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(dates.ConciseDateFormatter(locator))
    ax.yaxis.set_major_formatter(ticker.StrMethodFormatter("{x:,.2f}"))  # no "+1e4" offset
    ax.set_title("Portfolio Equity Curve")
    ax.set_ylabel("Portfolio Value ($)")
    ax.grid(False)
    figure.tight_layout()
    figure.savefig(path, format="png")
