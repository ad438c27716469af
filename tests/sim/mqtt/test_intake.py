"""Decoding device payloads: every way a message can be bad has its reason."""

from __future__ import annotations

import json
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from devices.events import EbikeDetected, event_bytes, topic_for
from sim.mqtt.intake import DeadLetter, decode_payload

EVENT = EbikeDetected(
    event_id="d1:0",
    device_id="d1",
    device_kind="ebike_blocker",
    estate="e1",
    building="b01",
    time=datetime(2026, 3, 2, 18, tzinfo=ZoneInfo("Asia/Shanghai")),
    sim_seconds=64800.0,
    seq=0,
    confidence=0.9,
    object_class="ebike",
)
TOPIC = topic_for(EVENT)
GOOD = event_bytes(EVENT)


def reason(payload: bytes, topic: str = TOPIC, **kw: object) -> str:
    with pytest.raises(DeadLetter) as info:
        decode_payload(topic, payload, **kw)  # type: ignore[arg-type]
    return info.value.reason


def test_a_good_payload_is_the_event() -> None:
    assert decode_payload(TOPIC, GOOD) == EVENT


def with_doc(**changes: object) -> bytes:
    doc = json.loads(GOOD)
    for k, v in changes.items():
        if v is ...:
            del doc[k]
        else:
            doc[k] = v
    return json.dumps(doc).encode()


@pytest.mark.parametrize(
    ("payload", "why"),
    [
        (b"\xff\xfe not utf-8", "not_utf8"),
        (b"{not json", "not_json"),
        (b"[1, 2]", "not_an_object"),
        (b"1e999999", "not_an_object"),
        (b"[" * 100_000 + b"]" * 100_000, "too_large"),
        (with_doc(schema_version=2), "schema_version"),
        (with_doc(schema_version=...), "schema_version"),
        (with_doc(type="teleport"), "unknown_type"),
        (with_doc(confidence=...), "invalid"),
        (with_doc(confidence="high"), "invalid"),
        (with_doc(confidence=float("nan")), "invalid"),
        (with_doc(household="e1-b01-u1-0502"), "invalid"),
    ],
)
def test_bad_payloads_are_dead_lettered_with_a_reason(payload: bytes, why: str) -> None:
    assert reason(payload) == why


def test_deep_json_within_the_size_limit_is_not_a_crash() -> None:
    deep = b"[" * 5000 + b"]" * 5000
    assert reason(deep) in ("not_json", "not_an_object")


def test_the_size_limit_is_configurable() -> None:
    assert reason(GOOD, max_bytes=100) == "too_large"
    assert decode_payload(TOPIC, GOOD, max_bytes=len(GOOD)) == EVENT


def test_an_event_on_another_devices_topic_is_refused() -> None:
    assert reason(GOOD, topic="pm/dev/e1/b01/ebike_blocker/d2") == "wrong_topic"
    assert reason(GOOD, topic="other/dev/e1/b01/ebike_blocker/d1") == "wrong_topic"
    assert decode_payload("other/dev/e1/b01/ebike_blocker/d1", GOOD, prefix="other") == EVENT
