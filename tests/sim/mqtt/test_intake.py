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


# -- duplicate keys (issue 14, finding 6): the last one won, silently --------------------------


def _repeat(key: str, value: str, at_end: bool = True, spelled: str | None = None) -> bytes:
    name = spelled or key
    extra = f'"{name}":{value}'.encode()
    return GOOD[:-1] + b"," + extra + b"}" if at_end else b"{" + extra + b"," + GOOD[1:]


@pytest.mark.parametrize(
    "payload",
    [
        _repeat("estate", '"e2"', at_end=False),  # JSON parsers keep the last: e1, on its topic
        _repeat("confidence", "0.1", at_end=False),
        _repeat("floor", "3", at_end=False),
        _repeat("floor", "null"),
        _repeat("schema_version", "1"),
        _repeat("type", '"ebike_detected"', at_end=False),
        _repeat("estate", '"e1"', spelled="est\\u0061te"),  # escaped: the same key
        GOOD[:-1] + b' , "seq" : 0 }',  # spaced
    ],
)
def test_a_payload_that_repeats_a_key_is_dead_lettered(payload: bytes) -> None:
    with pytest.raises(DeadLetter) as info:
        decode_payload(TOPIC, payload)
    assert info.value.reason == "duplicate_key", info.value


def test_a_value_that_spells_a_key_is_no_duplicate() -> None:
    odd = EbikeDetected(
        **{
            **{f: getattr(EVENT, f) for f in EVENT.__struct_fields__},
            "device_id": "floor",
            "event_id": "schema_version",
        }
    )  # type: ignore[arg-type]
    assert decode_payload(topic_for(odd), event_bytes(odd)) == odd
    spaced = json.dumps(json.loads(GOOD), indent=1).encode()
    assert decode_payload(TOPIC, spaced) == EVENT


def test_a_batch_element_that_repeats_a_key_is_dead_lettered_alone() -> None:
    from sim.mqtt.intake import decode_batch

    dup = _repeat("estate", '"e2"', at_end=False)
    batch = b"[" + b",".join([GOOD, dup, GOOD]) + b"]"
    out = decode_batch("pm/batch/e1", batch)
    assert out[0] == EVENT and out[2] == EVENT
    assert isinstance(out[1], DeadLetter) and out[1].reason == "duplicate_key"
    # ... also when another element is bad, so that the batch is taken apart the slow way
    out = decode_batch("pm/batch/e1", b"[" + b",".join([GOOD, dup, b"{}"]) + b"]")
    assert isinstance(out[1], DeadLetter) and out[1].reason == "duplicate_key"
    assert isinstance(out[2], DeadLetter) and out[2].reason != "duplicate_key"
