"""Estate gateways: every device of an estate reaches the outside world through one.

While connected, events pass straight through. While disconnected, they wait in a bounded
store-and-forward buffer and go out, late but in order, on reconnection; overflow drops the oldest
(counted, and recorded in the truth ledger as a gateway outage with the number lost).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Generator
from typing import Any, Literal

import numpy as np
import simpy

from devices.base import Clock
from devices.events import DeviceEvent, GatewayStatus, event_id
from devices.liveness import BeatRun
from sim.world.scenario import GatewaySettings
from sim.world.truth import TruthLedger

__all__ = ["Gateway"]


class Gateway:
    def __init__(
        self,
        env: simpy.Environment,
        estate: str,
        clock: Clock,
        settings: GatewaySettings,
        rng: np.random.Generator,
        deliver: Callable[[DeviceEvent], None],
        truth: TruthLedger,
        before_change: Callable[[], None] | None = None,
        deliver_beat: Callable[[BeatRun, int], None] | None = None,
    ) -> None:
        self.env = env
        self._before_change = before_change  # e.g. heartbeats due before a disconnect go out
        self._deliver_beat = deliver_beat
        self.estate = estate
        self.device_id = f"{estate}-gw"
        self.clock = clock
        self.settings = settings
        self.rng = rng
        self._deliver = deliver
        self.truth = truth
        self.online = False
        self.seq = 0
        self._buffer: deque[DeviceEvent] = deque()
        self.dropped = 0

    def start(self) -> None:
        self._set_online(True)
        if self.settings.mean_days_between_disconnects > 0:
            self.env.process(self._disconnects())

    def forward(self, event: DeviceEvent) -> None:
        if self.online:
            self._deliver(event)
            return
        if len(self._buffer) >= self.settings.buffer_events:
            if not self._buffer:
                self.dropped += 1
                return
            self._buffer.popleft()
            self.dropped += 1
        self._buffer.append(event)

    def forward_beat(self, run: BeatRun, j: int) -> bool:
        """Beat ``j`` of a device's run, straight through while online; False while offline (the
        device then sends it as an event of its own, into the buffer)."""
        if not self.online or self._deliver_beat is None:
            return False
        self._deliver_beat(run, j)
        return True

    def _status(self, status: Literal["online", "offline"]) -> GatewayStatus:
        now = round(self.env.now, 3)
        ev = GatewayStatus(
            event_id=event_id(self.device_id, self.seq),
            device_id=self.device_id,
            device_kind="gateway",
            estate=self.estate,
            building="-",
            time=self.clock.at(now),
            sim_seconds=now,
            seq=self.seq,
            status=status,
        )
        self.seq += 1
        return ev

    def _set_online(self, online: bool) -> str:
        # The offline status is the MQTT last will: the broker, not the gateway, delivers it.
        if self._before_change is not None:
            self._before_change()
        self.online = online
        ev = self._status("online" if online else "offline")
        self._deliver(ev)
        if online:
            while self._buffer:
                self._deliver(self._buffer.popleft())
        return ev.event_id

    def _disconnects(self) -> Generator[simpy.Event, Any, None]:
        s = self.settings
        while True:
            yield self.env.timeout(
                float(self.rng.exponential(s.mean_days_between_disconnects * 86400))
            )
            rec = self.truth.open(
                "incident", "gateway_outage", self.env.now, self.estate, severity=1
            )
            rec.covered_by = self.device_id
            dropped_before = self.dropped
            rec.cause.event_ids.append(self._set_online(False))
            yield self.env.timeout(float(self.rng.exponential(s.mean_disconnect_minutes * 60)))
            rec.cause.event_ids.append(self._set_online(True))
            rec.end_s = self.env.now
            rec.detail["events_lost"] = self.dropped - dropped_before
