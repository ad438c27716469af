"""The engine's side of MQTT: subscribe to device topics, decode, and set bad messages aside.

Every payload is checked before the engine sees it: size, UTF-8, JSON, schema version, event type,
fields, and that it came on the topic its content names. A bad one goes to ``{prefix}/deadletter``
with the reason and is counted; nothing a device sends can stop the engine.

Events the engine takes but sets aside (older than its watermark, or dated too far from its clock:
:mod:`rules.eventtime`) are dead-lettered too, with reason ``late`` or ``clock_skew``.

A gateway's batch (``{prefix}/batch/{estate}``, a JSON array of events) is checked as a whole for
size (``max_bytes`` per event times ``max_batch`` events), UTF-8, JSON, being an array and its
length; then each element as a single event would be, and must belong to that estate. A bad
element is dead-lettered alone (with its index); the others go through, in order.

The common case, a valid event, costs one parse: the payload is validated straight from its bytes,
and only a refused one is taken apart again to say why.
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections import Counter
from collections.abc import Callable
from typing import Any

import msgspec
import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
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
from sim.errors import BadInput
from sim.mqtt.client import connect
from sim.mqtt.url import BrokerURL

__all__ = [
    "DEFAULT_MAX_BATCH",
    "DEFAULT_MAX_PAYLOAD",
    "DeadLetter",
    "Intake",
    "SetAside",
    "decode_batch",
    "decode_payload",
]

# events the engine set aside while taking one: (event, reason, detail), e.g. "late", "clock_skew"
SetAside = list[tuple[DeviceEvent, str, str]]

DEFAULT_MAX_PAYLOAD = 16 * 1024  # a device event is ~300 bytes; anything this big is not one
DEFAULT_MAX_BATCH = 1000  # events in one batch; a batch's size limit is this times max_bytes


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
) -> list[DeviceEvent | DeadLetter]:
    """Events the engine takes but sets aside (older than its watermark, or dated too far from its clock:
    :mod:`rules.eventtime`) are dead-lettered too, with reason ``late`` or ``clock_skew``.

    A gateway's batch on ``{prefix}/batch/{estate}`` -> each element's event or the
        :class:`DeadLetter` of that element, in order. Raises :class:`DeadLetter` when the whole
        batch is refused: too large, not UTF-8, not JSON, not an array, or too many elements."""
    limit = max_bytes * max_batch
    if len(payload) > limit:
        raise DeadLetter("too_large", f"{len(payload)} bytes > {limit}")
    estate = topic[len(prefix) + len("/batch/") :]
    out: list[DeviceEvent | DeadLetter]
    try:
        events = parse_events(payload)
    except (RecursionError, ValueError):  # something in it is bad: element by element
        out = _diagnose_batch(payload, max_batch)
    else:
        said = states_version(payload, batch=True)
        out = _checked(payload, events) if said else _diagnose_batch(payload, max_batch)
    if len(out) > max_batch:
        raise DeadLetter("too_many", f"{len(out)} events > {max_batch}")
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
    for i, raw in enumerate(_raw_batch.decode(payload)):
        try:
            _no_duplicate_key(bytes(raw), events[i])
        except DeadLetter as bad:
            bad.head = bytes(raw)[:120].decode("utf-8", "replace")
            out[i] = bad
    return out


_raw_batch = msgspec.json.Decoder(list[msgspec.Raw])


def _diagnose_batch(payload: bytes, max_batch: int) -> list[DeviceEvent | DeadLetter]:
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DeadLetter("not_utf8", str(exc)) from None
    try:
        docs = _parse(text)
    except (RecursionError, ValueError) as exc:
        raise DeadLetter("not_json", str(exc)[:200]) from None
    if not isinstance(docs, list):
        raise DeadLetter("not_an_array", type(docs).__name__)
    if len(docs) > max_batch:
        raise DeadLetter("too_many", f"{len(docs)} events > {max_batch}")
    out: list[DeviceEvent | DeadLetter] = []
    for doc in docs:
        try:
            text = json.dumps(doc, ensure_ascii=False, separators=(",", ":"))
        except (RecursionError, ValueError) as exc:  # cannot happen to what json.loads made
            out.append(DeadLetter("invalid", str(exc)[:200]))
            continue
        try:
            out.append(_from_doc(doc, text))
        except DeadLetter as bad:
            bad.head = text[:120]
            out.append(bad)
    return out


class Intake:
    """A subscribed client that hands valid events to ``on_event`` (on paho's network thread)."""

    def __init__(
        self,
        url: BrokerURL,
        *,
        prefix: str,
        client_id: str,
        on_event: Callable[[DeviceEvent], SetAside | None],
        max_bytes: int = DEFAULT_MAX_PAYLOAD,
        max_batch: int = DEFAULT_MAX_BATCH,
        clean: bool = True,
        verify: Callable[[DeviceEvent, bytes, Any], str | None] | None = None,
    ) -> None:
        self.url = url
        # Authenticity (sim.mqtt.signing): (event, the message's bytes, its MQTT 5 properties)
        # -> None, or the reason to dead-letter the event (``unsigned``, ``bad_signature``).
        self.verify = verify
        self.prefix = prefix
        self.client_id = client_id
        self.on_event = on_event
        self.max_bytes = max_bytes
        self.max_batch = max_batch
        self._batches = f"{prefix}/batch/"
        self.clean = clean
        self.dead: Counter[str] = Counter()
        self.received = 0
        self.client: mqtt.Client | None = None
        self._subscribed = threading.Event()
        self.lock = threading.Lock()
        self._last: mqtt.MQTTMessageInfo | None = None

    def topics(self) -> list[tuple[str, int]]:
        return [
            (f"{self.prefix}/dev/#", 1),
            (f"{self.prefix}/gw/+/status", 1),
            (f"{self.prefix}/batch/+", 1),
        ]

    def _on_connect(self, c: mqtt.Client, _u: Any, _f: Any, rc: Any, _p: Any) -> None:
        if not rc.is_failure:
            c.subscribe(self.topics())  # again after every reconnect

    def _on_subscribe(self, _c: mqtt.Client, _u: Any, _mid: int, _rcs: Any, _p: Any) -> None:
        self._subscribed.set()

    def _on_message(self, c: mqtt.Client, _u: Any, msg: mqtt.MQTTMessage) -> None:
        payload = bytes(msg.payload)
        with self.lock:
            self.received += 1
            if msg.topic.startswith(self._batches):
                self._on_batch(c, msg.topic, payload, msg.properties)
                return
            try:
                event = decode_payload(
                    msg.topic, payload, prefix=self.prefix, max_bytes=self.max_bytes
                )
            except DeadLetter as bad:
                self._dead_letter(c, msg.topic, payload, bad)
                return
            if self._verified(c, msg.topic, payload, event, msg.properties):
                self._feed(c, msg.topic, payload, event)

    def _verified(
        self,
        c: mqtt.Client,
        topic: str,
        payload: bytes,
        event: DeviceEvent,
        properties: Any,
        index: int | None = None,
    ) -> bool:
        """Whether ``event`` passes the verify hook; if not it is dead-lettered with the reason."""
        reason = self.verify(event, payload, properties) if self.verify is not None else None
        if reason is None:
            return True
        detail = f"{event.device_kind} events must carry a valid signature"
        self._dead_letter(c, topic, payload, DeadLetter(reason, detail), index=index)
        return False

    def _on_batch(self, c: mqtt.Client, topic: str, payload: bytes, properties: Any = None) -> None:
        try:
            items = decode_batch(
                topic,
                payload,
                prefix=self.prefix,
                max_bytes=self.max_bytes,
                max_batch=self.max_batch,
            )
        except DeadLetter as bad:
            self._dead_letter(c, topic, payload, bad)
            return
        for i, item in enumerate(items):
            if isinstance(item, DeadLetter):
                self._dead_letter(c, topic, payload, item, index=i)
            elif self._verified(c, topic, payload, item, properties, index=i):
                self._feed(c, topic, payload, item, index=i)

    def _feed(
        self,
        c: mqtt.Client,
        topic: str,
        payload: bytes,
        event: DeviceEvent,
        index: int | None = None,
    ) -> None:
        """Hand a valid event on; if the engine raises, that costs this event, not the service
        (an exception here would end paho's network thread, and the service would go deaf)."""
        try:
            aside = self.on_event(event)
        except Exception as exc:
            detail = f"{type(exc).__name__}: {exc}"[:200]
            self._dead_letter(c, topic, payload, DeadLetter("engine_error", detail), index=index)
            return
        for other, reason, detail in aside or ():  # late, or its clock too far off
            text = event_json(other)
            bad = DeadLetter(reason, detail[:200], text[:120])
            self._dead_letter(c, topic_for(other, self.prefix), text.encode("utf-8"), bad)

    def _dead_letter(
        self, c: mqtt.Client, topic: str, payload: bytes, bad: DeadLetter, index: int | None = None
    ) -> None:
        self.dead[bad.reason] += 1
        doc: dict[str, Any] = {"topic": topic, "reason": bad.reason, "detail": bad.detail}
        if index is not None:
            doc["index"] = index  # which element of the batch
        doc["bytes"] = len(payload)
        doc["head"] = bad.head if bad.head is not None else payload[:120].decode("utf-8", "replace")
        c.publish(f"{self.prefix}/deadletter", json.dumps(doc, ensure_ascii=False), qos=1)

    def setup(self, c: mqtt.Client) -> None:
        c.on_subscribe = self._on_subscribe
        c.on_message = self._on_message
        c.max_queued_messages_set(0)
        c.max_inflight_messages_set(1000)

    def start(self, timeout: float = 10.0) -> None:
        self.client = connect(
            self.url,
            self.client_id,
            clean=self.clean,
            setup=self.setup,
            on_connect=self._on_connect,
        )
        self.client.subscribe(self.topics())
        if not self._subscribed.wait(timeout):
            raise TimeoutError(f"broker {self.url}: no SUBACK within {timeout:.0f} s")

    def publish(self, topic: str, payload: str | bytes, qos: int = 1, retain: bool = False) -> None:
        if self.client is not None:
            self._last = self.client.publish(topic, payload, qos=qos, retain=retain)

    def stop(self, timeout: float = 10.0, forget: bool = False) -> None:
        """Disconnect once what we published has gone out (QoS 1 acks arrive in order).

        ``forget`` ends a persistent session too, so the broker stops queueing for a client that
        will not come back (a finished run); ``rules serve`` keeps its session to resume it."""
        if self._last is not None:
            with contextlib.suppress(RuntimeError, ValueError):  # not connected: nothing can go out
                self._last.wait_for_publish(timeout)
        if self.client is not None:
            client, self.client = self.client, None
            v5 = client.protocol == mqtt.MQTTv5
            props = None
            if forget and not self.clean and v5:
                props = Properties(PacketTypes.DISCONNECT)  # type: ignore[no-untyped-call]
                props.SessionExpiryInterval = 0
            client.disconnect(properties=props)
            client.loop_stop()
            if forget and not self.clean and not v5:  # 3.1.1: a clean session replaces it
                with contextlib.suppress(BadInput):
                    gone = connect(self.url, self.client_id, protocols=(mqtt.MQTTv311,))
                    gone.disconnect()
                    gone.loop_stop()
