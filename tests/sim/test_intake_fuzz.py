"""Fuzzed intake: whatever arrives on a device topic, the decoder answers with an event or a
dead-letter reason — never a crash, never anything else."""

from __future__ import annotations

import json
import math

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sim.intake import DeadLetter, decode_payload

TOPIC = "pm/dev/e1/b01/ebike_blocker/d1"
REASONS = {
    "too_large",
    "not_utf8",
    "not_json",
    "not_an_object",
    "schema_version",
    "unknown_type",
    "invalid",
    "wrong_topic",
}

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=50),
    lambda inner: (
        st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=10), inner, max_size=5)
    ),
    max_leaves=30,
)

envelope = st.fixed_dictionaries(
    {
        "schema_version": st.sampled_from([1, 2, 0, "1", None]),
        "type": st.sampled_from(["ebike_detected", "heartbeat", "fault", "teleport", 7]),
        "event_id": st.text(max_size=30),
        "device_id": st.sampled_from(["d1", "d2", ""]),
        "device_kind": st.sampled_from(["ebike_blocker", "gateway", "toaster"]),
        "estate": st.sampled_from(["e1", "e2"]),
        "building": st.sampled_from(["b01", "-"]),
        "time": st.sampled_from(["2026-03-02T18:00:00+08:00", "yesterday", "2026-03-02T18:00:00"]),
        "sim_seconds": st.floats(allow_nan=True, allow_infinity=True),
        "seq": st.integers(min_value=-5, max_value=10**12),
    },
    optional={"confidence": json_values, "object_class": json_values, "extra": json_values},
)


def outcome(payload: bytes) -> str:
    try:
        decode_payload(TOPIC, payload, max_bytes=4096)
    except DeadLetter as bad:
        assert bad.reason in REASONS, bad.reason
        return bad.reason
    return "ok"


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=5000))
def test_arbitrary_bytes_never_crash(payload: bytes) -> None:
    outcome(payload)


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(json_values)
def test_arbitrary_json_never_crashes(value: object) -> None:
    outcome(json.dumps(value, allow_nan=True).encode())


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(envelope)
def test_near_miss_events_are_refused_with_a_reason_or_accepted_whole(doc: dict) -> None:
    result = outcome(json.dumps(doc, allow_nan=True).encode())
    if result == "ok":  # only a genuinely valid event gets through
        assert doc["schema_version"] == 1 and math.isfinite(doc["sim_seconds"])


def test_deep_nesting_and_huge_strings() -> None:
    assert outcome(b"[" * 4000 + b"]" * 4000) in REASONS
    assert outcome(json.dumps({"schema_version": 1, "type": "x" * 100_000}).encode()) == "too_large"
    assert outcome(b'{"schema_version": 1, "sim_seconds": NaN, "type": "heartbeat"}') == "invalid"
