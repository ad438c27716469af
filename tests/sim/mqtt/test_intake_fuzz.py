"""Fuzzed intake: whatever arrives on a device topic, the decoder answers with an event or a
dead-letter reason — never a crash, never anything else."""

from __future__ import annotations

import json
import math

from hostile import REASONS, envelope, hostile_payloads, json_values
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sim.mqtt.intake import DEFAULT_MAX_PAYLOAD, DeadLetter, decode_payload

TOPIC = "pm/dev/e1/b01/ebike_blocker/d1"


def outcome(payload: bytes, max_bytes: int = 4096) -> str:
    try:
        decode_payload(TOPIC, payload, max_bytes=max_bytes)
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


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(hostile_payloads)
def test_hostile_payloads_are_refused_with_a_reason(payload: bytes) -> None:
    # The strategies build nothing valid: every one of these is set aside, none gets through.
    assert outcome(payload, DEFAULT_MAX_PAYLOAD) in REASONS


def test_deep_nesting_and_huge_strings() -> None:
    assert outcome(b"[" * 4000 + b"]" * 4000) in REASONS
    assert outcome(json.dumps({"schema_version": 1, "type": "x" * 100_000}).encode()) == "too_large"
    assert outcome(b'{"schema_version": 1, "sim_seconds": NaN, "type": "heartbeat"}') == "invalid"
