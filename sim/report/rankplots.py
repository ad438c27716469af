"""The figures drawn from ``rankings.json``: the lists with their score intervals, the company
ranking against latent diligence, and the health-profile radars (健康画像). :mod:`sim.report.plots`
re-exports them, so the report's sections find every figure in one place."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from sim.report.canvas import (
    ALERT,
    BLACK,
    GREY,
    RED,
    TRUTH,
    WIDTH,
    figure,
    nothing,
    png,
    style,
)
from sim.report.fonts import CJK_FAMILIES as CJK_FAMILIES

__all__ = ["CompanyPoint", "Interval", "Radar", "company_validity", "forest", "radars"]


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
    with style(font):
        fig = figure(max(2.2, 0.8 + 0.24 * len(rows)))
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
        return png(fig)


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
    with style(font):
        fig = figure(3.6, min(WIDTH, max(4.8, 3.2 * len(panels))))
        axes = fig.subplots(1, max(1, len(panels)), squeeze=False)[0]
        for ax, (title, points) in zip(axes, panels, strict=False):
            ax.set_title(title, loc="left")
            if not points:
                nothing(ax, "no company scored")
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
        return png(fig)


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
    with style(font):
        fig = figure(3.1 * nrows + 0.2)
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
        return png(fig)
