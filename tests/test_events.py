"""The event schema: round trips, strictness, discriminator, topics."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pydantic
import pytest

from devices.events import (
    EVENT_TYPES,
    SCHEMA_VERSION,
    ClutterCleared,
    ClutterDetected,
    DeviceFault,
    DoorHeld,
    DoorOpenTooLong,
    DoorReleased,
    EbikeDetected,
    FallingObject,
    GatewayStatus,
    Heartbeat,
    StaffArrived,
    StaffDone,
    event_adapter,
    event_id,
    parse_event,
    topic_for,
)

T = datetime(2026, 3, 2, 18, 30, 5, 250000, tzinfo=ZoneInfo("Asia/Shanghai"))


def envelope(kind: str = "ebike_blocker", building: str = "b03", floor: int | None = None) -> dict:
    return {
        "event_id": event_id("aibo4-b03-u1e1-blk", 7),
        "device_id": "aibo4-b03-u1e1-blk",
        "device_kind": kind,
        "estate": "aibo4",
        "building": building,
        "floor": floor,
        "time": T,
        "sim_seconds": 66605.25,
        "seq": 7,
    }


SAMPLES = [
    EbikeDetected(**envelope(), confidence=0.93, object_class="ebike"),
    DoorHeld(**envelope()),
    DoorReleased(**envelope(), held_seconds=21.5),
    DoorOpenTooLong(**envelope(), held_seconds=120.0),
    FallingObject(
        **envelope("falling_object_camera"),
        estimated_floor=5,
        estimated_column=3,
        confidence=0.81,
        floors_spanned=4,
        clip_id="aibo4-b03-cam-clip00001",
    ),
    ClutterDetected(**envelope("clutter_sensor", floor=4), area_share=0.42, dwell_seconds=120.0),
    ClutterCleared(**envelope("clutter_sensor", floor=4), present_seconds=3600.0),
    Heartbeat(**envelope()),
    DeviceFault(**envelope(), code="lens_blocked"),
    GatewayStatus(**envelope("gateway", building="-"), status="offline"),
    StaffArrived(**envelope("staff_app"), ref_event_id="aibo4-b03-cam:4", action="visit_thrower"),
    StaffDone(
        **envelope("staff_app"),
        ref_event_id="aibo4-b03-cam:4",
        action="visit_thrower",
        outcome="done",
    ),
]


def test_samples_cover_every_event_type() -> None:
    assert sorted(e.type for e in SAMPLES) == sorted(EVENT_TYPES)


@pytest.mark.parametrize("event", SAMPLES, ids=lambda e: e.type)
def test_json_round_trip_gives_the_same_event(event) -> None:
    payload = event.model_dump_json()
    back = parse_event(payload)
    assert back == event
    assert type(back) is type(event)
    assert back.model_dump_json() == payload


def test_envelope_carries_schema_version_and_shanghai_time() -> None:
    doc = event_adapter.dump_python(SAMPLES[0], mode="json")
    assert doc["schema_version"] == SCHEMA_VERSION
    assert doc["time"] == "2026-03-02T18:30:05.250000+08:00"


def test_events_are_frozen() -> None:
    with pytest.raises(pydantic.ValidationError):
        SAMPLES[0].confidence = 0.1  # type: ignore[misc]


def test_unknown_field_is_rejected() -> None:
    doc = SAMPLES[1].model_dump(mode="json") | {"household": "aibo4-b03-u1-0502"}
    with pytest.raises(pydantic.ValidationError, match="Extra inputs"):
        parse_event(__import__("json").dumps(doc))


def test_unknown_type_and_schema_version_are_rejected() -> None:
    doc = SAMPLES[7].model_dump(mode="json")
    with pytest.raises(pydantic.ValidationError):
        event_adapter.validate_python(doc | {"type": "smoke_detected"})
    with pytest.raises(pydantic.ValidationError):
        event_adapter.validate_python(doc | {"schema_version": 2})


def test_naive_time_and_out_of_range_values_are_rejected() -> None:
    with pytest.raises(pydantic.ValidationError):
        Heartbeat(**(envelope() | {"time": T.replace(tzinfo=None)}))
    with pytest.raises(pydantic.ValidationError):
        EbikeDetected(**envelope(), confidence=1.2, object_class="ebike")
    with pytest.raises(pydantic.ValidationError):
        EbikeDetected(**envelope(), confidence=0.9, object_class="stroller")


def test_topic_is_a_function_of_the_event() -> None:
    assert topic_for(SAMPLES[0]) == "pm/dev/aibo4/b03/ebike_blocker/aibo4-b03-u1e1-blk"
    assert topic_for(SAMPLES[5], prefix="xh") == (
        "xh/dev/aibo4/b03/clutter_sensor/aibo4-b03-u1e1-blk"
    )
    assert topic_for(SAMPLES[9]) == "pm/gw/aibo4/status"
