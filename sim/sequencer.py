"""Put events back in the order they were published, whatever order the broker delivered them in.

During ``pmsim run`` each estate has its own MQTT connection, so events of different estates
overtake each other on the way. The run knows the order it published in, and feeds the engine in
exactly that order, so its alerts are byte-identical to a ``--broker none`` run. What never arrives
is reported as lost, by device and sequence number.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable

from devices.events import DeviceEvent

__all__ = ["Sequencer"]


class Sequencer:
    def __init__(self, feed: Callable[[DeviceEvent], None]) -> None:
        self.feed = feed
        self._order: deque[str] = deque()
        self._expected: set[str] = set()
        self._early: dict[str, DeviceEvent] = {}
        self._cond = threading.Condition()
        self.fed = 0
        self.duplicates = 0
        self.lost: list[str] = []

    def expect(self, event_id: str) -> None:
        """The simulation is about to publish this event."""
        with self._cond:
            self._order.append(event_id)
            self._expected.add(event_id)

    def backlog(self) -> int:
        with self._cond:
            return len(self._order)

    def wait_backlog_below(self, limit: int, timeout: float) -> bool:
        """Back-pressure for the publisher: wait while too many events are still on their way."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(self._order) >= limit:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(min(left, 1.0))
        return True

    def arrived(self, event: DeviceEvent) -> None:
        """An event came off the broker (network thread)."""
        with self._cond:
            eid = event.event_id
            if eid not in self._expected or eid in self._early:
                self.duplicates += 1
                return
            self._early[eid] = event
            self._drain()

    def _drain(self) -> None:
        while self._order and self._order[0] in self._early:
            eid = self._order.popleft()
            self._expected.discard(eid)
            self.feed(self._early.pop(eid))
            self.fed += 1
        self._cond.notify_all()

    def finish(self, idle_timeout: float) -> list[str]:
        """Wait until every published event has arrived, or nothing has for ``idle_timeout``
        seconds; then skip what is missing (returned, and kept in ``lost``) and feed the rest."""
        with self._cond:
            last_fed = self.fed
            last_change = time.monotonic()
            while self._order:
                self._cond.wait(0.2)
                if self.fed != last_fed:
                    last_fed, last_change = self.fed, time.monotonic()
                elif time.monotonic() - last_change > idle_timeout:
                    break
            while self._order:
                eid = self._order[0]
                if eid in self._early:
                    self._drain()
                else:
                    self._order.popleft()
                    self._expected.discard(eid)
                    self.lost.append(eid)
            return list(self.lost)
