"""Scoring against the truth: matching by kind, place and time; the figures that follow."""

from __future__ import annotations

from typing import Any

import pytest

from rules.model import RuleFile
from rules.ruleset import RuleSet
from rules.score import score_rules

RULES = RuleSet(
    RuleFile.model_validate(
        {
            "rules": [
                {
                    "id": "throws",
                    "watch": [{"type": "falling_object"}],
                    "key": ["estate", "building", "device_id"],
                    "condition": {"kind": "event"},
                    "detects": ["throw"],
                    "grace": "10m",
                }
            ]
        }
    )
)


def incident(iid: str, start: float, end: float | None, building: str = "b01", **kw: Any) -> dict:
    return {
        "id": iid,
        "kind": "incident",
        "type": kw.pop("type", "throw"),
        "estate": "e1",
        "building": building,
        "start_s": start,
        "end_s": end,
        "covered_by": kw.pop("covered_by", f"e1-{building}-cam"),
        "event_ids": kw.pop("event_ids", ["x:1"]),
        "severity": kw.pop("severity", 1),
        **kw,
    }


def firing(aid: str, t: float, building: str = "b01", wo: str | None = None) -> dict:
    return {
        "record": "alert",
        "alert_id": aid,
        "rule_id": "throws",
        "change": "firing",
        "state": "firing",
        "sim_seconds": t,
        "labels": {"estate": "e1", "building": building, "device_id": f"e1-{building}-cam"},
        "workorder_id": wo,
    }


TRUTH = [
    incident("A", 1000.0, 1003.0, severity=3),  # caught twice
    incident("B", 5000.0, 5003.0),  # events, no alert: the rule missed it
    incident("C", 9000.0, 9003.0, event_ids=[]),  # no events: the device missed it
    incident("D", 9500.0, 9503.0, covered_by=None, event_ids=[]),  # no camera: not in recall
    incident("E", 2000.0, 2003.0, type="clutter"),  # another kind: ignored
    {"id": "F", "kind": "false_trigger", "type": "falling_object", "estate": "e1"},
]
ALERTS = [
    firing("throws/e1/b01/e1-b01-cam#1", 1005.0),
    firing("throws/e1/b01/e1-b01-cam#2", 1003.0 + 600.0),  # inside the grace: a duplicate
    firing("throws/e1/b01/e1-b01-cam#3", 1003.0 + 601.0),  # past the grace: false
    firing("throws/e1/b02/e1-b02-cam#1", 1005.0, building="b02", wo="WO1"),  # wrong place: false
]
ORDERS = [
    {"record": "workorder", "workorder_id": "WO1", "change": "opened", "sim_seconds": 1005.0},
    {"record": "workorder", "workorder_id": "WO1", "change": "closed", "sim_seconds": 8205.0},
]


@pytest.fixture
def score() -> dict:
    result = score_rules(RULES, ALERTS, ORDERS, TRUTH, households=100, days=10, end_s=864000.0)
    return result["rules"]["throws"]


def test_counts_and_precision(score: dict) -> None:
    assert score["alerts"] == 4
    assert score["true_alerts"] == 2
    assert score["false_alerts"] == 2
    assert score["precision"] == 0.5


def test_recall_counts_only_what_a_device_could_see(score: dict) -> None:
    assert score["incidents"] == 4
    assert score["incidents_covered"] == 3
    assert score["incidents_matched"] == 1
    assert score["recall"] == pytest.approx(1 / 3, abs=1e-4)
    assert score["severity_weighted_recall"] == pytest.approx(3 / 5, abs=1e-4)


def test_misses_split_between_device_and_rule(score: dict) -> None:
    assert score["missed_by_device"] == 1
    assert score["missed_by_rule"] == 1


def test_time_to_detect_duplicates_and_costs(score: dict) -> None:
    assert score["ttd_median_s"] == 5.0
    assert score["ttd_p90_s"] == 5.0
    assert score["duplicates_per_incident"] == 1.0
    assert score["false_alerts_per_1000_household_days"] == 2.0
    assert score["workorder_hours_on_false_alerts"] == 2.0


def test_an_open_incident_runs_to_the_end_of_the_run() -> None:
    truth = [incident("G", 100.0, None)]
    late = [firing("throws/e1/b01/e1-b01-cam#1", 500000.0)]
    result = score_rules(RULES, late, [], truth, households=1, days=10, end_s=864000.0)
    assert result["rules"]["throws"]["incidents_matched"] == 1
