"""The validity section of the run report: how well each period's ranking recovers the truth.

Drawn from the ``validity`` block of every period in ``rankings.json`` (:mod:`rules.rankvalidity`):
Kendall's tau of the company ranking against the companies' latent diligence with its interval,
Spearman's rho of estate scores against their company's diligence, list stability against the
previous period of the same kind, black-listed estates of diligent companies, and each indicator's
tau alone. Two compact tables, one row per period (the whole run first, then months, quarters and
half-years in calendar order).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sim.report.html import Page, esc, ivl, num, table
from sim.report.ranksections import KIND_NAME, KINDS
from sim.report.rundata import RunData

__all__ = ["validity_section"]


def _ordered(periods: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    def key(p: Mapping[str, Any]) -> tuple[int, int, str]:
        per = p["period"]
        return (KINDS.index(per["kind"]), int(per.get("end_day", 0)), str(per["id"]))

    return sorted(periods, key=key)


def _main_row(page: Page[RunData], p: Mapping[str, Any]) -> list[str]:
    v = p.get("validity") or {}
    st = v.get("stability") or {}
    diligent = v.get("diligent_black_listed") or []
    return [
        esc(p["period"]["id"]),
        esc(KIND_NAME[p["period"]["kind"]]),
        num(v.get("kendall_tau"), 2),
        ivl(v.get("interval"), 2),
        num(v.get("companies")),
        num(v.get("estate_spearman"), 2),
        num(v.get("estates")),
        esc(st.get("previous") or "–"),
        num(st.get("red_jaccard"), 2),
        num(st.get("black_jaccard"), 2),
        num(st.get("score_spearman"), 2),
        "; ".join(
            f"{page.estate(d['estate'], d.get('name'))}, {page.company(d['company'])}"
            f" {num(d.get('diligence'), 2)}"
            for d in diligent
        )
        or "none",
    ]


def _indicator_names(periods: Sequence[Mapping[str, Any]]) -> list[str]:
    names: list[str] = []
    for p in periods:
        for n in (p.get("validity") or {}).get("indicators") or {}:
            if n not in names:
                names.append(n)
    return names


def _breakable(name: str) -> str:
    """A zero-width space after each underscore: a long indicator name may wrap in a header."""
    return name.replace("_", "_\u200b")


def _indicator_tau(p: Mapping[str, Any], name: str) -> str:
    ind = ((p.get("validity") or {}).get("indicators") or {}).get(name) or {}
    return num(ind.get("kendall_tau"), 2)


def validity_section(page: Page[RunData], rk: Mapping[str, Any]) -> str:
    periods = _ordered(rk["periods"])
    at = next(
        (p["validity"].get("diligent_at") for p in periods if p.get("validity")), 0.75
    )  # the same in every period
    out = [
        '<section id="validity"><h2>Validity: the ranking against the truth</h2>',
        "<p>The simulation knows each property company's latent diligence; a housing office "
        "does not, and the scores and lists are made without it. Here, and only here, it is held "
        "against them. Kendall's τ-b compares the company ranking with diligence (1: the same "
        "order, 0: unrelated, −1: reversed), its interval the central 95% over the posterior "
        "draws; Spearman's ρ compares every scored estate's score with its company's "
        "diligence. Stability compares each period with the previous one of its kind: the "
        "Jaccard overlap of the lists (1: the same estates, 0: none in common, –: both empty) "
        f"and ρ of the estates' scores. The last column names black-listed estates whose "
        f"company has diligence of {num(at, 2)} or more; it should say none.</p>",
    ]
    rows = [_main_row(page, p) for p in periods]
    out.append(
        table(
            [
                "period",
                "kind",
                "companies τ",
                "95% interval",
                "companies",
                "estates ρ",
                "estates",
                "previous",
                "red list J",
                "black list J",
                "scores ρ",
                "diligent, black-listed",
            ],
            rows,
            numeric=(2, 3, 4, 5, 6, 8, 9, 10),
        )
    )
    names = _indicator_names(periods)
    if names:
        weights = {
            n: (p["validity"]["indicators"][n].get("weight"))
            for p in reversed(periods)
            if p.get("validity")
            for n in (p["validity"].get("indicators") or {})
        }
        irows = [[esc(p["period"]["id"]), *(_indicator_tau(p, n) for n in names)] for p in periods]
        out.append(
            "<h3>Each indicator alone</h3><p>Kendall's τ-b of the companies ranked on one "
            "indicator's sub-score only (weighted by households over their estates measured on "
            "it, as company scores are) against diligence; – where fewer than three companies "
            "can be measured on it. A negative τ means the indicator, alone, ranks diligent "
            "companies lower.</p>"
        )
        out.append(
            table(
                ["period", *(f"{_breakable(n)} (weight {num(weights.get(n), 0)})" for n in names)],
                irows,
                numeric=tuple(range(1, 1 + len(names))),
            )
        )
    out.append("</section>")
    return "".join(out)
