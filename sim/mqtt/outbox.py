"""Publishing the engine's records (alerts, work orders) with flow control.

The engine runs on the network thread of the client that receives events, and cannot wait there
for acknowledgements. Records go into a queue; a thread of their own publishes them on a
connection of their own, at most ``window`` unacknowledged at a time (paho reuses message ids past
65,535 outstanding and then drops messages: never get near that). While the broker is away paho
keeps QoS 1 messages and sends them again on reconnect. ``on_ack(tag)`` tells the owner which
record the broker took (``rules serve`` journals it, so a restart does not publish it twice).
With a ``signer`` every record carries its signature as an MQTT 5 user property
(:mod:`sim.mqtt.signing`); the payload is the same bytes either way.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.reasoncodes import ReasonCode

from sim.errors import BadInput
from sim.mqtt.client import connect, protocol_name
from sim.mqtt.signing import Signer
from sim.mqtt.url import BrokerURL

__all__ = ["Outbox", "record_topic"]

_STOP = object()


def record_topic(prefix: str, record: Mapping[str, Any]) -> str:
    """Where an engine record goes: alerts by estate and rule, work orders by estate."""
    if record["record"] == "alert":
        return f"{prefix}/alerts/{record['labels'].get('estate', '-')}/{record['rule_id']}"
    return f"{prefix}/workorders/{record.get('estate') or '-'}"


class Outbox:
    def __init__(
        self,
        url: BrokerURL,
        client_id: str,
        window: int = 1000,
        on_ack: Callable[[int], None] | None = None,
        signer: Signer | None = None,
    ) -> None:
        self.window = window
        self.signer = signer
        self.on_ack = on_ack
        self._q: queue.Queue[Any] = queue.Queue()
        self._cond = threading.Condition()
        self._unacked = 0
        self._tags: dict[int, int | None] = {}  # message id -> tag, until acknowledged
        self._early: set[int] = set()  # acknowledged before publish() returned its id
        self.sent = 0
        self.failed = 0

        def setup(c: mqtt.Client) -> None:
            c.on_publish = self._on_publish
            c.max_inflight_messages_set(window)
            c.max_queued_messages_set(0)  # 0 = keep everything while the broker is away

        self.client = connect(url, client_id, setup=setup)
        if signer is not None and protocol_name(self.client) != "5":
            self.client.disconnect()
            self.client.loop_stop()
            raise BadInput(
                f"broker {url}: signing needs MQTT 5 (the signature is a user property); "
                "this broker speaks 3.1.1 only"
            )
        self._thread = threading.Thread(target=self._run, name="pmsim-outbox", daemon=True)
        self._thread.start()

    def _on_publish(self, _c: mqtt.Client, _u: Any, mid: int, rc: ReasonCode, _p: Any) -> None:
        tag: int | None = None
        with self._cond:
            self._unacked -= 1
            if rc.is_failure:
                self.failed += 1
            if self.on_ack is not None:
                if mid in self._tags:
                    tag = self._tags.pop(mid)
                else:
                    self._early.add(mid)
            self._cond.notify_all()
        if tag is not None and self.on_ack is not None:
            self.on_ack(tag)

    def _sent(self, mid: int, tag: int | None) -> None:
        """Pair a message id with its tag; the acknowledgement may already have come."""
        with self._cond:
            if mid not in self._early:
                self._tags[mid] = tag
                return
            self._early.discard(mid)
        if tag is not None and self.on_ack is not None:
            self.on_ack(tag)

    def put(self, topic: str, payload: str, retain: bool = False, tag: int | None = None) -> None:
        """Any thread; never blocks. ``tag`` comes back through ``on_ack``."""
        self._q.put((topic, payload, retain, tag))

    def _run(self) -> None:
        while True:
            item = self._q.get()
            if item is _STOP:
                return
            topic, payload, retain, tag = item
            with self._cond:
                while self._unacked >= self.window:
                    self._cond.wait(1.0)
                self._unacked += 1
            props = self.signer.properties(payload) if self.signer is not None else None
            info = self.client.publish(topic, payload, qos=1, retain=retain, properties=props)
            # NO_CONN: the broker is away; paho keeps the message and sends it on reconnect.
            if info.rc not in (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_NO_CONN):
                with self._cond:
                    self._unacked -= 1
                    self.failed += 1
            elif self.on_ack is not None:
                self._sent(info.mid, tag)
            self.sent += 1

    def close(self, timeout: float = 30.0) -> bool:
        """Publish what is queued, wait for the acknowledgements, disconnect. False on timeout."""
        self._q.put(_STOP)
        self._thread.join(timeout)
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._unacked > 0 and time.monotonic() < deadline:
                self._cond.wait(0.5)
            done = self._unacked == 0
        self.client.disconnect()
        self.client.loop_stop()
        return done
