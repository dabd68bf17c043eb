"""Charts drawn on the server as SVG (matplotlib, no pyplot, no browser library).

The image holds only numbers and ISO week labels: the title, legend and axis names are in
the page's HTML, in the page's language, so no Korean font is needed to draw it. Text is
kept as SVG ``<text>`` (not outlines): the browser draws it, and it can be searched.
"""

from __future__ import annotations

import io
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from haetae.console.certificate_stats import WeekCount

if TYPE_CHECKING:
    from matplotlib.typing import RcKeyType

# The page's palette (console.css): joint in the primary blue, financial in green.
COLOURS = {"joint": "#3182f6", "financial": "#03b26c"}
_GRID = "#e5e8eb"
_TEXT = "#4e5968"

# rcParams are process-wide: one chart at a time, so two requests never mix settings.
_LOCK = threading.Lock()
_RC: dict[RcKeyType, Any] = {
    "svg.fonttype": "none",
    "svg.hashsalt": "haetae",  # stable ids: the same data gives the same SVG
    "font.family": "sans-serif",
    "font.size": 9,
    "axes.edgecolor": _GRID,
    "axes.labelcolor": _TEXT,
    "xtick.color": _TEXT,
    "ytick.color": _TEXT,
}


def week_label(week: WeekCount) -> str:
    """``W48`` over the Monday, ``11/23``."""
    _, number, _ = week.monday.isocalendar()
    return f"W{number:02d}\n{week.monday.month}/{week.monday.day}"


def weekly_expiry_svg(weeks: Sequence[WeekCount]) -> str:
    """Stacked bars, joint under financial, one pair per week; each bar's SVG group is
    ``bar-joint-<i>`` / ``bar-financial-<i>``. Returns the ``<svg>`` element alone, to
    put inline in a page."""
    # Imported here: matplotlib takes a while to load and only this page needs it.
    from matplotlib import rc_context
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    positions = list(range(len(weeks)))
    joint = [w.joint for w in weeks]
    financial = [w.financial for w in weeks]
    with _LOCK, rc_context(_RC):
        figure = Figure(figsize=(7.2, 3.0), layout="constrained")
        axes = figure.add_subplot()
        lower = axes.bar(positions, joint, width=0.62, color=COLOURS["joint"])
        upper = axes.bar(positions, financial, width=0.62, bottom=joint, color=COLOURS["financial"])
        for i, (j, f) in enumerate(zip(lower, upper, strict=True)):
            j.set_gid(f"bar-joint-{i}")
            f.set_gid(f"bar-financial-{i}")
        for i, week in enumerate(weeks):
            if week.total:
                axes.annotate(
                    str(week.total),
                    (i, week.total),
                    xytext=(0, 2),
                    textcoords="offset points",
                    ha="center",
                    va="bottom",
                    color=_TEXT,
                    gid=f"total-{i}",
                )
        axes.set_xticks(positions, [week_label(w) for w in weeks])
        axes.yaxis.set_major_locator(MaxNLocator(integer=True))
        axes.set_ylim(0, max([w.total for w in weeks] + [1]) * 1.18)
        axes.grid(axis="y", color=_GRID, linewidth=0.8)
        axes.set_axisbelow(True)
        axes.tick_params(length=0)
        for side in ("top", "right", "left"):
            axes.spines[side].set_visible(False)
        buffer = io.StringIO()
        figure.savefig(buffer, format="svg", metadata={"Date": None}, transparent=True)
    svg = buffer.getvalue()
    return svg[svg.index("<svg") :]
