"""The engine's side of MQTT: subscribe to device topics, decode, and set bad messages aside.

Each message is decoded by :mod:`sim.mqtt.decode`; a bad one goes to ``{prefix}/deadletter`` with
the reason and is counted. paho's network thread only queues each message (:mod:`sim.mqtt.inbox`,
which says more) and a worker thread decodes it, feeds the engine and then acknowledges it; an
oversized message is cut to its head before it is queued, and over MQTT 5 the broker is told the
largest packet we take (:data:`MAX_PACKET`), so memory stays under :data:`INTAKE_RSS_CEILING_MB`
whatever is published. Every valid event's sequence number goes past a
:class:`~sim.mqtt.gaps.GapTracker`: gaps are counted and published on ``{prefix}/health/gaps``.

Events the engine takes but sets aside (older than its watermark, or dated too far from its clock:
:mod:`rules.eventtime`) are dead-lettered too, with reason ``late`` or ``clock_skew``; with a
``verify`` hook (:mod:`sim.mqtt.signing`) an event that fails it is dead-lettered with its reason.
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections import Counter
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from devices.events import DeviceEvent, event_json, topic_for
from sim.errors import BadInput
from sim.mqtt.client import connect
from sim.mqtt.decode import (
    DEFAULT_MAX_BATCH,
    DEFAULT_MAX_BATCH_BYTES,
    DEFAULT_MAX_PAYLOAD,
    HEAD,
    DeadLetter,
    batch_limit,
    decode_batch,
    decode_payload,
)
from sim.mqtt.gaps import Gap, GapTracker
from sim.mqtt.inbox import Inbound, Inbox
from sim.mqtt.url import BrokerURL

__all__ = [
    "DEFAULT_MAX_BATCH",
    "DEFAULT_MAX_BATCH_BYTES",
    "DEFAULT_MAX_PAYLOAD",
    "INTAKE_RSS_CEILING_MB",
    "MAX_PACKET",
    "DeadLetter",
    "Intake",
    "SetAside",
    "decode_batch",
    "decode_payload",
]

# events the engine set aside while taking one: (event, reason, detail), e.g. "late", "clock_skew"
SetAside = list[tuple[DeviceEvent, str, str]]

MAX_PACKET = 16 << 20  # the largest packet the service takes from an MQTT 5 broker (announced)
INTAKE_RSS_CEILING_MB = 160  # `rules serve`'s peak RSS under any input (README; tested)


class Intake:
    """A subscribed client that hands valid events to ``on_event``, in order, on a worker thread
    of its own (:class:`~sim.mqtt.inbox.Inbox`); a QoS 1 message is acknowledged once handled.
    Gaps in a device's sequence numbers are reported (``gaps``, and ``on_gap`` if given)."""

    def __init__(
        self,
        url: BrokerURL,
        *,
        prefix: str,
        client_id: str,
        on_event: Callable[[DeviceEvent], SetAside | None],
        max_bytes: int = DEFAULT_MAX_PAYLOAD,
        max_batch: int = DEFAULT_MAX_BATCH,
        max_batch_bytes: int = DEFAULT_MAX_BATCH_BYTES,
        clean: bool = True,
        lateness: float = 0.0,
        on_gap: Callable[[Gap], None] | None = None,
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
        self.max_batch_bytes = max_batch_bytes
        self._batches = f"{prefix}/batch/"
        self._batch_limit = batch_limit(max_bytes, max_batch, max_batch_bytes)
        self.clean = clean
        self.dead: Counter[str] = Counter()
        self.received = 0
        self.client: mqtt.Client | None = None
        self._subscribed = threading.Event()
        self.lock = threading.Lock()
        self._last: mqtt.MQTTMessageInfo | None = None
        self._conn: mqtt.Client | None = None  # the client messages come on (set before connecting)
        self._generation = 0  # connections so far: an ack after a reconnect is not sent
        self.inbox = Inbox(self._handle, self._ack)
        self.gaps = GapTracker(lateness, self._report_gap)
        self.on_gap = on_gap

    def topics(self) -> list[tuple[str, int]]:
        return [
            (f"{self.prefix}/dev/#", 1),
            (f"{self.prefix}/gw/+/status", 1),
            (f"{self.prefix}/batch/+", 1),
        ]

    def _on_connect(self, c: mqtt.Client, _u: Any, _f: Any, rc: Any, _p: Any) -> None:
        self._generation += 1  # what is still queued from the last connection is redelivered
        if not rc.is_failure:
            c.subscribe(self.topics())  # again after every reconnect

    def _on_subscribe(self, _c: mqtt.Client, _u: Any, _mid: int, _rcs: Any, _p: Any) -> None:
        self._subscribed.set()

    def _on_message(self, _c: mqtt.Client, _u: Any, msg: mqtt.MQTTMessage) -> None:
        """paho's network thread: queue the message (only its head when it is oversized)."""
        size = len(msg.payload)
        limit = self._batch_limit if msg.topic.startswith(self._batches) else self.max_bytes
        payload = bytes(msg.payload[:HEAD] if size > limit else msg.payload)
        props = getattr(msg, "properties", None)
        item = Inbound(msg.topic, payload, size, msg.mid, msg.qos, self._generation, props)
        self.inbox.put(item)

    def _ack(self, item: Inbound) -> None:
        c = self._conn
        if item.qos > 0 and c is not None and item.generation == self._generation:
            c.ack(item.mid, item.qos)

    def _handle(self, item: Inbound) -> None:
        """The worker thread: decode one message, feed or dead-letter what is in it."""
        c = self._conn
        if c is None:
            return
        topic, payload = item.topic, item.payload
        with self.lock:
            self.received += 1
            batch = topic.startswith(self._batches)
            if item.size > len(payload):  # cut in _on_message: refused whole, never parsed
                reason, limit = ("oversized", self._batch_limit) if batch else ("too_large", 0)
                detail = f"{item.size} bytes > {limit or self.max_bytes}"
                self._dead_letter(c, topic, payload, DeadLetter(reason, detail), size=item.size)
                return
            if batch:
                self._on_batch(c, topic, payload, item.properties)
                return
            try:
                event = decode_payload(topic, payload, prefix=self.prefix, max_bytes=self.max_bytes)
            except DeadLetter as bad:
                self._dead_letter(c, topic, payload, bad)
                return
            if self._verified(c, topic, payload, event, item.properties):
                self._feed(c, topic, payload, event)

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
                max_batch_bytes=self.max_batch_bytes,
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
        self.gaps.see(event.device_id, event.seq, event.sim_seconds)
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

    def _report_gap(self, gap: Gap) -> None:
        if self.on_gap is not None:
            self.on_gap(gap)
        if self._conn is not None:
            self._last = self._conn.publish(f"{self.prefix}/health/gaps", gap.json(), qos=1)

    def finish_gaps(self) -> None:
        """Report every gap still open (the end of a run, or of the service)."""
        with self.lock:
            self.gaps.finish()

    def _dead_letter(
        self,
        c: mqtt.Client,
        topic: str,
        payload: bytes,
        bad: DeadLetter,
        index: int | None = None,
        size: int | None = None,
    ) -> None:
        self.dead[bad.reason] += 1
        doc: dict[str, Any] = {"topic": topic, "reason": bad.reason, "detail": bad.detail}
        if index is not None:
            doc["index"] = index  # which element of the batch
        doc["bytes"] = len(payload) if size is None else size
        doc["head"] = (
            bad.head if bad.head is not None else payload[:HEAD].decode("utf-8", "replace")
        )
        c.publish(f"{self.prefix}/deadletter", json.dumps(doc, ensure_ascii=False), qos=1)

    def setup(self, c: mqtt.Client) -> None:
        self._conn = c
        c.manual_ack_set(True)  # acknowledged by the worker once handled (sim.mqtt.inbox)
        c.on_subscribe = self._on_subscribe
        c.on_message = self._on_message
        c.max_queued_messages_set(0)
        c.max_inflight_messages_set(1000)

    def start(self, timeout: float = 10.0) -> None:
        self.inbox.start()
        self.client = connect(
            self.url,
            self.client_id,
            clean=self.clean,
            setup=self.setup,
            on_connect=self._on_connect,
            max_packet=MAX_PACKET,
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
        will not come back (a finished run); ``rules serve`` keeps its session to resume it.
        What is queued is handled (and acknowledged) first; what arrives meanwhile is not taken,
        and the broker keeps it for the session."""
        self.inbox.close(timeout)
        self.finish_gaps()
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
