"""Work orders: opened by a firing alert, acknowledged and closed by staff check-ins, overdue
records at the SLA times, closed when a sustained hazard goes away, re-opened by a quick repeat."""

from __future__ import annotations

from typing import Any

from enginekit import changes, ev, ruleset, run_engine

from devices.events import (
    ClutterCleared,
    ClutterDetected,
    DoorOpenTooLong,
    StaffArrived,
    StaffDone,
)
from rules.model import WorkOrderSpec
from rules.workorders import WorkOrder, workorder_figures


def wo_records(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in records if r["record"] == "workorder"]


SPEC = {"team": "security", "ack_sla": "10m", "close_sla": "2h"}
DOOR = ruleset(
    {
        "id": "door",
        "watch": [{"type": "door_open_too_long"}],
        "key": ["device_id"],
        "condition": {"kind": "event"},
        "keep_firing_for": "1h",
        "workorder": SPEC,
    }
)
LASTING = ruleset(
    {
        "id": "lasting",
        "watch": [{"type": "clutter_detected"}],
        "key": ["device_id"],
        "condition": {"kind": "duration", "stop": [{"type": "clutter_cleared"}], "at_least": 300},
        "workorder": {
            "team": "cleaning",
            "ack_sla": "1h",
            "close_sla": "1d",
            "reopen_within": "1h",
        },
    }
)


def staff(cls: type, t: float, ref: str, **fields: Any) -> Any:
    return ev(cls, t, "app", ref_event_id=ref, **fields)


# -- opening, acknowledging, closing --------------------------------------------------------------


def test_a_firing_alert_opens_a_work_order() -> None:
    _, recs = run_engine(DOOR, [ev(DoorOpenTooLong, 100)])
    assert changes(recs) == [("door", "firing", 100.0), ("WO", "opened", 100.0)]
    alert, wo = recs
    assert alert["workorder_id"] == wo["workorder_id"] == "WO000001"
    assert wo["alert_id"] == alert["alert_id"] == "door/d1#1"
    assert (wo["team"], wo["estate"], wo["state"]) == ("security", "e1", "opened")
    assert (wo["ack_due_s"], wo["close_due_s"], wo["reopens"]) == (700.0, 7300.0, 0)


def test_staff_acknowledge_and_close_within_sla() -> None:
    door = ev(DoorOpenTooLong, 0)
    events = [
        door,
        staff(StaffArrived, 300, door.event_id),
        staff(StaffDone, 1000, door.event_id),
    ]
    _, recs = run_engine(DOOR, events, end=10_000)
    assert changes(recs) == [
        ("door", "firing", 0.0),
        ("WO", "opened", 0.0),
        ("door", "acknowledged", 300.0),
        ("WO", "acknowledged", 300.0),
        ("WO", "closed", 1000.0),
        ("door", "resolved", 3600.0),
    ]
    assert recs[2]["state"] == "acknowledged"
    assert recs[3]["within_sla"] is True
    assert (recs[4]["reason"], recs[4]["on_time"], recs[4]["state"]) == (
        "staff_done",
        True,
        "closed",
    )


def test_missed_slas_write_overdue_records() -> None:
    door = ev(DoorOpenTooLong, 0)
    events = [
        door,
        staff(StaffArrived, 700, door.event_id),
        staff(StaffDone, 8000, door.event_id, outcome="not_found"),
    ]
    _, recs = run_engine(DOOR, events, end=10_000)
    assert changes(recs) == [
        ("door", "firing", 0.0),
        ("WO", "opened", 0.0),
        ("WO", "ack_overdue", 600.0),
        ("door", "acknowledged", 700.0),
        ("WO", "acknowledged", 700.0),
        ("door", "resolved", 3600.0),
        ("WO", "close_overdue", 7200.0),
        ("WO", "closed", 8000.0),
    ]
    assert recs[4]["within_sla"] is False
    assert (recs[7]["reason"], recs[7]["on_time"]) == ("staff_not_found", False)


def test_acknowledged_exactly_at_the_due_time_is_within_sla() -> None:
    door = ev(DoorOpenTooLong, 0)
    _, recs = run_engine(DOOR, [door, staff(StaffArrived, 600, door.event_id)], end=1000)
    assert [r["change"] for r in wo_records(recs)] == ["opened", "acknowledged"]
    assert wo_records(recs)[1]["within_sla"] is True


def test_staff_referring_to_an_unknown_event_changes_nothing() -> None:
    events = [ev(DoorOpenTooLong, 0), staff(StaffArrived, 100, "nowhere:1")]
    _, recs = run_engine(DOOR, events, end=100)
    assert changes(recs) == [("door", "firing", 0.0), ("WO", "opened", 0.0)]


def test_a_later_trigger_event_also_refers_to_the_alert() -> None:
    later = ev(DoorOpenTooLong, 200, seq=7)
    events = [ev(DoorOpenTooLong, 0), later, staff(StaffArrived, 300, later.event_id)]
    _, recs = run_engine(DOOR, events, end=300)
    assert changes(recs)[2:] == [("door", "acknowledged", 300.0), ("WO", "acknowledged", 300.0)]


def test_a_momentary_alert_resolving_leaves_its_work_order_open() -> None:
    engine, recs = run_engine(DOOR, [ev(DoorOpenTooLong, 0)], end=3600)
    assert changes(recs)[-1] == ("door", "resolved", 3600.0)
    assert [w.state for w in engine.s.workorders.orders.values()] == ["opened"]


# -- sustained alerts and re-opening --------------------------------------------------------------


def test_a_sustained_alert_resolving_closes_its_work_order() -> None:
    events = [ev(ClutterDetected, 0), ev(ClutterCleared, 1000)]
    _, recs = run_engine(LASTING, events, end=100_000)
    assert changes(recs) == [
        ("lasting", "firing", 300.0),
        ("WO", "opened", 300.0),
        ("lasting", "resolved", 1000.0),
        ("WO", "closed", 1000.0),
    ]  # and no overdue records later: the SLAs stop with the closure
    closed = recs[-1]
    assert (closed["reason"], closed["on_time"]) == ("hazard_gone", True)


def test_firing_again_soon_after_closure_reopens_the_same_work_order() -> None:
    events = [
        ev(ClutterDetected, 0),
        ev(ClutterCleared, 1000),
        ev(ClutterDetected, 4300),  # fires at 4600, 3600 s after closure: inclusive
        ev(ClutterCleared, 5000),
    ]
    engine, recs = run_engine(LASTING, events, end=6000)
    assert changes(recs) == [
        ("lasting", "firing", 300.0),
        ("WO", "opened", 300.0),
        ("lasting", "resolved", 1000.0),
        ("WO", "closed", 1000.0),
        ("lasting", "firing", 4600.0),
        ("WO", "reopened", 4600.0),
        ("lasting", "resolved", 5000.0),
        ("WO", "closed", 5000.0),
    ]
    reopened = recs[5]
    assert reopened["workorder_id"] == recs[1]["workorder_id"] == recs[4]["workorder_id"]
    assert (reopened["alert_id"], reopened["reopens"], reopened["state"]) == (
        "lasting/d1#2",
        1,
        "reopened",
    )
    assert (reopened["ack_due_s"], reopened["close_due_s"]) == (8200.0, 91000.0)
    assert len(engine.s.workorders.orders) == 1


def test_firing_again_after_reopen_within_opens_a_new_work_order() -> None:
    events = [
        ev(ClutterDetected, 0),
        ev(ClutterCleared, 1000),
        ev(ClutterDetected, 4301),
    ]
    _, recs = run_engine(LASTING, events, end=5000)
    wos = wo_records(recs)
    assert [(w["workorder_id"], w["change"], w["reopens"]) for w in wos] == [
        ("WO000001", "opened", 0),
        ("WO000001", "closed", 0),
        ("WO000002", "opened", 0),
    ]


def test_the_old_sla_timers_do_not_fire_for_a_reopened_work_order() -> None:
    events = [ev(ClutterDetected, 0), ev(ClutterCleared, 1000), ev(ClutterDetected, 1100)]
    _, recs = run_engine(LASTING, events, end=6000)
    assert changes(recs)[-3:] == [
        ("lasting", "firing", 1400.0),
        ("WO", "reopened", 1400.0),
        ("WO", "ack_overdue", 5000.0),
    ]


# -- figures --------------------------------------------------------------------------------------


def order(
    wid: str, opened: float, acked: float | None, closed: float | None, reopens: int = 0
) -> WorkOrder:
    spec = WorkOrderSpec(team="t", ack_sla=600, close_sla=3600)
    wo = WorkOrder(wid, f"a/{wid}#1", "a", f"a/{wid}", "e1", "t", spec, opened)
    wo.acked_s, wo.closed_s, wo.reopens = acked, closed, reopens
    return wo


def test_workorder_figures() -> None:
    orders = [
        order("w1", 0, 300, 1800),  # ack 5 min, close 0.5 h: both in time
        order("w2", 0, 900, 7200, reopens=2),  # ack 15 min late, close 2 h late
        order("w3", 1000, 1600, None),  # ack exactly at the SLA, still open
        order("w4", 0, None, None),
    ]
    assert workorder_figures(orders, 10_000.4) == {
        "opened": 4,
        "acknowledged": 3,
        "ack_within_sla": 0.5,
        "closed": 2,
        "closed_on_time": 0.25,
        "reopened": 2,
        "still_open": 2,
        "median_ack_minutes": 10.0,
        "median_close_hours": 1.25,
        "end_s": 10_000.4,
    }


def test_workorder_figures_of_nothing() -> None:
    figures = workorder_figures([], 0)
    assert figures["opened"] == 0
    assert figures["ack_within_sla"] is None
    assert figures["median_ack_minutes"] is None
    assert figures["median_close_hours"] is None


def test_workorder_figures_from_an_engine_run() -> None:
    door = ev(DoorOpenTooLong, 0)
    events = [door, ev(DoorOpenTooLong, 50, "d2"), staff(StaffArrived, 120, door.event_id)]
    engine, _ = run_engine(DOOR, events, end=9000)
    figures = workorder_figures(list(engine.s.workorders.orders.values()), 9000)
    assert (figures["opened"], figures["acknowledged"], figures["still_open"]) == (2, 1, 2)
    assert figures["median_ack_minutes"] == 2.0
