"""Publishing the engine's records (alerts, work orders) with flow control.

The engine runs on the network thread of the client that receives events, and cannot wait there
for acknowledgements. Records go into a queue; a thread of their own publishes them on a
connection of their own, at most ``window`` unacknowledged at a time (paho reuses message ids past
65,535 outstanding and then drops messages: never get near that).
"""

from __future__ import annotations

import queue
import threading
import time
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.reasoncodes import ReasonCode

from sim.mqttclient import connect
from sim.mqtturl import BrokerURL

__all__ = ["Outbox"]

_STOP = object()


class Outbox:
    def __init__(self, url: BrokerURL, client_id: str, window: int = 1000) -> None:
        self.window = window
        self._q: queue.Queue[Any] = queue.Queue()
        self._cond = threading.Condition()
        self._unacked = 0
        self.sent = 0
        self.failed = 0

        def setup(c: mqtt.Client) -> None:
            c.on_publish = self._on_publish
            c.max_inflight_messages_set(window)

        self.client = connect(url, client_id, setup=setup)
        self._thread = threading.Thread(target=self._run, name="pmsim-outbox", daemon=True)
        self._thread.start()

    def _on_publish(self, _c: mqtt.Client, _u: Any, _mid: int, rc: ReasonCode, _p: Any) -> None:
        with self._cond:
            self._unacked -= 1
            if rc.is_failure:
                self.failed += 1
            self._cond.notify_all()

    def put(self, topic: str, payload: str, retain: bool = False) -> None:
        """Any thread; never blocks."""
        self._q.put((topic, payload, retain))

    def _run(self) -> None:
        while True:
            item = self._q.get()
            if item is _STOP:
                return
            topic, payload, retain = item
            with self._cond:
                while self._unacked >= self.window:
                    self._cond.wait(1.0)
                self._unacked += 1
            info = self.client.publish(topic, payload, qos=1, retain=retain)
            if info.rc != mqtt.MQTT_ERR_SUCCESS:
                with self._cond:
                    self._unacked -= 1
                    self.failed += 1
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
