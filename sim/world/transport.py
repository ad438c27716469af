"""The seam between the simulated devices and whoever consumes their events.

A transport takes each event (with its topic) once, in delivery order. ``InProcessTransport`` hands
events straight to subscriber callables; the MQTT transport (a later issue) publishes them to a broker.
The run writes ``events.jsonl`` from what it delivers, whichever transport carried it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from devices.events import DeviceEvent, topic_for
from devices.liveness import BeatRun

__all__ = ["BeatSubscriber", "InProcessTransport", "RunSubscriber", "Subscriber", "Transport"]

Subscriber = Callable[[str, DeviceEvent], None]
BeatSubscriber = Callable[[BeatRun, int], None]  # beat j of a run, as it is sent
RunSubscriber = Callable[[BeatRun], None]  # a run that ended (every beat of it sent)


class Transport(Protocol):
    """What the world needs from a carrier of events."""

    def publish(self, event: DeviceEvent) -> None: ...

    def beat(self, run: BeatRun, j: int) -> None:
        """Heartbeat ``j`` of ``run`` (:mod:`devices.liveness`), in its place in the stream."""

    def run_closed(self, run: BeatRun) -> None:
        """``run`` will get no more beats."""

    def close(self) -> None: ...


class InProcessTransport:
    """Synchronous fan-out to subscribers: the same events, no broker (``--broker none``)."""

    def __init__(self, prefix: str = "pm") -> None:
        self.prefix = prefix
        self._subscribers: list[Subscriber] = []
        self._beat_subscribers: list[BeatSubscriber] = []
        self._run_subscribers: list[RunSubscriber] = []
        self.published = 0

    def subscribe(self, fn: Subscriber) -> None:
        self._subscribers.append(fn)

    def subscribe_beats(self, fn: BeatSubscriber) -> None:
        """Heartbeats as runs: nothing is built per beat unless the subscriber builds it."""
        self._beat_subscribers.append(fn)

    def subscribe_runs(self, fn: RunSubscriber) -> None:
        """Every heartbeat run as it ends."""
        self._run_subscribers.append(fn)

    def beat(self, run: BeatRun, j: int) -> None:
        self.published += 1
        for fn in self._beat_subscribers:
            fn(run, j)

    def run_closed(self, run: BeatRun) -> None:
        for fn in self._run_subscribers:
            fn(run)

    def publish(self, event: DeviceEvent) -> None:
        topic = topic_for(event, self.prefix)
        self.published += 1
        for fn in self._subscribers:
            fn(topic, event)

    def close(self) -> None:
        self._subscribers.clear()
        self._beat_subscribers.clear()
        self._run_subscribers.clear()
