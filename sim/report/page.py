"""The run report: one self-contained ``report.html`` in a run folder.

:func:`write_report` reads what a run wrote (``run.json``, ``scenario.resolved.yaml``,
``truth.jsonl``, ``alerts.jsonl``, ``workorders.jsonl``, ``score.json`` and, when present,
``rankings.json``; never the large ``events.jsonl``) and writes a page that opens offline: a small
inline stylesheet, no script, no external fonts, and every plot a PNG embedded as a data URI
(:mod:`sim.report.plots`, which needs matplotlib, the ``report`` extra). The same run folder gives the same
bytes: nothing on the page depends on the clock, and the plots are drawn deterministically.

The page, in order: the run; the red and black lists (红黑榜) per period, the whole run and the
latest month, quarter and half-year first and the rest folded, each entry with its score interval and reasons; the
company ranking; how well the ranking recovers the companies' latent diligence (Kendall's tau with
its interval, each indicator alone, estate scores, list stability); a radar health profile
(健康画像) per estate; before/after curves for estates that installed devices mid-run; per-rule
precision and recall; alerts over time; work-order timeliness. Without ``rankings.json`` the page
says so and leaves out the lists, the company ranking and the profiles.

This module reads the run folder and assembles the page; the sections live in
:mod:`sim.report.ranksections` (from ``rankings.json``) and :mod:`sim.report.runsections` (from the event
logs), the validity tables in :mod:`sim.report.validitysection`, and the HTML helpers they share
in :mod:`sim.report.html`.
"""

from __future__ import annotations

import os
from pathlib import Path
from types import ModuleType

from sim.errors import BadInput
from sim.report.html import CSS, Page, esc
from sim.report.ranksections import companies_section, lists_section, profiles_section
from sim.report.rundata import RunData, load_run
from sim.report.runsections import (
    alerts_section,
    before_after_section,
    mid_run_installs,
    rules_section,
    workorders_section,
)
from sim.report.validitysection import validity_section

__all__ = ["REPORT_NAME", "write_report"]

REPORT_NAME = "report.html"
NEEDS_MATPLOTLIB = "the report needs matplotlib: pip install 'pmsim[report]'"


# --- sections ----------------------------------------------------------------------------------


def header(data: RunData) -> str:
    sc, run = data.scenario, data.run
    counts = run.get("counts", {})
    incidents = counts.get("incidents", {})
    title = sc.get("title") or sc.get("name", "")
    facts = [
        (
            "scenario",
            f'<span lang="zh-CN">{esc(title)}</span> <span class="id">({esc(sc.get("name", ""))})</span>',
        ),
        ("start date", esc(sc.get("start", run.get("start", "")))),
        ("days", esc(data.days)),
        ("seed", esc(run.get("seed", sc.get("seed", "")))),
        ("estates / companies", f"{len(data.estates)} / {len(data.companies)}"),
        ("households", esc(counts.get("households", "–"))),
        ("devices", esc(counts.get("devices", "–"))),
        ("events", esc(counts.get("events", "–"))),
        (
            "incidents (truth)",
            f"{sum(incidents.values())}: "
            + ", ".join(f"{esc(k)} {v}" for k, v in incidents.items()),
        ),
        ("detected", esc(sum(counts.get("detected", {}).values()))),
        ("false triggers", esc(sum(counts.get("false_triggers", {}).values()))),
        ("alerts (state changes)", esc(counts.get("alerts", "–"))),
        ("work-order changes", esc(counts.get("workorders", "–"))),
        ("pmsim", esc(run.get("versions", {}).get("pmsim", "–"))),
    ]
    dl = "".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in facts)
    return (
        f'<h1>pmsim run report: <span lang="zh-CN">{esc(title)}</span></h1>'
        f'<p class="muted">{esc(sc.get("name", ""))}: {data.days} days from '
        f"{esc(sc.get('start', ''))}, seed {esc(run.get('seed', ''))}</p><dl>{dl}</dl>"
    )


def render(data: RunData, plots: ModuleType) -> str:
    page = Page(data, plots)
    installs = mid_run_installs(data)
    rk = data.rankings if data.rankings and data.rankings.get("periods") else None
    toc = (
        [
            ("lists", "Red and black lists"),
            ("companies", "Company ranking"),
            ("validity", "Validity: the ranking against the truth"),
            ("profiles", "Health profiles"),
        ]
        if rk
        else [("rankings", "Rankings")]
    )
    if installs:
        toc.append(("before-after", "Before and after installing devices"))
    toc += [
        ("rules", "Rule precision and recall"),
        ("alerts", "Alerts over time"),
        ("workorders", "Work-order timeliness"),
    ]
    body = [
        header(data),
        "<nav><ol>",
        *(f'<li><a href="#{a}">{esc(t)}</a></li>' for a, t in toc),
        "</ol></nav>",
    ]
    if rk:
        try:
            body += [
                lists_section(page, rk),
                companies_section(page, rk),
                validity_section(page, rk),
                profiles_section(page, rk),
            ]
        except (KeyError, IndexError, TypeError, ValueError) as e:
            raise BadInput(
                f"{data.dir / 'rankings.json'}: not the shape pmsim writes ({type(e).__name__}: {e})"
            ) from None
    else:
        why = "no rankings.json" if data.rankings is None else "a rankings.json with no period"
        body.append(
            '<section id="rankings"><h2>Rankings</h2><p class="note">This run folder has '
            f"{why}, so the red and black lists, the company ranking and the health "
            "profiles are left out of this report (pmsim report RUN_DIR --rank-config FILE "
            "ranks the run again).</p></section>"
        )
    if installs:
        body.append(before_after_section(page, installs))
    body += [rules_section(page), alerts_section(page), workorders_section(page)]
    title = f"pmsim report: {data.scenario.get('title') or data.scenario.get('name', '')}"
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{esc(title)}</title><style>{CSS}</style></head><body>\n"
        + "\n".join(body)
        + "\n</body></html>\n"
    )


def write_report(run_dir: Path) -> Path:
    """Write ``report.html`` into the run folder ``run_dir`` and return its path. Raises
    :class:`BadInput` when matplotlib is missing or the folder is not a run folder."""
    try:
        from sim.report import plots
    except ImportError as e:
        if (e.name or "").split(".")[0] != "matplotlib":
            raise
        raise BadInput(NEEDS_MATPLOTLIB) from None
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise BadInput(f"{run_dir}: not a folder")
    page = render(load_run(run_dir), plots)
    out = run_dir / REPORT_NAME
    tmp = run_dir / f".{REPORT_NAME}.partial-{os.getpid()}"
    tmp.write_text(page, encoding="utf-8", newline="\n")
    os.replace(tmp, out)
    return out
