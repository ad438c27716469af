"""Heartbeats as a schedule: every installed device beats at ``t0 + k * period``, and nobody steps
those beats through SimPy one by one.

A :class:`BeatClock` holds, for each device, the time of its next beat (a heap ordered by time,
then by the order devices joined: deterministic ties). Beats are materialised only when someone
needs them: :meth:`BeatClock.flush` hands every beat due up to a time to its device, in time order,
before anything else the world emits at that time. Whoever emits (a device, a gateway, the staff
app) flushes first, so the stream that leaves the world is the one a per-beat SimPy process gave,
with per-device sequence numbers gap-free across heartbeats and other events. A device skips the
beats that fall while it is silent, exactly as a stepped process would.
"""

from __future__ import annotations

import heapq
from typing import Protocol

__all__ = ["BeatClock", "Beating"]


class Beating(Protocol):
    """What the clock needs of a device."""

    def beat(self, t: float) -> None:
        """Send the heartbeat due at true time ``t`` (or nothing, while silent)."""


class BeatClock:
    """The district's heartbeat schedule (one per simulated world)."""

    __slots__ = ("_flushing", "_heap", "_joined", "beats")

    def __init__(self) -> None:
        # (next beat time, join order, beat index k, t0, period, device)
        self._heap: list[tuple[float, int, int, float, float, Beating]] = []
        self._joined = 0
        self._flushing = False
        self.beats = 0  # beats handed out so far (silent devices' skipped ones included)

    def join(self, device: Beating, t0: float, period: float) -> None:
        """``device`` beats at ``t0``, ``t0 + period``, ... from now on."""
        if period <= 0:
            raise ValueError("heartbeat period must be positive")
        heapq.heappush(self._heap, (t0, self._joined, 0, t0, period, device))
        self._joined += 1

    def flush(self, upto: float, *, inclusive: bool = True) -> None:
        """Hand out every beat due at or before ``upto`` (before it, if not ``inclusive``).

        Re-entrant calls (a beat's delivery flushing again) return at once: the outer call is
        already handing beats out in order."""
        if self._flushing:
            return
        heap = self._heap
        self._flushing = True
        try:
            while heap and (heap[0][0] < upto or (inclusive and heap[0][0] == upto)):
                t, order, k, t0, period, device = heap[0]
                nxt = t0 + (k + 1) * period  # from t0, not accumulated: no drift over months
                heapq.heapreplace(heap, (nxt, order, k + 1, t0, period, device))
                self.beats += 1
                device.beat(t)
        finally:
            self._flushing = False

    def __len__(self) -> int:
        return len(self._heap)
