"""The figures of the run report (:mod:`sim.report`), each returned as PNG bytes.

matplotlib is an optional dependency (the ``report`` extra); :mod:`sim.report` imports this module
only when it writes a report. Figures are drawn on the non-interactive Agg canvas without pyplot, so
no global figure registry, backend or rcParams change: every style setting is applied inside
``matplotlib.rc_context`` for the one figure. Sizes and resolution are fixed and the PNG carries no
"Software" text and no timestamp, so the same inputs give the same bytes.

Estate and company names are Chinese. A figure shows them only when a font that has every glyph
needed is installed (:func:`cjk_font`, from :mod:`sim.plotfonts`); otherwise it labels estates by
id (the page keeps the names).
"""

from __future__ import annotations

import io
import math
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import matplotlib
import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import NullFormatter

from sim.plotfonts import CJK_FAMILIES as CJK_FAMILIES
from sim.plotfonts import cjk_font

__all__ = [
    "DPI",
    "BeforeAfter",
    "Radar",
    "ack_times",
    "alerts_over_time",
    "before_after",
    "cjk_font",
    "company_validity",
    "forest",
    "radars",
    "rule_quality",
    "timeliness",
]

DPI = 100
WIDTH = 9.6  # inches: 960 px, the page's content width

_STYLE: dict[str, Any] = {
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
def _style(font: str | None) -> Iterator[None]:
    families = [font, "DejaVu Sans"] if font else ["DejaVu Sans"]
    rc: Any = {**_STYLE, "font.family": families}
    with matplotlib.rc_context(rc):
        yield


def _figure(height: float, width: float = WIDTH) -> Figure:
    fig = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, metadata={"Software": None})
    return buf.getvalue()


def _nothing(ax: Axes, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, color=GREY)
    ax.set_xticks([])
    ax.set_yticks([])


# --- lists and companies -----------------------------------------------------------------------


@dataclass(frozen=True)
class Interval:
    """One row of an interval plot: a point score with its 95% interval."""

    label: str
    score: float
    lo: float
    hi: float
    mark: str | None = None  # "red", "black" or None


def forest(rows: Sequence[Interval], title: str, ref: float | None, font: str | None) -> bytes:
    """Scores with their intervals, best first; estates on the red list green, black list black."""
    with _style(font):
        fig = _figure(max(2.2, 0.8 + 0.24 * len(rows)))
        ax = fig.add_subplot()
        y = np.arange(len(rows))[::-1]
        for yi, r in zip(y, rows, strict=True):
            color = RED if r.mark == "red" else BLACK if r.mark == "black" else GREY
            ax.plot([r.lo, r.hi], [yi, yi], color=color, lw=2.2 if r.mark else 1.4)
            ax.plot([r.score], [yi], "o", color=color, ms=5)
        if ref is not None:
            ax.axvline(ref, color=GREY, ls=":", lw=1)
            ax.text(ref, len(rows) - 0.3, " average estate", color=GREY, fontsize=7.5, va="bottom")
        ax.set_yticks(y, [r.label for r in rows])
        low = min([r.lo for r in rows] + ([ref] if ref is not None else []))
        ax.set_xlim(max(0.0, 10 * math.floor((low - 5) / 10)), 100)
        ax.set_ylim(-0.8, len(rows) + 0.2)
        ax.set_xlabel("score (0-100) with its 95% interval")
        ax.set_title(title, loc="left")
        handles = [
            ax.plot([], [], color=RED, lw=2.2, label="red list")[0],
            ax.plot([], [], color=BLACK, lw=2.2, label="black list")[0],
            ax.plot([], [], color=GREY, lw=1.4, label="not listed")[0],
        ]
        ax.legend(
            handles=handles, loc="lower right", bbox_to_anchor=(1.0, 1.0), frameon=False, ncols=3
        )
        return _png(fig)


@dataclass(frozen=True)
class CompanyPoint:
    label: str
    score: float
    lo: float
    hi: float
    diligence: float


def company_validity(
    panels: Sequence[tuple[str, Sequence[CompanyPoint]]], font: str | None
) -> bytes:
    """Company scores (with intervals), companies from the least to the most diligent (latent):
    a ranking that recovers diligence rises from left to right. One panel a period."""
    with _style(font):
        fig = _figure(3.6, min(WIDTH, max(4.8, 3.2 * len(panels))))
        axes = fig.subplots(1, max(1, len(panels)), squeeze=False)[0]
        for ax, (title, points) in zip(axes, panels, strict=False):
            ax.set_title(title, loc="left")
            if not points:
                _nothing(ax, "no company scored")
                continue
            ordered = sorted(points, key=lambda p: (p.diligence, p.label))
            for x, p in enumerate(ordered):
                ax.plot([x, x], [p.lo, p.hi], color=GREY, lw=1.4)
                ax.plot([x], [p.score], "o", color=TRUTH, ms=5)
            ax.set_xticks(
                range(len(ordered)),
                [f"{p.label} ({p.diligence:.2f})" for p in ordered],
                rotation=35,
                ha="right",
                rotation_mode="anchor",
                fontsize=7.5,
            )
            ax.set_xlim(-0.6, len(ordered) - 0.4)
            ax.set_xlabel("companies by latent diligence (scenario)")
            ax.set_ylabel("company score")
        return _png(fig)


# --- health profiles ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Radar:
    """One estate's health profile: sub-scores in axis order, None where unobservable."""

    title: str
    values: Sequence[float | None]


def radars(profiles: Sequence[Radar], axes: Sequence[str], ref: float, font: str | None) -> bytes:
    """Small multiples of radar charts, drawn on plain axes so every edge is a straight chord; an
    unobservable indicator leaves a gap on both sides of its spoke, marked "n/o"."""
    ncols = 3
    nrows = max(1, math.ceil(len(profiles) / ncols))
    k = len(axes)
    angles = [math.pi / 2 - 2 * math.pi * i / max(1, k) for i in range(k)]
    cos, sin = np.cos(angles), np.sin(angles)
    ring = np.linspace(0, 2 * math.pi, 121)
    with _style(font):
        fig = _figure(3.1 * nrows + 0.2)
        grid = fig.subplots(nrows, ncols, squeeze=False)
        for n, ax in enumerate(grid.flat):
            ax.set_axis_off()
            if n >= len(profiles):
                continue
            prof = profiles[n]
            for r in (25, 50, 75, 100):
                ax.plot(r * np.cos(ring), r * np.sin(ring), color="#e3e3e3", lw=0.6)
            ax.plot(ref * np.cos(ring), ref * np.sin(ring), color=GREY, ls=":", lw=0.9)
            for i in range(k):
                ax.plot([0, 100 * cos[i]], [0, 100 * sin[i]], color="#e3e3e3", lw=0.6)
                ha = "center" if abs(cos[i]) < 0.3 else "left" if cos[i] > 0 else "right"
                va = "center" if abs(sin[i]) < 0.3 else "bottom" if sin[i] > 0 else "top"
                ax.text(
                    107 * cos[i],
                    107 * sin[i],
                    axes[i],
                    ha=ha,
                    va=va,
                    fontsize=7.2,
                    linespacing=0.95,
                )
            vals = prof.values
            for i in range(k if k > 2 else k - 1):
                j = (i + 1) % k
                a, b = vals[i], vals[j]
                if a is None or b is None:
                    continue
                xs, ys = [a * cos[i], b * cos[j]], [a * sin[i], b * sin[j]]
                ax.fill([0.0, *xs], [0.0, *ys], color=TRUTH, alpha=0.22, lw=0)
                ax.plot(xs, ys, color=TRUTH, lw=1.5)
            for i, v in enumerate(vals):
                if v is None:
                    ax.text(
                        55 * cos[i],
                        55 * sin[i],
                        "n/o",
                        ha="center",
                        va="center",
                        fontsize=7,
                        color=ALERT,
                    )
                else:
                    ax.plot([v * cos[i]], [v * sin[i]], "o", color=TRUTH, ms=3)
            ax.set_xlim(-165, 165)
            ax.set_ylim(-125, 125)
            ax.set_aspect("equal")
            ax.set_title(prof.title, fontsize=9)
        return _png(fig)


# --- before / after ----------------------------------------------------------------------------


@dataclass(frozen=True)
class BeforeAfter:
    """One estate: alerts fired per day, incidents per day from the truth, and its install days."""

    title: str
    alerts: Sequence[int]
    incidents: Sequence[int]
    incident_types: str
    installs: Sequence[tuple[int, str]]  # (day, device kind)


def _rolling(values: Sequence[int], width: int = 7) -> list[float]:
    out: list[float] = []
    for i in range(len(values)):
        window = values[max(0, i - width + 1) : i + 1]
        out.append(sum(window) / len(window))
    return out


def before_after(panels: Sequence[BeforeAfter], font: str | None) -> bytes:
    """Per estate two panels side by side: alerts (what the office saw) and incidents (truth)."""
    with _style(font):
        fig = _figure(2.2 * len(panels) + 0.3)
        grid = fig.subplots(max(1, len(panels)), 2, squeeze=False)
        for row, p in zip(grid, panels, strict=False):
            days = np.arange(len(p.alerts))
            for ax, values, color, what in (
                (row[0], p.alerts, ALERT, "alerts fired per day (all rules)"),
                (row[1], p.incidents, TRUTH, f"incidents per day (truth: {p.incident_types})"),
            ):
                ax.bar(days, values, width=1.0, color=color, alpha=0.35, lw=0)
                ax.plot(days, _rolling(values), color=color, lw=1.6)
                top = max([*values, 1])
                for day, kind in p.installs:
                    ax.axvline(day - 0.5, color=INSTALL, ls="--", lw=1.3)
                    ax.text(
                        day - 0.5,
                        top * 1.02,
                        f" {kind} installed",
                        color=INSTALL,
                        fontsize=7,
                        va="bottom",
                        ha="left",
                    )
                if not any(values):
                    ax.text(
                        0.5,
                        0.45,
                        "none in the run",
                        ha="center",
                        va="center",
                        transform=ax.transAxes,
                        color=GREY,
                    )
                ax.set_ylim(0, top * 1.25)
                ax.set_xlim(-0.5, len(values) - 0.5)
                ax.set_title(f"{p.title}: {what}", loc="left", fontsize=8.5)
                ax.set_xlabel("day of run")
        return _png(fig)


# --- rules and alerts --------------------------------------------------------------------------


Shares = Sequence[float | None]


def _share_bars(
    labels: Sequence[str], series: Sequence[tuple[str, str, Shares]], xlabel: str, font: str | None
) -> bytes:
    """Grouped horizontal bars of shares (0-1), one group a label; None is drawn as "n/a"."""
    with _style(font):
        fig = _figure(max(2.4, 0.9 + 0.14 * len(series) * len(labels)))
        ax = fig.add_subplot()
        y = np.arange(len(labels))[::-1].astype(float)
        h = 0.8 / max(1, len(series))
        for s, (name, color, vals) in enumerate(series):
            ys = y + ((len(series) - 1) / 2 - s) * h
            ax.barh(ys, [v or 0.0 for v in vals], height=h, color=color, label=name)
            for yi, v in zip(ys, vals, strict=True):
                text = "n/a" if v is None else f"{v:.2f}"
                ax.text((v or 0.0) + 0.01, yi, text, va="center", fontsize=6.5)
        ax.set_yticks(y, list(labels))
        ax.set_xlim(0, 1.12)
        ax.set_xlabel(xlabel)
        ax.legend(loc="lower right", frameon=False, ncols=len(series), bbox_to_anchor=(1.0, 1.0))
        return _png(fig)


def rule_quality(rows: Sequence[tuple[str, float | None, float | None, float | None]]) -> bytes:
    """Precision, recall and severity-weighted recall per rule (a missing value: "n/a")."""
    series = (
        ("precision", "#3b6ea5", [r[1] for r in rows]),
        ("recall", "#d1495b", [r[2] for r in rows]),
        ("severity-weighted recall", "#edae49", [r[3] for r in rows]),
    )
    return _share_bars([r[0] for r in rows], series, "share", None)


def alerts_over_time(series: Mapping[str, Sequence[int]], days: int, start: str) -> bytes:
    """Alerts fired per day, stacked by rule."""
    with _style(None):
        fig = _figure(3.6)
        ax = fig.add_subplot()
        x = np.arange(days)
        bottom = np.zeros(days)
        cmap = matplotlib.colormaps["tab20"]
        for i, (rule, counts) in enumerate(series.items()):
            vals = np.asarray(counts, dtype=float)
            ax.bar(x, vals, bottom=bottom, width=1.0, color=cmap(i % 20), lw=0, label=rule)
            bottom += vals
        if not series:
            _nothing(ax, "no alert fired")
        ax.set_xlim(-0.5, days - 0.5)
        ax.set_xlabel(f"day of run (day 0 = {start})")
        ax.set_ylabel("alerts fired")
        ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)
        return _png(fig)


# --- work orders -------------------------------------------------------------------------------


def timeliness(rows: Sequence[tuple[str, float | None, float | None]], font: str | None) -> bytes:
    """Per group (company): share acknowledged within SLA and share closed on time."""
    series = (
        ("acknowledged within SLA", "#3b6ea5", [r[1] for r in rows]),
        ("closed on time", "#edae49", [r[2] for r in rows]),
    )
    return _share_bars([r[0] for r in rows], series, "share of the work orders opened", font)


_MINUTE_TICKS = (
    (0.1, "6 s"),
    (1, "1 min"),
    (10, "10 min"),
    (60, "1 h"),
    (360, "6 h"),
    (1440, "1 d"),
    (10080, "1 wk"),
    (43200, "30 d"),
)


def _minute_axis(ax: Axes, values: Sequence[float]) -> None:
    """A log x axis of minutes with readable ticks (5 min, 1 h, 1 d...) instead of 10^k."""
    ax.set_xscale("log")
    lo, hi = min(values), max(values)
    ticks = [(v, t) for v, t in _MINUTE_TICKS if lo / 1.5 <= v <= hi * 1.5] or [(60, "1 h")]
    ax.set_xticks([v for v, _ in ticks], [t for _, t in ticks])
    ax.xaxis.set_minor_formatter(NullFormatter())


def ack_times(minutes: Sequence[float], per_rule: Sequence[tuple[str, Sequence[float]]]) -> bytes:
    """Time to acknowledge: a histogram of every acknowledgement (log scale) and one box a rule."""
    with _style(None):
        fig = _figure(max(3.0, 0.9 + 0.3 * len(per_rule)))
        left, right = fig.subplots(1, 2, width_ratios=[1, 1.2])
        vals = [max(m, 0.1) for m in minutes]
        if vals:
            hi = max(10.0, max(vals))
            bins = np.logspace(-1, math.log10(hi) + 0.05, 30)
            left.hist(vals, bins=bins, color="#3b6ea5")
            _minute_axis(left, vals)
            med = float(np.median(vals))
            left.axvline(med, color=ALERT, ls="--", lw=1.2)
            left.text(
                med,
                left.get_ylim()[1] * 0.95,
                f" median {med:.0f} min",
                color=ALERT,
                fontsize=7.5,
                va="top",
            )
            left.set_xlabel("time from opening to acknowledgement (log scale)")
            left.set_ylabel("acknowledgements")
        else:
            _nothing(left, "no work order acknowledged")
        rules = [(r, [max(m, 0.1) for m in ms]) for r, ms in per_rule if ms]
        if rules:
            ys = np.arange(len(rules))[::-1]
            for yi, (_, ms) in zip(ys, rules, strict=True):
                p10, p25, p50, p75, p90 = np.percentile(ms, [10, 25, 50, 75, 90])
                right.plot([p10, p90], [yi, yi], color=GREY, lw=1.2)
                right.plot([p25, p75], [yi, yi], color="#3b6ea5", lw=5, solid_capstyle="butt")
                right.plot([p50], [yi], "o", color=ALERT, ms=4)
            right.set_yticks(ys, [f"{r} ({len(ms)})" for r, ms in rules])
            _minute_axis(right, [m for _, ms in rules for m in ms])
            right.set_xlabel("time to acknowledge per rule: median, 25-75%, 10-90% (log scale)")
        else:
            _nothing(right, "no work order acknowledged")
        return _png(fig)
