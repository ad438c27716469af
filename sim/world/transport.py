"""The seam between the simulated devices and whoever consumes their events.

A transport takes each event (with its topic) once, in delivery order. ``InProcessTransport`` hands
events straight to subscriber callables; the MQTT transport (a later issue) publishes them to a broker.
The run writes ``events.jsonl`` from what it delivers, whichever transport carried it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from devices.events import DeviceEvent, topic_for

__all__ = ["InProcessTransport", "Subscriber", "Transport"]

Subscriber = Callable[[str, DeviceEvent], None]


class Transport(Protocol):
    """What the world needs from a carrier of events."""

    def publish(self, event: DeviceEvent) -> None: ...

    def close(self) -> None: ...


class InProcessTransport:
    """Synchronous fan-out to subscribers: the same events, no broker (``--broker none``)."""

    def __init__(self, prefix: str = "pm") -> None:
        self.prefix = prefix
        self._subscribers: list[Subscriber] = []
        self.published = 0

    def subscribe(self, fn: Subscriber) -> None:
        self._subscribers.append(fn)

    def publish(self, event: DeviceEvent) -> None:
        topic = topic_for(event, self.prefix)
        self.published += 1
        for fn in self._subscribers:
            fn(topic, event)

    def close(self) -> None:
        self._subscribers.clear()
