"""The engine's side of MQTT: subscribe to device topics, decode, and set bad messages aside.

Every payload is checked before the engine sees it: size, UTF-8, JSON, schema version, event type,
fields, and that it came on the topic its content names. A bad one goes to ``{prefix}/deadletter``
with the reason and is counted; nothing a device sends can stop the engine.
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections import Counter
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as mqtt
from pydantic import ValidationError

from devices.events import SCHEMA_VERSION, DeviceEvent, event_adapter, topic_for
from sim.mqttclient import connect
from sim.mqtturl import BrokerURL

__all__ = ["DEFAULT_MAX_PAYLOAD", "DeadLetter", "Intake", "decode_payload"]

DEFAULT_MAX_PAYLOAD = 16 * 1024  # a device event is ~300 bytes; anything this big is not one


class DeadLetter(Exception):
    """Why a message cannot be an event (``reason`` is a short code, ``detail`` one line)."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


def decode_payload(
    topic: str, payload: bytes, *, prefix: str = "pm", max_bytes: int = DEFAULT_MAX_PAYLOAD
) -> DeviceEvent:
    """One MQTT message -> one validated event, or :class:`DeadLetter` with the reason."""
    if len(payload) > max_bytes:
        raise DeadLetter("too_large", f"{len(payload)} bytes > {max_bytes}")
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DeadLetter("not_utf8", str(exc)) from None
    try:
        doc = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as exc:
        raise DeadLetter("not_json", str(exc)[:200]) from None
    if not isinstance(doc, dict):
        raise DeadLetter("not_an_object", type(doc).__name__)
    version = doc.get("schema_version")
    if version != SCHEMA_VERSION:
        raise DeadLetter("schema_version", f"got {str(version)[:40]!r}, speak {SCHEMA_VERSION}")
    try:
        event = event_adapter.validate_python(doc)
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
        if any(e["type"] == "union_tag_invalid" for e in errors):
            raise DeadLetter("unknown_type", str(doc.get("type"))[:64]) from None
        first = errors[0]
        loc = ".".join(str(p) for p in first["loc"])
        raise DeadLetter("invalid", f"{loc}: {first['msg']}"[:200]) from None
    except (RecursionError, ValueError) as exc:
        raise DeadLetter("invalid", str(exc)[:200]) from None
    expected = topic_for(event, prefix)
    if topic != expected:
        raise DeadLetter("wrong_topic", f"content belongs on {expected}"[:200])
    return event


class Intake:
    """A subscribed client that hands valid events to ``on_event`` (on paho's network thread)."""

    def __init__(
        self,
        url: BrokerURL,
        *,
        prefix: str,
        client_id: str,
        on_event: Callable[[DeviceEvent], None],
        max_bytes: int = DEFAULT_MAX_PAYLOAD,
        clean: bool = True,
    ) -> None:
        self.url = url
        self.prefix = prefix
        self.client_id = client_id
        self.on_event = on_event
        self.max_bytes = max_bytes
        self.clean = clean
        self.dead: Counter[str] = Counter()
        self.received = 0
        self.client: mqtt.Client | None = None
        self._subscribed = threading.Event()
        self.lock = threading.Lock()
        self._last: mqtt.MQTTMessageInfo | None = None

    def topics(self) -> list[tuple[str, int]]:
        return [(f"{self.prefix}/dev/#", 1), (f"{self.prefix}/gw/+/status", 1)]

    def _on_connect(self, c: mqtt.Client, _u: Any, _f: Any, rc: Any, _p: Any) -> None:
        if not rc.is_failure:
            c.subscribe(self.topics())  # again after every reconnect

    def _on_subscribe(self, _c: mqtt.Client, _u: Any, _mid: int, _rcs: Any, _p: Any) -> None:
        self._subscribed.set()

    def _on_message(self, c: mqtt.Client, _u: Any, msg: mqtt.MQTTMessage) -> None:
        with self.lock:
            self.received += 1
            try:
                event = decode_payload(
                    msg.topic, bytes(msg.payload), prefix=self.prefix, max_bytes=self.max_bytes
                )
            except DeadLetter as bad:
                self.dead[bad.reason] += 1
                c.publish(
                    f"{self.prefix}/deadletter",
                    json.dumps(
                        {
                            "topic": msg.topic,
                            "reason": bad.reason,
                            "detail": bad.detail,
                            "bytes": len(msg.payload),
                            "head": msg.payload[:120].decode("utf-8", "replace"),
                        },
                        ensure_ascii=False,
                    ),
                    qos=1,
                )
                return
            self.on_event(event)

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

    def stop(self, timeout: float = 10.0) -> None:
        """Disconnect once what we published has gone out (QoS 1 acks arrive in order)."""
        if self._last is not None:
            with contextlib.suppress(RuntimeError, ValueError):  # not connected: nothing can go out
                self._last.wait_for_publish(timeout)
        if self.client is not None:
            self.client.disconnect()
            self.client.loop_stop()
            self.client = None
