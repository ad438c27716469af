"""Decoding what arrives on the device topics: a payload is an event, or a :class:`DeadLetter`.

Every payload is checked before the engine sees it: size, UTF-8, JSON, schema version, event type,
fields, and that it came on the topic its content names. A bad one goes to ``{prefix}/deadletter``
(:mod:`sim.mqtt.intake`) with the reason and is counted; nothing a device sends can stop the engine.

A gateway's batch (``{prefix}/batch/{estate}``, a JSON array of events) is checked as a whole for
size (at most :data:`DEFAULT_MAX_BATCH_BYTES`, and ``max_bytes`` per event times ``max_batch``
events), UTF-8, JSON, being an array and its length - the size before anything is parsed, the
length before any element is decoded (the array is split into raw elements first) - and refused
whole as ``oversized`` past either limit; then each element as a single event would be, and must
belong to that estate. A bad element is dead-lettered alone (with its index); the others go
through, in order.

The common case, a valid event, costs one parse: the payload is validated straight from its bytes,
and only a refused one is taken apart again to say why.
"""

from __future__ import annotations

import json
from typing import Any

import msgspec
from pydantic_core import from_json

from devices.events import (
    SCHEMA_VERSION,
    DeviceEvent,
    GatewayStatus,
    batch_topic,
    event_json,
    explain,
    parse_event,
    parse_events,
    states_version,
    topic_for,
    unknown_type,
)
from devices.jsonkeys import DUPLICATE, duplicate_key, pairs_hook

__all__ = [
    "DEFAULT_MAX_BATCH",
    "DEFAULT_MAX_BATCH_BYTES",
    "DEFAULT_MAX_PAYLOAD",
    "HEAD",
    "DeadLetter",
    "batch_limit",
    "decode_batch",
    "decode_payload",
]

DEFAULT_MAX_PAYLOAD = 16 * 1024  # a device event is ~300 bytes; anything this big is not one
DEFAULT_MAX_BATCH = 1000  # events in one batch
# bytes in one batch: 1,000 events of ~300 bytes with room to spare; the embedded broker's packet
# limit too. The limit is also at most max_bytes x max_batch.
DEFAULT_MAX_BATCH_BYTES = 1 << 20
HEAD = 120  # bytes of a refused payload kept for its dead letter

_raw_array = msgspec.json.Decoder(list[msgspec.Raw])


class DeadLetter(Exception):
    """Why a message cannot be an event (``reason`` is a short code, ``detail`` one line)."""

    def __init__(self, reason: str, detail: str = "", head: str | None = None) -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail
        self.head = head  # the start of the bad element, in a batch


def decode_payload(
    topic: str, payload: bytes, *, prefix: str = "pm", max_bytes: int = DEFAULT_MAX_PAYLOAD
) -> DeviceEvent:
    """One MQTT message -> one validated event, or :class:`DeadLetter` with the reason."""
    if len(payload) > max_bytes:
        raise DeadLetter("too_large", f"{len(payload)} bytes > {max_bytes}")
    try:
        event = parse_event(payload)
    except (RecursionError, ValueError):  # msgspec's errors are ValueErrors: now find out why
        event = _diagnose(payload)
    else:
        if not states_version(payload):  # the struct's default filled it in: not said
            event = _diagnose(payload)
    expected = topic_for(event, prefix)
    if topic != expected:
        raise DeadLetter("wrong_topic", f"content belongs on {expected}"[:200])
    _no_duplicate_key(payload, event)
    return event


def _no_duplicate_key(payload: bytes, event: DeviceEvent) -> None:
    """A payload that repeats a key is refused (:mod:`devices.jsonkeys`)."""
    key = duplicate_key(payload, event)
    if key is not None:
        raise DeadLetter("duplicate_key", key[:64])


def _diagnose(payload: bytes) -> DeviceEvent:
    """The reason a payload is not an event, step by step (raises :class:`DeadLetter`)."""
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DeadLetter("not_utf8", str(exc)) from None
    try:
        doc = _parse(text)
    except (RecursionError, ValueError) as exc:
        raise DeadLetter("not_json", str(exc)[:200]) from None
    return _from_doc(doc, text)


def _parse(text: str) -> Any:
    """JSON as the fast path's parser sees it: nesting over 200 levels is refused whatever the
    depth of the caller's stack (``json.loads`` alone gives up at a depth that depends on it),
    and so are integers over 4,300 digits (``json.loads`` raises a bare ValueError for those)."""
    from_json(text)
    return json.loads(text, object_pairs_hook=pairs_hook)


def _from_doc(doc: Any, text: str) -> DeviceEvent:
    """``doc`` (parsed from ``text``) as an event, or :class:`DeadLetter` with the reason."""
    if not isinstance(doc, dict):
        raise DeadLetter("not_an_object", type(doc).__name__)
    if DUPLICATE in doc:
        raise DeadLetter("duplicate_key", str(doc[DUPLICATE])[:64])
    version = doc.get("schema_version")
    if version != SCHEMA_VERSION:
        raise DeadLetter("schema_version", f"got {str(version)[:40]!r}, speak {SCHEMA_VERSION}")
    try:
        # Strict, from the JSON text: a wrong type (``"seq": false``, ``"sim_seconds": "9"``) is
        # refused, not coerced; the JSON parser's own nesting limit applies too.
        return parse_event(text)
    except RecursionError as exc:
        raise DeadLetter("invalid", str(exc)[:200]) from None
    except ValueError as exc:  # msgspec's ValidationError (or DecodeError)
        if unknown_type(exc):
            raise DeadLetter("unknown_type", str(doc.get("type"))[:64]) from None
        where, message = explain(exc)
        raise DeadLetter("invalid", f"{where}: {message}"[:200]) from None


def decode_batch(
    topic: str,
    payload: bytes,
    *,
    prefix: str = "pm",
    max_bytes: int = DEFAULT_MAX_PAYLOAD,
    max_batch: int = DEFAULT_MAX_BATCH,
    max_batch_bytes: int = DEFAULT_MAX_BATCH_BYTES,
) -> list[DeviceEvent | DeadLetter]:
    """A gateway's batch on ``{prefix}/batch/{estate}`` -> each element's event or the
    :class:`DeadLetter` of that element, in order. Raises :class:`DeadLetter` when the whole
    batch is refused: ``oversized`` (bytes or elements), not UTF-8, not JSON, not an array."""
    limit = batch_limit(max_bytes, max_batch, max_batch_bytes)
    if len(payload) > limit:
        raise DeadLetter("oversized", f"{len(payload)} bytes > {limit}")
    estate = topic[len(prefix) + len("/batch/") :]
    out: list[DeviceEvent | DeadLetter]
    try:
        # the fast path: an element that is not an event stops it at once, so what it builds
        # is bounded by the bytes (valid events of >= 100 bytes each)
        events = parse_events(payload)
    except (RecursionError, ValueError):  # something in it is bad: element by element
        out = _diagnose_batch(payload, max_bytes, max_batch)
    else:
        said = states_version(payload, batch=True)
        out = _checked(payload, events) if said else _diagnose_batch(payload, max_bytes, max_batch)
    if len(out) > max_batch:
        raise DeadLetter("oversized", f"{len(out)} events > {max_batch}")
    for i, item in enumerate(out):
        if isinstance(item, DeadLetter):
            continue
        if isinstance(item, GatewayStatus):  # retained, on its own topic: never in a batch
            belongs = topic_for(item, prefix)
        elif item.estate != estate:
            belongs = batch_topic(item.estate, prefix)
        else:
            continue
        head = event_json(item)[:120]
        out[i] = DeadLetter("wrong_topic", f"content belongs on {belongs}"[:200], head)
    return out


def _checked(payload: bytes, events: list[DeviceEvent]) -> list[DeviceEvent | DeadLetter]:
    """The events of a batch, each that repeats a key in its JSON as its dead letter."""
    out: list[DeviceEvent | DeadLetter] = list(events)
    for i, raw in enumerate(_raw_array.decode(payload)):
        try:
            _no_duplicate_key(bytes(raw), events[i])
        except DeadLetter as bad:
            bad.head = bytes(raw)[:HEAD].decode("utf-8", "replace")
            out[i] = bad
    return out


def batch_limit(max_bytes: int, max_batch: int, max_batch_bytes: int) -> int:
    """The most bytes a batch may have."""
    return min(max_bytes * max_batch, max_batch_bytes)


def _diagnose_batch(
    payload: bytes, max_bytes: int, max_batch: int
) -> list[DeviceEvent | DeadLetter]:
    """Each element's event or dead letter. The array is split into raw elements (no element is
    built) and counted before any element is decoded; each is then checked as a single event."""
    try:
        payload.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DeadLetter("not_utf8", str(exc)) from None
    try:
        raws = _raw_array.decode(payload)
    except msgspec.ValidationError as exc:  # JSON, but not an array
        raise DeadLetter("not_an_array", str(exc)[:200]) from None
    except (RecursionError, msgspec.DecodeError) as exc:
        raise DeadLetter("not_json", str(exc)[:200]) from None
    if len(raws) > max_batch:
        raise DeadLetter("oversized", f"{len(raws)} events > {max_batch}")
    out: list[DeviceEvent | DeadLetter] = []
    for raw in raws:
        element = bytes(raw)
        try:
            if len(element) > max_bytes:
                raise DeadLetter("too_large", f"{len(element)} bytes > {max_bytes}")
            out.append(_diagnose(element))
        except DeadLetter as bad:
            bad.head = element[:HEAD].decode("utf-8", "replace")
            out.append(bad)
    del raws
    return out
