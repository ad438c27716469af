"""ClutterSensor behaviour: dwell, area, schedule, cooldown and several objects in one corridor."""

from __future__ import annotations

import numpy as np
import pytest
from devicekit import HOUR, build

from devices.base import Cause
from devices.clutter import ClutterParams, ClutterSensor
from devices.events import DeviceEvent

# Deterministic detection unless a test is about noise or recall.
EXACT = ClutterParams(recall=1.0, area_noise_sd=0.0)


def make_sensor(
    params: ClutterParams = EXACT,
    *,
    seed: int = 1,
    hour: float = 10.0,
    install: bool = True,
) -> tuple[ClutterSensor, list[DeviceEvent]]:
    """A sensor whose simulated clock starts at ``hour`` o'clock on the scenario's first day."""
    return build(
        ClutterSensor,
        "e1-b2-u1-f7-clutter",
        building="b2",
        floor=7,
        seed=seed,
        hour=hour,
        install=install,
        params=params,
    )


def clutter(events: list[DeviceEvent]) -> list[DeviceEvent]:
    return [e for e in events if e.type in ("clutter_detected", "clutter_cleared")]


def wait(sensor: ClutterSensor, seconds: float) -> None:
    sensor.env.run(until=sensor.env.now + seconds)


def test_short_delivery_removed_before_min_dwell_never_alarms() -> None:
    sensor, events = make_sensor()
    t0 = sensor.env.now
    sensor.place("parcel", 0.8, Cause("delivery"))
    wait(sensor, 119.0)
    sensor.remove("parcel")
    wait(sensor, 5 * HOUR)
    assert clutter(events) == []
    assert sensor.env.now > t0 + 5 * HOUR
    assert not sensor.alarm_active


def test_large_object_past_dwell_is_detected_then_cleared_on_removal() -> None:
    sensor, events = make_sensor()
    t0 = sensor.env.now
    cause = Cause("sofa")
    sensor.place("sofa", 0.6, cause)
    wait(sensor, 500.0)
    assert sensor.alarm_active
    sensor.remove("sofa")
    wait(sensor, 100.0)
    assert not sensor.alarm_active
    evs = clutter(events)
    assert [e.type for e in evs] == ["clutter_detected", "clutter_cleared"]
    detected, cleared = evs
    assert detected.sim_seconds == pytest.approx(t0 + 120.0)
    assert detected.dwell_seconds == pytest.approx(120.0)
    assert detected.area_share == pytest.approx(0.6)
    assert cleared.sim_seconds == pytest.approx(t0 + 500.0)
    assert cleared.present_seconds == pytest.approx(500.0)
    assert cause.event_ids == [detected.event_id, cleared.event_id]
    assert detected.floor == 7


def test_measured_area_share_is_noisy_around_the_true_area() -> None:
    sensor, events = make_sensor(ClutterParams(recall=1.0, area_noise_sd=0.05), seed=3)
    for i in range(200):
        sensor.place(f"box{i}", 0.7, None)
        wait(sensor, 200.0)
        sensor.remove(f"box{i}")
        wait(sensor, 700.0)  # past the cooldown
    shares = [e.area_share for e in events if e.type == "clutter_detected"]
    assert len(shares) == 200
    assert abs(np.mean(shares) - 0.7) < 0.02
    assert 0.03 < np.std(shares) < 0.07


def test_small_object_below_area_threshold_does_not_alarm() -> None:
    sensor, events = make_sensor(ClutterParams(recall=1.0), seed=4)  # threshold 0.35, noise 0.05
    for i in range(50):
        sensor.place(f"shoes{i}", 0.1, None)
        wait(sensor, 2 * HOUR)
        sensor.remove(f"shoes{i}")
    assert clutter(events) == []


def test_area_threshold_is_the_boundary() -> None:
    params = ClutterParams(recall=1.0, area_noise_sd=0.0, area_threshold=0.4)
    below, below_events = make_sensor(params)
    below.place("a", 0.399, None)
    at, at_events = make_sensor(params)
    at.place("a", 0.4, None)
    wait(below, HOUR)
    wait(at, HOUR)
    assert clutter(below_events) == []
    assert [e.type for e in clutter(at_events)] == ["clutter_detected"]


def test_recall_statistics_match_configured_recall() -> None:
    sensor, events = make_sensor(ClutterParams(recall=0.8, area_noise_sd=0.0), seed=5)
    for i in range(1000):
        sensor.place(f"bag{i}", 0.9, None)
        wait(sensor, 200.0)
        sensor.remove(f"bag{i}")
        wait(sensor, 700.0)
    n = sum(e.type == "clutter_detected" for e in events)
    assert 0.76 <= n / 1000 <= 0.84


def test_outside_active_hours_detection_waits_for_the_schedule() -> None:
    params = ClutterParams(recall=1.0, area_noise_sd=0.0, active_from_hour=8.0, active_to_hour=20.0)
    sensor, events = make_sensor(params, hour=2.0)
    sensor.place("bike", 0.6, None)
    sensor.env.run(until=8 * HOUR)
    assert clutter(events) == []
    sensor.env.run(until=9 * HOUR)
    (detected,) = clutter(events)
    assert 8 * HOUR <= detected.sim_seconds < 8 * HOUR + params.recheck_seconds
    assert detected.time.hour == 8
    assert detected.dwell_seconds == pytest.approx(detected.sim_seconds - 2 * HOUR)


def test_overnight_schedule_wraps_past_midnight() -> None:
    params = ClutterParams(recall=1.0, area_noise_sd=0.0, active_from_hour=22.0, active_to_hour=6.0)
    night, night_events = make_sensor(params, hour=3.0)
    night.place("box", 0.6, None)
    wait(night, HOUR)
    assert [e.sim_seconds for e in clutter(night_events)] == [pytest.approx(3 * HOUR + 120.0)]

    day, day_events = make_sensor(params, hour=12.0)
    day.place("box", 0.6, None)
    day.env.run(until=22 * HOUR)
    assert clutter(day_events) == []
    day.env.run(until=23 * HOUR)
    (detected,) = clutter(day_events)
    assert 22 * HOUR <= detected.sim_seconds < 22 * HOUR + params.recheck_seconds


def test_new_object_within_cooldown_is_detected_only_after_the_cooldown() -> None:
    sensor, events = make_sensor()  # cooldown 600 s, recheck 600 s
    t0 = sensor.env.now
    sensor.place("a", 0.6, None)
    wait(sensor, 200.0)
    sensor.remove("a")  # clears at t0 + 200: cooldown until t0 + 800
    wait(sensor, 10.0)
    sensor.place("b", 0.6, None)  # dwell passes at t0 + 330, inside the cooldown
    sensor.env.run(until=t0 + 800.0)
    assert [e.type for e in clutter(events)] == ["clutter_detected", "clutter_cleared"]
    sensor.env.run(until=t0 + 2000.0)
    evs = clutter(events)
    assert [e.type for e in evs] == ["clutter_detected", "clutter_cleared", "clutter_detected"]
    second = evs[2]
    assert t0 + 800.0 <= second.sim_seconds <= t0 + 800.0 + 600.0
    assert second.dwell_seconds == pytest.approx(second.sim_seconds - (t0 + 210.0))


def test_object_placed_after_the_cooldown_is_detected_at_its_dwell() -> None:
    sensor, events = make_sensor(ClutterParams(recall=1.0, area_noise_sd=0.0, cooldown_seconds=300))
    t0 = sensor.env.now
    sensor.place("a", 0.6, None)
    wait(sensor, 200.0)
    sensor.remove("a")  # cooldown until t0 + 500
    sensor.env.run(until=t0 + 500.0)
    sensor.place("b", 0.6, None)
    wait(sensor, HOUR)
    evs = clutter(events)
    assert [e.type for e in evs] == ["clutter_detected", "clutter_cleared", "clutter_detected"]
    assert evs[2].sim_seconds == pytest.approx(t0 + 620.0)
    assert evs[2].dwell_seconds == pytest.approx(120.0)


def test_two_objects_give_one_alarm_that_clears_when_both_are_gone() -> None:
    sensor, events = make_sensor()
    t0 = sensor.env.now
    first, second = Cause("first"), Cause("second")
    sensor.place("a", 0.6, first)
    wait(sensor, 30.0)
    sensor.place("b", 0.5, second)
    wait(sensor, 300.0)  # both past their dwell
    sensor.remove("a")
    wait(sensor, 100.0)
    assert sensor.alarm_active
    assert [e.type for e in clutter(events)] == ["clutter_detected"]
    sensor.remove("b")
    wait(sensor, HOUR)
    evs = clutter(events)
    assert [e.type for e in evs] == ["clutter_detected", "clutter_cleared"]
    detected, cleared = evs
    assert detected.sim_seconds == pytest.approx(t0 + 120.0)
    assert cleared.sim_seconds == pytest.approx(t0 + 430.0)
    assert cleared.present_seconds == pytest.approx(430.0)  # from the first placement
    assert not sensor.alarm_active


def test_a_small_object_does_not_keep_an_alarm_open_after_the_big_one_leaves() -> None:
    sensor, events = make_sensor()
    sensor.place("sofa", 0.6, None)
    wait(sensor, 200.0)
    sensor.place("shoes", 0.05, None)
    wait(sensor, 300.0)  # the shoes are past their dwell while the sofa's alarm is open
    sensor.remove("sofa")
    wait(sensor, 10.0)
    assert [e.type for e in clutter(events)] == ["clutter_detected", "clutter_cleared"]
    assert not sensor.alarm_active


def test_removing_an_unknown_or_unalarmed_object_emits_nothing() -> None:
    sensor, events = make_sensor()
    sensor.remove("never-placed")
    sensor.place("a", 0.6, None)
    wait(sensor, 60.0)
    sensor.remove("a")
    sensor.remove("a")
    wait(sensor, HOUR)
    assert clutter(events) == []


def test_uninstalled_sensor_never_alarms() -> None:
    sensor, events = make_sensor(install=False)
    sensor.place("sofa", 0.9, None)
    wait(sensor, 24 * HOUR)
    assert events == []
    assert not sensor.alarm_active


def test_object_placed_again_under_the_same_id_waits_a_full_dwell() -> None:
    sensor, events = make_sensor()
    t0 = sensor.env.now
    sensor.place("bike", 0.6, None)
    wait(sensor, 60.0)
    sensor.remove("bike")
    wait(sensor, 40.0)
    sensor.place("bike", 0.6, None)  # back at t0 + 100
    wait(sensor, HOUR)
    (detected,) = clutter(events)
    assert detected.dwell_seconds >= 120.0
    assert detected.sim_seconds >= t0 + 220.0
