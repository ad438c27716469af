"""Hypothesis strategies for what a hostile or broken device might send, shared by the decoder
fuzz tests and the fuzzed running service.

A plain module, not a test file: the tests import it by name (pytest puts this folder on
``sys.path``). Every strategy here draws payloads (bytes) or documents (JSON-able values); the
tests decide the topic and what the answer must be.
"""

from __future__ import annotations

import json
import string
from typing import Any

from hypothesis import strategies as st

from sim.mqtt.intake import DEFAULT_MAX_PAYLOAD

__all__ = [
    "REASONS",
    "deep_json",
    "envelope",
    "hostile_payloads",
    "huge_numbers",
    "huge_payloads",
    "json_values",
    "level",
    "nonfinite_events",
    "unknown_versions",
    "valid_doc",
    "wrong_types",
]

# Every reason the decoder may give (sim.mqtt.intake.decode_payload).
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

# Near misses of a real event: right shape, some fields wrong.
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

# A topic level as devices would use (letters, digits, '-', '_').
level = st.text(alphabet=string.ascii_lowercase + string.digits + "-_", min_size=1, max_size=12)


def valid_doc(
    estate: str = "e1", device: str = "d1", sim_seconds: float = 64800.0
) -> dict[str, Any]:
    """A heartbeat that the decoder accepts on ``PREFIX/dev/{estate}/b01/ebike_blocker/{device}``."""
    return {
        "schema_version": 1,
        "type": "heartbeat",
        "event_id": f"{device}:1",
        "device_id": device,
        "device_kind": "ebike_blocker",
        "estate": estate,
        "building": "b01",
        "time": "2026-03-02T18:00:00+08:00",
        "sim_seconds": sim_seconds,
        "seq": 1,
    }


def _dumps(doc: Any) -> bytes:
    return json.dumps(doc, allow_nan=True).encode()


@st.composite
def deep_json(draw: st.DrawFn) -> bytes:
    """Nesting up to 40,000 deep: past the parser's recursion limit, past the size limit, or both."""
    depth = draw(st.integers(min_value=1, max_value=40_000))
    opener, closer = draw(st.sampled_from([(b"[", b"]"), (b'{"a":', b"}")]))
    closed = draw(st.booleans())  # unclosed: not JSON at all
    return opener * depth + b"1" + (closer * depth if closed else b"")


@st.composite
def huge_payloads(draw: st.DrawFn) -> bytes:
    """Bigger than the intake's limit: a JSON string, an event with a huge field, or raw bytes."""
    n = draw(st.integers(min_value=DEFAULT_MAX_PAYLOAD + 1, max_value=200_000))
    kind = draw(st.sampled_from(["string", "field", "raw"]))
    if kind == "string":
        return _dumps("x" * n)
    if kind == "field":
        return _dumps(valid_doc() | {"device_id": "d" * n})
    return bytes([draw(st.integers(0, 255))]) * n


@st.composite
def huge_numbers(draw: st.DrawFn) -> bytes:
    """Numbers of thousands of digits (Python refuses to make an int of more than 4,300)."""
    where = draw(st.sampled_from(["bare", "list", "schema_version", "seq"]))
    # A long but legal integer is a valid seq: only past Python's limit is it hostile there.
    low = 4301 if where == "seq" else 300
    around_limit = st.sampled_from([n for n in (4300, 4301, 5000, 12_000) if n >= low])
    number = "9" * draw(around_limit | st.integers(min_value=low, max_value=12_000))
    if where != "seq":
        number += draw(st.sampled_from(["", ".5", "e5", "e99999"]))
    if where == "bare":
        return number.encode()
    if where == "list":
        return f"[{number}]".encode()
    doc = json.dumps(valid_doc() | {where: 0})
    return doc.replace(f'"{where}": 0', f'"{where}": {number}').encode()


# Every field of the envelope with a value of the wrong type.
_WRONG = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.text(max_size=20),
    st.lists(st.integers(), max_size=3),
)


def _wrong_for(key: str, value: Any) -> bool:
    """Whether ``value`` is of a type the field refuses (numbers for strings and vice versa)."""
    numeric = key in ("schema_version", "seq", "sim_seconds")
    is_number = isinstance(value, int | float) and not isinstance(value, bool)
    return not is_number if numeric else not isinstance(value, str)


@st.composite
def wrong_types(draw: st.DrawFn) -> bytes:
    """A valid event with one to four fields of the wrong type."""
    doc = valid_doc()
    for key in draw(st.lists(st.sampled_from(sorted(doc)), min_size=1, max_size=4, unique=True)):
        value = _WRONG | st.dictionaries(st.text(max_size=5), st.integers(), max_size=2)
        doc[key] = draw(value.filter(lambda v, k=key: _wrong_for(k, v)))
    return _dumps(doc)


@st.composite
def nonfinite_events(draw: st.DrawFn) -> bytes:
    """Otherwise valid events with NaN or +-Infinity in a float field (JSON's extension)."""
    value = draw(st.sampled_from([float("nan"), float("inf"), float("-inf")]))
    kind = draw(st.sampled_from(["sim_seconds", "confidence", "held_seconds"]))
    doc = valid_doc()
    if kind == "confidence":
        doc |= {"type": "ebike_detected", "object_class": "ebike", "confidence": value}
    elif kind == "held_seconds":
        doc |= {"type": "door_released", "held_seconds": value}
    else:
        doc["sim_seconds"] = value
    return _dumps(doc)


unknown_versions = st.builds(
    lambda v: _dumps(valid_doc() | {"schema_version": v}),
    st.integers().filter(lambda v: v != 1)
    | st.floats(allow_nan=True, allow_infinity=True).filter(lambda v: v != 1)
    | st.text(max_size=20)
    | st.none()
    | st.lists(st.integers(), max_size=2),
)

# Anything a device, a broken gateway or an attacker might put on a device topic.
hostile_payloads = st.one_of(
    st.binary(max_size=3000),
    st.builds(_dumps, json_values),
    st.builds(_dumps, envelope),
    deep_json(),
    huge_payloads(),
    huge_numbers(),
    wrong_types(),
    nonfinite_events(),
    unknown_versions,
    st.text(max_size=200).map(lambda s: s.encode("utf-8", "surrogatepass")),
)
