"""How every figure of the report is drawn: sizes, style, colours, the Agg canvas and PNG bytes.

Figures are drawn on the non-interactive Agg canvas without pyplot, so there is no global figure
registry, backend or rcParams change: :func:`style` applies every setting inside
``matplotlib.rc_context`` for the one figure, and :func:`png` writes no "Software" text and no
timestamp, so the same inputs give the same bytes.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import matplotlib
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

__all__ = [
    "ALERT",
    "BLACK",
    "DPI",
    "GREY",
    "INSTALL",
    "RED",
    "TRUTH",
    "WIDTH",
    "figure",
    "nothing",
    "png",
    "style",
]

DPI = 100
WIDTH = 9.6  # inches: 960 px, the page's content width

STYLE: dict[str, Any] = {
    "font.size": 9.0,
    "axes.titlesize": 9.5,
    "axes.labelsize": 9.0,
    "legend.fontsize": 8.0,
    "xtick.labelsize": 8.0,
    "ytick.labelsize": 8.0,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": False,
    "figure.dpi": DPI,
    "savefig.dpi": DPI,
    "axes.unicode_minus": True,
}

RED = "#1a7f37"  # the red list (红榜) is the good one: green reads as "good" to every reader
BLACK = "#222222"
GREY = "#8c8c8c"
ALERT = "#d1495b"
TRUTH = "#2e86ab"
INSTALL = "#e08a00"


@contextmanager
def style(font: str | None) -> Iterator[None]:
    families = [font, "DejaVu Sans"] if font else ["DejaVu Sans"]
    rc: Any = {**STYLE, "font.family": families}
    with matplotlib.rc_context(rc):
        yield


def figure(height: float, width: float = WIDTH) -> Figure:
    fig = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, metadata={"Software": None})
    return buf.getvalue()


def nothing(ax: Axes, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, color=GREY)
    ax.set_xticks([])
    ax.set_yticks([])
