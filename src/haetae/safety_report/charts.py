"""The report's charts, drawn with matplotlib (no pyplot): SVG for the HTML page (its text
kept as ``<text>``, so the browser draws it and it can be searched), PNG for the PDF (which
WeasyPrint embeds as it is, with no SVG text layout of its own to go wrong).

The labels come in already translated; Korean needs the NanumGothic font (Debian's
``fonts-nanum``), registered with matplotlib here if its font cache predates the font.
"""

from __future__ import annotations

import io
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure
    from matplotlib.typing import RcKeyType

ChartFormat = Literal["svg", "png"]
PALETTE = (
    "#3182f6",
    "#03b26c",
    "#f04452",
    "#ffb331",
    "#8b5cf6",
    "#00a6c7",
    "#ff7a45",
    "#8b95a1",
)
KOREAN_FONT = "NanumGothic"
PNG_DPI = 200
_GRID = "#e5e8eb"
_TEXT = "#4e5968"
# rcParams are process-wide: one chart at a time, so two reports never mix settings.
_LOCK = threading.Lock()


@dataclass(frozen=True, slots=True)
class Series:
    label: str
    values: Sequence[float]
    colour: str


@cache
def font_families() -> tuple[str, ...]:
    """NanumGothic first when the machine has it (registered with matplotlib if its font
    cache was built before the font was installed), then matplotlib's own font."""
    from matplotlib import font_manager

    if not any(f.name == KOREAN_FONT for f in font_manager.fontManager.ttflist):
        for path in font_manager.findSystemFonts():
            name = Path(path).stem
            if name.startswith(KOREAN_FONT) and not name.startswith("NanumGothicCoding"):
                font_manager.fontManager.addfont(path)
    if any(f.name == KOREAN_FONT for f in font_manager.fontManager.ttflist):
        return (KOREAN_FONT, "DejaVu Sans")
    return ("DejaVu Sans",)


def _rc() -> dict[RcKeyType, Any]:
    return {
        "svg.fonttype": "none",
        "svg.hashsalt": "haetae",  # stable ids: the same data gives the same SVG
        "font.family": list(font_families()),
        "font.size": 8,
        "axes.edgecolor": _GRID,
        "axes.labelcolor": _TEXT,
        "xtick.color": _TEXT,
        "ytick.color": _TEXT,
        "legend.frameon": False,
    }


def _finish(figure: Figure, fmt: ChartFormat) -> str | bytes:
    buffer = io.BytesIO()
    if fmt == "png":
        figure.savefig(buffer, format="png", dpi=PNG_DPI, facecolor="white")
        return buffer.getvalue()
    figure.savefig(buffer, format="svg", metadata={"Date": None})
    svg = buffer.getvalue().decode()
    # The <svg> element alone, to put inline in a page; it scales to its container.
    svg = svg[svg.index("<svg") :]
    return re.sub(r'(<svg[^>]*?) width="[^"]*" height="[^"]*"', r"\1", svg, count=1)


def _style(axes: Axes, *, grid_axis: Literal["x", "y"]) -> None:
    axes.grid(axis=grid_axis, color=_GRID, linewidth=0.8)
    axes.set_axisbelow(True)
    for side in ("top", "right"):
        axes.spines[side].set_visible(False)
    axes.tick_params(length=0)


def stacked_bars(
    name: str,
    categories: Sequence[str],
    series: Sequence[Series],
    *,
    unit: str = "",
    counts: bool = True,
    fmt: ChartFormat = "svg",
    width: float = 7.0,
    height: float = 2.8,
) -> str | bytes:
    """Vertical bars, one per category, each series stacked on the one before; the total
    above each bar; whole-number ticks for ``counts``. SVG groups: ``chart-<name>``, bars
    ``bar-<name>-<series>-<i>``."""
    from matplotlib import rc_context
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    positions = list(range(len(categories)))
    with _LOCK, rc_context(_rc()):
        figure = Figure(figsize=(width, height), layout="constrained")
        axes = figure.add_subplot(gid=f"chart-{name}")
        bottom = [0.0] * len(categories)
        for s, one in enumerate(series):
            bars = axes.bar(
                positions, one.values, width=0.64, bottom=bottom, color=one.colour, label=one.label
            )
            for i, bar in enumerate(bars):
                bar.set_gid(f"bar-{name}-{s}-{i}")
            bottom = [b + v for b, v in zip(bottom, one.values, strict=True)]
        top = max([*bottom, 0.0])
        for i, total in enumerate(bottom):
            if total:
                axes.annotate(
                    f"{total:,.0f}" if total >= 10 else f"{total:,.1f}".rstrip("0").rstrip("."),
                    (i, total),
                    xytext=(0, 2),
                    textcoords="offset points",
                    ha="center",
                    va="bottom",
                    color=_TEXT,
                    fontsize=6.5 if len(categories) > 14 else 7.5,
                )
        axes.set_xticks(positions, list(categories))
        if len(categories) > 14:
            axes.tick_params(axis="x", labelsize=6.5)
        axes.yaxis.set_major_locator(MaxNLocator(integer=counts, nbins=5))
        axes.set_ylim(0, (top or 1) * 1.18)
        if unit:
            axes.set_ylabel(unit)
        _style(axes, grid_axis="y")
        if len(series) > 1:
            axes.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=7.5)
        return _finish(figure, fmt)


def horizontal_bars(
    name: str,
    labels: Sequence[str],
    series: Sequence[Series],
    *,
    stacked: bool,
    unit: str = "",
    fmt: ChartFormat = "svg",
    width: float = 7.0,
) -> str | bytes:
    """One row per label, first label on top: series side by side (``stacked=False``, e.g.
    median and 90th percentile) or stacked (parts of a whole). Values are written at the
    bars' ends."""
    from matplotlib import rc_context
    from matplotlib.figure import Figure

    rows = len(labels)
    height = max(1.6, 0.42 * rows + 0.9)
    positions = list(range(rows))
    thickness = 0.7 if stacked else 0.76 / max(1, len(series))
    with _LOCK, rc_context(_rc()):
        figure = Figure(figsize=(width, height), layout="constrained")
        axes = figure.add_subplot(gid=f"chart-{name}")
        left = [0.0] * rows
        end = 0.0
        for s, one in enumerate(series):
            if stacked:
                where: list[float] = [float(p) for p in positions]
                starts = left
            else:
                offset = (s - (len(series) - 1) / 2) * thickness
                where = [p + offset for p in positions]
                starts = [0.0] * rows
            bars = axes.barh(
                where, one.values, height=thickness, left=starts, color=one.colour, label=one.label
            )
            for i, bar in enumerate(bars):
                bar.set_gid(f"bar-{name}-{s}-{i}")
            if stacked:
                left = [a + v for a, v in zip(left, one.values, strict=True)]
            else:
                for y, value in zip(where, one.values, strict=True):
                    axes.annotate(
                        _short(value),
                        (value, y),
                        xytext=(3, 0),
                        textcoords="offset points",
                        va="center",
                        color=_TEXT,
                        fontsize=7,
                    )
            end = max([end, *(a + v for a, v in zip(starts, one.values, strict=True))])
        if stacked:
            for y, total in zip(positions, left, strict=True):
                axes.annotate(
                    _short(total),
                    (total, y),
                    xytext=(3, 0),
                    textcoords="offset points",
                    va="center",
                    color=_TEXT,
                    fontsize=7,
                )
        axes.set_yticks(positions, list(labels))
        axes.invert_yaxis()
        axes.set_xlim(0, (end or 1) * 1.15)
        if unit:
            axes.set_xlabel(unit)
        _style(axes, grid_axis="x")
        if len(series) > 1:
            axes.legend(loc="lower right", fontsize=7.5)
        return _finish(figure, fmt)


def _short(value: float) -> str:
    return f"{value:,.0f}" if value >= 10 or value == int(value) else f"{value:,.1f}"
