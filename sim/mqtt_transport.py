"""Device events onto a real broker: one MQTT connection per estate gateway.

Each gateway connects when its estate's first event goes out, with a retained last will on
``{prefix}/gw/{estate}/status`` that marks it offline if the connection dies. Events are published
at QoS 1 (or 0) with a bounded window of unacknowledged messages: past it, the simulation waits,
so neither paho's queue nor the broker's grows without bound.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.reasoncodes import ReasonCode

from devices.events import DeviceEvent, GatewayStatus, topic_for
from sim.errors import BadInput
from sim.mqttclient import Will, connect, protocol_name
from sim.mqtturl import BrokerURL

__all__ = ["MqttTransport"]


class MqttTransport:
    """The :class:`~sim.transport.Transport` that publishes to a broker."""

    def __init__(
        self,
        url: BrokerURL,
        *,
        prefix: str = "pm",
        qos: int = 1,
        window: int = 2000,
        run_id: str = "run",
    ) -> None:
        self.url = url
        self.prefix = prefix
        self.qos = qos
        self.window = window
        self.run_id = run_id
        self._clients: dict[str, mqtt.Client] = {}
        self._taps: list[Callable[[str, DeviceEvent], None]] = []
        self._cond = threading.Condition()
        self._unacked = 0
        self.published = 0
        self.acked = 0
        self.failed = 0
        self.protocol = "?"

    def subscribe(self, fn: Callable[[str, DeviceEvent], None]) -> None:
        """A local tap: called with every event as it is published (``events.jsonl``, sequencing)."""
        self._taps.append(fn)

    # -- publishing ---------------------------------------------------------------------------

    def _on_publish(self, _c: mqtt.Client, _u: Any, _mid: int, rc: ReasonCode, _p: Any) -> None:
        with self._cond:
            self._unacked -= 1
            self.acked += 1
            if rc.is_failure:
                self.failed += 1
            self._cond.notify_all()

    def _client_for(self, event: DeviceEvent) -> mqtt.Client:
        client = self._clients.get(event.estate)
        if client is not None:
            return client
        will = GatewayStatus(
            event_id=f"{event.estate}-gw:will-{self.run_id}",
            device_id=f"{event.estate}-gw",
            device_kind="gateway",
            estate=event.estate,
            building="-",
            time=event.time,
            sim_seconds=event.sim_seconds,
            seq=0,
            status="offline",
        )

        def setup(c: mqtt.Client) -> None:
            c.on_publish = self._on_publish
            c.max_inflight_messages_set(self.window)
            c.max_queued_messages_set(0)

        client = connect(
            self.url,
            f"pmsim-{self.run_id}-gw-{event.estate}",
            will=Will(topic_for(will, self.prefix), will.model_dump_json().encode(), 1, True),
            setup=setup,
        )
        self.protocol = protocol_name(client)
        self._clients[event.estate] = client
        return client

    def publish(self, event: DeviceEvent) -> None:
        topic = topic_for(event, self.prefix)
        for tap in self._taps:
            tap(topic, event)
        client = self._client_for(event)
        payload = event.model_dump_json().encode()
        if self.qos > 0:
            with self._cond:
                while self._unacked >= self.window:
                    if not self._cond.wait(30.0):
                        raise BadInput(f"broker {self.url}: no acknowledgement for 30 s")
                self._unacked += 1
        info = client.publish(topic, payload, qos=self.qos, retain=isinstance(event, GatewayStatus))
        if info.rc != mqtt.MQTT_ERR_SUCCESS and info.rc != mqtt.MQTT_ERR_NO_CONN:
            raise BadInput(f"broker {self.url}: publish failed: {mqtt.error_string(info.rc)}")
        self.published += 1

    def flush(self, timeout: float = 60.0) -> bool:
        """Wait until the broker acknowledged everything (QoS 1); False on timeout."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._unacked > 0:
                left = deadline - time.monotonic()
                if left <= 0 or (
                    not self._cond.wait(min(left, 1.0)) and time.monotonic() >= deadline
                ):
                    return False
        return True

    def close(self) -> None:
        self.flush()
        for client in self._clients.values():
            client.disconnect()
            client.loop_stop()
        self._clients.clear()
