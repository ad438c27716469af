"""What a run writes of the device traffic it carried.

``events.jsonl`` holds every event but the heartbeats that travelled in runs, one JSON object a line,
in delivery order; ``events.delivered`` the simulated time each of those lines was delivered (a
gateway's buffer delivers late, a skewed clock stamps early or late), one number a line; and
``heartbeats.jsonl`` one line per heartbeat run (:class:`devices.liveness.BeatRun`): device, first
sequence number, count, first stamp, period and what it takes to rebuild every beat and its place
in the stream (:func:`sim.files.beatstream.interleave`).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from typing import IO

from devices.events import DeviceEvent, event_json
from devices.liveness import BeatRun

__all__ = ["DELIVERED", "EVENTS", "HEARTBEATS", "EventLog"]

EVENTS = "events.jsonl"
DELIVERED = "events.delivered"
HEARTBEATS = "heartbeats.jsonl"


def _zero() -> float:
    return 0.0


class EventLog:
    """Subscriber that writes a run's events and heartbeat runs and counts them by kind and type."""

    def __init__(self, events: IO[str], delivered: IO[str], runs: IO[str]) -> None:
        self.fh = events
        self.delivered = delivered
        self.runs = runs
        self.counts: Counter[tuple[str, str]] = Counter()
        self.now: Callable[[], float] = _zero  # the simulation's clock, once there is one

    def __call__(self, topic: str, event: DeviceEvent) -> None:
        self.write_text(event, event_json(event))

    def write_text(self, event: DeviceEvent, text: str) -> None:
        """The event with its JSON already made (by the MQTT transport, which sends the same)."""
        self.fh.write(text)
        self.fh.write("\n")
        self.delivered.write(repr(float(self.now())))
        self.delivered.write("\n")
        self.counts[(event.device_kind, event.type)] += 1

    def run_closed(self, run: BeatRun) -> None:
        self.runs.write(json.dumps(run.record(), ensure_ascii=False, separators=(",", ":")))
        self.runs.write("\n")
        self.counts[(str(run.device.kind), "heartbeat")] += run.count
