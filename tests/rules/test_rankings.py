"""Rankings: shrinkage, fallback, vetoes, evidence for the lists, unobservable indicators, companies,
Kendall's tau, periods and determinism."""

from __future__ import annotations

import json
import math
from datetime import date
from typing import Any

import numpy as np
import pytest

from rules.rankconfig import RankConfig
from rules.rankings import (
    EstatePeriod,
    Period,
    jaccard,
    kendall_tau,
    period_kind,
    periods,
    rank_period,
    ranked_periods,
    run_period,
    stability,
    sub_score,
)
from rules.rankstats import kendall_tau_draws
from rules.shrinkage import fit_prior, posterior_mean

PID = "2026-04"


def ep(
    eid: str,
    counts: dict[str, tuple[float, float]],
    *,
    households: int = 1000,
    company: str = "c1",
    pid: str = PID,
    days: int = 30,
) -> EstatePeriod:
    return EstatePeriod(eid, eid.upper(), company, households, pid, days, counts)


def config(**over: Any) -> RankConfig:
    base: dict[str, Any] = {
        "indicators": {"falling_objects": {"weight": 1}},
        "list_size": 1,
        "draws": 1000,
    }
    base.update(over)
    return RankConfig.model_validate(base)


def by_id(out: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["estate"]: e for e in out["estates"]}


def names(entries: list[dict[str, Any]]) -> list[str]:
    return [e["estate"] for e in entries]


NORMAL = [20, 24, 27, 30, 33, 36, 28, 25, 31, 35]  # per 30,000 household-days: ~1 per 1,000


def district(big: float = 300) -> list[EstatePeriod]:
    """Ten ordinary estates, a big one with a consistently high rate, and a tiny one with one
    incident (the highest raw rate in the district)."""
    rows = [ep(f"n{i}", {"falling_objects": (y, 30_000)}) for i, y in enumerate(NORMAL)]
    rows.append(ep("big", {"falling_objects": (big, 90_000)}, households=3000))
    rows.append(ep("tiny", {"falling_objects": (1, 150)}, households=5))
    return rows


# --- shrinkage -------------------------------------------------------------------------------


def test_moment_estimates_by_hand() -> None:
    g = fit_prior("rate", np.array([0.0, 10, 20]), np.array([10.0, 10, 10]), 1.0)
    # m = 1, s² = (1 + 0 + 1)·10/30, v = s² − m/ē = 2/3 − 1/10; b = m/v, a = m·b
    v = 2 / 3 - 0.1
    assert g.fallback is None and g.mean == 1.0
    assert g.between_var == pytest.approx(v)
    assert (g.alpha, g.beta) == pytest.approx((1 / v, 1 / v))
    b = fit_prior("proportion", np.array([2.0, 5, 8]), np.array([10.0, 10, 10]), 1.0)
    # p = .5, s² = (.09 + 0 + .09)/3 = .06, v = .06 − .25/10 = .035, M = .25/.035 − 1
    strength = 0.25 / 0.035 - 1
    assert b.fallback is None and b.between_var == pytest.approx(0.035)
    assert (b.alpha, b.beta) == pytest.approx((strength / 2, strength / 2))
    shrunk = posterior_mean(b, np.array([2.0, 8]), np.array([10.0, 10]))
    assert 0.2 < shrunk[0] < 0.5 < shrunk[1] < 0.8  # pulled toward the district's 0.5


def test_tiny_estate_with_one_incident_does_not_top_the_black_list() -> None:
    out = rank_period(district(), config())
    est = by_id(out)
    tiny, big = (
        est["tiny"]["indicators"]["falling_objects"],
        est["big"]["indicators"]["falling_objects"],
    )
    assert tiny["observed"] > 2 * big["observed"]  # the worst raw rate in the district...
    assert tiny["shrunk"] < big["shrunk"]  # ...but one incident is thin evidence
    assert names(out["black_list"]) == ["big"]
    assert out["black_list"][0]["probability"] >= 0.8
    assert est["tiny"]["p_worst_k"] < 0.3
    assert est["big"]["rank"] == 12 and est["tiny"]["rank"] < 12
    width = {k: est[k]["interval"][1] - est[k]["interval"][0] for k in ("tiny", "big")}
    assert width["tiny"] > 2 * width["big"]
    assert est["tiny"]["rank_interval"][1] - est["tiny"]["rank_interval"][0] >= 8
    assert out["fallbacks"] == []
    reason = out["black_list"][0]["reasons"][0]
    assert reason["indicator"] == "falling_objects" and reason["points"] < 0
    assert "per 100 camera-days" in reason["text"]


def test_fallback_when_the_variance_estimate_is_not_positive() -> None:
    rows = [ep(f"e{i}", {"falling_objects": (30, 30_000)}) for i in range(5)]
    out = rank_period(rows, config())
    (fb,) = out["fallbacks"]
    assert fb["indicator"] == "falling_objects"
    assert "variance estimate not positive" in fb["reason"]
    assert fb["prior_strength"] == 30_000  # fallback_strength 1 x the mean exposure
    prior = out["indicators"]["falling_objects"]["prior"]
    assert prior["fallback"] == fb["reason"] and prior["between_var"] < 0
    assert len({e["score"] for e in out["estates"]}) == 1  # equal estates, equal scores
    assert out["black_list"] == [] and out["red_list"] == []


def test_fallback_when_too_few_estates_observe_an_indicator() -> None:
    rows = [ep(f"e{i}", {"falling_objects": (10 * i, 30_000)}) for i in range(4)]
    rows[0] = ep("e0", {"falling_objects": (0, 30_000), "ack_within_sla": (9, 10)})
    rows[1] = ep("e1", {"falling_objects": (10, 30_000), "ack_within_sla": (3, 10)})
    cfg = config(indicators={"falling_objects": {"weight": 1}, "ack_within_sla": {"weight": 1}})
    out = rank_period(rows, cfg)
    assert [(f["indicator"], f["reason"][:6]) for f in out["fallbacks"]] == [
        ("ack_within_sla", "only 2")
    ]


def test_no_events_anywhere_keeps_the_posterior_proper() -> None:
    rows = [ep(f"e{i}", {"falling_objects": (0, 30_000)}) for i in range(4)]
    out = rank_period(rows, config())
    assert out["indicators"]["falling_objects"]["district_mean"] > 0
    assert {e["score"] for e in out["estates"]} == {out["estates"][0]["score"]}
    assert all(e["interval"][0] >= 0 for e in out["estates"])


def test_sub_score_is_a_ratio_to_the_district_mean() -> None:
    rate = sub_score(np.array([0.0, 1.0, 2.0, 5.0, 9.0]), 1.0, "rate", True, 5.0)
    assert rate.tolist() == [100.0, 80.0, 60.0, 0.0, 0.0]
    share = sub_score(np.array([1.0, 0.9, 0.8]), 0.9, "proportion", False, 5.0)
    assert share.tolist() == pytest.approx([100.0, 80.0, 60.0])
    up = sub_score(np.array([2.0, 1.0]), 1.0, "rate", False, 5.0)  # higher-better rate
    assert up.tolist() == [90.0, 80.0]


# --- vetoes and lists ------------------------------------------------------------------------


def veto_district() -> list[EstatePeriod]:
    rows = [
        ep(f"e{i}", {"falling_objects": (y, 30_000), "repeat_unhandled": (0, 1)})
        for i, y in enumerate([30, 33, 36, 28, 25])
    ]
    rows.append(ep("clean", {"falling_objects": (0, 90_000), "repeat_unhandled": (1, 1)}))
    return rows


def test_veto_caps_the_score_and_keeps_the_estate_off_the_red_list() -> None:
    indicators = {"falling_objects": {"weight": 1}, "repeat_unhandled": {"weight": 0}}
    without = rank_period(veto_district(), config(indicators=indicators))
    assert names(without["red_list"]) == ["clean"]
    veto = {"indicator": "repeat_unhandled", "above": 0, "cap": 59, "reason": "unhandled"}
    out = rank_period(veto_district(), config(indicators=indicators, vetoes=[veto]))
    clean = by_id(out)["clean"]
    assert clean["score"] == 59.0 and clean["band"] == "D" and clean["interval"] == [59.0, 59.0]
    assert [v["indicator"] for v in clean["vetoes"]] == ["repeat_unhandled"]
    assert "clean" not in names(out["red_list"])
    assert clean["rank"] == 6 and clean["p_best_k"] == 0.0
    assert (
        clean["vetoes"][0]["text"] == "veto: repeat_unhandled count 1 above 0 (score capped at 59)"
    )
    # A cap is not a verdict: the black list still needs the evidence of being among the worst.
    assert clean["p_worst_k"] < 0.8 and out["black_list"] == []
    assert all(not e["vetoes"] for e in out["estates"] if e["estate"] != "clean")


def test_veto_bars_an_estate_that_would_still_rank_first() -> None:
    indicators = {"falling_objects": {"weight": 1}, "repeat_unhandled": {"weight": 0}}
    veto = {"indicator": "repeat_unhandled", "above": 0, "cap": 99.5}
    out = rank_period(veto_district(), config(indicators=indicators, vetoes=[veto]))
    assert by_id(out)["clean"]["p_best_k"] >= 0.8
    assert out["red_list"] == []
    assert "clean: barred from the red list by a veto" in out["notes"]


def test_a_low_veto_cap_puts_the_veto_first_among_the_reasons() -> None:
    indicators = {"falling_objects": {"weight": 1}, "repeat_unhandled": {"weight": 0}}
    veto = {"indicator": "repeat_unhandled", "above": 0, "cap": 30}
    out = rank_period(veto_district(), config(indicators=indicators, vetoes=[veto]))
    assert names(out["black_list"]) == ["clean"]
    assert out["black_list"][0]["reasons"][0]["text"].startswith("veto: repeat_unhandled")


def test_no_estate_is_named_on_weak_evidence() -> None:
    rows = [ep(f"e{i}", {"falling_objects": (y, 3000)}) for i, y in enumerate([1, 2, 3, 4, 5, 9])]
    out = rank_period(rows, config())
    assert out["black_list"] == [] and out["red_list"] == []
    assert by_id(out)["e5"]["rank"] == 6  # still ranked last on the point estimate
    assert max(e["p_worst_k"] for e in out["estates"]) < 0.8


def test_the_same_pattern_on_strong_evidence_is_named() -> None:
    rates = [1, 2, 3, 4, 5, 9]
    rows = [ep(f"e{i}", {"falling_objects": (100 * y, 300_000)}) for i, y in enumerate(rates)]
    out = rank_period(rows, config())
    assert names(out["black_list"]) == ["e5"] and names(out["red_list"]) == ["e0"]
    assert out["black_list"][0]["probability"] == 1.0
    assert out["red_list"][0]["reasons"][0]["points"] > 0
    lax = rank_period(rows, config(list_size=3))
    assert len(lax["black_list"]) <= 3 and set(names(lax["black_list"])) <= {"e3", "e4", "e5"}


def test_small_districts_get_shorter_lists_never_none() -> None:
    rows = [ep(f"e{i}", {"falling_objects": (100 * i, 300_000)}) for i in range(3)]
    out = rank_period(rows, config(list_size=2))
    assert out["config"]["list_size"] == 2 and out["config"]["list_length"] == 1
    assert names(out["red_list"]) == ["e0"] and names(out["black_list"]) == ["e2"]
    assert any("lists of at most 1" in n for n in out["notes"])
    two = rank_period(rows[:2], config(list_size=3))
    assert names(two["red_list"]) == ["e0"] and names(two["black_list"]) == ["e1"]


@pytest.mark.parametrize(
    ("scored", "list_size", "length"),
    [(0, 3, 0), (1, 3, 0), (2, 3, 1), (3, 3, 1), (7, 3, 1), (8, 3, 2), (12, 3, 3), (14, 3, 3),
     (40, 3, 3), (40, 5, 5), (8, 1, 1)],
)  # fmt: skip
def test_list_length_scales_with_the_scored_estates(
    scored: int, list_size: int, length: int
) -> None:
    assert config(list_size=list_size).list_length(scored) == length


def test_one_estate_alone_has_no_lists() -> None:
    out = rank_period([ep("only", {"falling_objects": (3, 3000)})], config())
    assert out["red_list"] == [] and out["black_list"] == []
    assert out["config"]["list_length"] == 0
    assert any("nothing to compare" in n for n in out["notes"])
    assert out["estates"][0]["p_best_k"] is None and out["estates"][0]["score"] is not None


# --- unobservable indicators and companies ---------------------------------------------------


def test_an_estate_without_devices_is_scored_on_the_rest_and_marked() -> None:
    cfg = config(
        indicators={
            "falling_objects": {"weight": 2},
            "device_uptime": {"weight": 1},
            "ack_within_sla": {"weight": 1},
        }
    )
    rows = [
        ep(
            f"e{i}",
            {
                "falling_objects": (20 + 3 * i, 30_000),
                "device_uptime": (7000 - 20 * i, 7200),
                "ack_within_sla": (40 - i, 45),
            },
        )
        for i in range(6)
    ]
    rows.append(ep("nodev", {"falling_objects": (0, 0), "ack_within_sla": (30, 45)}))
    rows.append(ep("nothing", {}))
    out = rank_period(rows, cfg)
    est = by_id(out)
    nodev = est["nodev"]
    assert nodev["scored"] and nodev["unobservable"] == ["falling_objects", "device_uptime"]
    assert list(nodev["indicators"]) == ["ack_within_sla"]
    assert nodev["indicators"]["ack_within_sla"]["weight"] == 1.0
    assert nodev["score"] == nodev["indicators"]["ack_within_sla"]["sub_score"]
    e0 = est["e0"]["indicators"]
    mixed = (2 * e0["falling_objects"]["sub_score"] + e0["device_uptime"]["sub_score"]
             + e0["ack_within_sla"]["sub_score"]) / 4  # fmt: skip
    assert est["e0"]["score"] == pytest.approx(mixed, abs=0.02)
    nothing = est["nothing"]
    assert not nothing["scored"] and nothing["score"] is None and nothing["rank"] is None
    assert out["estates"][-1]["estate"] == "nothing"
    assert "nothing: no observable indicator with a positive weight; not scored" in out["notes"]
    assert out["indicators"]["device_uptime"]["observed_by"] == 6
    assert out["companies"][0]["unscored_estates"] == ["nothing"]


def test_companies_are_scored_on_their_pooled_counts_and_validity_is_reported() -> None:
    rows = [
        ep("a1", {"falling_objects": (30, 300_000)}, company="good", households=1000),
        ep("a2", {"falling_objects": (60, 300_000)}, company="good", households=3000),
        ep("b1", {"falling_objects": (300, 300_000)}, company="fair"),
        ep("b2", {"falling_objects": (330, 300_000)}, company="fair"),
        ep("c1", {"falling_objects": (900, 300_000)}, company="poor"),
        ep("c2", {"falling_objects": (990, 300_000)}, company="poor"),
    ]
    diligence = {"good": 0.9, "fair": 0.6, "poor": 0.2}
    out = rank_period(rows, config(), diligence=diligence)
    comp = {c["company"]: c for c in out["companies"]}
    assert [c["company"] for c in out["companies"]] == ["good", "fair", "poor"]
    # a company is scored as one estate holding all its estates' counts and exposures
    pooled = rank_period(
        [
            ep("good", {"falling_objects": (90, 600_000)}, households=4000),
            ep("fair", {"falling_objects": (630, 600_000)}),
            ep("poor", {"falling_objects": (1890, 600_000)}),
        ],
        config(),
    )
    for c in ("good", "fair", "poor"):
        assert comp[c]["score"] == by_id(pooled)[c]["score"]
    est = by_id(out)
    assert est["a1"]["score"] > comp["good"]["score"] > est["a2"]["score"]
    assert comp["good"]["households"] == 4000 and comp["good"]["rank_interval"] == [1, 1]
    assert out["validity"]["kendall_tau"] == 1.0 and out["validity"]["companies"] == 3
    assert out["validity"]["interval"] == [1.0, 1.0]
    flipped = rank_period(rows, config(), diligence={"good": 0.1, "fair": 0.6, "poor": 0.9})
    assert flipped["validity"]["kendall_tau"] == -1.0
    assert rank_period(rows, config())["validity"] is None


# --- Kendall's tau and stability -------------------------------------------------------------


def test_kendall_tau_on_known_permutations() -> None:
    assert kendall_tau([1, 2, 3, 4, 5], [10, 20, 30, 40, 50]) == 1.0
    assert kendall_tau([1, 2, 3, 4, 5], [5, 4, 3, 2, 1]) == -1.0
    # one swapped pair of six: (5 concordant − 1 discordant)/6
    assert kendall_tau([1, 2, 3, 4], [1, 3, 2, 4]) == pytest.approx(2 / 3)
    # tau-b with a tie in x: 2 concordant pairs, 2 untied pairs in x, 3 in y: 2/sqrt(6)
    assert kendall_tau([1, 1, 2], [1, 2, 3]) == pytest.approx(2 / math.sqrt(6))
    assert math.isnan(kendall_tau([1], [2])) and math.isnan(kendall_tau([1, 1], [1, 2]))
    with pytest.raises(ValueError):
        kendall_tau([1, 2], [1, 2, 3])
    rows = np.array([[1.0, 2, 3, 4], [4, 3, 2, 1], [1, 3, 2, 4]])
    assert kendall_tau_draws(rows, [1, 2, 3, 4]).tolist() == pytest.approx([1, -1, 2 / 3])


def test_jaccard_and_stability_between_consecutive_periods() -> None:
    assert jaccard(["a", "b"], ["b", "c"]) == pytest.approx(1 / 3)
    assert jaccard([], []) is None and jaccard(["a"], []) == 0.0

    def result(pid: str, red: list[str], black: list[str]) -> dict[str, Any]:
        return {
            "period": {"id": pid},
            "red_list": [{"estate": e} for e in red],
            "black_list": [{"estate": e} for e in black],
        }

    res = [
        result("2026-05", ["a"], ["x", "y"]),
        result("2026-04", ["a", "b"], ["x"]),
        result("2026-Q2", [], []),
        result("2026-06", [], ["y"]),
    ]
    assert stability(res) == [
        {"kind": "month", "from": "2026-04", "to": "2026-05", "red_jaccard": 0.5,
         "black_jaccard": 0.5, "score_spearman": None, "estates_compared": 0},
        {"kind": "month", "from": "2026-05", "to": "2026-06", "red_jaccard": 0.0,
         "black_jaccard": 0.5, "score_spearman": None, "estates_compared": 0},
    ]  # fmt: skip


# --- periods ---------------------------------------------------------------------------------


def test_periods_of_a_half_year_run_from_a_monday_in_march() -> None:
    got = periods(date(2026, 3, 2), 183, ["month", "quarter", "half"])
    assert [(p.id, p.start_day, p.end_day) for p in got] == [
        ("2026-03", 0, 30),
        ("2026-04", 30, 60),
        ("2026-05", 60, 91),
        ("2026-06", 91, 121),
        ("2026-07", 121, 152),
        ("2026-08", 152, 183),
        ("2026-Q2", 30, 121),
        ("2026-Q3", 121, 183),  # 62 of 92 days; Q1 has only 30 of 90 and is left out
        ("2026-H1", 0, 121),  # 121 of 181 days; H2 has only 62 of 184
    ]
    assert got[0].partial and got[0].coverage == pytest.approx(30 / 31)
    assert not got[1].partial and got[1].kind == "month" and got[1].length == 30
    full = periods(date(2026, 3, 2), 183, ["month", "quarter", "half"], min_coverage=1.0)
    assert [p.id for p in full] == [
        "2026-04",
        "2026-05",
        "2026-06",
        "2026-07",
        "2026-08",
        "2026-Q2",
    ]


def test_periods_across_a_new_year_and_period_ids() -> None:
    got = periods(date(2025, 12, 15), 40, ["month"])
    assert got == [Period("2025-12", 0, 17, "month", 31), Period("2026-01", 17, 40, "month", 31)]
    assert periods(date(2026, 1, 1), 365, ["half"])[1] == Period("2026-H2", 181, 365, "half", 184)
    assert [period_kind(p) for p in ("run", "2026-03", "2026-Q2", "2026-H1")] == [
        "run",
        "month",
        "quarter",
        "half",
    ]
    with pytest.raises(ValueError):
        period_kind("2026-W12")


def test_the_run_itself_is_always_a_period() -> None:
    assert run_period(7) == Period("run", 0, 7, "run", 7)
    assert not run_period(7).partial and run_period(7).coverage == 1.0
    week = ranked_periods(date(2026, 3, 2), 7, ["month", "quarter", "half"])
    assert week == [run_period(7)]
    with pytest.raises(ValueError):
        run_period(0)


def test_a_92_day_run_ranks_its_half_year_on_the_one_coverage_rule() -> None:
    """92 days from 2 March cover 92 of H1's 181 days (at least half): ranked, partial. There
    is no second, length rule that would drop it again."""
    got = ranked_periods(date(2026, 3, 2), 92, ["month", "quarter", "half"])
    assert [(p.id, p.days, p.partial) for p in got] == [
        ("run", 92, False),
        ("2026-03", 30, True),
        ("2026-04", 30, False),
        ("2026-05", 31, False),
        ("2026-Q2", 62, True),  # 62 of 91 days; June has 1 of 30 and is left out
        ("2026-H1", 92, True),
    ]
    assert got[-1].coverage == pytest.approx(92 / 181)
    # the rule is the coverage, whatever the period's length: 60% of a quarter, not of a month
    assert [p.id for p in periods(date(2026, 4, 1), 55, ["quarter"], 0.6)] == ["2026-Q2"]
    assert periods(date(2026, 4, 1), 54, ["quarter"], 0.6) == []


# --- determinism and bad input ---------------------------------------------------------------


def mixed() -> tuple[list[EstatePeriod], RankConfig]:
    rows = [
        ep(r.estate, {**r.counts, "ack_within_sla": (30 + i % 7, 40)}, company=f"c{i % 3}")
        for i, r in enumerate(district())
    ]
    cfg = config(indicators={"falling_objects": {"weight": 2}, "ack_within_sla": {"weight": 1}})
    return rows, cfg


def test_same_inputs_give_identical_json_in_any_order() -> None:
    rows, cfg = mixed()
    period = Period(PID, 30, 60, "month", 30)
    one = json.dumps(rank_period(rows, cfg, period=period, diligence={"c0": 1, "c1": 2}))
    two = json.dumps(rank_period(rows[::-1], cfg, period=period, diligence={"c1": 2, "c0": 1}))
    assert one == two
    assert json.loads(one)["period"]["partial"] is False


def test_another_seed_moves_the_draws_but_not_the_point_scores() -> None:
    rows, cfg = mixed()
    a = rank_period(rows, cfg)
    b = rank_period(rows, cfg.model_copy(update={"seed": 7}))
    assert [(e["estate"], e["score"], e["band"], e["rank"]) for e in a["estates"]] == [
        (e["estate"], e["score"], e["band"], e["rank"]) for e in b["estates"]
    ]
    assert [e["interval"] for e in a["estates"]] != [e["interval"] for e in b["estates"]]
    other_period = [ep(r.estate, r.counts, company=r.company, pid="2026-05") for r in rows]
    c = rank_period(other_period, cfg)
    assert [e["interval"] for e in a["estates"]] != [e["interval"] for e in c["estates"]]


@pytest.mark.parametrize(
    ("rows", "words"),
    [
        ([], "at least one"),
        ([ep("a", {"noise": (1, 2)})], "unknown indicator"),
        ([ep("a", {"ack_within_sla": (5, 4)})], "successes"),
        ([ep("a", {"falling_objects": (-1, 4)})], "non-negative"),
        ([ep("a", {}), ep("a", {})], "duplicate"),
        ([ep("a", {}), ep("b", {}, pid="2026-05")], "share the period"),
        ([ep("a", {}, households=0)], "households"),
    ],
)
def test_bad_inputs_are_refused(rows: list[EstatePeriod], words: str) -> None:
    with pytest.raises(ValueError, match=words):
        rank_period(rows, config())
