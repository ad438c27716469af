"""Event-time safety: no single event, however its clock is set, can move the engine's time.

The engine's clock is the latest event time seen (``max_seen``); the watermark follows it at the
allowed lateness. One event dated a year ahead would carry both with it and leave every real event
late. So an event more than ``max_skew`` away from ``max_seen`` (ahead or behind) is a *suspect*:
set aside with reason ``clock_skew`` (counted, reported to ``on_aside``), never moving time.

Time may still really jump (a whole district silent for longer than ``max_skew``). So the devices
of the last :data:`RECENT` events vote: when more of them (and at least :data:`QUORUM`) have moved
to a suspect's clock (their latest event within ``max_skew`` of it, none near the engine's) than
still have an event near the engine's, the suspects' clock wins; the kept suspects on the way to it (the last
:data:`SUSPECTS`) are readmitted (counted ``readmitted``) and consumed as
if they had never been set aside. A gateway stamping one estate's events a year ahead, or 1% of
the events skewed, never wins a vote. A stream from a single device (a rule test) has no second
clock to disagree with: its jumps are taken at once.

The first event cannot poison the clock either: until the engine has processed an event (the
clock is *provisional*), the vote may also go backwards, and the buffered events of the old clock
more than ``max_skew`` away from the new one are then set aside as ``clock_skew``. Nothing was
processed yet, so nothing is undone.

With a wall clock (``rules serve --wall-clock``), an event whose ``time`` is more than ``max_skew``
from the wall clock is set aside as well: an event dated 1970 or 2099 moves nothing.

:func:`sanitize` checks a restored snapshot: a clock that is not finite is refused; one that rests
on a single device's event more than ``max_skew`` ahead of every other device (a snapshot saved by
an older pmsim after a poisoned event) is put back to the other devices' clock, the poisoned events
set aside.
"""

from __future__ import annotations

import heapq
import math
from collections import deque
from collections.abc import Callable
from datetime import datetime
from typing import Any, Protocol

from devices.events import DeviceEvent

__all__ = ["QUORUM", "RECENT", "SUSPECTS", "Aside", "Clock", "default_max_skew", "sanitize"]

QUORUM = 2  # fewest devices whose agreeing clocks may move time by more than max_skew
RECENT = 64  # the events whose devices vote on the clock
SUSPECTS = 256  # events set aside for their clock kept as evidence of a real jump

Aside = Callable[[DeviceEvent, str, str], None]  # (event, reason, detail)


class Engine(Protocol):
    """What of :class:`rules.engine.Engine` the clock reads (it imports this module)."""

    s: Any
    lateness: float
    quiet_skew: float | None
    clock: Clock


def default_max_skew(lateness: float) -> float:
    """An hour (four heartbeat intervals: a live district is never silent that long), or 60
    allowed latenesses if that is longer. One event can move the clock no further; a real jump
    waits for the vote, then loses nothing."""
    return max(3600.0, 60.0 * lateness)


def _device(event_id: str) -> str:
    return event_id.rpartition(":")[0] or event_id


class Clock:
    """The engine's guard on event time (transient: rebuilt on restore by :func:`sanitize`)."""

    def __init__(self, max_skew: float) -> None:
        self.max_skew = max_skew
        self.wall: Callable[[], datetime] | None = None  # rules serve --wall-clock
        self.on_aside: Aside | None = None
        self.first_device: str | None = None
        self.many = False  # more than one device seen
        self.suspects: list[DeviceEvent] = []
        self.recent: deque[tuple[float, str]] = deque(maxlen=RECENT)  # (time, device)

    def aside(self, engine: Engine, event: DeviceEvent, reason: str, detail: str) -> None:
        engine.s.stats[reason] += 1
        if self.on_aside is not None:
            self.on_aside(event, reason, detail)

    def admit(
        self, engine: Engine, event: DeviceEvent, now: float | None = None
    ) -> list[DeviceEvent]:
        """The events to consume now, in order: ``[event]`` in the common case, ``[]`` if it is
        set aside, or the agreeing suspects when their quorum moves time. ``now``: when the
        event was delivered on the simulation's clock (a run or a replay of one): that clock then
        bounds how far ahead it may be, and one behind is late as before (no vote: the delivery
        clock is the truth); with quiet heartbeat runs and no ``now`` the event is the
        simulation's own first beat of a run."""
        s = engine.s
        if now is not None or engine.quiet_skew is not None:  # a run's or a replay's traffic
            if now is not None and event.sim_seconds - now > self.max_skew:
                early = f"{event.sim_seconds - now:+.0f} s from its delivery"
                self.aside(engine, event, "clock_skew", early)
                return []
            return [event]
        device = event.device_id
        if self.first_device is None:
            self.first_device = device
        elif device != self.first_device:
            self.many = True
        if self.wall is not None:
            off = (event.time - self.wall()).total_seconds()
            if abs(off) > self.max_skew:
                self.aside(engine, event, "clock_skew", f"{off:+.0f} s from the wall clock")
                return []
        t = event.sim_seconds
        self.recent.append((t, device))
        if not math.isfinite(s.max_seen) or abs(t - s.max_seen) <= self.max_skew:
            return [event]
        ahead = t > s.max_seen
        if ahead and not self.many:
            return [event]  # one device, one clock: nothing to disagree with
        anchored = _anchored(engine)
        detail = f"{t - s.max_seen:+.0f} s from the engine's clock"
        if not ahead and anchored:
            self.aside(engine, event, "clock_skew", detail)
            return []
        self.suspects = [
            e for e in self.suspects if abs(e.sim_seconds - s.max_seen) > self.max_skew
        ]
        self.suspects.append(event)
        del self.suspects[:-SUSPECTS]
        if self._moved(t, s.max_seen) <= max(self._agree(s.max_seen), QUORUM - 1):
            self.aside(engine, event, "clock_skew", detail)
            return []
        lo, hi = sorted((s.max_seen, t))  # the suspects on the way to the new clock come too
        near = [
            e for e in self.suspects if lo - self.max_skew <= e.sim_seconds <= hi + self.max_skew
        ]
        self.suspects = [e for e in self.suspects if e not in near]
        if not anchored:
            _recentre(engine, max(e.sim_seconds for e in near), self)
        s.stats["readmitted"] += len(near) - 1  # the one that made the quorum was never set aside
        s.stats["clock_skew"] -= len(near) - 1
        near.sort(key=lambda e: (e.sim_seconds, e.device_id, e.seq))
        return near

    def _agree(self, t: float) -> int:
        """How many devices among the recent events have a clock within ``max_skew`` of ``t``."""
        return len({d for u, d in self.recent if abs(u - t) <= self.max_skew})

    def _moved(self, t: float, old: float) -> int:
        """How many devices among the recent events are now near ``t``, none of their events
        near the ``old`` clock."""
        latest = {d: u for u, d in self.recent}
        near = {d for d, u in latest.items() if abs(u - t) <= self.max_skew}
        return len(near - {d for u, d in self.recent if abs(u - old) <= self.max_skew})


def _anchored(engine: Engine) -> bool:
    """Has the engine processed an event (taken one out of its reorder buffer)?"""
    s = engine.s
    return bool(s.stats["consumed"] > len(s.buffer))


def _recentre(engine: Engine, new: float, clock: Clock) -> None:
    """Nothing processed yet: the buffered events far from ``new`` go, and the clock restarts."""
    s = engine.s
    keep = []
    for item in s.buffer:
        if abs(item[0] - new) > clock.max_skew:
            s.stats["consumed"] -= 1
            clock.aside(engine, item[4], "clock_skew", f"{item[0] - new:+.0f} s from the quorum")
        else:
            keep.append(item)
    heapq.heapify(keep)
    s.buffer = keep
    s.max_seen = max((item[0] for item in keep), default=float("-inf"))
    s.watermark = float("-inf")
    s.epoch = None if not keep else s.epoch


def sanitize(engine: Engine) -> None:
    """Check a restored snapshot's clock; refuse (``ValueError``) one that is not finite, and put
    back one that rests on a single device far ahead of all the others."""
    s = engine.s
    for name in ("watermark", "max_seen"):
        value = getattr(s, name)
        if not isinstance(value, int | float) or math.isnan(value) or value == math.inf:
            raise ValueError(f"the snapshot's {name} is {value!r}, not a time")
    clock = engine.clock
    devices = {_device(i) for i in s.seen} | set(s.tracks)
    clock.many = len(devices) > 1
    clock.first_device = next(iter(devices), None)
    if not clock.many or not math.isfinite(s.max_seen):
        return
    skew = clock.max_skew
    near = {_device(i) for i, t in s.seen.items() if t >= s.max_seen - skew}
    for device, track in s.tracks.items():  # heartbeats taken as runs are not in ``seen``
        if track is None:
            continue
        if track.open_quietly or track.stamp(track.last()) >= s.max_seen - skew:
            near.add(device)  # a quiet run beats up to now, as its feeder promised
    if len(near) >= QUORUM:
        return
    sane = [t for i, t in s.seen.items() if _device(i) not in near]
    if not sane:
        return
    back = max(sane)
    keep = [item for item in s.buffer if item[0] <= back + skew]
    s.stats["clock_skew"] += len(s.buffer) - len(keep)  # taken by the older pmsim: set aside now
    s.stats["consumed"] -= len(s.buffer) - len(keep)
    heapq.heapify(keep)
    s.buffer = keep
    s.max_seen = back
    s.watermark = min(s.watermark, back - engine.lateness)
