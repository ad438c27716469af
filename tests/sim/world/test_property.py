"""The property companies as the truth records them: diligence shows in how clips are reviewed,
who is visited, what gets answered and how much prevention does (tests/sim/conftest.py runs the
two-company district once)."""

from __future__ import annotations

import itertools
import statistics
from collections import Counter
from pathlib import Path
from typing import Any

from sim.files.records import read_jsonl
from sim.world.property import between, between_log

DAY = 86400.0


def _truth(run: Path) -> list[dict[str, Any]]:
    return list(read_jsonl(run / "truth.jsonl"))


def _by_company(records: list[dict[str, Any]], company: str) -> list[dict[str, Any]]:
    return [r for r in records if r.get("company") == company]


def test_between_runs_from_the_laxest_to_the_most_diligent() -> None:
    assert between((0.95, 0.2), 1.0) == 0.95 and between((0.95, 0.2), 0.0) == 0.2
    assert between((5.0, 240.0), 0.5) == 122.5


def test_durations_step_by_the_same_factor_at_every_level_of_diligence() -> None:
    assert between_log((20.0, 360.0), 1.0) == 20.0 and between_log((20.0, 360.0), 0.0) == 360.0
    steps = [between_log((20.0, 360.0), d / 10) for d in range(11)]
    ratios = [a / b for a, b in itertools.pairwise(steps)]
    assert max(ratios) - min(ratios) < 1e-9 and ratios[0] > 1.0


def test_the_lax_company_leaves_night_alarms_until_morning(two_companies: Path) -> None:
    """Arrivals for work orders raised at night: a diligent company's night shift comes at once,
    a lax one's staff mostly come the next morning."""
    night = {"good": 0, "lax": 0}
    morning = {"good": 0, "lax": 0}
    for r in _truth(two_companies):
        if r["kind"] != "response" or r["type"] == "review_clip":
            continue
        start = r["start_s"] % DAY / 3600
        if not (start >= 21 or start < 6):
            continue
        arrived = r["arrived_s"] % DAY / 3600
        came_at_night = arrived >= 20 or arrived < 8
        night[r["company"]] += came_at_night
        morning[r["company"]] += not came_at_night
    assert night["good"] > 4 * morning["good"]
    assert morning["lax"] > 4 * night["lax"]


def test_a_diligent_company_reviews_clips_sooner_and_better(two_companies: Path) -> None:
    reviews = [r for r in _truth(two_companies) if r["type"] == "review_clip"]
    delay, right = {}, {}
    for company in ("good", "lax"):
        mine = _by_company(reviews, company)
        assert len(mine) >= 10, company
        delay[company] = statistics.median(r["arrived_s"] - r["start_s"] for r in mine)
        right[company] = sum(r["effective"] for r in mine) / len(mine)
    assert delay["good"] * 5 < delay["lax"]
    assert right["good"] > right["lax"] and right["good"] >= 0.85


def test_visits_for_throws_go_to_throwers_and_joint_visits_follow_a_confirmed_repeat(
    two_companies: Path,
) -> None:
    truth = _truth(two_companies)
    threw = {t["household"] for t in truth if t["kind"] == "incident" and t["type"] == "throw"}
    visits = [
        t
        for t in truth
        if t["kind"] == "response" and t.get("hazard") == "throw" and t.get("household")
    ]
    assert visits
    wrong = [v for v in visits if v["household"] not in threw]
    assert len(wrong) <= 0.3 * len(visits)
    seen: Counter[str] = Counter()
    for v in sorted(visits, key=lambda v: v["start_s"]):
        assert (v["type"] == "joint_visit") == (seen[v["household"]] >= 1)
        seen[v["household"]] += 1


def test_every_kind_of_work_order_is_answered_by_staff(two_companies: Path) -> None:
    closed = Counter(
        w["rule_id"]
        for w in read_jsonl(two_companies / "workorders.jsonl")
        if w["change"] == "closed" and w.get("reason") == "staff_done"
    )
    opened = {
        w["rule_id"]
        for w in read_jsonl(two_companies / "workorders.jsonl")
        if w["change"] == "opened"
    }
    assert "ebike-repeat-elevator" in opened
    assert {r for r in opened if closed[r] == 0} == set()


def test_prevention_makes_the_diligent_company_s_estates_safer_over_time(
    two_companies: Path,
) -> None:
    incidents = [
        t
        for t in _truth(two_companies)
        if t["kind"] == "incident" and t["type"] in ("throw", "clutter", "ebike_entry")
    ]
    late = [t for t in incidents if t["start_s"] >= 21 * DAY]  # after the first education rounds
    per = Counter(t["estate"].rstrip("12") for t in late)
    assert per["good"] < 0.7 * per["lax"]


def test_blocked_riders_mostly_park_in_the_garage(two_companies: Path) -> None:
    truth = _truth(two_companies)
    blocked = sum(
        1
        for t in truth
        if t["kind"] == "incident"
        and t["type"] == "ebike_entry"
        and t.get("outcome") == "turned_back"
    )
    batteries = sum(1 for t in truth if t["kind"] == "incident" and t["type"] == "battery_entry")
    assert blocked > 20 and batteries < 0.25 * blocked
