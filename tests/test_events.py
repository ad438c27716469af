"""The event schema: round trips, strictness, discriminator, topics."""

from __future__ import annotations

import json
from datetime import datetime
from zoneinfo import ZoneInfo

import msgspec
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
    StaffReview,
    event_bytes,
    event_from_python,
    event_id,
    event_json,
    event_schema,
    explain,
    parse_event,
    states_version,
    topic_for,
    unknown_type,
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
    StaffReview(
        **envelope("staff_app"),
        ref_event_id="aibo4-b03-cam:4",
        action="review_clip",
        verdict="false_alarm",
    ),
]


def test_samples_cover_every_event_type() -> None:
    assert sorted(e.type for e in SAMPLES) == sorted(EVENT_TYPES)


def json_doc(event) -> dict:
    return json.loads(event_json(event))


@pytest.mark.parametrize("event", SAMPLES, ids=lambda e: e.type)
def test_json_round_trip_gives_the_same_event(event) -> None:
    payload = event_json(event)
    back = parse_event(payload)
    assert back == event
    assert type(back) is type(event)
    assert event_json(back) == payload
    assert event_bytes(back) == payload.encode()


def test_envelope_carries_type_first_schema_version_and_shanghai_time() -> None:
    doc = json_doc(SAMPLES[0])
    assert next(iter(doc)) == "type"
    assert doc["schema_version"] == SCHEMA_VERSION
    assert doc["time"] == "2026-03-02T18:30:05.250000+08:00"


def test_events_are_frozen() -> None:
    with pytest.raises(AttributeError):
        SAMPLES[0].confidence = 0.1  # type: ignore[misc]


def test_unknown_field_is_rejected() -> None:
    doc = json_doc(SAMPLES[1]) | {"household": "aibo4-b03-u1-0502"}
    with pytest.raises(msgspec.ValidationError, match="unknown field `household`"):
        parse_event(json.dumps(doc))


def test_unknown_type_and_schema_version_are_rejected() -> None:
    doc = json_doc(SAMPLES[7])
    with pytest.raises(ValueError) as caught:
        event_from_python(doc | {"type": "smoke_detected"})
    assert unknown_type(caught.value)
    with pytest.raises(ValueError) as caught:
        event_from_python(doc | {"schema_version": 2})
    assert explain(caught.value)[0] == "schema_version" and not unknown_type(caught.value)


def test_a_payload_must_state_its_schema_version() -> None:
    doc = json_doc(SAMPLES[7])
    assert states_version(json.dumps(doc))
    del doc["schema_version"]
    assert not states_version(json.dumps(doc))
    assert parse_event(json.dumps(doc)) == SAMPLES[7]  # the struct alone would fill it in
    batch = json.dumps([json_doc(SAMPLES[0]), doc])
    assert not states_version(batch, batch=True)
    assert states_version(json.dumps([json_doc(e) for e in SAMPLES]), batch=True)


@pytest.mark.parametrize(
    "change",
    [
        {"time": "2026-03-02T18:30:05"},  # naive
        {"confidence": 1.2},
        {"object_class": "stroller"},
        {"sim_seconds": "66605"},  # no coercion
        {"seq": True},
        {"seq": 7.0},
        {"seq": -1},
        {"event_id": ""},
    ],
)
def test_wrong_types_and_out_of_range_values_are_rejected(change: dict) -> None:
    doc = json_doc(SAMPLES[0]) | change
    with pytest.raises(msgspec.ValidationError):
        parse_event(json.dumps(doc))


@pytest.mark.parametrize("number", ["1e400", "-1e400", "NaN", "Infinity"])
def test_no_infinite_or_nan_time_gets_in(number: str) -> None:
    text = event_json(SAMPLES[7]).replace('"sim_seconds":66605.25', f'"sim_seconds":{number}')
    assert number in text
    with pytest.raises(ValueError):
        parse_event(text)


def test_explain_names_the_field() -> None:
    with pytest.raises(ValueError) as caught:
        parse_event(json.dumps(json_doc(SAMPLES[0]) | {"confidence": 2}))
    where, message = explain(caught.value)
    assert where == "confidence" and "<= 1.0" in message


def test_the_json_schema_covers_every_type_and_forbids_extras() -> None:
    schema = event_schema()
    defs = schema["$defs"]
    assert sorted(d["properties"]["type"]["enum"][0] for d in defs.values()) == sorted(EVENT_TYPES)
    assert all(d["additionalProperties"] is False for d in defs.values())


def test_topic_is_a_function_of_the_event() -> None:
    assert topic_for(SAMPLES[0]) == "pm/dev/aibo4/b03/ebike_blocker/aibo4-b03-u1e1-blk"
    assert topic_for(SAMPLES[5], prefix="xh") == (
        "xh/dev/aibo4/b03/clutter_sensor/aibo4-b03-u1e1-blk"
    )
    assert topic_for(SAMPLES[9]) == "pm/gw/aibo4/status"


def _sample(cls: type) -> dict:
    return json_doc(next(e for e in SAMPLES if isinstance(e, cls)))


@pytest.mark.parametrize(
    ("cls", "change", "named"),
    [
        (Heartbeat, {"sim_seconds": 1e308}, "sim_seconds"),  # finite, and absurd
        (Heartbeat, {"sim_seconds": -5.0}, "sim_seconds"),
        (Heartbeat, {"time": "1970-01-01T00:00:00+00:00"}, "time"),
        (Heartbeat, {"time": "2999-01-01T00:00:00+08:00"}, "time"),
        (Heartbeat, {"floor": 100000}, "floor"),
        (FallingObject, {"estimated_floor": 10**9}, "estimated_floor"),
        (FallingObject, {"confidence": -0.1}, "confidence"),
        (DoorReleased, {"held_seconds": 1e300}, "held_seconds"),
    ],
)
def test_absurd_numbers_and_dates_are_refused_naming_the_field(
    cls: type, change: dict, named: str
) -> None:
    doc = _sample(cls) | change
    with pytest.raises(msgspec.ValidationError) as caught:
        parse_event(json.dumps(doc))
    where, message = explain(caught.value)
    assert named in (where or message)


def test_the_json_schema_states_the_bounds() -> None:
    beat = event_schema()["$defs"]["Heartbeat"]["properties"]
    assert beat["sim_seconds"]["maximum"] < 1e10 and beat["sim_seconds"]["minimum"] == 0
    assert beat["time"]["formatMinimum"].startswith("2000-")
    assert beat["time"]["formatMaximum"].startswith("2100-")
    floor = beat["floor"]["anyOf"][0]
    assert floor["maximum"] == 200
