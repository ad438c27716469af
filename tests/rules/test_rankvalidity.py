"""The validity block: on districts where the answer is known, and diligence never moving a score."""

from __future__ import annotations

import json
from typing import Any

import pytest

from rules.rankconfig import RankConfig
from rules.rankings import EstatePeriod, rank_period
from rules.rankvalidity import DILIGENT, add_stability

COMPANIES = {"c1": 0.15, "c2": 0.3, "c3": 0.45, "c4": 0.6, "c5": 0.75, "c6": 0.9}
HH_DAYS = 300_000.0  # 1,000 households over 30 days: thin intervals, so the answer is sharp


def config(**over: Any) -> RankConfig:
    base: dict[str, Any] = {
        "indicators": {
            "falling_objects": {"weight": 20},
            "ack_within_sla": {"weight": 10},
            "clutter_hours": {"weight": 1},
            "device_uptime": {"weight": 0},
        },
        "list_size": 2,
        "draws": 400,
    }
    base.update(over)
    return RankConfig.model_validate(base)


def district(pid: str = "2026-04") -> list[EstatePeriod]:
    """Two estates per company. Throws fall and acknowledgements rise with diligence (the
    indicators that should agree); clutter rises with it (one that measures the wrong thing); only
    c1 and c2 have devices reporting uptime (too few companies to rank on it)."""
    rows = []
    for c, d in COMPANIES.items():
        for k in (0, 1):
            counts: dict[str, tuple[float, float]] = {
                "falling_objects": ((1.0 - d) * 900 + 20 * k, HH_DAYS),
                "ack_within_sla": (round((0.3 + 0.6 * d) * 1000) - 10 * k, 1000.0),
                "clutter_hours": (d * 3000 + 10 * k, 1000.0),
            }
            if c in ("c1", "c2"):
                counts["device_uptime"] = (990.0, 1000.0)
            rows.append(EstatePeriod(f"{c}-e{k}", f"{c}-{k}", c, 1000, pid, 30, counts))
    return rows


def test_scores_that_follow_diligence_give_tau_one() -> None:
    v = rank_period(district(), config(), diligence=COMPANIES)["validity"]
    assert v["kendall_tau"] == 1.0 and v["companies"] == 6
    assert v["interval"][0] >= 0.85 and v["interval"][1] == 1.0
    ind = v["indicators"]
    assert ind["falling_objects"] == {"weight": 20, "kendall_tau": 1.0, "companies": 6}
    assert ind["ack_within_sla"]["kendall_tau"] == 1.0
    assert ind["clutter_hours"]["kendall_tau"] == -1.0  # alone it would rank them backwards
    assert ind["device_uptime"] == {"weight": 0, "kendall_tau": None, "companies": 2}
    assert v["estate_spearman"] > 0.95 and v["estates"] == 12
    assert v["diligent_black_listed"] == [] and v["diligent_at"] == DILIGENT
    assert v["stability"] is None and v["missing_diligence"] == []


def test_reversed_diligence_gives_minus_one_and_names_the_diligent_on_the_black_list() -> None:
    reverse = dict(zip(COMPANIES, sorted(COMPANIES.values(), reverse=True), strict=True))
    out = rank_period(district(), config(), diligence=reverse)
    v = out["validity"]
    assert v["kendall_tau"] == -1.0 and v["interval"][1] <= -0.85
    assert v["indicators"]["falling_objects"]["kendall_tau"] == -1.0
    assert v["estate_spearman"] < -0.95
    black = [e["estate"] for e in out["black_list"]]
    assert black and all(e.startswith(("c1-", "c2-")) for e in black)
    assert [d["estate"] for d in v["diligent_black_listed"]] == black
    assert {d["diligence"] for d in v["diligent_black_listed"]} <= {0.9, 0.75}


def test_an_indicator_too_few_companies_can_be_measured_on_is_null() -> None:
    rows = [r for r in district() if r.company in ("c1", "c2", "c3")]
    v = rank_period(rows, config(), diligence=COMPANIES)["validity"]
    assert v["indicators"]["falling_objects"]["kendall_tau"] == 1.0
    assert v["indicators"]["device_uptime"]["kendall_tau"] is None
    two = [r for r in rows if r.company != "c3"]
    v2 = rank_period(two, config(), diligence=COMPANIES)["validity"]
    assert v2["indicators"]["falling_objects"] == {
        "weight": 20,
        "kendall_tau": None,
        "companies": 2,
    }


def _without_validity(out: dict[str, Any]) -> str:
    return json.dumps({k: v for k, v in out.items() if k != "validity"}, sort_keys=True)


@pytest.mark.parametrize(
    "diligence",
    [
        {c: 0.5 for c in COMPANIES},
        dict(zip(COMPANIES, [0.9, 0.1, 0.8, 0.2, 0.7, 0.3], strict=True)),
        {"c1": 1.0, "elsewhere": 0.0},  # some missing, one unknown
    ],
)
def test_diligence_changes_no_score_draw_or_list(diligence: dict[str, float]) -> None:
    """Diligence is the simulation's truth: it may be held against the ranking, never used in
    it. Any other diligence (or none) leaves scores, intervals, ranks and lists as they were."""
    base = rank_period(district(), config(), diligence=COMPANIES)
    other = rank_period(district(), config(), diligence=diligence)
    blind = rank_period(district(), config())
    assert _without_validity(other) == _without_validity(base) == _without_validity(blind)
    assert blind["validity"] is None and other["validity"] != base["validity"]


def test_stability_is_filled_from_the_previous_period_of_the_same_kind() -> None:
    cfg = config()
    months = [rank_period(district(p), cfg, diligence=COMPANIES) for p in ("2026-05", "2026-04")]
    quarter = rank_period(district("2026-Q2"), cfg, diligence=COMPANIES)
    blind = rank_period(district("2026-06"), cfg)
    pairs = add_stability([*months, quarter, blind])
    assert [(s["from"], s["to"]) for s in pairs] == [("2026-04", "2026-05"), ("2026-05", "2026-06")]
    may, april = (m["validity"]["stability"] for m in months)
    assert april is None and quarter["validity"]["stability"] is None
    assert may == {
        "previous": "2026-04",
        "red_jaccard": 1.0,
        "black_jaccard": 1.0,
        "score_spearman": 1.0,
        "estates_compared": 12,
    }
    assert blind["validity"] is None
