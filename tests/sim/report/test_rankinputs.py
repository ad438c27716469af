"""Standardised timeliness: an estate is measured against the district's rate for each kind of order
it got, so a mix of hard orders does not make it look worse."""

from __future__ import annotations

import pytest

from sim.report.rankinputs import _standardised


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
