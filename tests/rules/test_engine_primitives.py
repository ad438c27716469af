"""The condition primitives on the engine's clock: event, count, threshold, duration, absence,
sequence and repeat, each pinned as the exact list of (rule, change, time) records."""

from __future__ import annotations

from typing import Any

import pytest
from enginekit import changes, ev, rule, ruleset, run

from devices.events import (
    ClutterCleared,
    ClutterDetected,
    DoorOpenTooLong,
    EbikeDetected,
    FallingObject,
    GatewayStatus,
    Heartbeat,
)
from rules.engine import Engine
from rules.ruleset import RuleSet

# -- event ----------------------------------------------------------------------------------------

EB = rule("eb", "ebike_detected", {"kind": "event"}, keep_firing_for="100s")


def test_event_refreshes_extend_the_alert_and_count_hits() -> None:
    recs = run(ruleset(EB), [ev(EbikeDetected, t) for t in (0, 30, 60)], end=1000)
    assert changes(recs) == [("eb", "firing", 0.0), ("eb", "resolved", 160.0)]
    assert recs[-1]["hits"] == 3
    assert recs[-1]["event_ids"] == ["d1:1", "d1:2", "d1:3"]
    assert {r["alert_id"] for r in recs} == {"eb/d1#1"}


def test_event_record_fields() -> None:
    recs = run(ruleset(EB), [ev(EbikeDetected, 100)])
    first = recs[0]
    assert first["record"] == "alert"
    assert first["state"] == "firing"
    assert first["severity"] == "warning"
    assert first["labels"] == {"estate": "e1", "device_id": "d1"}
    assert first["time"] == "2026-03-02T00:01:40+08:00"
    assert first["started_s"] == 100.0
    assert first["workorder_id"] is None


def test_event_refresh_exactly_at_the_resolve_time_extends_it() -> None:
    recs = run(ruleset(EB), [ev(EbikeDetected, 0), ev(EbikeDetected, 100)], end=1000)
    assert changes(recs) == [("eb", "firing", 0.0), ("eb", "resolved", 200.0)]


def test_event_without_keep_firing_for_fires_and_resolves_at_once() -> None:
    rs = ruleset(rule("eb", "ebike_detected", {"kind": "event"}))
    recs = run(rs, [ev(EbikeDetected, 0), ev(EbikeDetected, 50)])
    assert changes(recs) == [
        ("eb", "firing", 0.0),
        ("eb", "resolved", 0.0),
        ("eb", "firing", 50.0),
        ("eb", "resolved", 50.0),
    ]
    assert [r["alert_id"] for r in recs] == ["eb/d1#1", "eb/d1#1", "eb/d1#2", "eb/d1#2"]


def test_event_after_resolution_is_a_new_incarnation() -> None:
    recs = run(ruleset(EB), [ev(EbikeDetected, 0), ev(EbikeDetected, 200)], end=1000)
    assert changes(recs) == [
        ("eb", "firing", 0.0),
        ("eb", "resolved", 100.0),
        ("eb", "firing", 200.0),
        ("eb", "resolved", 300.0),
    ]
    assert recs[2]["alert_id"] == "eb/d1#2"
    assert recs[2]["hits"] == 1


def test_event_filter_and_keys() -> None:
    rs = ruleset(
        rule("eb", [{"type": "ebike_detected", "where": "confidence >= 0.8"}], {"kind": "event"})
    )
    events = [
        ev(EbikeDetected, 0, confidence=0.5),
        ev(EbikeDetected, 10, "d2"),
        ev(EbikeDetected, 20, confidence=0.8),
    ]
    recs = run(rs, events)
    assert [(r["alert_id"], r["change"], r["sim_seconds"]) for r in recs] == [
        ("eb/d2#1", "firing", 10.0),
        ("eb/d2#1", "resolved", 10.0),
        ("eb/d1#1", "firing", 20.0),
        ("eb/d1#1", "resolved", 20.0),
    ]


# -- count ----------------------------------------------------------------------------------------

FALLS = ruleset(rule("falls", "falling_object", {"kind": "count", "n": 3, "window": "1m"}))


def test_count_window_is_inclusive() -> None:
    recs = run(FALLS, [ev(FallingObject, t) for t in (0, 30, 60)])
    assert changes(recs) == [("falls", "firing", 60.0), ("falls", "resolved", 60.0)]
    assert recs[0]["event_ids"] == ["d1:1", "d1:2", "d1:3"]


def test_count_one_second_too_wide_does_not_fire() -> None:
    assert run(FALLS, [ev(FallingObject, t) for t in (0, 30, 61)], end=5000) == []


def test_count_n_minus_one_never_fires() -> None:
    assert run(FALLS, [ev(FallingObject, t) for t in (0, 10)], end=5000) == []


def test_count_window_slides() -> None:
    recs = run(FALLS, [ev(FallingObject, t) for t in (0, 30, 61, 70)])
    assert changes(recs) == [("falls", "firing", 70.0), ("falls", "resolved", 70.0)]
    assert recs[0]["event_ids"] == ["d1:2", "d1:3", "d1:4"]


def test_count_is_per_key() -> None:
    events = [ev(FallingObject, 0), ev(FallingObject, 10, "d2"), ev(FallingObject, 20)]
    assert run(FALLS, events) == []


# -- threshold ------------------------------------------------------------------------------------


def test_threshold_above_with_hysteresis() -> None:
    cond = {"kind": "threshold", "field": "area_share", "raise": 0.5, "clear": 0.3}
    rs = ruleset(rule("clutter", "clutter_detected", cond))
    values = [(0, 0.4), (10, 0.5), (20, 0.35), (30, 0.3), (40, 0.29), (50, 0.45)]
    recs = run(rs, [ev(ClutterDetected, t, area_share=v) for t, v in values], end=100)
    assert changes(recs) == [("clutter", "firing", 10.0), ("clutter", "resolved", 40.0)]
    assert recs[-1]["hits"] == 3


def test_threshold_below_with_hysteresis() -> None:
    cond = {
        "kind": "threshold",
        "field": "confidence",
        "direction": "below",
        "raise": 0.3,
        "clear": 0.5,
    }
    rs = ruleset(rule("dim", "ebike_detected", cond))
    values = [(0, 0.35), (10, 0.3), (20, 0.45), (30, 0.5), (40, 0.51), (50, 0.31)]
    recs = run(rs, [ev(EbikeDetected, t, confidence=v) for t, v in values], end=100)
    assert changes(recs) == [("dim", "firing", 10.0), ("dim", "resolved", 40.0)]


def test_threshold_raised_again_is_a_new_incarnation() -> None:
    cond = {"kind": "threshold", "field": "area_share", "raise": 0.5, "clear": 0.3}
    rs = ruleset(rule("clutter", "clutter_detected", cond))
    values = [(0, 0.9), (10, 0.1), (20, 0.6)]
    recs = run(rs, [ev(ClutterDetected, t, area_share=v) for t, v in values], end=100)
    assert [(r["alert_id"], r["change"], r["sim_seconds"]) for r in recs] == [
        ("clutter/d1#1", "firing", 0.0),
        ("clutter/d1#1", "resolved", 10.0),
        ("clutter/d1#2", "firing", 20.0),
    ]


# -- duration -------------------------------------------------------------------------------------

LASTING = ruleset(
    rule(
        "lasting",
        "clutter_detected",
        {"kind": "duration", "stop": [{"type": "clutter_cleared"}], "at_least": "5m"},
    )
)


def test_duration_stopped_in_time_is_nothing() -> None:
    assert run(LASTING, [ev(ClutterDetected, 0), ev(ClutterCleared, 200)], end=5000) == []


def test_duration_without_stop_fires_exactly_at_at_least() -> None:
    engine = Engine(LASTING, allowed_lateness=0)
    assert engine.consume(ev(ClutterDetected, 0)) == []
    assert engine.advance(299) == []
    assert engine.advance(300) == []  # a stop at 300 may still come: the timer waits for it
    recs = engine.advance(300.5)
    assert changes(recs) == [("lasting", "firing", 300.0)]
    assert recs[0]["event_ids"] == ["d1:1"]
    assert engine.finish(5000) == []
    assert [a.state for a in engine.open_alerts()] == ["firing"]


def test_duration_stop_after_at_least_resolves_at_stop() -> None:
    recs = run(LASTING, [ev(ClutterDetected, 0), ev(ClutterCleared, 500)], end=5000)
    assert changes(recs) == [("lasting", "firing", 300.0), ("lasting", "resolved", 500.0)]


def test_duration_second_start_does_not_restart_the_clock() -> None:
    recs = run(LASTING, [ev(ClutterDetected, 0), ev(ClutterDetected, 100)], end=5000)
    assert changes(recs) == [("lasting", "firing", 300.0)]


def test_duration_stop_exactly_at_at_least_is_processed_before_the_timer() -> None:
    assert run(LASTING, [ev(ClutterDetected, 0), ev(ClutterCleared, 300)], end=5000) == []


def test_duration_restarted_after_a_stop_counts_from_the_new_start() -> None:
    events = [ev(ClutterDetected, 0), ev(ClutterCleared, 100), ev(ClutterDetected, 150)]
    assert changes(run(LASTING, events, end=5000)) == [("lasting", "firing", 450.0)]


# -- absence --------------------------------------------------------------------------------------

QUIET = ruleset(rule("quiet", "heartbeat", {"kind": "absence", "after": "10m"}))


def test_absence_fires_exactly_after_the_last_event() -> None:
    engine = Engine(QUIET, allowed_lateness=0)
    assert engine.consume(ev(Heartbeat, 0)) == []
    assert engine.consume(ev(Heartbeat, 300)) == []
    assert engine.advance(899) == []
    assert engine.advance(900) == []  # a heartbeat at 900 may still come: the timer waits for it
    assert changes(engine.advance(900.5)) == [("quiet", "firing", 900.0)]
    assert engine.finish(10_000) == []


def test_absence_timer_fires_before_a_later_event_of_another_key() -> None:
    engine = Engine(QUIET, allowed_lateness=0)
    engine.consume(ev(Heartbeat, 0))
    recs = engine.consume(ev(Heartbeat, 700, "d2"))
    assert [(r["alert_id"], r["change"], r["sim_seconds"]) for r in recs] == [
        ("quiet/d1#1", "firing", 600.0)
    ]


def test_absence_event_exactly_at_the_deadline_prevents_the_alert() -> None:
    events = [ev(Heartbeat, 0), ev(Heartbeat, 600)]
    assert run(QUIET, events, end=1199) == []
    assert changes(run(QUIET, events, end=1200)) == [("quiet", "firing", 1200.0)]


def test_absence_resolves_when_the_device_speaks_and_can_fire_again() -> None:
    recs = run(QUIET, [ev(Heartbeat, 0), ev(Heartbeat, 1000)], end=2000)
    assert [(r["alert_id"], r["change"], r["sim_seconds"]) for r in recs] == [
        ("quiet/d1#1", "firing", 600.0),
        ("quiet/d1#1", "resolved", 1000.0),
        ("quiet/d1#2", "firing", 1600.0),
    ]


def test_absence_never_alerts_a_key_never_seen() -> None:
    recs = run(QUIET, [ev(Heartbeat, 0, "d1"), ev(EbikeDetected, 10, "d2")], end=5000)
    assert [r["labels"]["device_id"] for r in recs] == ["d1"]


# -- sequence -------------------------------------------------------------------------------------

GW = ruleset(
    rule(
        "gw",
        [{"type": "gateway_status", "where": 'status == "offline"'}],
        {
            "kind": "sequence",
            "then": [{"type": "gateway_status", "where": 'status == "online"'}],
            "within": "5m",
        },
    )
)


def test_sequence_missing_fires_at_the_deadline_and_resolves_on_b() -> None:
    events = [ev(GatewayStatus, 0), ev(GatewayStatus, 500, status="online")]
    recs = run(GW, events, end=1000)
    assert changes(recs) == [("gw", "firing", 300.0), ("gw", "resolved", 500.0)]
    assert recs[0]["event_ids"] == ["d1:1"]


def test_sequence_missing_b_in_time_is_nothing() -> None:
    events = [ev(GatewayStatus, 0), ev(GatewayStatus, 200, status="online")]
    assert run(GW, events, end=1000) == []


def test_sequence_missing_b_exactly_at_the_deadline_is_in_time() -> None:
    events = [ev(GatewayStatus, 0), ev(GatewayStatus, 300, status="online")]
    assert run(GW, events, end=1000) == []


def test_sequence_missing_a_second_a_does_not_restart_the_wait() -> None:
    recs = run(GW, [ev(GatewayStatus, 0), ev(GatewayStatus, 100)], end=1000)
    assert changes(recs) == [("gw", "firing", 300.0)]


FOLLOWED = ruleset(
    rule(
        "argue",
        "ebike_detected",
        {
            "kind": "sequence",
            "then": [{"type": "door_open_too_long"}],
            "within": 60,
            "expect": "followed",
        },
    )
)


@pytest.mark.parametrize("gap", [40, 60])
def test_sequence_followed_fires_at_b(gap: int) -> None:
    recs = run(FOLLOWED, [ev(EbikeDetected, 0), ev(DoorOpenTooLong, gap)])
    assert changes(recs) == [("argue", "firing", gap), ("argue", "resolved", gap)]
    assert recs[0]["event_ids"] == ["d1:1", "d1:2"]


def test_sequence_followed_too_late_or_without_a_is_nothing() -> None:
    assert run(FOLLOWED, [ev(EbikeDetected, 0), ev(DoorOpenTooLong, 61)], end=500) == []
    assert run(FOLLOWED, [ev(DoorOpenTooLong, 10, "d9")], end=500) == []


def test_sequence_followed_counts_from_the_latest_a() -> None:
    events = [ev(EbikeDetected, 0), ev(EbikeDetected, 50), ev(DoorOpenTooLong, 100)]
    assert changes(run(FOLLOWED, events)) == [("argue", "firing", 100), ("argue", "resolved", 100)]


# -- repeat ---------------------------------------------------------------------------------------


def repeat_rules(k: int, **source: Any) -> RuleSet:
    cond = {"kind": "repeat", "rule": "eb", "k": k, "within": "1h"}
    again = {"id": "again", "key": ["device_id"], "condition": cond}
    return ruleset(rule("eb", "ebike_detected", {"kind": "event"}, **source), again)


REPEAT = repeat_rules(3)


def test_repeat_fires_on_the_kth_firing() -> None:
    recs = run(REPEAT, [ev(EbikeDetected, t) for t in (0, 100, 200)])
    assert changes(recs)[-4:] == [
        ("eb", "firing", 200.0),
        ("again", "firing", 200.0),
        ("again", "resolved", 200.0),
        ("eb", "resolved", 200.0),
    ]
    assert [c for c in changes(recs) if c[0] == "again"] == changes(recs)[-3:-1]
    assert recs[-3]["labels"] == {"estate": "e1", "device_id": "d1"}
    assert recs[-3]["event_ids"] == ["d1:3"]


def test_repeat_k_minus_one_and_other_keys_do_not_fire() -> None:
    events = [ev(EbikeDetected, 0), ev(EbikeDetected, 100), ev(EbikeDetected, 150, "d2")]
    assert {r["rule_id"] for r in run(REPEAT, events)} == {"eb"}


def test_repeat_ignores_firings_outside_the_window() -> None:
    events = [ev(EbikeDetected, t) for t in (0, 100, 3601)]
    assert {r["rule_id"] for r in run(REPEAT, events)} == {"eb"}
    events.append(ev(EbikeDetected, 3650))
    again = [c for c in changes(run(REPEAT, events)) if c[0] == "again"]
    assert again == [("again", "firing", 3650.0), ("again", "resolved", 3650.0)]


def test_repeat_counts_incarnations_not_refreshes() -> None:
    rs = repeat_rules(2, keep_firing_for="10m")
    events = [ev(EbikeDetected, t) for t in (0, 100, 200)]
    assert {r["rule_id"] for r in run(rs, events)} == {"eb"}
    events.append(ev(EbikeDetected, 1000))
    again = [c for c in changes(run(rs, events)) if c[0] == "again"]
    assert again == [("again", "firing", 1000.0), ("again", "resolved", 1000.0)]
