"""Heartbeat runs inside the engine: what an absence rule needs of beats it never saw one by one.

In-process, a device's heartbeats reach the engine as a run (:class:`devices.liveness.BeatRun`):
its first beat as a full event, every later one as a note of its index (:meth:`Engine.note_beat`),
which moves event time on like the event would and costs no parsing, no buffer and no dispatch.
Quiet runs go further: when the feeder says how far device clocks may be skewed and that is
within half the allowed lateness, no later beat is noted at all. Event time then moves on with the
other events only, and before an event that may be late the engine works out the last beat due by
its delivery (:meth:`Track.due_by`), which is all the beats could have changed: whether it is late.
A :class:`Track` remembers which beats arrived; :func:`catch_up` brings an absence key's "last
heard" up to a time from its tracks before anyone reads it. Over MQTT the same beats arrive as
events, each setting "last heard" as it is processed: both give the same alerts, because every
beat of a run follows the one before within the run's period, which is shorter than the rule's
``after`` (the engine takes a run only then; otherwise it is fed beat by beat).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from devices.liveness import beat_stamp

__all__ = ["Track", "catch_up", "park"]


@dataclass(slots=True)
class Track:
    """One run's beats as the engine received them: ``noted`` of them, some perhaps late."""

    device_id: str
    first_seq: int
    first_k: int
    t0: float
    period: float
    skew: float
    noted: int | None = 1  # beats received; None: every beat due so far (quiet runs)
    late: set[int] = field(default_factory=set)
    closed: bool = False  # a later run of the device has begun: no more beats come here
    count: int | None = None  # the run's length, once it ended (quiet runs)
    waiters: list[tuple[int, Any]] = field(default_factory=list)  # parked absence checks

    @property
    def open_quietly(self) -> bool:
        """A quiet run still going: it beats every period, so no absence it feeds can fire."""
        return self.noted is None and self.count is None

    def stamp(self, j: int) -> float:
        return beat_stamp(self.t0, self.first_k + j, self.period, self.skew)

    def last(self) -> int:
        """The index of the last beat received (of a closed run)."""
        n = self.noted if self.noted is not None else self.count
        return (n if n is not None else 0) - 1

    def due_by(self, now: float) -> int:
        """The index of the last beat due at or before true time ``now`` (quiet runs: what has
        been sent by then); -1 if none."""
        k = int((now - self.t0) // self.period)
        while self.t0 + k * self.period > now:
            k -= 1
        while self.t0 + (k + 1) * self.period <= now:
            k += 1
        j = k - self.first_k
        return j if self.count is None else min(j, self.count - 1)

    def last_by(self, t: float) -> int:
        """The index of the last beat received that is stamped at or before ``t``; -1 if none."""
        est = int((t - self.skew - self.t0) // self.period) - self.first_k + 1  # one above
        hi = self.noted if self.noted is not None else self.count
        j = max(0, est) if hi is None else min(hi - 1, max(0, est))
        while j >= 0 and (self.stamp(j) > t or j in self.late):
            j -= 1
        return j


def _order(event_id: str, t: float) -> tuple[float, str, int]:
    """Where an event stands in the engine's processing order: time, device, sequence."""
    device, _, seq = event_id.rpartition(":")
    return (t, device, int(seq) if seq.isdigit() else -1)


def catch_up(ks: Any, t: float) -> None:
    """Set ``ks.since``/``ks.since_ids`` (an absence key's last heard) to the latest beat at or
    before ``t`` of the runs that feed it, when that beat comes after what it holds: as if each
    beat had been processed as an event, in the engine's order."""
    runs: dict[tuple[str, int], Track] | None = ks.runs
    if not runs:
        return
    best: tuple[float, str, int] | None = (
        _order(ks.since_ids[0], ks.since) if ks.since is not None and ks.since_ids else None
    )
    chosen: str | None = None
    for track in runs.values():
        j = track.last_by(t)
        if j < 0:
            continue
        cand = (track.stamp(j), track.device_id, track.first_seq + j)
        if best is None or cand > best:
            best, chosen = cand, f"{track.device_id}:{track.first_seq + j}"
    if chosen is not None and best is not None:
        ks.since, ks.since_ids = best[0], [chosen]
    if best is not None:  # a closed run all of whose beats are behind us is done with
        done = [n for n, tr in runs.items() if tr.closed and tr.last_by(best[0]) == tr.last()]
        for name in done:
            del runs[name]


def park(ks: Any, rule_index: int, key: Any) -> bool:
    """Park an absence check while a quiet run feeding the key goes on: the run's end schedules
    it again (:meth:`rules.engine.Engine.close_run`). False if no such run is open."""
    runs: dict[tuple[str, int], Track] | None = ks.runs
    if not runs:
        return False
    parked = False
    for track in runs.values():
        if track.open_quietly:
            if (rule_index, key) not in track.waiters:
                track.waiters.append((rule_index, key))
            parked = True
    return parked
