"""EbikeBlocker behaviour, plus what every device shares (heartbeats, ids, causes, outages)."""

from __future__ import annotations

from collections.abc import Callable
from itertools import pairwise

import numpy as np
import pytest
import simpy
from devicekit import NO_OUTAGES, START, build

from devices.base import Cause, Clock, HealthParams, Outage
from devices.blocker import BlockerParams, EbikeBlocker
from devices.events import DeviceEvent, event_json, parse_event

DEVICE_ID = "e1-b1-lift1"


def make_blocker(
    params: BlockerParams | None = None,
    *,
    seed: int = 1,
    health_seed: int = 1001,
    health: HealthParams = NO_OUTAGES,
    install: bool = True,
    device_id: str = DEVICE_ID,
    outages: list[Outage] | None = None,
) -> tuple[EbikeBlocker, list[DeviceEvent]]:
    return build(
        EbikeBlocker,
        device_id,
        building="b1",
        seed=seed,
        health_seed=health_seed,
        health=health,
        install=install,
        outages=outages,
        params=params or BlockerParams(),
    )


def step_until(env: simpy.Environment, done: Callable[[], bool], limit: float = 60 * 86400) -> None:
    """Process events one by one until ``done()``; fail rather than loop forever."""
    while not done():
        assert env.now < limit, "condition never met"
        env.step()


def detections(events: list[DeviceEvent]) -> list[DeviceEvent]:
    return [e for e in events if e.type != "heartbeat"]


def heartbeat_times(events: list[DeviceEvent]) -> list[float]:
    return [e.sim_seconds for e in events if e.type == "heartbeat"]


def run_encounters(
    dev: EbikeBlocker, obj: str, n: int, stay: float = 5.0, gap: float = 60.0
) -> list[str]:
    """``n`` encounters, each after the previous hold has ended."""
    results = []
    for _ in range(n):
        results.append(dev.encounter(obj, stay, None))
        dev.env.run(until=dev.env.now + gap)
    return results


# -- shared device behaviour ----------------------------------------------------------------------


def test_install_sends_a_heartbeat_at_once_then_every_interval_after_a_random_phase() -> None:
    health = HealthParams(heartbeat_seconds=60.0, mean_days_between_outages=0)
    dev, events = make_blocker(health=health)
    dev.env.run(until=1000)
    times = heartbeat_times(events)
    assert times[0] == 0.0
    phase = times[1]
    assert 0.0 <= phase < 60.0
    assert np.diff(times[1:]) == pytest.approx(60.0)
    assert 1000 - 60 <= times[-1] < 1000


def test_heartbeat_phase_depends_on_the_health_stream() -> None:
    health = HealthParams(heartbeat_seconds=600.0, mean_days_between_outages=0)
    phases = set()
    for health_seed in range(5):
        dev, events = make_blocker(health=health, health_seed=health_seed)
        dev.env.run(until=700)
        phases.add(heartbeat_times(events)[1])
    assert len(phases) == 5


def test_a_device_installed_later_heartbeats_from_its_install_time() -> None:
    dev, events = make_blocker(install=False)
    dev.env.run(until=5000)
    assert events == []
    dev.install()
    dev.env.run(until=5000 + 2 * 900)
    times = heartbeat_times(events)
    assert times[0] == 5000.0
    assert len(times) >= 2
    assert all(t >= 5000.0 for t in times)


def test_seq_counts_from_zero_per_device_and_event_id_is_device_colon_seq() -> None:
    a, a_events = make_blocker(BlockerParams(recall=1.0), device_id="e1-b1-lift1")
    b, b_events = make_blocker(BlockerParams(recall=1.0), device_id="e1-b1-lift2")
    for dev in (a, b):
        dev.env.run(until=100)
        assert dev.encounter("ebike", 30.0, None) == "blocked"
        dev.env.run(until=5000)
    b.env.run(until=9000)  # b gets more events than a
    for dev, evs in ((a, a_events), (b, b_events)):
        assert [e.seq for e in evs] == list(range(len(evs)))
        assert [e.event_id for e in evs] == [f"{dev.device_id}:{i}" for i in range(len(evs))]
        assert all(e.device_id == dev.device_id for e in evs)
        assert all(e.device_kind == "ebike_blocker" for e in evs)
    assert len(b_events) > len(a_events)


def test_event_time_is_the_scenario_clock_and_events_round_trip_as_json() -> None:
    dev, events = make_blocker(BlockerParams(recall=1.0))
    dev.env.run(until=3600)
    dev.encounter("ebike", 30.0, None)
    dev.env.run(until=7200)
    clock = Clock(START)
    for e in events:
        assert e.time == clock.at(e.sim_seconds)
        assert parse_event(event_json(e)) == e
    detected = next(e for e in events if e.type == "ebike_detected")
    assert detected.time.hour == 1  # 3600 s after midnight, Shanghai time


def test_cause_receives_exactly_the_event_ids_its_stimulus_caused() -> None:
    dev, events = make_blocker(BlockerParams(recall=1.0))
    dev.env.run(until=50)
    cause = Cause("inc-1")
    assert dev.encounter("ebike", 200.0, cause) == "blocked"
    dev.env.run(until=2000)
    caused = [e.event_id for e in detections(events)]
    assert cause.event_ids == caused
    assert len(caused) == 4  # detected, held, too long, released
    assert not any(e.event_id in cause.event_ids for e in events if e.type == "heartbeat")


def test_silent_outage_stops_every_event_and_reports_the_outage() -> None:
    health = HealthParams(heartbeat_seconds=600.0, mean_days_between_outages=1, silent_share=1.0)
    outages: list[Outage] = []
    dev, events = make_blocker(health=health, outages=outages)
    dev.env.run(until=20 * 86400)
    assert len(outages) >= 5
    times = heartbeat_times(events)
    for o in outages:
        assert o.device_id == DEVICE_ID
        assert (o.mode, o.code, o.event_ids) == ("silent", "offline", ())
        assert o.end_s > o.start_s
        start, end = round(o.start_s, 3), round(o.end_s, 3)  # events carry ms precision
        assert not [t for t in times if start < t < end]
        assert end in times  # recovery announces itself at once
    # The long outages swallow heartbeats that would otherwise have come.
    longest = max(outages, key=lambda o: o.end_s - o.start_s)
    assert longest.end_s - longest.start_s > 2 * 600.0
    # Nothing was numbered while silent: seq stays gap-free.
    assert [e.seq for e in events] == list(range(len(events)))
    assert all(e.type == "heartbeat" for e in events)


def test_silent_device_is_unavailable_and_its_blocker_is_off_until_recovery() -> None:
    health = HealthParams(mean_days_between_outages=1, silent_share=1.0)
    outages: list[Outage] = []
    dev, events = make_blocker(BlockerParams(recall=1.0), health=health, outages=outages)
    step_until(dev.env, lambda: dev.open_outage is not None)
    assert dev.silent and not dev.available
    n = len(events)
    assert dev.encounter("ebike", 10.0, Cause("x")) == "off"
    step_until(dev.env, lambda: bool(outages))
    assert dev.available
    assert events[n:] and all(e.sim_seconds >= outages[0].end_s for e in events[n:])
    assert dev.encounter("ebike", 10.0, None) == "blocked"


def test_fault_outage_emits_a_fault_code_keeps_heartbeating_and_stops_detection() -> None:
    health = HealthParams(heartbeat_seconds=600.0, mean_days_between_outages=1, silent_share=0.0)
    outages: list[Outage] = []
    dev, events = make_blocker(health=health, outages=outages)
    dev.env.run(until=20 * 86400)
    assert len(outages) >= 5
    faults = {e.event_id: e for e in events if e.type == "fault"}
    assert len(faults) == len(outages)
    times = heartbeat_times(events)
    long_ones = 0
    for o in outages:
        assert o.mode == "fault"
        assert o.code in health.fault_codes
        (eid,) = o.event_ids
        fault = faults[eid]
        assert fault.code == o.code
        assert fault.sim_seconds == pytest.approx(o.start_s, abs=1e-3)
        if o.end_s - o.start_s > 2 * 600.0:
            long_ones += 1
            assert [t for t in times if round(o.start_s, 3) < t < round(o.end_s, 3)]
    assert long_ones >= 1


def test_faulted_blocker_is_off_and_works_again_after_recovery() -> None:
    health = HealthParams(mean_days_between_outages=1, silent_share=0.0)
    outages: list[Outage] = []
    dev, events = make_blocker(BlockerParams(recall=1.0), health=health, outages=outages)
    step_until(dev.env, lambda: dev.open_outage is not None)
    assert dev.fault_code is not None
    assert dev.available is False
    assert events[-1].type == "fault"
    assert events[-1].code == dev.fault_code
    assert dev.encounter("ebike", 10.0, None) == "off"
    step_until(dev.env, lambda: bool(outages))
    assert dev.available is True
    assert dev.encounter("ebike", 10.0, None) == "blocked"


def test_outage_durations_average_the_configured_mean() -> None:
    health = HealthParams(
        heartbeat_seconds=86400.0, mean_days_between_outages=0.5, mean_outage_hours=6.0
    )
    outages: list[Outage] = []
    dev, _ = make_blocker(health=health, outages=outages, health_seed=7)
    dev.env.run(until=400 * 86400)
    assert len(outages) > 300
    mean_hours = np.mean([o.end_s - o.start_s for o in outages]) / 3600.0
    assert 4.5 < mean_hours < 7.5
    gaps = [b.start_s - a.end_s for a, b in pairwise(outages)]
    assert 0.35 < np.mean(gaps) / 86400.0 < 0.65


# -- the blocker --------------------------------------------------------------------------------


def test_ebike_is_blocked_with_detected_held_released_in_order() -> None:
    dev, events = make_blocker(BlockerParams(recall=1.0))
    dev.env.run(until=1000)
    assert dev.encounter("ebike", 30.0, None) == "blocked"
    dev.env.run(until=2000)
    evs = detections(events)
    assert [e.type for e in evs] == ["ebike_detected", "door_held", "door_released"]
    detected, held, released = evs
    assert 1001.0 <= detected.sim_seconds <= 1002.0
    assert held.sim_seconds == detected.sim_seconds
    assert released.held_seconds == pytest.approx(30.0 + 7.0, abs=1e-3)
    assert released.sim_seconds == pytest.approx(held.sim_seconds + 37.0, abs=1e-3)
    assert detected.object_class in ("ebike", "ebike_covered")
    assert 0.5 <= detected.confidence <= 1.0


def test_release_delay_is_configurable() -> None:
    dev, events = make_blocker(BlockerParams(recall=1.0, release_delay_seconds=3.0))
    dev.encounter("ebike", 10.0, None)
    dev.env.run(until=100)
    released = [e for e in events if e.type == "door_released"]
    assert len(released) == 1
    assert released[0].held_seconds == pytest.approx(13.0, abs=1e-3)


def test_confirmation_takes_one_to_two_seconds() -> None:
    dev, events = make_blocker(BlockerParams(recall=1.0), seed=5)
    delays = []
    for _ in range(300):
        t0 = dev.env.now
        assert dev.encounter("ebike", 1.0, None) == "blocked"
        dev.env.run(until=t0 + 30)
        delays.append([e for e in events if e.type == "ebike_detected"][-1].sim_seconds - t0)
    assert min(delays) >= 1.0 - 1e-3
    assert max(delays) <= 2.0 + 1e-3
    assert max(delays) - min(delays) > 0.8  # spread over the window, not a constant


def test_long_stay_adds_door_open_too_long_at_the_limit() -> None:
    dev, events = make_blocker(BlockerParams(recall=1.0))
    dev.encounter("ebike", 200.0, None)
    dev.env.run(until=1000)
    evs = detections(events)
    assert [e.type for e in evs] == [
        "ebike_detected",
        "door_held",
        "door_open_too_long",
        "door_released",
    ]
    _, held, too_long, released = evs
    assert too_long.sim_seconds == pytest.approx(held.sim_seconds + 120.0, abs=1e-3)
    assert too_long.held_seconds == pytest.approx(120.0)
    assert released.held_seconds == pytest.approx(207.0, abs=1e-3)


def test_door_open_too_long_depends_on_total_hold_including_release_delay() -> None:
    # 113 s + 7 s = exactly the limit: no alarm; 114 s + 7 s is past it.
    for stay, expected in ((113.0, False), (114.0, True)):
        dev, events = make_blocker(BlockerParams(recall=1.0))
        dev.encounter("ebike", stay, None)
        dev.env.run(until=1000)
        assert any(e.type == "door_open_too_long" for e in events) is expected, stay


def test_second_encounter_while_holding_is_busy_and_changes_nothing() -> None:
    dev, events = make_blocker(BlockerParams(recall=1.0))
    assert dev.encounter("ebike", 60.0, None) == "blocked"
    dev.env.run(until=10)
    cause = Cause("second")
    assert dev.encounter("ebike", 60.0, cause) == "busy"
    dev.env.run(until=500)
    assert cause.event_ids == []
    assert [e.type for e in detections(events)] == ["ebike_detected", "door_held", "door_released"]
    # Once released the car can be blocked again.
    assert dev.encounter("ebike", 60.0, None) == "blocked"


def test_battery_in_a_bag_passes_silently() -> None:
    dev, events = make_blocker(BlockerParams(battery_recall=0.0))
    cause = Cause("bat")
    results = run_encounters(dev, "battery", 200)
    assert results == ["passed"] * 200
    assert detections(events) == []
    dev.encounter("battery", 5.0, cause)
    assert cause.event_ids == []


def test_unknown_object_passes() -> None:
    dev, events = make_blocker(BlockerParams(recall=1.0))
    assert run_encounters(dev, "suitcase", 100) == ["passed"] * 100
    assert detections(events) == []


def test_recall_statistics_match_configured_recall() -> None:
    dev, _ = make_blocker(BlockerParams(recall=0.96), seed=11)
    results = run_encounters(dev, "ebike", 2000)
    rate = results.count("blocked") / len(results)
    assert set(results) == {"blocked", "passed"}
    assert 0.94 <= rate <= 0.98


def test_low_recall_is_also_honoured() -> None:
    dev, _ = make_blocker(BlockerParams(recall=0.5), seed=12)
    results = run_encounters(dev, "ebike", 2000)
    assert 0.45 <= results.count("blocked") / 2000 <= 0.55


def test_covered_ebike_uses_covered_recall_and_is_reported_covered() -> None:
    dev, events = make_blocker(BlockerParams(recall=1.0, covered_recall=0.85), seed=13)
    results = run_encounters(dev, "ebike_covered", 2000)
    assert 0.82 <= results.count("blocked") / 2000 <= 0.88
    classes = {e.object_class for e in events if e.type == "ebike_detected"}
    assert classes == {"ebike_covered"}


def test_lookalike_rates_match_configuration() -> None:
    dev, _ = make_blocker(seed=14)  # defaults: stroller 0.03, bicycle 0.12
    strollers = run_encounters(dev, "stroller", 4000)
    bicycles = run_encounters(dev, "bicycle", 2000)
    assert 0.02 <= strollers.count("blocked") / 4000 <= 0.04
    assert 0.09 <= bicycles.count("blocked") / 2000 <= 0.15


def test_lookalikes_score_lower_confidence_than_real_ebikes() -> None:
    params = BlockerParams(recall=1.0, lookalike_rates={"stroller": 1.0})
    dev, events = make_blocker(params, seed=15)
    run_encounters(dev, "ebike", 500)
    n = len(events)
    run_encounters(dev, "stroller", 500)
    bikes = [e.confidence for e in events[:n] if e.type == "ebike_detected"]
    looks = [e.confidence for e in events[n:] if e.type == "ebike_detected"]
    assert len(bikes) == len(looks) == 500
    assert min(bikes + looks) >= params.confidence_floor
    assert np.mean(looks) < np.mean(bikes) - 0.1


def test_uninstalled_blocker_is_off() -> None:
    dev, events = make_blocker(BlockerParams(recall=1.0), install=False)
    assert dev.encounter("ebike", 10.0, Cause("c")) == "off"
    dev.env.run(until=100)
    assert events == []
