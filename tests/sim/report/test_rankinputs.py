"""Standardised timeliness: an estate is measured against the district's rate for each kind of order
it got, so a mix of hard orders does not make it look worse."""

from __future__ import annotations

import pytest

from sim.report.rankinputs import _speed, _standardised


def test_failures_are_weighed_against_the_district_rate_of_their_kind() -> None:
    outcomes = [
        # kind "door" (30-minute SLA): half of the district's are late
        ("a", "door", True),
        ("a", "door", False),
        ("b", "door", True),
        ("b", "door", False),
        # kind "repeat" (one-day SLA): nobody is late, so it says nothing about anybody
        ("a", "repeat", False),
        ("a", "repeat", False),
        ("b", "repeat", False),
    ]
    out = _standardised(outcomes)
    assert out["a"] == pytest.approx((1.0, 1.0)) and out["b"] == pytest.approx((1.0, 1.0))


def test_an_estate_late_on_easy_orders_is_worse_than_one_late_on_hard_ones() -> None:
    outcomes = [
        ("hard", "door", True),
        ("hard", "door", True),
        ("x", "door", True),
        ("x", "door", False),
        ("easy", "repeat", True),
        ("x", "repeat", False),
        ("x", "repeat", False),
        ("x", "repeat", False),
    ]
    out = _standardised(outcomes)
    ratio = {e: fails / expected for e, (fails, expected) in out.items()}
    assert ratio["easy"] > ratio["hard"] > 1.0 > ratio["x"]


# --- speed: where each order falls among the district's orders of the same kind ---------------


def _per_order(out: dict[str, tuple[float, float]]) -> dict[str, float]:
    return {e: total / n for e, (total, n) in out.items()}


def test_the_faster_estate_has_the_higher_speed_whatever_its_mix() -> None:
    orders = [
        # door alarms are answered in minutes, repeat visits in days
        ("fast", "door", 60.0),
        ("slow", "door", 600.0),
        ("fast", "repeat", 86_400.0),
        ("slow", "repeat", 3 * 86_400.0),
        # an estate with only repeat orders, answered fastest of them, is not slow for it
        ("repeats", "repeat", 3_600.0),
    ]
    speed = _per_order(_speed(orders))
    assert speed["repeats"] == pytest.approx(1.0)
    assert speed["fast"] > 0.5 > speed["slow"]


def test_an_order_never_answered_is_the_slowest_and_one_of_a_kind_says_nothing() -> None:
    orders = [
        ("a", "door", None),
        ("b", "door", 10_000_000.0),
        ("c", "door", None),
        ("d", "lonely", 5.0),
    ]
    speed = _per_order(_speed(orders))
    assert speed["b"] == pytest.approx(1.0)  # slower than nothing but the unanswered
    assert speed["a"] == speed["c"] == pytest.approx(0.25)  # a tie with each other
    assert speed["d"] == pytest.approx(0.5)
    # each order is worth three trials of evidence
    assert _speed(orders)["b"] == pytest.approx((3.0, 3.0))
