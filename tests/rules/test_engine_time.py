"""Event time: late events, duplicates, reordering within the allowed lateness, bad payloads,
timers against the watermark, and snapshot/restore mid-run."""

from __future__ import annotations

import json
import pickle
from typing import Any

import numpy as np
import pytest
from enginekit import changes, ev, feed, rule, ruleset

from devices.events import (
    ClutterCleared,
    ClutterDetected,
    DoorOpenTooLong,
    EbikeDetected,
    FallingObject,
    Heartbeat,
    event_bytes,
    event_json,
)
from rules.engine import Engine

EB = rule("eb", "ebike_detected", {"kind": "event"})
QUIET = rule("quiet", "heartbeat", {"kind": "absence", "after": 600})

# every primitive and most modifiers, for the whole-run properties below
MIXED = ruleset(
    rule("eb", "ebike_detected", {"kind": "event"}, keep_firing_for=120, cooldown=300),
    rule("falls", "falling_object", {"kind": "count", "n": 3, "window": 900}, **{"for": 30}),
    rule(
        "area",
        "clutter_detected",
        {"kind": "threshold", "field": "area_share", "raise": 0.6, "clear": 0.3},
        keep_firing_for=60,
    ),
    rule(
        "lasting",
        "clutter_detected",
        {"kind": "duration", "stop": [{"type": "clutter_cleared"}], "at_least": 400},
        escalate=[{"after": 300, "severity": "critical"}],
    ),
    rule("quiet", "heartbeat", {"kind": "absence", "after": 1500}),
    rule(
        "argue",
        "ebike_detected",
        {
            "kind": "sequence",
            "then": [{"type": "door_open_too_long"}],
            "within": 200,
            "expect": "followed",
        },
    ),
    rule(
        "no-door",
        "ebike_detected",
        {"kind": "sequence", "then": [{"type": "door_open_too_long"}], "within": 150},
    ),
    {
        "id": "again",
        "key": ["device_id"],
        "condition": {"kind": "repeat", "rule": "eb", "k": 2, "within": 3600},
    },
)


def stream(seed: int, n: int = 400) -> list[Any]:
    """Events at distinct whole seconds from three devices, in time order."""
    rng = np.random.default_rng(seed)
    times = np.sort(rng.choice(40_000, size=n, replace=False))
    out = []
    for t in times.tolist():
        device = f"d{rng.integers(1, 4)}"
        pick = rng.integers(0, 6)
        if pick == 0:
            out.append(ev(EbikeDetected, t, device, confidence=float(rng.uniform(0.5, 1.0))))
        elif pick == 1:
            out.append(ev(FallingObject, t, device))
        elif pick == 2:
            out.append(ev(ClutterDetected, t, device, area_share=float(rng.uniform(0, 1))))
        elif pick == 3:
            out.append(ev(ClutterCleared, t, device))
        elif pick == 4:
            out.append(ev(DoorOpenTooLong, t, device))
        else:
            out.append(ev(Heartbeat, t, device))
    return out


def shuffled(events: list[Any], bound: float, seed: int) -> list[Any]:
    """Each event delayed by less than ``bound``: none arrives ``bound`` after a newer one."""
    rng = np.random.default_rng(seed)
    delay = rng.uniform(0, bound * 0.95, size=len(events))
    order = np.argsort(
        [e.sim_seconds + d for e, d in zip(events, delay, strict=True)], kind="stable"
    )
    return [events[i] for i in order]


# -- late events and duplicates -------------------------------------------------------------------


def test_late_events_are_counted_and_ignored() -> None:
    engine = Engine(ruleset(EB), allowed_lateness=60)
    events = [ev(EbikeDetected, 1000), ev(EbikeDetected, 900, "d2"), ev(EbikeDetected, 941, "d3")]
    recs = feed(engine, events)
    assert [(r["alert_id"], r["change"]) for r in recs] == [
        ("eb/d3#1", "firing"),
        ("eb/d3#1", "resolved"),
        ("eb/d1#1", "firing"),
        ("eb/d1#1", "resolved"),
    ]
    assert engine.stats["late"] == 1
    assert engine.stats["consumed"] == 2
    assert engine.s.late_ids == ["d2:1"]


def test_an_event_exactly_allowed_lateness_behind_is_accepted() -> None:
    engine = Engine(ruleset(EB), allowed_lateness=60)
    assert engine.consume(ev(EbikeDetected, 1000)) == []
    assert changes(engine.consume(ev(EbikeDetected, 940, "d2"))) == [("eb", "firing", 940.0)]
    recs = engine.finish()
    assert [(r["alert_id"], r["change"], r["sim_seconds"]) for r in recs] == [
        ("eb/d2#1", "resolved", 940.0),
        ("eb/d1#1", "firing", 1000.0),
        ("eb/d1#1", "resolved", 1000.0),
    ]
    assert engine.stats["late"] == 0
    assert engine.stats["consumed"] == 2
    assert engine.s.late_ids == []


@pytest.mark.parametrize("behind", [60.5, 61.0])
def test_an_event_older_than_allowed_lateness_behind_is_late(behind: float) -> None:
    engine = Engine(ruleset(EB), allowed_lateness=60)
    recs = feed(engine, [ev(EbikeDetected, 1000), ev(EbikeDetected, 1000 - behind, "d2")])
    assert [r["alert_id"] for r in recs] == ["eb/d1#1", "eb/d1#1"]
    assert engine.stats["late"] == 1
    assert engine.s.late_ids == ["d2:1"]


def test_in_order_events_at_the_same_instant_are_not_late_with_zero_lateness() -> None:
    engine = Engine(ruleset(EB), allowed_lateness=0)
    recs = feed(engine, [ev(EbikeDetected, 10, "d1"), ev(EbikeDetected, 10, "d2")])
    assert engine.stats["late"] == 0
    assert engine.stats["consumed"] == 2
    assert [(r["alert_id"], r["change"], r["sim_seconds"]) for r in recs] == [
        ("eb/d1#1", "firing", 10.0),
        ("eb/d2#1", "firing", 10.0),
        ("eb/d1#1", "resolved", 10.0),
        ("eb/d2#1", "resolved", 10.0),
    ]


def test_duplicates_are_counted_and_change_nothing() -> None:
    rs = ruleset(rule("falls", "falling_object", {"kind": "count", "n": 2, "window": 60}))
    first = ev(FallingObject, 0)
    engine = Engine(rs, allowed_lateness=30)
    recs = feed(engine, [first, first, ev(FallingObject, 70), first])
    assert recs == []
    assert engine.stats["duplicates"] == 2
    assert engine.stats["late"] == 0
    assert engine.stats["consumed"] == 2


# -- reordering -----------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5])
def test_reordering_within_the_lateness_changes_nothing(seed: int) -> None:
    events = stream(seed)
    expected = feed(Engine(MIXED, allowed_lateness=0), events, end=45_000)
    assert {r["rule_id"] for r in expected} == {
        "eb", "falls", "area", "lasting", "quiet", "argue", "no-door", "again"
    }  # fmt: skip
    assert {r["change"] for r in expected} >= {"pending", "firing", "escalated", "resolved"}
    for lateness in (120.0, 600.0):
        mixed = shuffled(events, lateness, seed + 100)
        assert mixed != events
        engine = Engine(MIXED, allowed_lateness=lateness)
        assert feed(engine, mixed, end=45_000) == expected
        assert engine.stats["late"] == 0


def test_records_wait_for_the_watermark() -> None:
    rs = ruleset(EB, allowed_lateness="2m")
    engine = Engine(rs)
    assert engine.lateness == 120.0
    assert engine.consume(ev(EbikeDetected, 100)) == []
    assert engine.consume(ev(EbikeDetected, 50, "d2")) == []
    assert engine.consume(ev(Heartbeat, 169, "d3")) == []
    assert changes(engine.consume(ev(Heartbeat, 170, "d3"))) == [("eb", "firing", 50.0)]
    # the resolution at 50 (keep_firing_for 0) is a timer: it waits until the watermark passes 50
    assert changes(engine.consume(ev(Heartbeat, 171, "d3"))) == [("eb", "resolved", 50.0)]
    assert engine.consume(ev(Heartbeat, 219, "d3")) == []
    recs = engine.consume(ev(Heartbeat, 220, "d3"))
    assert [(r["alert_id"], r["change"], r["sim_seconds"]) for r in recs] == [
        ("eb/d1#1", "firing", 100.0)
    ]
    recs = engine.finish()
    assert [(r["alert_id"], r["change"], r["sim_seconds"]) for r in recs] == [
        ("eb/d1#1", "resolved", 100.0)
    ]


def test_timers_at_an_events_time_fire_after_it_and_before_later_events() -> None:
    rs = ruleset(rule("eb", "ebike_detected", {"kind": "event"}, keep_firing_for=100))
    engine = Engine(rs, allowed_lateness=0)
    engine.consume(ev(EbikeDetected, 0))
    same = engine.consume(ev(EbikeDetected, 100, "d2"))
    assert [(r["alert_id"], r["change"]) for r in same] == [("eb/d2#1", "firing")]
    # the timer due at 100 waits: another event at 100 is not late and still comes first
    same = engine.consume(ev(EbikeDetected, 100, "d3"))
    assert [(r["alert_id"], r["change"]) for r in same] == [("eb/d3#1", "firing")]
    assert engine.stats["late"] == 0
    later = engine.consume(ev(EbikeDetected, 101, "d4"))
    assert [(r["alert_id"], r["change"], r["sim_seconds"]) for r in later] == [
        ("eb/d1#1", "resolved", 100.0),
        ("eb/d4#1", "firing", 101.0),
    ]
    engine2 = Engine(rs, allowed_lateness=0)
    engine2.consume(ev(EbikeDetected, 0))
    later = engine2.consume(ev(EbikeDetected, 101, "d2"))
    assert [(r["alert_id"], r["change"]) for r in later] == [
        ("eb/d1#1", "resolved"),
        ("eb/d2#1", "firing"),
    ]


def test_finish_fires_timers_up_to_end_inclusive() -> None:
    engine = Engine(ruleset(QUIET), allowed_lateness=0)
    assert feed(engine, [ev(Heartbeat, 0)], end=599) == []
    assert changes(engine.finish(600)) == [("quiet", "firing", 600.0)]


def test_advance_respects_the_lateness() -> None:
    engine = Engine(ruleset(QUIET), allowed_lateness=60)
    assert engine.consume(ev(Heartbeat, 0)) == []
    assert engine.advance(659) == []
    assert engine.advance(660) == []  # watermark 600: the deadline at 600 waits for it to pass
    assert changes(engine.advance(661)) == [("quiet", "firing", 600.0)]


def test_an_event_at_the_watermark_comes_before_the_timers_due_then() -> None:
    engine = Engine(ruleset(QUIET), allowed_lateness=60)
    assert engine.consume(ev(Heartbeat, 0)) == []
    assert engine.advance(660) == []
    assert engine.consume(ev(Heartbeat, 600)) == []  # at the watermark: not late, and in time
    assert engine.stats["late"] == 0
    assert engine.advance(1260) == []
    assert changes(engine.advance(1261)) == [("quiet", "firing", 1200.0)]


def test_finish_fires_the_timers_due_at_the_watermark() -> None:
    rs = ruleset(rule("eb", "ebike_detected", {"kind": "event"}, keep_firing_for=100))
    engine = Engine(rs, allowed_lateness=0)
    assert changes(engine.consume(ev(EbikeDetected, 0))) == [("eb", "firing", 0.0)]
    assert engine.advance(100) == []
    assert changes(engine.finish()) == [("eb", "resolved", 100.0)]


# -- payloads -------------------------------------------------------------------------------------


def test_consume_payload_counts_bad_payloads() -> None:
    engine = Engine(ruleset(EB), allowed_lateness=0)
    good = ev(EbikeDetected, 5)
    unknown = json.loads(event_json(good)) | {"type": "teleport"}
    missing = json.loads(event_json(good))
    del missing["confidence"]
    assert engine.consume_payload(b"\xff{not json") == []
    assert engine.consume_payload(json.dumps(unknown)) == []
    assert engine.consume_payload(json.dumps(missing)) == []
    assert engine.consume_payload("[]") == []
    assert engine.stats["invalid"] == 3
    assert engine.stats["unknown_type"] == 1
    assert engine.stats["consumed"] == 0
    recs = engine.consume_payload(event_bytes(good))
    assert changes(recs) == [("eb", "firing", 5.0)]
    assert engine.stats["consumed"] == 1
    assert changes(engine.finish()) == [("eb", "resolved", 5.0)]


# -- snapshot / restore ---------------------------------------------------------------------------

SNAP = ruleset(
    rule("falls", "falling_object", {"kind": "count", "n": 3, "window": 600}, keep_firing_for=60),
    rule(
        "lasting",
        "clutter_detected",
        {"kind": "duration", "stop": [{"type": "clutter_cleared"}], "at_least": 300},
    ),
    rule("quiet", "heartbeat", {"kind": "absence", "after": 500}, cooldown=100),
)


def snap_events() -> list[Any]:
    return [
        ev(Heartbeat, 0, "hb"),
        ev(FallingObject, 10),
        ev(ClutterDetected, 20, "c1"),
        ev(FallingObject, 250),  # halfway through the count window, duration timer pending
        ev(Heartbeat, 300, "hb"),
        ev(FallingObject, 400),
        ev(ClutterCleared, 700, "c1"),
        ev(ClutterDetected, 710, "c1"),
        ev(FallingObject, 1500),
        ev(Heartbeat, 1600, "hb"),
    ]


@pytest.mark.parametrize("lateness", [0.0, 45.0])
@pytest.mark.parametrize("split", range(1, 10))
def test_snapshot_and_restore_resume_exactly(split: int, lateness: float) -> None:
    events = snap_events()
    whole = Engine(SNAP, allowed_lateness=lateness)
    expected = feed(whole, events, end=3000)
    assert {r["rule_id"] for r in expected} == {"falls", "lasting", "quiet"}
    first = Engine(SNAP, allowed_lateness=lateness)
    got = [r for e in events[:split] for r in first.consume(e)]
    blob = first.snapshot()
    first.consume(ev(FallingObject, 1400, "noise"))  # the snapshot is not affected afterwards
    resumed = Engine.restore(SNAP, blob, allowed_lateness=lateness)
    got += feed(resumed, events[split:], end=3000)
    assert got == expected
    assert resumed.stats == whole.stats


def test_restore_refuses_something_else() -> None:
    with pytest.raises(ValueError, match="not an engine snapshot"):
        Engine.restore(SNAP, pickle.dumps({"watermark": 0}))
