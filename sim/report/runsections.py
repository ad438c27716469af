"""The run report's sections on what happened in the run: installs, rules, alerts, work orders.

Before/after curves for estates that installed devices mid-run, per-rule precision and recall,
alerts over time and work-order timeliness are all drawn from what :func:`sim.report.rundata.load_run`
aggregated from the event logs and ``score.json`` (never from ``rankings.json``). They are kept
apart from :mod:`sim.report.page`, which reads the run folder and assembles the page, so that each
module stays small; the HTML helpers come from :mod:`sim.report.html`.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sim.report.html import Page, esc, img, num, table
from sim.report.rundata import RunData, WorkOrder

__all__ = [
    "HAZARDS",
    "alerts_section",
    "before_after_section",
    "mid_run_installs",
    "rules_section",
    "workorders_section",
]

# What the truth calls the hazards each device kind is there to see.
HAZARDS = {
    "ebike_blocker": ("ebike_entry", "battery_entry"),
    "falling_object_camera": ("throw",),
    "clutter_sensor": ("clutter",),
}


def mid_run_installs(data: RunData) -> dict[str, list[tuple[int, str]]]:
    """Estates that installed devices after day 0: (day, kind) of each such installation."""
    out: dict[str, list[tuple[int, str]]] = {}
    for eid, est in data.estates.items():
        got = sorted(
            {
                (int(d.get("day", 0)), str(d["kind"]))
                for d in est.get("devices") or []
                if 0 < int(d.get("day", 0)) < data.days
            }
        )
        if got:
            out[eid] = got
    return out


def _mean(xs: Sequence[int]) -> float | None:
    return sum(xs) / len(xs) if xs else None


def before_after_section(page: Page[RunData], installs: Mapping[str, list[tuple[int, str]]]) -> str:
    data, panels, rows = page.data, [], []
    for eid, inst in installs.items():
        types = list(dict.fromkeys(t for _, kind in inst for t in HAZARDS.get(kind, ())))
        alerts = data.alerts_by_estate.get(eid, [0] * data.days)
        incidents = (
            [
                sum(c)
                for c in zip(
                    *(data.incidents.get((eid, t), [0] * data.days) for t in types), strict=True
                )
            ]
            if types
            else [0] * data.days
        )
        panels.append(
            page.plots.BeforeAfter(
                page.plot_estate(eid), alerts, incidents, ", ".join(types) or "none", inst
            )
        )
        first = inst[0][0]
        rows.append(
            [
                page.estate(eid),
                esc(", ".join(f"{k} on day {d}" for d, k in inst)),
                num(_mean(alerts[:first])),
                num(_mean(alerts[first:])),
                esc(", ".join(types) or "–"),
                num(_mean(incidents[:first])),
                num(_mean(incidents[first:])),
            ]
        )
    return "".join(
        [
            '<section id="before-after"><h2>Before and after installing devices</h2>',
            "<p>Estates that installed devices mid-run. Left: alerts fired per day by every rule, "
            "which is what the office sees (nothing can fire before a device is there). Right: "
            "incidents per day from the simulation's truth, seen or not; a change after the dashed "
            "install line is a change in what residents do, not in what is detected. Bars are days, the "
            "line the mean of the last 7 days.</p>",
            img(page.plots.before_after(panels, page.font), "before/after curves per estate"),
            table(
                [
                    "estate",
                    "installed",
                    "alerts/day before",
                    "after",
                    "truth incident types",
                    "incidents/day before",
                    "after",
                ],
                rows,
                numeric=(2, 3, 5, 6),
            ),
            "</section>",
        ]
    )


def rules_section(page: Page[RunData]) -> str:
    rules: Mapping[str, Mapping[str, Any]] = page.data.score.get("rules", {})
    bars = [
        (rid, r.get("precision"), r.get("recall"), r.get("severity_weighted_recall"))
        for rid, r in rules.items()
    ]
    rows = [
        [
            esc(rid),
            esc(", ".join(r.get("detects", []))),
            num(r.get("alerts")),
            num(r.get("false_alerts")),
            num(r.get("precision"), 3),
            num(r.get("recall"), 3),
            num(r.get("severity_weighted_recall"), 3),
            num(r.get("incidents_covered")),
            num(r.get("ttd_median_s"), 1),
            num(r.get("ttd_p90_s"), 1),
        ]
        for rid, r in rules.items()
    ]
    return "".join(
        [
            '<section id="rules"><h2>Rule precision and recall</h2>',
            "<p>Every rule scored against the truth (score.json): precision is the share of its "
            "alerts that were real, recall the share of the incidents a device could have seen that "
            "it caught; time to detect in seconds.</p>",
            img(page.plots.rule_quality(bars), "precision and recall per rule") if bars else "",
            table(
                [
                    "rule",
                    "detects",
                    "alerts",
                    "false alerts",
                    "precision",
                    "recall",
                    "severity-weighted recall",
                    "incidents covered",
                    "TTD median (s)",
                    "TTD p90 (s)",
                ],
                rows,
                numeric=tuple(range(2, 10)),
            ),
            "</section>",
        ]
    )


def alerts_section(page: Page[RunData]) -> str:
    data = page.data
    order = [r for r in data.score.get("rules", {}) if r in data.alerts_by_rule]
    order += sorted(r for r in data.alerts_by_rule if r not in order)
    series = {r: data.alerts_by_rule[r] for r in order}
    start = str(data.scenario.get("start", ""))
    rows = [[esc(r), num(sum(s)), num(max(s)), num(sum(s) / data.days)] for r, s in series.items()]
    return "".join(
        [
            '<section id="alerts"><h2>Alerts over time</h2>',
            "<p>Alerts fired per day (firing state changes in alerts.jsonl), stacked by rule.</p>",
            img(
                page.plots.alerts_over_time(series, data.days, start),
                "alerts fired per day by rule",
            ),
            table(["rule", "fired", "most in a day", "per day"], rows, numeric=(1, 2, 3)),
            "</section>",
        ]
    )


def _wo_rows(
    groups: Mapping[str, list[WorkOrder]],
    minutes: Mapping[str, list[float]],
    label: Callable[[str], str],
) -> list[list[str]]:
    rows = []
    for key, orders in groups.items():
        n, mins = len(orders), minutes.get(key, [])
        rows.append(
            [
                label(key),
                num(n),
                num(sum(o.within_sla for o in orders) / n if n else None),
                num(sum(o.on_time for o in orders) / n if n else None),
                num(sum(o.reopens for o in orders)),
                num(statistics.median(mins), 1) if mins else "–",
            ]
        )
    return rows


def workorders_section(page: Page[RunData]) -> str:
    data = page.data
    by_company: dict[str, list[WorkOrder]] = defaultdict(list)
    by_rule: dict[str, list[WorkOrder]] = defaultdict(list)
    for wo in data.orders.values():
        by_company[str(data.estates.get(wo.estate, {}).get("company", "?"))].append(wo)
        by_rule[wo.rule].append(wo)
    companies = sorted(
        by_company, key=lambda c: (-float(data.companies.get(c, {}).get("diligence", -1)), c)
    )
    by_company = {c: by_company[c] for c in companies}
    by_rule = {r: by_rule[r] for r in sorted(by_rule)}
    bars = [
        (
            page.plot_company(c),
            sum(o.within_sla for o in os) / len(os),
            sum(o.on_time for o in os) / len(os),
        )
        for c, os in by_company.items()
    ]
    per_rule: dict[str, list[float]] = defaultdict(list)
    per_company: dict[str, list[float]] = defaultdict(list)
    for rule, estate, m in data.ack_minutes:
        per_rule[rule].append(m)
        per_company[str(data.estates.get(estate, {}).get("company", "?"))].append(m)
    wo = data.score.get("workorders", {})
    head = [
        "",
        "opened",
        "acknowledged within SLA",
        "closed on time",
        "re-opens",
        "median minutes to acknowledge",
    ]
    return "".join(
        [
            '<section id="workorders"><h2>Work-order timeliness</h2>',
            f"<p>{num(wo.get('opened'))} work orders opened; acknowledged within SLA "
            f"{num(wo.get('ack_within_sla'))}, closed on time {num(wo.get('closed_on_time'))} (shares "
            f"of the work orders opened, their last spell after any re-open); {num(wo.get('reopened'))} "
            f"re-opens, {num(wo.get('still_open'))} still open at the end. Companies from the most to "
            "the least diligent (latent, from the scenario).</p>",
            img(page.plots.timeliness(bars, page.font), "work-order timeliness per company")
            if bars
            else "",
            "<h3>Per company</h3>",
            table(
                ["company", *head[1:]],
                _wo_rows(by_company, per_company, page.company),
                numeric=(1, 2, 3, 4, 5),
            ),
            "<h3>Per rule</h3>",
            table(["rule", *head[1:]], _wo_rows(by_rule, per_rule, esc), numeric=(1, 2, 3, 4, 5)),
            "<h3>Time to acknowledge</h3>",
            img(
                page.plots.ack_times([m for _, _, m in data.ack_minutes], sorted(per_rule.items())),
                "distribution of the time to acknowledge",
            ),
            "</section>",
        ]
    )
