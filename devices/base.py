"""What every device shares: identity, its own sequence numbers, heartbeats, faults and outages.

A device never knows where its events go: it is handed an ``emit`` callable. It never knows the truth
either, except for the :class:`Cause` tags the world hands it with a stimulus, onto which it writes the
ids of the events that stimulus caused (that is how ``truth.jsonl`` links incidents to events).
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Annotated, Any, ClassVar

import numpy as np
import simpy
from pydantic import BaseModel, ConfigDict, Field

from devices.events import DeviceEvent, DeviceFault, EventBase, Heartbeat, event_id
from devices.liveness import BeatClock, BeatRun, device_stamp, envelope

__all__ = ["Cause", "Clock", "Device", "Emit", "HealthParams", "Outage", "OutageSink"]

Emit = Callable[[DeviceEvent], None]


class Clock:
    """Maps simulated seconds to wall-clock datetimes of the scenario (never the real clock)."""

    __slots__ = ("start",)

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("Clock start must be timezone-aware")
        self.start = start

    def at(self, sim_seconds: float) -> datetime:
        return self.start + timedelta(seconds=sim_seconds)

    def hour_of_day(self, sim_seconds: float) -> float:
        t = self.at(sim_seconds)
        return t.hour + t.minute / 60.0 + t.second / 3600.0


@dataclass(slots=True)
class Cause:
    """A truth record's handle: devices append the ids of the events the stimulus caused."""

    id: str
    event_ids: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Outage:
    """A period a device could not detect: the truth side of a fault or of going silent."""

    device_id: str
    mode: str  # "fault": reports a fault code, keeps heartbeating; "silent": nothing at all
    code: str
    start_s: float
    end_s: float
    event_ids: tuple[str, ...]


OutageSink = Callable[[Outage, "Device"], None]


class HealthParams(BaseModel):
    """Heartbeat and failure behaviour shared by all kinds (synthetic defaults)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    heartbeat_seconds: float = Field(900.0, ge=10.0, le=86400.0)
    mean_days_between_outages: float = Field(30.0, ge=0.0, le=3660.0)  # 0: no outages
    mean_outage_hours: float = Field(6.0, gt=0.0, le=8760.0)
    silent_share: float = Field(0.5, ge=0.0, le=1.0)
    fault_codes: tuple[Annotated[str, Field(min_length=1, max_length=64)], ...] = Field(
        ("lens_blocked", "power_unstable", "storage_error"), min_length=1, max_length=32
    )


class Device:
    """Base of the three kinds. Subclasses add the detection state machine."""

    kind: ClassVar[str] = ""

    def __init__(
        self,
        env: simpy.Environment,
        device_id: str,
        *,
        estate: str,
        building: str,
        floor: int | None,
        clock: Clock,
        rng: np.random.Generator,
        health_rng: np.random.Generator,
        health: HealthParams,
        emit: Emit,
        on_outage: OutageSink | None = None,
        beats: BeatClock | None = None,
        beat_sink: Callable[[BeatRun, int], bool] | None = None,
        run_sink: Callable[[BeatRun], None] | None = None,
    ) -> None:
        self.env = env
        self.beats = beats  # the world's heartbeat schedule; None: a SimPy process steps them
        # With a beat sink, beats travel as runs: beat j of the open run goes to the sink, which
        # says False when it cannot take it (the gateway is away: the beat becomes an event).
        self.beat_sink = beat_sink
        self.run_sink = run_sink  # told of every run that ended
        self.run: BeatRun | None = None
        self._beat_t0 = 0.0
        self._beat_order = 0
        self.device_id = device_id
        self.estate = estate
        self.building = building
        self.floor = floor
        self.clock = clock
        self.rng = rng
        self.health_rng = health_rng
        self.health = health
        self._emit_to = emit
        self._on_outage = on_outage
        self.seq = 0
        self.installed = False
        self.installed_at: float | None = None
        self.fault_code: str | None = None  # set while faulted: heartbeats go on, detection stops
        self.silent = False  # set while silent: nothing at all comes out
        self.open_outage: tuple[str, str, float, tuple[str, ...]] | None = None
        self.on_down: Callable[[Device], None] | None = None  # someone to tell when it breaks
        self._repaired: simpy.Event | None = None
        self.skew_s = 0.0  # how far ahead of true time the device's own clock runs (faults)

    @property
    def last_event_id(self) -> str | None:
        """What a console last heard from the device (sequence numbers have no gaps)."""
        return event_id(self.device_id, self.seq - 1) if self.seq else None

    # -- availability -------------------------------------------------------------------------

    @property
    def available(self) -> bool:
        """Can the device detect right now?"""
        return self.installed and self.fault_code is None and not self.silent

    # -- emitting -----------------------------------------------------------------------------

    def emit(self, cls: type[EventBase], cause: Cause | None = None, **fields: Any) -> str | None:
        """Build, stamp and send one event; returns its id (``None`` while silent)."""
        if self.beats is not None:
            self.beats.flush(self.env.now)  # the beats due first: they take their seq first
            self.close_run()
        return self._send(self.env.now, cls, cause, **fields)

    def beat(self, t: float, k: int) -> bool:
        """Heartbeat ``k`` of the grid, due at true time ``t`` (from the world's BeatClock).
        True when nobody needs the run's later beats one by one (the clock then parks the
        device and :meth:`close_run` counts them)."""
        if self.silent:
            return False
        sink = self.beat_sink
        if sink is None:
            self._send(t, Heartbeat, None)
            return False
        run = self.run
        if run is None:
            run = self.run = BeatRun(
                self,
                self.seq,
                k,
                self._beat_t0,
                self.health.heartbeat_seconds,
                self.skew_s,
                self._beat_order,
            )
        if sink(run, run.count):
            run.count += 1
            self.seq += 1
            return run.quiet
        # the gateway is away: this beat waits in its buffer as an event of its own
        self.close_run()
        self._send(t, Heartbeat, None)
        return False

    def close_run(self, inclusive: bool = True) -> None:
        """End the open run (its quiet beats counted up to now) and report it."""
        run = self.run
        if run is not None:
            if self.beats is not None:
                n = self.beats.settle(self, self.env.now, inclusive=inclusive)
                run.count += n
                self.seq += n
            self.run = None
            if run.count and self.run_sink is not None:
                self.run_sink(run)

    def _send(
        self, now: float, cls: type[EventBase], cause: Cause | None, **fields: Any
    ) -> str | None:
        if self.silent:
            return None
        stamp = device_stamp(now, self.skew_s)  # the device's clock, not truth
        event = cls(**envelope(self, self.seq, stamp), **fields)
        eid = event.event_id
        self.seq += 1
        self._emit_to(event)  # type: ignore[arg-type]
        if cause is not None:
            cause.event_ids.append(eid)
        return eid

    # -- life cycle ---------------------------------------------------------------------------

    def install(self) -> None:
        """Switch on: first heartbeat now, then periodic ones, and the failure process."""
        self.installed = True
        self.installed_at = self.env.now
        self.emit(Heartbeat)
        if self.beats is not None:  # the same draw as the stepped process makes first
            phase = float(self.health_rng.uniform(0.0, self.health.heartbeat_seconds))
            self._beat_t0 = self.env.now + phase
            self._beat_order = self.beats.join(self, self._beat_t0, self.health.heartbeat_seconds)
        else:
            self.env.process(self._heartbeats())
        if self.health.mean_days_between_outages > 0:
            self.env.process(self._outages())

    def _heartbeats(self) -> Generator[simpy.Event, Any, None]:
        interval = self.health.heartbeat_seconds
        t0 = self.env.now + float(self.health_rng.uniform(0.0, interval))
        k = 0
        while True:  # at t0 + k * interval, as the BeatClock does: no drift over months
            yield self.env.timeout(max(0.0, t0 + k * interval - self.env.now))
            self.emit(Heartbeat)  # a faulted device still heartbeats; a silent one emits nothing
            k += 1

    def _flush_beats(self) -> None:
        if self.beats is not None:
            self.beats.flush(self.env.now)
            self.close_run()

    @property
    def repairable(self) -> bool:
        """Down, and a technician could fix it now (a dead device cannot be)."""
        return self._repaired is not None and not self._repaired.triggered

    def repair(self) -> bool:
        """A technician fixes the device now; False if it was not down."""
        if self._repaired is None or self._repaired.triggered:
            return False
        self._repaired.succeed()
        return True

    def _outages(self) -> Generator[simpy.Event, Any, None]:
        h = self.health
        rng = self.health_rng
        while True:
            yield self.env.timeout(float(rng.exponential(h.mean_days_between_outages * 86400.0)))
            duration = float(rng.lognormal(np.log(h.mean_outage_hours * 3600.0) - 0.5, 1.0))
            if rng.random() < h.silent_share:
                mode, code = "silent", "offline"
            else:
                mode = "fault"
                code = h.fault_codes[int(rng.integers(len(h.fault_codes)))]
            if self.open_outage is not None:
                continue  # already down (an injected outage): this one never happens
            yield from self.outage(mode, code, duration)

    def outage(
        self, mode: str, code: str, duration: float | None, *, repairable: bool = True
    ) -> Generator[simpy.Event, Any, None]:
        """Be down for ``duration`` seconds (None: for good), or until repaired if repairable.

        ``mode`` "silent" emits nothing; "fault" reports ``code`` and keeps heartbeating. A dead
        device (``repairable=False``) cannot be fixed by a visit: it needs replacing.
        """
        start = self.env.now
        ids: tuple[str, ...] = ()
        self._flush_beats()  # what was due before the outage went out before it
        if mode == "silent":
            self.silent = True
        else:
            eid = self.emit(DeviceFault, code=code)
            ids = (eid,) if eid is not None else ()
            self.fault_code = code
        self.open_outage = (mode, code, start, ids)
        repaired = self.env.event()
        self._repaired = repaired if repairable else None
        if self.on_down is not None:
            self.on_down(self)
        if duration is None:
            yield repaired
        else:
            yield self.env.timeout(duration) | repaired
        self._repaired = None
        self._flush_beats()  # beats due while silent are skipped, not sent after
        self.silent = False
        self.fault_code = None
        self.open_outage = None
        self.emit(Heartbeat)  # recovery announces itself at once
        if self._on_outage is not None:
            self._on_outage(Outage(self.device_id, mode, code, start, self.env.now, ids), self)
