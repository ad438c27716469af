"""Heartbeats as a schedule: every installed device beats at ``t0 + k * period``, and nobody steps
those beats through SimPy one by one.

A :class:`BeatClock` holds, for each device, the time of its next beat (a heap ordered by time,
then by the order devices joined: deterministic ties). Beats are materialised only when someone
needs them: :meth:`BeatClock.flush` hands every beat due up to a time to its device, in time order,
before anything else the world emits at that time. Whoever emits (a device, a gateway, the staff
app) flushes first, so the stream that leaves the world is the one a per-beat SimPy process gave,
with per-device sequence numbers gap-free across heartbeats and other events. A device skips the
beats that fall while it is silent, exactly as a stepped process would.

A device whose gateway is online keeps its beats as a :class:`BeatRun`: first sequence number,
grid index, period, clock skew and count. Nothing is built per beat unless a consumer asks:
:meth:`BeatRun.event` materialises beat ``j`` as the very :class:`~devices.events.Heartbeat` a
stepped device would have sent (for the MQTT wire, an export, a rule that reads heartbeats). A run
ends when the device sends anything else, goes silent, loses its gateway, or the run ends.
"""

from __future__ import annotations

import heapq
from datetime import datetime
from typing import Any, Protocol

from devices.events import Heartbeat, event_id

__all__ = ["BeatClock", "BeatRun", "Beating", "RunOwner", "beat_stamp", "device_stamp", "envelope"]


def device_stamp(now: float, skew: float) -> float:
    """What a device whose clock is ``skew`` seconds off writes as ``sim_seconds`` at ``now``."""
    return round(max(0.0, now + skew), 3)


def beat_stamp(t0: float, k: int, period: float, skew: float) -> float:
    """The ``sim_seconds`` of grid beat ``k``: the device's stamp of true time ``t0 + k * period``."""
    return device_stamp(t0 + k * period, skew)


def envelope(device: RunOwner, seq: int, stamp: float) -> dict[str, Any]:
    """The fields every event of ``device`` carries: number ``seq``, stamped ``stamp``."""
    return {
        "event_id": event_id(device.device_id, seq),
        "device_id": device.device_id,
        "device_kind": device.kind,
        "estate": device.estate,
        "building": device.building,
        "floor": device.floor,
        "time": device.clock.at(stamp),
        "sim_seconds": stamp,
        "seq": seq,
    }


class _Clock(Protocol):
    def at(self, sim_seconds: float) -> datetime: ...


class RunOwner(Protocol):
    """The device a run belongs to (:class:`devices.base.Device`)."""

    @property
    def device_id(self) -> str: ...
    @property
    def kind(self) -> Any: ...
    @property
    def estate(self) -> str: ...
    @property
    def building(self) -> str: ...
    @property
    def floor(self) -> int | None: ...
    @property
    def clock(self) -> _Clock: ...


class Beating(Protocol):
    """What the clock needs of a device."""

    def beat(self, t: float, k: int) -> bool:
        """Send heartbeat ``k`` of the device's grid, due at true time ``t`` (or nothing, while
        silent); True parks the device (:meth:`BeatClock.settle` counts its beats later)."""


class BeatRun:
    """Consecutive heartbeats of one device: beat ``j`` (``0 <= j < count``) has sequence number
    ``first_seq + j`` and is due at true time ``t0 + (first_k + j) * period``, stamped by the
    device's clock (``skew``) exactly as :meth:`devices.base.Device.emit` stamps."""

    __slots__ = (
        "count",
        "device",
        "first_k",
        "first_seq",
        "order",
        "period",
        "quiet",
        "skew",
        "t0",
    )

    def __init__(
        self,
        device: RunOwner,
        first_seq: int,
        first_k: int,
        t0: float,
        period: float,
        skew: float,
        order: int = 0,
    ) -> None:
        self.device = device
        self.order = order  # the device's place among beats due at the same time
        self.quiet = False  # set by an engine that needs no beat of it but the first
        self.first_seq = first_seq
        self.first_k = first_k
        self.t0 = t0
        self.period = period
        self.skew = skew
        self.count = 0

    @property
    def device_id(self) -> str:
        return self.device.device_id

    def true_time(self, j: int) -> float:
        """When beat ``j`` was due on the simulation's clock (the device's skew aside)."""
        return self.t0 + (self.first_k + j) * self.period

    def stamp(self, j: int) -> float:
        """Beat ``j``'s ``sim_seconds`` (the same float expression the device evaluates)."""
        return beat_stamp(self.t0, self.first_k + j, self.period, self.skew)

    def event_id(self, j: int) -> str:
        return event_id(self.device.device_id, self.first_seq + j)

    def event(self, j: int) -> Heartbeat:
        """Beat ``j`` as the event a device stepped one beat at a time would have sent."""
        return Heartbeat(**envelope(self.device, self.first_seq + j, self.stamp(j)))

    def record(self) -> dict[str, Any]:
        """The run as a row of ``heartbeats.jsonl``: enough to materialise every beat again."""
        d = self.device
        return {
            "device_id": d.device_id,
            "device_kind": d.kind,
            "estate": d.estate,
            "building": d.building,
            "floor": d.floor,
            "first_seq": self.first_seq,
            "count": self.count,
            "start_s": self.stamp(0),
            "period_s": self.period,
            "t0_s": self.t0,
            "first_k": self.first_k,
            "skew_s": self.skew,
            "order": self.order,
        }


class BeatClock:
    """The district's heartbeat schedule (one per simulated world)."""

    __slots__ = ("_flushing", "_gen", "_heap", "_joined", "_parked", "beats")

    def __init__(self) -> None:
        # (next beat time, join order, beat index k, t0, period, generation, device)
        self._heap: list[tuple[float, int, int, float, float, int, Beating]] = []
        self._joined = 0
        self._flushing = False
        self._gen: dict[Beating, int] = {}
        self._parked: dict[Beating, tuple[int, int, float, float]] = {}  # order, next k, t0, period
        self.beats = 0  # beats handed out one by one so far (silent devices' skipped ones included)

    def join(self, device: Beating, t0: float, period: float) -> int:
        """``device`` beats at ``t0``, ``t0 + period``, ... from now on; returns its place in the
        order that breaks ties between beats due at the same time."""
        if period <= 0:
            raise ValueError("heartbeat period must be positive")
        order = self._joined
        self._gen[device] = 0
        heapq.heappush(self._heap, (t0, order, 0, t0, period, 0, device))
        self._joined += 1
        return order

    def flush(self, upto: float, *, inclusive: bool = True) -> None:
        """Hand out every beat due at or before ``upto`` (before it, if not ``inclusive``).

        Re-entrant calls (a beat's delivery flushing again) return at once: the outer call is
        already handing beats out in order. A device whose ``beat`` returns True is parked: its
        beats go on being due but are handed out no more until :meth:`settle`."""
        if self._flushing:
            return
        heap = self._heap
        self._flushing = True
        try:
            while heap and (heap[0][0] < upto or (inclusive and heap[0][0] == upto)):
                t, order, k, t0, period, gen, device = heap[0]
                if gen != self._gen[device]:  # left behind when the device was parked
                    heapq.heappop(heap)
                    continue
                nxt = t0 + (k + 1) * period  # from t0, not accumulated: no drift over months
                heapq.heapreplace(heap, (nxt, order, k + 1, t0, period, gen, device))
                self.beats += 1
                if device.beat(t, k):
                    self._gen[device] = gen + 1
                    self._parked[device] = (order, k + 1, t0, period)
        finally:
            self._flushing = False

    def settle(self, device: Beating, now: float, *, inclusive: bool = True) -> int:
        """Unpark ``device``: how many of its beats fell due while it was parked, up to ``now``
        (at or before; before, if not ``inclusive``). Its next beat is handed out again."""
        parked = self._parked.pop(device, None)
        if parked is None:
            return 0
        order, k, t0, period = parked
        first = k
        k = max(k, int((now - t0) // period) - 1)  # just below the boundary, then step to it
        while t0 + k * period < now or (inclusive and t0 + k * period == now):
            k += 1
        gen = self._gen[device]
        heapq.heappush(self._heap, (t0 + k * period, order, k, t0, period, gen, device))
        return k - first

    def __len__(self) -> int:
        return len(self._heap)
