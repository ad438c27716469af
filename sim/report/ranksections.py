"""The ranking sections of the run report: red and black lists, companies, health profiles.

These three sections are drawn from ``rankings.json`` alone (periods, lists, company scores and
per-indicator sub-scores) and share the period ordering (the whole run, then the latest month,
quarter and half-year first); everything else on the page comes from the run's event logs. They are kept apart from
:mod:`sim.report.page`, which reads the run folder and assembles the page, so that each module stays
small; the HTML helpers come from :mod:`sim.report.html`.
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping, Sequence
from typing import Any

from sim.report.html import Page, esc, img, ivl, num, table
from sim.report.rundata import RunData

__all__ = [
    "KINDS",
    "KIND_NAME",
    "companies_section",
    "latest_and_rest",
    "lists_section",
    "profiles_section",
]

KINDS = ("run", "month", "quarter", "half")
KIND_NAME = {"run": "whole run", "month": "month", "quarter": "quarter", "half": "half-year"}


def _period_key(p: Mapping[str, Any]) -> tuple[int, int, str]:
    per = p["period"]
    return (int(per.get("end_day", 0)), KINDS.index(per["kind"]), str(per["id"]))


def latest_and_rest(
    periods: Sequence[dict[str, Any]],
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The latest period of each kind (the run, month, quarter, half), and the others, latest
    first."""
    latest: list[dict[str, Any]] = []
    for kind in KINDS:
        mine = sorted((p for p in periods if p["period"]["kind"] == kind), key=_period_key)
        if mine:
            latest.append(mine[-1])
    rest = sorted((p for p in periods if p not in latest), key=_period_key, reverse=True)
    return latest, rest


def _period_title(p: Mapping[str, Any]) -> str:
    per = p["period"]
    text = f"{per['id']}: {KIND_NAME[per['kind']]}, {num(per.get('days'), 1)} days"
    if per.get("partial"):
        text += f" (partial: {per.get('coverage', 0):.0%} of the period is inside the run)"
    return esc(text)


def _list_table(page: Page[RunData], p: Mapping[str, Any], which: str) -> str:
    cfg, entries = p["config"], p[which]
    k, ev = cfg.get("list_length", cfg["list_size"]), cfg["evidence"]
    worst = which == "black_list"
    among = f"the {'worst' if worst else 'best'} {k}"
    if k == 0:
        return '<p class="muted">One estate scored: nothing to compare it with, no list.</p>'
    if not entries:
        key = "p_worst_k" if worst else "p_best_k"
        near = sorted(
            (e for e in p["estates"] if e.get(key) is not None and (worst or not e.get("vetoes"))),
            key=lambda e: (-e[key], e["estate"]),
        )[:k]
        closest = ", ".join(
            f"{page.estate(e['estate'], e.get('name'))} (P {num(e[key], 2)})" for e in near
        )
        return (
            f'<p class="muted">No estate reaches the evidence (P(among {esc(among)}) ≥ '
            f"{ev:g}): nobody is named." + (f" Closest: {closest}." if closest else "") + "</p>"
        )
    unobs = {e["estate"]: e.get("unobservable", []) for e in p["estates"]}
    rows, marked = [], []
    for n, e in enumerate(entries, start=1):
        mark = ""
        if unobs.get(e["estate"]):
            mark = " †"
            marked.append(e["estate"])
        reasons = "".join(f"<li>{esc(r.get('text', r))}</li>" for r in e.get("reasons", []))
        rows.append(
            [
                str(n),
                page.estate(e["estate"], e.get("name")) + mark,
                page.company(e["company"]),
                num(e.get("score"), 1),
                ivl(e.get("interval")),
                ivl(e.get("rank_interval"), 0),
                num(e.get("probability"), 3),
                f'<ul class="r">{reasons}</ul>',
            ]
        )
    out = table(
        [
            "#",
            "estate",
            "company",
            "score",
            "95% interval",
            "rank interval",
            f"P(among {among})",
            "reasons",
        ],
        rows,
        numeric=(0, 3, 4, 5, 6),
    )
    for eid in marked:
        out += (
            f'<p class="note">† {page.estate(eid)} is ranked only on what is observable: '
            f"{esc(', '.join(unobs[eid]))} cannot be measured there (no device of that kind, "
            "or no work orders), and the weights are shared among the rest.</p>"
        )
    return out


def _estates_table(page: Page[RunData], p: Mapping[str, Any]) -> str:
    rows = []
    for e in p["estates"]:
        rows.append(
            [
                num(e.get("rank")),
                page.estate(e["estate"], e.get("name")),
                page.company(e["company"]),
                num(e.get("score"), 1),
                ivl(e.get("interval")),
                esc(e.get("band") or "–"),
                ivl(e.get("rank_interval"), 0),
                num(e.get("p_best_k"), 3),
                num(e.get("p_worst_k"), 3),
                esc("; ".join(v.get("text", "") for v in e.get("vetoes", [])) or "–"),
                esc(", ".join(e.get("unobservable", [])) or "–")
                if e.get("scored", True)
                else "not scored: nothing observable",
            ]
        )
    return table(
        [
            "rank",
            "estate",
            "company",
            "score",
            "95% interval",
            "band",
            "rank interval",
            "P(best k)",
            "P(worst k)",
            "vetoes",
            "unobservable (ranked on the rest)",
        ],
        rows,
        numeric=(0, 3, 4, 6, 7, 8),
    )


def _period_block(page: Page[RunData], p: Mapping[str, Any], with_plot: bool) -> str:
    cfg = p["config"]
    out = [f"<h3>{_period_title(p)}</h3>"]
    k = cfg.get("list_length", cfg["list_size"])
    out.append(f"<h4>Red list (红榜): the best, at most {esc(k)}</h4>")
    out.append(_list_table(page, p, "red_list"))
    out.append(f"<h4>Black list (黑榜): the worst, at most {esc(k)}</h4>")
    out.append(_list_table(page, p, "black_list"))
    if with_plot:
        red = {e["estate"] for e in p["red_list"]}
        black = {e["estate"] for e in p["black_list"]}
        rows = [
            page.plots.Interval(
                page.plot_estate(e["estate"]),
                e["score"],
                e["interval"][0],
                e["interval"][1],
                "red" if e["estate"] in red else "black" if e["estate"] in black else None,
            )
            for e in p["estates"]
            if e.get("score") is not None and e.get("interval")
        ]
        if rows:
            title = f"{p['period']['id']}: every scored estate, best first"
            png = page.plots.forest(rows, title, cfg.get("average_sub_score"), page.font)
            out.append(img(png, f"scores and intervals of every estate, {p['period']['id']}"))
    notes = list(p.get("notes", []))
    notes += [f"{f['indicator']}: prior fallback ({f['reason']})" for f in p.get("fallbacks", [])]
    if notes:
        out.append('<ul class="muted">' + "".join(f"<li>{esc(n)}</li>" for n in notes) + "</ul>")
    out.append(
        f"<details><summary>Every estate ({len(p['estates'])})</summary>"
        f"{_estates_table(page, p)}</details>"
    )
    return "".join(out)


def lists_section(page: Page[RunData], rk: Mapping[str, Any]) -> str:
    latest, rest = latest_and_rest(rk["periods"])
    cfg = latest[0]["config"] if latest else {}
    out = [
        '<section id="lists"><h2>Red and black lists (红黑榜)</h2>',
        f"<p>An estate is named only when the evidence is strong: a probability of at least "
        f"{esc(cfg.get('evidence', ''))} of being among the best (red) or worst (black) "
        f"{esc(cfg.get('list_length', cfg.get('list_size', '')))} over "
        f"{esc(cfg.get('draws', ''))} posterior draws (at most {esc(cfg.get('list_size', ''))} "
        "a list, and at most a quarter of the scored estates, but one whenever two or more are "
        "scored). Scores run 0-100 (an average estate scores "
        f"{esc(cfg.get('average_sub_score', ''))}); intervals are 95%. The whole run comes "
        "first, then the latest month, quarter and half-year.</p>",
    ]
    out += [_period_block(page, p, with_plot=True) for p in latest]
    if rest:
        out.append(f"<details><summary>Earlier periods ({len(rest)})</summary>")
        out += [_period_block(page, p, with_plot=False) for p in rest]
        out.append("</details>")
    left_out = rk.get("left_out") or []
    if left_out:
        kinds = ", ".join(esc(KIND_NAME.get(k, k)) for k in left_out)
        cover = float(rk.get("min_coverage", 0.5))
        out.append(
            f'<p class="note">Not ranked: {kinds}. A calendar period is ranked when the run'
            f" covers at least {cover:.0%} of its days (min_coverage), and no period of these"
            " kinds is covered that much.</p>"
        )
    if rk.get("stability"):
        out.append(
            '<p>How stable the lists are from one period to the next is in <a href="#validity">'
            "Validity</a>.</p>"
        )
    out.append("</section>")
    return "".join(out)


def companies_section(page: Page[RunData], rk: Mapping[str, Any]) -> str:
    out = [
        '<section id="companies"><h2>Company ranking</h2>',
        "<p>Companies are scored by their estates' scores weighted by households. The plot "
        "sets each company's score against its latent diligence in the scenario, with Kendall's "
        "τ-b of the two (1: the same order, 0: unrelated, −1: reversed); every period's τ, its "
        'interval and the other checks against the truth are in <a href="#validity">Validity'
        "</a>.</p>",
    ]
    latest, rest = latest_and_rest(rk["periods"])
    panels = []
    for p in latest:
        pts = [
            page.plots.CompanyPoint(
                page.plot_company(c["company"]),
                c["score"],
                c["interval"][0],
                c["interval"][1],
                float(page.data.companies[c["company"]]["diligence"]),
            )
            for c in p["companies"]
            if c.get("score") is not None and c["company"] in page.data.companies
        ]
        tau = (p.get("validity") or {}).get("kendall_tau")
        panels.append((f"{p['period']['id']}: τ = {num(tau, 2)}", pts))
    if panels:
        out.append(
            img(
                page.plots.company_validity(panels, page.font),
                "company scores against latent diligence",
            )
        )

    def block(p: Mapping[str, Any]) -> str:
        crows = [
            [
                num(c.get("rank")),
                page.company(c["company"]),
                num(page.data.companies.get(c["company"], {}).get("diligence")),
                num(c.get("score"), 1),
                ivl(c.get("interval")),
                ivl(c.get("rank_interval"), 0),
                esc(", ".join(c.get("estates", []))),
                num(c.get("households")),
                esc(", ".join(c.get("unscored_estates", [])) or "–"),
            ]
            for c in p["companies"]
        ]
        return f"<h3>{_period_title(p)}</h3>" + table(
            [
                "rank",
                "company",
                "latent diligence",
                "score",
                "95% interval",
                "rank interval",
                "estates",
                "households",
                "unscored estates",
            ],
            crows,
            numeric=(0, 2, 3, 4, 5, 7),
        )

    out += [block(p) for p in latest]
    if rest:
        out.append(f"<details><summary>Earlier periods ({len(rest)})</summary>")
        out += [block(p) for p in rest]
        out.append("</details>")
    out.append("</section>")
    return "".join(out)


def _axis_label(name: str) -> str:
    return "\n".join(textwrap.wrap(name.replace("_", " ").replace("sla", "SLA"), 12))


def profiles_section(page: Page[RunData], rk: Mapping[str, Any]) -> str:
    p = max(rk["periods"], key=_period_key)
    names = list(p["indicators"])
    profiles, rows = [], []
    for e in p["estates"]:
        subs = [e["indicators"].get(n, {}).get("sub_score") for n in names]
        title = page.plot_estate(e["estate"])
        title += (
            f": {e['score']:.0f} ({e['band']})" if e.get("score") is not None else ": not scored"
        )
        profiles.append(page.plots.Radar(title, subs))
        rows.append(
            [
                page.estate(e["estate"], e.get("name")),
                num(e.get("score"), 1),
                esc(e.get("band") or "–"),
                *(num(s, 0) if s is not None else "n/o" for s in subs),
            ]
        )
    ref = float(p["config"].get("average_sub_score", 80.0))
    png = page.plots.radars(profiles, [_axis_label(n) for n in names], ref, page.font)
    return "".join(
        [
            '<section id="profiles"><h2>Health profiles (健康画像)</h2>',
            f"<p>Each estate's sub-scores (0-100, higher is healthier) on every indicator for the "
            f"latest period, {_period_title(p)}. The dotted ring is an average estate ({ref:g}). "
            "A gap marked n/o is an indicator the estate cannot be measured on (no device of that kind "
            "or no work orders): it is ranked only on what is observable, never on a guess.</p>",
            img(png, f"radar health profile of every estate, {p['period']['id']}"),
            "<details><summary>The sub-scores as a table</summary>",
            table(
                ["estate", "score", "band", *names], rows, numeric=tuple(range(1, 3 + len(names)))
            ),
            "</details></section>",
        ]
    )
