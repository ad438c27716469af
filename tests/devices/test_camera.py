"""FallingObjectCamera behaviour: which throws alarm, how well, and what nuisances do."""

from __future__ import annotations

import numpy as np
import pytest
from devicekit import build

from devices.base import Cause
from devices.camera import CameraParams, FallingObjectCamera, is_daylight
from devices.events import DeviceEvent

DEVICE_ID = "e1-b3-cam"


def make_camera(
    params: CameraParams | None = None,
    *,
    seed: int = 1,
    hour: float = 10.0,
    floors: int = 18,
    columns: int = 6,
    install: bool = True,
) -> tuple[FallingObjectCamera, list[DeviceEvent]]:
    """A camera whose simulated clock starts at ``hour`` o'clock on the scenario's first day."""
    return build(
        FallingObjectCamera,
        DEVICE_ID,
        building="b3",
        seed=seed,
        hour=hour,
        install=install,
        params=params or CameraParams(),
        floors=floors,
        columns=columns,
    )


def alarms(events: list[DeviceEvent]) -> list[DeviceEvent]:
    return [e for e in events if e.type == "falling_object"]


def throw_rate(cam: FallingObjectCamera, n: int, floor: int = 8, small: bool = False) -> float:
    return sum(cam.observe_throw(floor, 3, small, None) for _ in range(n)) / n


def test_clock_hour_follows_initial_time() -> None:
    cam, _ = make_camera(hour=2.0)
    assert cam.clock.hour_of_day(cam.env.now) == pytest.approx(2.0)


def test_throws_from_floor_two_or_three_never_alarm() -> None:
    cam, events = make_camera(CameraParams(recall_day=1.0))
    for floor in (2, 3):
        assert not any(cam.observe_throw(floor, 2, False, None) for _ in range(500))
    assert alarms(events) == []
    # Floor 4 spans three floors: the same camera then alarms every time.
    assert all(cam.observe_throw(4, 2, False, None) for _ in range(50))
    assert len(alarms(events)) == 50
    assert {e.floors_spanned for e in alarms(events)} == {3}


def test_alarm_reports_spanned_floors_and_cause_gets_the_event_id() -> None:
    cam, events = make_camera(CameraParams(recall_day=1.0, floor_error_sd=0.0, column_error=0.0))
    cause = Cause("throw-1")
    assert cam.observe_throw(9, 4, False, cause) is True
    (alarm,) = alarms(events)
    assert cause.event_ids == [alarm.event_id]
    assert alarm.floors_spanned == 8
    assert (alarm.estimated_floor, alarm.estimated_column) == (9, 4)
    assert alarm.device_kind == "falling_object_camera"
    assert alarm.confidence >= 0.5


def test_missed_throw_returns_false_and_leaves_cause_empty() -> None:
    cam, events = make_camera(CameraParams(recall_day=0.0))
    cause = Cause("throw-2")
    assert cam.observe_throw(9, 4, False, cause) is False
    assert cause.event_ids == []
    assert alarms(events) == []


@pytest.mark.parametrize(
    ("hour", "daylight"), [(5.99, False), (6.0, True), (12.0, True), (18.49, True), (18.5, False)]
)
def test_is_daylight_boundaries(hour: float, daylight: bool) -> None:
    assert is_daylight(hour) is daylight


def test_daytime_recall_is_higher_than_night_recall() -> None:
    day_cam, _ = make_camera(hour=10.0, seed=21)
    night_cam, _ = make_camera(hour=2.0, seed=22)
    day = throw_rate(day_cam, 2000)
    night = throw_rate(night_cam, 2000)
    assert 0.90 <= day <= 0.96  # recall_day 0.93
    assert 0.61 <= night <= 0.69  # recall_night 0.65
    assert day > night + 0.2


def test_recall_switches_when_the_clock_moves_from_night_to_day() -> None:
    cam, _ = make_camera(CameraParams(recall_day=1.0, recall_night=0.0), hour=0.0)
    cam.env.run(until=2 * 3600)  # 02:00
    assert throw_rate(cam, 200) == 0.0
    cam.env.run(until=10 * 3600)  # 10:00
    assert throw_rate(cam, 200) == 1.0
    cam.env.run(until=20 * 3600)  # 20:00
    assert throw_rate(cam, 200) == 0.0


def test_small_objects_and_floors_above_range_are_caught_less() -> None:
    params = CameraParams(recall_day=0.9, small_object_factor=0.5, above_range_factor=0.5)
    cam, _ = make_camera(params, seed=23, floors=20)
    big = throw_rate(cam, 2000, floor=8)
    small = throw_rate(cam, 2000, floor=8, small=True)
    high = throw_rate(cam, 2000, floor=18)  # above max_floor 15
    assert 0.87 <= big <= 0.93
    assert 0.41 <= small <= 0.49
    assert 0.41 <= high <= 0.49


def test_estimated_floor_error_has_the_configured_sd() -> None:
    for sd, lo, hi in ((0.8, 0.7, 1.0), (2.0, 1.85, 2.2)):
        cam, events = make_camera(CameraParams(recall_day=1.0, floor_error_sd=sd), floors=20)
        for _ in range(3000):
            cam.observe_throw(10, 3, False, None)
        errors = np.array([e.estimated_floor - 10 for e in alarms(events)])
        assert len(errors) == 3000
        assert abs(errors.mean()) < 0.1
        assert lo <= errors.std() <= hi, sd


def test_zero_floor_error_gives_the_true_floor() -> None:
    cam, events = make_camera(CameraParams(recall_day=1.0, floor_error_sd=0.0))
    for _ in range(100):
        cam.observe_throw(12, 3, False, None)
    assert {e.estimated_floor for e in alarms(events)} == {12}


def test_column_error_shifts_by_one_at_the_configured_share() -> None:
    cam, events = make_camera(CameraParams(recall_day=1.0, column_error=0.15), seed=24)
    for _ in range(2000):
        cam.observe_throw(10, 3, False, None)
    cols = [e.estimated_column for e in alarms(events)]
    assert set(cols) <= {2, 3, 4}
    assert 0.12 <= sum(c != 3 for c in cols) / len(cols) <= 0.18


def test_estimates_stay_inside_the_facade() -> None:
    params = CameraParams(recall_day=1.0, floor_error_sd=3.0, column_error=1.0)
    cam, events = make_camera(params, seed=25, floors=6, columns=3)
    for i in range(1000):
        cam.observe_throw(6 if i % 2 else 4, 1 if i % 3 else 3, False, None)
    nuisance = CameraParams(fooled={"laundry": 1.0}, confidence_threshold=0.0)
    ncam, nevents = make_camera(nuisance, seed=26, floors=6, columns=3)
    for _ in range(1000):
        ncam.observe_nuisance("laundry", None)
    found = alarms(events) + alarms(nevents)
    floors = [e.estimated_floor for e in found]
    cols = [e.estimated_column for e in found]
    assert min(floors) == 1 and max(floors) == 6
    assert min(cols) == 1 and max(cols) == 3


def test_confidence_below_threshold_produces_no_event() -> None:
    # Real throws score 0.55-1.0: a threshold of 1.0 rejects all of them.
    cam, events = make_camera(CameraParams(recall_day=1.0, confidence_threshold=1.0))
    cause = Cause("t")
    assert not any(cam.observe_throw(10, 3, False, cause) for _ in range(500))
    assert alarms(events) == []
    assert cause.event_ids == []


def test_threshold_drops_exactly_the_low_confidence_tracks() -> None:
    # Same seed: the same tracks are drawn; the threshold only decides which are sent.
    fooled = {"laundry": 1.0}
    open_cam, open_events = make_camera(CameraParams(fooled=fooled, confidence_threshold=0.0))
    strict_cam, strict_events = make_camera(CameraParams(fooled=fooled, confidence_threshold=0.7))
    for _ in range(1000):
        open_cam.observe_nuisance("laundry", None)
        strict_cam.observe_nuisance("laundry", None)
    everything = [e.confidence for e in alarms(open_events)]
    kept = [e.confidence for e in alarms(strict_events)]
    assert len(everything) == 1000
    # Confidences are sent rounded to 3 decimals, so a track at 0.6999 shows as 0.7 but was dropped.
    assert [c for c in kept if c != 0.7] == [c for c in everything if c > 0.7]
    assert min(kept) >= 0.7
    assert 0 < len(kept) < len(everything)


def test_nuisance_false_alarm_rate_is_fooled_share_times_sensitivity() -> None:
    # confidence_threshold=0 isolates the fooled rate from the confidence filter.
    for sensitivity, lo, hi in ((1.0, 0.22, 0.28), (2.0, 0.46, 0.54), (0.5, 0.105, 0.145)):
        params = CameraParams(sensitivity=sensitivity, confidence_threshold=0.0)
        cam, events = make_camera(params, seed=31)
        hits = sum(cam.observe_nuisance("laundry", None) for _ in range(3000))
        assert len(alarms(events)) == hits
        assert lo <= hits / 3000 <= hi, sensitivity  # laundry fooled 0.25


def test_default_threshold_filters_some_nuisance_alarms() -> None:
    cam, _ = make_camera(seed=32)  # laundry 0.25, threshold 0.5
    rate = sum(cam.observe_nuisance("laundry", None) for _ in range(4000)) / 4000
    assert 0.15 <= rate <= 0.23


def test_sensitivity_zero_gives_no_false_alarms() -> None:
    params = CameraParams(sensitivity=0.0, fooled={"laundry": 1.0}, confidence_threshold=0.0)
    cam, events = make_camera(params)
    assert not any(cam.observe_nuisance("laundry", None) for _ in range(1000))
    assert alarms(events) == []


def test_unknown_nuisance_never_alarms() -> None:
    cam, events = make_camera(CameraParams(confidence_threshold=0.0, sensitivity=5.0))
    assert not any(cam.observe_nuisance("aeroplane", None) for _ in range(500))
    assert alarms(events) == []


def test_nuisance_alarm_looks_like_a_throw_and_tags_its_cause() -> None:
    cam, events = make_camera(CameraParams(fooled={"bird": 1.0}, confidence_threshold=0.0))
    cause = Cause("bird-1")
    assert cam.observe_nuisance("bird", cause) is True
    (alarm,) = alarms(events)
    assert cause.event_ids == [alarm.event_id]
    assert 3 <= alarm.floors_spanned <= 8


def test_clip_ids_are_unique_and_name_the_camera() -> None:
    params = CameraParams(recall_day=1.0, confidence_threshold=0.0)
    cam, events = make_camera(params, seed=33)
    for _ in range(400):
        cam.observe_throw(10, 3, False, None)
        cam.observe_nuisance("laundry", None)
    clips = [e.clip_id for e in alarms(events)]
    assert len(clips) > 400
    assert len(set(clips)) == len(clips)
    assert all(c.startswith(f"{DEVICE_ID}-clip") for c in clips)


def test_uninstalled_camera_sees_nothing() -> None:
    params = CameraParams(recall_day=1.0, fooled={"laundry": 1.0}, confidence_threshold=0.0)
    cam, events = make_camera(params, install=False)
    assert cam.observe_throw(10, 3, False, None) is False
    assert cam.observe_nuisance("laundry", None) is False
    assert events == []
