"""The figures of the run report (:mod:`sim.report.page`), each returned as PNG bytes, drawn the
way :mod:`sim.report.canvas` sets out. matplotlib is an optional dependency (the ``report`` extra):
the page imports this module only when it writes a report.

Estate and company names are Chinese. A figure shows them only when a font that has every glyph
needed is installed (:func:`cjk_font`, from :mod:`sim.report.fonts`); otherwise it labels estates by
id (the page keeps the names).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import matplotlib
import numpy as np
from matplotlib.axes import Axes
from matplotlib.ticker import NullFormatter

from sim.report.canvas import (
    ALERT,
    DPI,
    GREY,
    INSTALL,
    TRUTH,
    figure,
    nothing,
    png,
    style,
)
from sim.report.fonts import CJK_FAMILIES as CJK_FAMILIES
from sim.report.fonts import cjk_font
from sim.report.rankplots import CompanyPoint, Interval, Radar, company_validity, forest, radars

__all__ = [
    "DPI",
    "BeforeAfter",
    "CompanyPoint",
    "Interval",
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
    with style(font):
        fig = figure(2.2 * len(panels) + 0.3)
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
        return png(fig)


# --- rules and alerts --------------------------------------------------------------------------


Shares = Sequence[float | None]


def _share_bars(
    labels: Sequence[str], series: Sequence[tuple[str, str, Shares]], xlabel: str, font: str | None
) -> bytes:
    """Grouped horizontal bars of shares (0-1), one group a label; None is drawn as "n/a"."""
    with style(font):
        fig = figure(max(2.4, 0.9 + 0.14 * len(series) * len(labels)))
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
        return png(fig)


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
    with style(None):
        fig = figure(3.6)
        ax = fig.add_subplot()
        x = np.arange(days)
        bottom = np.zeros(days)
        cmap = matplotlib.colormaps["tab20"]
        for i, (rule, counts) in enumerate(series.items()):
            vals = np.asarray(counts, dtype=float)
            ax.bar(x, vals, bottom=bottom, width=1.0, color=cmap(i % 20), lw=0, label=rule)
            bottom += vals
        if not series:
            nothing(ax, "no alert fired")
        ax.set_xlim(-0.5, days - 0.5)
        ax.set_xlabel(f"day of run (day 0 = {start})")
        ax.set_ylabel("alerts fired")
        ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)
        return png(fig)


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
    with style(None):
        fig = figure(max(3.0, 0.9 + 0.3 * len(per_rule)))
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
            nothing(left, "no work order acknowledged")
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
            nothing(right, "no work order acknowledged")
        return png(fig)
