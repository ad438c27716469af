"""Fault injection at run time, every fault written to the truth ledger.

Delivery faults sit between the estate gateways and the transport (:class:`FaultyTransport`): what
the engine and ``events.jsonl`` see is what survived the trip. The property companies' consoles
are fed by the devices' own vendor channel, so staff behaviour, and with it the simulated world,
is the same with or without delivery faults; only what the engine hears differs. Device faults
(:class:`DeviceFaults`) skew clocks and take devices down; gateway disconnects are the gateways'
own store-and-forward outages, switched on per estate.

Each spec and estate (or device) draws from its own stream, and every applicable spec draws for
every event whether or not another spec already struck, so switching one fault on or off leaves
the draws of the others unchanged.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import numpy as np
import simpy

from devices.base import Device
from devices.events import DeviceEvent, Heartbeat
from devices.liveness import BeatRun
from sim.world.calendar import DAY
from sim.world.faultspec import ClockSkew, DeliveryFault, DeviceDown, FaultSpec, GatewayDisconnect
from sim.world.scenario import GatewaySettings
from sim.world.streams import Streams
from sim.world.transport import Transport
from sim.world.truth import TruthLedger, TruthRecord

__all__ = ["DeviceFaults", "FaultyTransport", "gateway_settings"]

BLOCK = 4096  # uniform draws fetched at a time per stream


def _stream_names(specs: list[Any]) -> list[tuple[str, str]]:
    """(kind, n): the n-th entry of its kind, so adding entries of other kinds changes nothing."""
    seen: dict[str, int] = {}
    out = []
    for spec in specs:
        n = seen.get(spec.kind, 0)
        seen[spec.kind] = n + 1
        out.append((spec.kind, str(n)))
    return out


class _Uniforms:
    """A stream of U(0,1) draws, fetched in blocks (numpy scalar calls are slow)."""

    __slots__ = ("_buf", "_i", "_rng")

    def __init__(self, rng: np.random.Generator) -> None:
        self._rng = rng
        self._buf: list[float] = []
        self._i = 0

    def __call__(self) -> float:
        if self._i >= len(self._buf):
            self._buf = self._rng.random(BLOCK).tolist()
            self._i = 0
        u = self._buf[self._i]
        self._i += 1
        return u


class FaultyTransport:
    """A :class:`~sim.world.transport.Transport` that duplicates, holds back and loses device events."""

    def __init__(
        self,
        inner: Transport,
        env: simpy.Environment,
        streams: Streams,
        truth: TruthLedger,
        specs: list[DeliveryFault],
    ) -> None:
        self.inner = inner
        self.env = env
        self.streams = streams
        self.truth = truth
        self.specs = specs
        self._names = _stream_names(specs)
        self._applicable: dict[tuple[str, str], list[int]] = {}
        self._draws: dict[tuple[int, str], _Uniforms] = {}
        self._records: dict[tuple[int, str], TruthRecord] = {}
        self._held: dict[int, tuple[float, DeviceEvent]] = {}
        self._token = 0
        self.counts = {"duplicate": 0, "reorder": 0, "loss": 0}

    def _specs_for(self, estate: str, device_kind: str) -> list[int]:
        key = (estate, device_kind)
        found = self._applicable.get(key)
        if found is None:
            found = [i for i, s in enumerate(self.specs) if s.applies(estate, device_kind)]
            self._applicable[key] = found
        return found

    def _u(self, i: int, estate: str) -> _Uniforms:
        draws = self._draws.get((i, estate))
        if draws is None:
            draws = _Uniforms(self.streams.get("faults", *self._names[i], estate))
            self._draws[(i, estate)] = draws
        return draws

    def _record(self, i: int, event: DeviceEvent, delay: float = 0.0) -> None:
        spec = self.specs[i]
        rec = self._records.get((i, event.estate))
        if rec is None:
            rec = self.truth.open(
                "fault", spec.kind, self.env.now, event.estate, probability=spec.probability
            )
            rec.detail.update(events=0, heartbeats=0)
            if spec.kind != "loss":
                rec.detail["max_delay_s"] = 0.0
            self._records[(i, event.estate)] = rec
        rec.end_s = self.env.now
        rec.detail["events"] += 1
        self.counts[spec.kind] += 1
        if isinstance(event, Heartbeat):
            rec.detail["heartbeats"] += 1
        else:
            rec.cause.event_ids.append(event.event_id)
        if spec.kind != "loss":
            rec.detail["max_delay_s"] = max(rec.detail["max_delay_s"], round(delay, 3))

    def publish(self, event: DeviceEvent) -> None:
        idx = self._specs_for(event.estate, event.device_kind)
        if not idx:
            self.inner.publish(event)
            return
        lost: int | None = None
        delay: tuple[int, float] | None = None
        dup: tuple[int, float] | None = None
        for i in idx:  # every spec draws twice per event, struck or not
            u = self._u(i, event.estate)
            hit, v = u() < self.specs[i].probability, u()
            if not hit:
                continue
            kind = self.specs[i].kind
            if kind == "loss" and lost is None:
                lost = i
            elif kind == "reorder" and delay is None:
                delay = (i, v * self.specs[i].max_delay_s)
            elif kind == "duplicate" and dup is None:
                dup = (i, v * self.specs[i].max_delay_s)
        if lost is not None:
            self._record(lost, event)
            return
        first = 0.0
        if delay is not None and delay[1] > 0:
            first = delay[1]
            self._record(delay[0], event, first)
            self._later(first, event)
        else:
            self.inner.publish(event)
        if dup is not None:
            self._record(dup[0], event, dup[1])
            if first + dup[1] > 0:
                self._later(first + dup[1], event)
            else:
                self.inner.publish(event)

    def beat(self, run: BeatRun, j: int) -> None:
        # Under delivery faults heartbeats are stepped one by one (sim.world.world): no runs.
        self.inner.beat(run, j)

    def run_closed(self, run: BeatRun) -> None:
        self.inner.run_closed(run)

    def _later(self, delay: float, event: DeviceEvent) -> None:
        token = self._token
        self._token += 1
        self._held[token] = (self.env.now + delay, event)
        self.env.timeout(delay).callbacks.append(lambda _ev: self._release(token))

    def _release(self, token: int) -> None:
        held = self._held.pop(token, None)
        if held is not None:
            self.inner.publish(held[1])

    def drain(self) -> None:
        """At the end of the run: what is still held back goes out, in due order."""
        for token, (_due, event) in sorted(self._held.items(), key=lambda kv: (kv[1][0], kv[0])):
            del self._held[token]
            self.inner.publish(event)

    def close(self) -> None:
        self.drain()
        self.inner.close()


def gateway_settings(base: GatewaySettings, specs: list[FaultSpec], estate: str) -> GatewaySettings:
    """The estate's gateway settings with injected disconnects (the first matching entry)."""
    for spec in specs:
        if isinstance(spec, GatewayDisconnect) and (spec.estates is None or estate in spec.estates):
            return base.model_copy(
                update={
                    "mean_days_between_disconnects": spec.mean_days_between,
                    "mean_disconnect_minutes": spec.mean_minutes,
                }
            )
    return base


class DeviceFaults:
    """Clock skew and injected outages, decided for each device as it is installed."""

    def __init__(
        self,
        env: simpy.Environment,
        streams: Streams,
        truth: TruthLedger,
        specs: list[FaultSpec],
        days: int,
    ) -> None:
        self.env = env
        self.streams = streams
        self.truth = truth
        mine = [s for s in specs if isinstance(s, ClockSkew | DeviceDown)]
        self.specs = list(zip(_stream_names(mine), mine, strict=True))
        self.days = days

    def on_install(self, dev: Device) -> None:
        for name, spec in self.specs:
            if not spec.applies(dev.estate, dev.kind):
                continue
            rng = self.streams.get("faults", *name, dev.device_id)
            if rng.random() >= spec.share:
                continue
            if isinstance(spec, ClockSkew):
                self._skew(dev, float(rng.uniform(-spec.max_skew_s, spec.max_skew_s)))
            else:
                lo = spec.from_day * DAY
                hi = (spec.to_day if spec.to_day is not None else self.days) * DAY
                at = float(rng.uniform(lo, max(lo, hi)))
                if at >= self.days * DAY:
                    continue
                self.env.process(self._down(dev, spec, max(at, self.env.now), hi))

    def _where(self, dev: Device) -> dict[str, Any]:
        return {"building": dev.building, "device_id": dev.device_id}

    def _skew(self, dev: Device, skew: float) -> None:
        dev.skew_s = skew
        self.truth.open(
            "fault", "clock_skew", self.env.now, dev.estate, self._where(dev), skew_s=round(skew, 3)
        )

    def _down(
        self, dev: Device, spec: DeviceDown, at: float, until: float
    ) -> Generator[simpy.Event, Any, None]:
        yield self.env.timeout(at - self.env.now)
        while dev.open_outage is not None:  # down already: strike once it is back
            if self.env.now >= until:
                return
            yield self.env.timeout(600.0)
        dead = spec.kind == "device_dead"
        rec = self.truth.open("fault", spec.kind, self.env.now, dev.estate, self._where(dev))
        rec.covered_by = dev.device_id
        duration = None if dead else spec.hours * 3600.0
        rec.detail["hours"] = None if dead else spec.hours
        yield from dev.outage(
            "silent", "dead" if dead else "offline", duration, repairable=not dead
        )
        rec.end_s = self.env.now
