"""Gaps in what a device sent: per-device sequence numbers that never arrived.

Every device numbers its events 0, 1, 2, ... with no gap (heartbeats included, see
:mod:`devices.liveness`), so a consumer that sees ``seq`` 7 after 5 knows 6 is missing. It may still
come: QoS 1 redelivers, and a gateway that was off line sends its buffer late. So a missing range
is only *open* at first; it becomes a gap when it is still missing once the device's own clock
(``sim_seconds`` of its later events) has moved ``lateness`` seconds past the event that revealed
it - the engine's allowed lateness, after which the engine would set it aside as late anyway -
or when the consumer stops (:meth:`GapTracker.finish`). A number seen before is a duplicate, not
a gap; a number below the first one seen from a device (the consumer started later) is ignored.

What a gap means: the broker or the device lost events - a broker killed before it saved them, a
stock Mosquitto's full queue, a gateway's overflowing buffer. The tracker only says so; the
events themselves are gone.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["MAX_OPEN", "Gap", "GapTracker"]

MAX_OPEN = 1000  # open ranges per device; past it the oldest is reported at once


@dataclass(frozen=True, slots=True)
class Gap:
    """Sequence numbers ``first`` to ``last`` (inclusive) of ``device_id`` never arrived."""

    device_id: str
    first: int
    last: int
    after: float  # sim_seconds of the event that revealed the gap

    @property
    def missing(self) -> int:
        return self.last - self.first + 1

    def json(self) -> str:
        return json.dumps(
            {
                "device_id": self.device_id,
                "first_seq": self.first,
                "last_seq": self.last,
                "missing": self.missing,
                "after_sim_seconds": self.after,
            },
            ensure_ascii=False,
        )


@dataclass(slots=True)
class _Device:
    high: int  # the highest sequence number seen
    latest: float  # the latest sim_seconds seen
    open: list[list[float]]  # [first, last, revealed at], in order of first


class GapTracker:
    """Per-device sequence numbers; ``report`` is called once per gap, when it is one."""

    def __init__(self, lateness: float, report: Callable[[Gap], None] | None = None) -> None:
        self.lateness = lateness
        self.report = report
        self._devices: dict[str, _Device] = {}
        self.gaps = 0  # gaps reported
        self.missing = 0  # events in them

    def see(self, device_id: str, seq: int, stamp: float) -> None:
        d = self._devices.get(device_id)
        if d is None:
            self._devices[device_id] = _Device(seq, stamp, [])
            return
        if stamp > d.latest:
            d.latest = stamp
        if seq > d.high:
            if seq > d.high + 1:
                d.open.append([d.high + 1, seq - 1, stamp])
                if len(d.open) > MAX_OPEN:
                    self._gap(device_id, d.open.pop(0))
            d.high = seq
        elif d.open:
            self._fill(d, seq)
        if d.open and d.open[0][2] + self.lateness < d.latest:
            self._expire(device_id, d)

    @staticmethod
    def _fill(d: _Device, seq: int) -> None:
        for i, r in enumerate(d.open):
            first, last = int(r[0]), int(r[1])
            if first <= seq <= last:
                parts = []
                if first < seq:
                    parts.append([first, seq - 1, r[2]])
                if seq < last:
                    parts.append([seq + 1, last, r[2]])
                d.open[i : i + 1] = parts
                return

    def _expire(self, device_id: str, d: _Device) -> None:
        keep = []
        for r in d.open:
            if r[2] + self.lateness < d.latest:
                self._gap(device_id, r)
            else:
                keep.append(r)
        d.open = keep

    def _gap(self, device_id: str, r: list[float]) -> None:
        gap = Gap(device_id, int(r[0]), int(r[1]), r[2])
        self.gaps += 1
        self.missing += gap.missing
        if self.report is not None:
            self.report(gap)

    def finish(self) -> None:
        """Report every range still open: nothing more will come."""
        for device_id, d in self._devices.items():
            for r in d.open:
                self._gap(device_id, r)
            d.open = []

    def summary(self) -> str:
        return f"{self.gaps} gaps, {self.missing} events missing"
