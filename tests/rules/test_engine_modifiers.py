"""Alert modifiers: ``for``, ``keep_firing_for`` on sustained conditions, cooldown, active hours,
escalation and inhibition, each pinned as the exact list of (rule, change, time) records."""

from __future__ import annotations

from typing import Any

from enginekit import changes, ev, rule, ruleset, run, run_engine

from devices.events import (
    ClutterCleared,
    ClutterDetected,
    DeviceFault,
    EbikeDetected,
    GatewayStatus,
    Heartbeat,
)
from rules.engine import Engine
from rules.ruleset import RuleSet

HOUR = 3600


EVENT = {"kind": "event"}
AREA = {"kind": "threshold", "field": "area_share", "raise": 0.5, "clear": 0.3}


def area(t: float, v: float, device: str = "d1") -> Any:
    return ev(ClutterDetected, t, device, area_share=v)


# -- for ------------------------------------------------------------------------------------------


def test_for_holds_the_alert_pending_first() -> None:
    rs = ruleset(rule("eb", "ebike_detected", EVENT, keep_firing_for="2m", **{"for": "1m"}))
    recs = run(rs, [ev(EbikeDetected, 0)], end=1000)
    assert [(r["change"], r["state"], r["sim_seconds"]) for r in recs] == [
        ("pending", "pending", 0.0),
        ("firing", "firing", 60.0),
        ("resolved", "resolved", 120.0),
    ]


def test_for_on_a_momentary_alert_shorter_than_for_never_fires() -> None:
    rs = ruleset(rule("eb", "ebike_detected", EVENT, **{"for": "1m"}))
    recs = run(rs, [ev(EbikeDetected, 0)], end=1000)
    assert changes(recs) == [("eb", "pending", 0.0), ("eb", "resolved", 0.0)]


def test_for_condition_going_away_before_for_is_pending_then_resolved() -> None:
    rs = ruleset(rule("clutter", "clutter_detected", AREA, keep_firing_for=100, **{"for": 60}))
    recs = run(rs, [area(0, 0.9), area(30, 0.1)], end=1000)
    assert changes(recs) == [("clutter", "pending", 0.0), ("clutter", "resolved", 30.0)]


def test_for_sustained_condition_holding_fires_after_for() -> None:
    rs = ruleset(rule("clutter", "clutter_detected", AREA, **{"for": 60}))
    recs = run(rs, [area(0, 0.9), area(30, 0.4), area(100, 0.1)], end=1000)
    assert changes(recs) == [
        ("clutter", "pending", 0.0),
        ("clutter", "firing", 60.0),
        ("clutter", "resolved", 100.0),
    ]
    assert recs[1]["started_s"] == 0.0


# -- keep_firing_for on sustained conditions ------------------------------------------------------


def test_keep_firing_for_delays_a_sustained_resolution() -> None:
    rs = ruleset(rule("clutter", "clutter_detected", AREA, keep_firing_for=100))
    recs = run(rs, [area(0, 0.9), area(50, 0.1)], end=1000)
    assert changes(recs) == [("clutter", "firing", 0.0), ("clutter", "resolved", 150.0)]


def test_keep_firing_for_is_cancelled_when_the_condition_returns() -> None:
    rs = ruleset(rule("clutter", "clutter_detected", AREA, keep_firing_for=100))
    events = [area(0, 0.9), area(50, 0.1), area(100, 0.8), area(120, 0.1)]
    recs = run(rs, events, end=1000)
    assert changes(recs) == [("clutter", "firing", 0.0), ("clutter", "resolved", 220.0)]
    assert recs[-1]["alert_id"] == "clutter/d1#1"
    assert recs[-1]["hits"] == 2


def test_keep_firing_for_on_duration_stop() -> None:
    cond = {"kind": "duration", "stop": [{"type": "clutter_cleared"}], "at_least": 300}
    rs = ruleset(rule("lasting", "clutter_detected", cond, keep_firing_for=60))
    recs = run(rs, [ev(ClutterDetected, 0), ev(ClutterCleared, 400)], end=1000)
    assert changes(recs) == [("lasting", "firing", 300.0), ("lasting", "resolved", 460.0)]


# -- cooldown -------------------------------------------------------------------------------------


def test_cooldown_suppresses_a_new_incarnation_and_counts_it() -> None:
    rs = ruleset(rule("eb", "ebike_detected", EVENT, cooldown="10m"))
    engine, recs = run_engine(rs, [ev(EbikeDetected, t) for t in (0, 300, 599, 600)])
    assert [(r["alert_id"], r["change"], r["sim_seconds"]) for r in recs] == [
        ("eb/d1#1", "firing", 0.0),
        ("eb/d1#1", "resolved", 0.0),
        ("eb/d1#2", "firing", 600.0),
        ("eb/d1#2", "resolved", 600.0),
    ]
    assert engine.stats["cooldown:eb"] == 2


def test_cooldown_counts_from_the_resolution() -> None:
    rs = ruleset(rule("eb", "ebike_detected", EVENT, keep_firing_for=100, cooldown=200))
    engine, recs = run_engine(rs, [ev(EbikeDetected, t) for t in (0, 250, 300)], end=1000)
    assert changes(recs) == [
        ("eb", "firing", 0.0),
        ("eb", "resolved", 100.0),
        ("eb", "firing", 300.0),
        ("eb", "resolved", 400.0),
    ]
    assert engine.stats["cooldown:eb"] == 1


def test_cooldown_is_per_key() -> None:
    rs = ruleset(rule("eb", "ebike_detected", EVENT, cooldown="10m"))
    recs = run(rs, [ev(EbikeDetected, 0), ev(EbikeDetected, 10, "d2")])
    assert [r["alert_id"] for r in recs if r["change"] == "firing"] == ["eb/d1#1", "eb/d2#1"]


# -- active hours ---------------------------------------------------------------------------------


def test_active_hours_suppress_outside_hours() -> None:
    rs = ruleset(rule("eb", "ebike_detected", EVENT, active_hours=[8, 20]))
    times = [8 * HOUR - 1, 8 * HOUR, 20 * HOUR - 1, 20 * HOUR]
    engine, recs = run_engine(rs, [ev(EbikeDetected, t) for t in times])
    assert [r["sim_seconds"] for r in recs if r["change"] == "firing"] == [8 * HOUR, 20 * HOUR - 1]
    assert engine.stats["off_hours:eb"] == 2


def test_active_hours_wrap_around_midnight() -> None:
    rs = ruleset(rule("eb", "ebike_detected", EVENT, active_hours=[22, 6]))
    times = [3 * HOUR, 6 * HOUR - 1, 6 * HOUR, 12 * HOUR, 22 * HOUR - 1, 22 * HOUR, 26 * HOUR]
    engine, recs = run_engine(rs, [ev(EbikeDetected, t) for t in times])
    fired = [r["sim_seconds"] for r in recs if r["change"] == "firing"]
    assert fired == [3 * HOUR, 6 * HOUR - 1, 22 * HOUR, 26 * HOUR]
    assert engine.stats["off_hours:eb"] == 3


def test_active_hours_use_the_events_local_clock() -> None:
    rs = ruleset(rule("eb", "ebike_detected", EVENT, active_hours=[0, 1]))
    recs = run(rs, [ev(EbikeDetected, 1800)])  # 00:30 in Shanghai, 16:30 UTC the day before
    assert changes(recs) == [("eb", "firing", 1800.0), ("eb", "resolved", 1800.0)]


# -- escalation -----------------------------------------------------------------------------------

ESCALATE = [{"after": "10m", "severity": "critical"}]


def test_escalation_changes_severity_at_fired_plus_after() -> None:
    rs = ruleset(rule("eb", "ebike_detected", EVENT, keep_firing_for="1h", escalate=ESCALATE))
    recs = run(rs, [ev(EbikeDetected, 0)], end=10_000)
    assert [(r["change"], r["severity"], r["sim_seconds"]) for r in recs] == [
        ("firing", "warning", 0.0),
        ("escalated", "critical", 600.0),
        ("resolved", "critical", 3600.0),
    ]
    assert recs[1]["state"] == "firing"


def test_escalation_counts_from_firing_not_pending() -> None:
    levels = [*ESCALATE, {"after": "20m", "severity": "info"}]
    rs = ruleset(
        rule("eb", "ebike_detected", EVENT, keep_firing_for="1h", escalate=levels, **{"for": 60})
    )
    recs = run(rs, [ev(EbikeDetected, 0)], end=10_000)
    assert [(r["change"], r["severity"], r["sim_seconds"]) for r in recs] == [
        ("pending", "warning", 0.0),
        ("firing", "warning", 60.0),
        ("escalated", "critical", 660.0),
        ("escalated", "info", 1260.0),
        ("resolved", "info", 3600.0),  # keep_firing_for counts from the trigger
    ]


def test_no_escalation_after_resolution() -> None:
    rs = ruleset(rule("eb", "ebike_detected", EVENT, keep_firing_for="5m", escalate=ESCALATE))
    recs = run(rs, [ev(EbikeDetected, 0)], end=10_000)
    assert changes(recs) == [("eb", "firing", 0.0), ("eb", "resolved", 300.0)]


def test_escalation_of_an_old_incarnation_does_not_touch_the_new_one() -> None:
    rs = ruleset(rule("eb", "ebike_detected", EVENT, keep_firing_for="5m", escalate=ESCALATE))
    recs = run(rs, [ev(EbikeDetected, 0), ev(EbikeDetected, 400)], end=10_000)
    assert [(r["alert_id"], r["change"], r["sim_seconds"]) for r in recs] == [
        ("eb/d1#1", "firing", 0.0),
        ("eb/d1#1", "resolved", 300.0),
        ("eb/d1#2", "firing", 400.0),
        ("eb/d1#2", "resolved", 700.0),
    ]


# -- inhibition -----------------------------------------------------------------------------------


def inhibition_rules(source_for: float = 0) -> RuleSet:
    source = rule("fault", "fault", EVENT, keep_firing_for=1000, **{"for": source_for})
    source["key"] = ["building"]
    target = rule(
        "eb",
        "ebike_detected",
        EVENT,
        inhibited_by=[{"rule": "fault", "equal": ["building"]}],
    )
    target["key"] = ["building", "device_id"]
    return ruleset(source, target)


def test_inhibition_suppresses_alerts_with_equal_labels_only() -> None:
    events = [
        ev(DeviceFault, 0, "cam"),
        ev(EbikeDetected, 100, "d1"),
        ev(EbikeDetected, 110, "d2", building="b2"),
        ev(EbikeDetected, 1100, "d1"),
    ]
    engine, recs = run_engine(inhibition_rules(), events, end=5000)
    assert [(r["alert_id"], r["change"], r["sim_seconds"]) for r in recs] == [
        ("fault/b1#1", "firing", 0.0),
        ("eb/b2/d2#1", "firing", 110.0),
        ("eb/b2/d2#1", "resolved", 110.0),
        ("fault/b1#1", "resolved", 1000.0),
        ("eb/b1/d1#1", "firing", 1100.0),
        ("eb/b1/d1#1", "resolved", 1100.0),
    ]
    assert engine.stats["inhibited:eb"] == 1


def test_a_pending_source_does_not_inhibit() -> None:
    events = [ev(DeviceFault, 0, "cam"), ev(EbikeDetected, 100, "d1")]
    engine, recs = run_engine(inhibition_rules(source_for=600), events, end=5000)
    assert ("eb", "firing", 100.0) in changes(recs)
    assert engine.stats["inhibited:eb"] == 0


# -- keep_firing_for on conditions that come back during it ---------------------------------------
# (the absence / sequence-missing timers re-trigger an alert that is in its keep_firing_for)


def test_absence_silent_again_during_keep_firing_for_stays_alerted() -> None:
    rs = ruleset(rule("quiet", "heartbeat", {"kind": "absence", "after": 100}, keep_firing_for=300))
    engine, recs = run_engine(rs, [ev(Heartbeat, 0), ev(Heartbeat, 150)], end=2000)
    # silent since 150, so from 250 on the device is missing again: still the same alert
    assert changes(recs) == [("quiet", "firing", 100.0)]
    assert [(a.alert_id, a.state, a.hits) for a in engine.open_alerts()] == [
        ("quiet/d1#1", "firing", 2)
    ]


def test_sequence_missing_again_during_keep_firing_for_stays_alerted() -> None:
    cond = {
        "kind": "sequence",
        "then": [{"type": "gateway_status", "where": 'status == "online"'}],
        "within": 100,
    }
    watch = [{"type": "gateway_status", "where": 'status == "offline"'}]
    rs = ruleset(rule("gw", watch, cond, keep_firing_for=300))
    events = [
        ev(GatewayStatus, 0),
        ev(GatewayStatus, 150, status="online"),
        ev(GatewayStatus, 160),  # offline again and never back online: missing from 260 on
    ]
    engine, recs = run_engine(rs, events, end=2000)
    assert changes(recs) == [("gw", "firing", 100.0)]
    assert [(a.alert_id, a.state, a.hits) for a in engine.open_alerts()] == [
        ("gw/d1#1", "firing", 2)
    ]


def test_absence_back_from_keep_firing_for_resolves_after_the_next_recovery() -> None:
    rs = ruleset(rule("quiet", "heartbeat", {"kind": "absence", "after": 100}, keep_firing_for=300))
    beats = [ev(Heartbeat, 0), ev(Heartbeat, 150)] + [
        ev(Heartbeat, t) for t in range(400, 1001, 50)
    ]
    engine, recs = run_engine(rs, beats, end=1000)
    # missing again at 250 (back in the alert), then speaking every 50 s from 400 on: the
    # keep_firing_for counts from 400 again, not from 150 and not from the latest heartbeat
    assert changes(recs) == [("quiet", "firing", 100.0), ("quiet", "resolved", 700.0)]
    assert (recs[-1]["alert_id"], recs[-1]["hits"]) == ("quiet/d1#1", 2)
    assert engine.open_alerts() == []


# -- keep_firing_for on a recovered device ---------------------------------------------------------


def test_absence_with_keep_firing_for_resolves_for_a_recovered_device() -> None:
    rs = ruleset(rule("quiet", "heartbeat", {"kind": "absence", "after": 600}, keep_firing_for=300))
    beats = [ev(Heartbeat, 0)] + [ev(Heartbeat, t) for t in range(1000, 3001, 60)]
    engine, recs = run_engine(rs, beats, end=3000)
    # back at 1000 and speaking every minute since: resolved keep_firing_for after the FIRST
    # heartbeat back (later heartbeats do not push the resolution out)
    assert changes(recs) == [("quiet", "firing", 600.0), ("quiet", "resolved", 1300.0)]
    assert engine.open_alerts() == []


# -- suppressed sustained states come back --------------------------------------------------------


def test_a_silence_that_began_off_hours_alerts_when_the_hours_begin() -> None:
    rules = ruleset(
        {
            "id": "quiet-day",
            "watch": [{"type": "heartbeat"}],
            "key": ["device_id"],
            "condition": {"kind": "absence", "after": "30m"},
            "active_hours": [8, 20],
        }
    )
    engine = Engine(rules, allowed_lateness=0)
    recs = engine.consume(ev(Heartbeat, 2 * 3600.0))  # 02:00, then silence
    recs += engine.finish(10 * 3600.0)
    assert changes(recs) == [("quiet-day", "firing", 8 * 3600.0)]
    assert engine.stats["off_hours:quiet-day"] == 1


def test_a_state_still_true_after_the_cooldown_alerts_when_it_ends() -> None:
    rules = ruleset(
        {
            "id": "clutter",
            "watch": [{"type": "clutter_detected", "device_kind": "clutter_sensor"}],
            "key": ["device_id"],
            "condition": {
                "kind": "duration",
                "stop": [{"type": "clutter_cleared"}],
                "at_least": 60,
            },
            "cooldown": "1h",
        }
    )
    engine = Engine(rules, allowed_lateness=0)
    kw = {"device_kind": "clutter_sensor", "floor": 3}
    recs = engine.consume(ev(ClutterDetected, 0.0, area_share=0.5, dwell_seconds=120.0, **kw))
    recs += engine.consume(ev(ClutterCleared, 100.0, present_seconds=220.0, **kw))
    recs += engine.consume(ev(ClutterDetected, 200.0, area_share=0.5, dwell_seconds=120.0, **kw))
    recs += engine.finish(2 * 3600.0)
    assert changes(recs) == [
        ("clutter", "firing", 60.0),
        ("clutter", "resolved", 100.0),
        ("clutter", "firing", 3700.0),  # still there when the hour of cooldown is over
    ]
