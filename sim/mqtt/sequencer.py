"""Put events back in the order they were published, whatever order the broker delivered them in.

During ``pmsim run`` each estate has its own MQTT connection, so events of different estates
overtake each other on the way. The run knows the order it published in, and feeds the engine in
exactly that order, so its alerts are byte-identical to a ``--broker none`` run. What never arrives
is reported as lost, by device and sequence number. An event published twice on purpose (fault
injection) is expected twice; a copy beyond what was published is a broker redelivery, dropped.

When the engine runs in a process of its own (:mod:`sim.mqtt.enginehost`) the simulation's word of
what it published comes in batches, so an event often arrives before it is expected. With
``hold=True`` such an event waits (at most ``hold_limit`` of them; beyond that an unexpected copy is
dropped as a duplicate) and copies nobody expected are counted as duplicates at the end.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterable

from devices.events import DeviceEvent

__all__ = ["Sequencer"]


class Sequencer:
    def __init__(
        self, feed: Callable[[DeviceEvent], None], *, hold: bool = False, hold_limit: int = 0
    ) -> None:
        self.feed = feed
        self.hold = hold
        self.hold_limit = hold_limit
        self._order: deque[str] = deque()
        self._expected: dict[str, int] = {}  # published copies not yet fed
        self._early: dict[str, DeviceEvent] = {}
        self._arrived: dict[str, int] = {}  # copies arrived and not yet fed
        self._cond = threading.Condition()
        self.fed = 0
        self.duplicates = 0
        self.lost: list[str] = []

    def expect(self, event_id: str) -> None:
        """The simulation is about to publish this event."""
        self.expect_many((event_id,))

    def expect_many(self, event_ids: Iterable[str]) -> None:
        """The simulation published (or is about to publish) these events, in this order."""
        with self._cond:
            for event_id in event_ids:
                self._order.append(event_id)
                self._expected[event_id] = self._expected.get(event_id, 0) + 1
            if self.hold:
                self._drain()

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

    def wait_until(self, ready: Callable[[], bool], timeout: float) -> bool:
        """Back-pressure on whatever the engine's progress changes: wait until ``ready()``
        (checked as events are fed, and every 50 ms); False on timeout."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while not ready():
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(min(left, 0.05))
        return True

    def arrived(self, event: DeviceEvent) -> None:
        """An event came off the broker (network thread)."""
        with self._cond:
            eid = event.event_id
            have = self._arrived.get(eid, 0)
            if have >= self._expected.get(eid, 0) and (
                not self.hold or len(self._early) >= self.hold_limit
            ):
                self.duplicates += 1
                return
            self._arrived[eid] = have + 1
            self._early[eid] = event
            self._drain()

    def _take(self, eid: str) -> None:
        """One expected copy of ``eid`` is done with (fed or lost)."""
        left = self._expected[eid] - 1
        if left:
            self._expected[eid] = left
        else:
            del self._expected[eid]

    def _drain(self) -> None:
        while self._order and self._arrived.get(self._order[0], 0) > 0:
            eid = self._order.popleft()
            self._take(eid)
            have = self._arrived[eid] - 1
            event = self._early[eid]
            if have:
                self._arrived[eid] = have
            else:
                del self._arrived[eid]
                if eid not in self._expected:
                    del self._early[eid]
            self.feed(event)
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
                if self._arrived.get(eid, 0) > 0:
                    self._drain()
                else:
                    self._order.popleft()
                    self._take(eid)
                    self.lost.append(eid)
            self.duplicates += sum(self._arrived.values())  # held copies nobody published
            self._arrived.clear()
            self._early.clear()
            return list(self.lost)
