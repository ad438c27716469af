"""The simulated district: estates, buildings, households, elevators, corridors and their devices.

:class:`World` is built from a :class:`~sim.world.scenario.Scenario`; it owns the layout, installs devices
on their day, routes device events (device -> estate gateway -> transport and the companies'
consoles) and keeps the truth ledger. Behaviour lives in :mod:`sim.world.behaviour` and
:mod:`sim.world.nuisance`, staff in :mod:`sim.world.property`.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Protocol

import simpy

from devices.base import Clock, Device, Outage
from devices.blocker import EbikeBlocker
from devices.camera import FallingObjectCamera
from devices.clutter import ClutterSensor
from devices.events import DeviceEvent
from devices.liveness import BeatClock, BeatRun
from sim.world.calendar import DAY
from sim.world.faults import DeviceFaults, FaultyTransport, gateway_settings
from sim.world.faultspec import ClockSkew, DeliveryFault, DeviceDown
from sim.world.gateway import Gateway
from sim.world.scenario import Estate, Installation, Scenario, building_ids
from sim.world.streams import Streams
from sim.world.transport import Transport
from sim.world.truth import TruthLedger

# What the vendor console shows the estate's property company (e-bike detections count repeats).
ALARMS = frozenset({"falling_object", "clutter_detected", "door_open_too_long", "ebike_detected"})

__all__ = ["Building", "Elevator", "EstateWorld", "Household", "InstallHook", "Responder", "World"]


class Responder(Protocol):
    """What the world asks of an estate's property company (:mod:`sim.world.property`)."""

    def on_alarm(self, event: DeviceEvent) -> None: ...

    def on_device_down(self, device: Device) -> None: ...


@dataclass(slots=True, eq=False)
class Household:
    id: str
    estate: str
    building: str
    unit: int
    floor: int
    column: int  # window column on the watched facade, 1-based
    stubborn: bool
    ebike: bool = False
    propensity: float = 0.0  # chance per return of taking the e-bike upstairs
    battery: bool = False  # switched to carrying the battery up in a bag
    throw_rate: float = 0.0  # throws per day
    clutter_rate: float = 0.0  # clutter placements per week
    blocked: int = 0
    visits: dict[str, int] = field(default_factory=dict)


@dataclass(slots=True, eq=False)
class Elevator:
    id: str
    unit: int
    blocker: EbikeBlocker | None = None


@dataclass(slots=True, eq=False)
class Building:
    id: str
    floors: int
    units: int
    per_floor: int
    elevators: dict[int, list[Elevator]]
    households: dict[tuple[int, int], Household] = field(default_factory=dict)  # (floor, column)
    camera: FallingObjectCamera | None = None
    sensors: dict[tuple[int, int], ClutterSensor] = field(default_factory=dict)  # (unit, floor)

    @property
    def columns(self) -> int:
        return self.units * self.per_floor

    def unit_of_column(self, column: int) -> int:
        return (column - 1) // self.per_floor + 1


@dataclass(slots=True, eq=False)
class EstateWorld:
    id: str
    name: str
    grid: str
    company: str
    buildings: dict[str, Building]
    households: list[Household]
    gateway: Gateway | None = None
    devices: list[Device] = field(default_factory=list)

    @property
    def flats(self) -> int:
        return sum(b.floors * b.columns for b in self.buildings.values())


InstallHook = Callable[["EstateWorld", "Building", Device], None]
"""Called for each device as it is installed, after it starts (:func:`sim.world.nuisance.start_for`)."""


class World:
    """Layout, device installation and event routing for one run."""

    def __init__(
        self,
        scenario: Scenario,
        env: simpy.Environment,
        streams: Streams,
        clock: Clock,
        transport: Transport,
        truth: TruthLedger,
        days: int,
        *,
        stepped_heartbeats: bool = False,
    ) -> None:
        self.scenario = scenario
        # Heartbeats as a schedule. Stepped by SimPy one by one in real time (--speed), where a
        # beat must leave at its own wall-clock moment, and under delivery faults, which hold
        # back, duplicate or lose each beat at the moment it is sent.
        delivery = [f for f in scenario.faults if isinstance(f, DeliveryFault)]
        self.beats = None if stepped_heartbeats or delivery else BeatClock()
        self.days = days
        self.rainy = (
            streams.get("weather").random(days) < scenario.behaviour.rainy_day_share
        ).tolist()
        self.clutter: dict[tuple[str, str, int, int], list[Any]] = {}  # corridor -> ClutterItems
        self.defects: dict[tuple[str, str, int, int], Any] = {}  # corridor -> its open defect
        self.env = env
        self.streams = streams
        self.clock = clock
        self.truth = truth
        self.faulty = (
            FaultyTransport(transport, env, streams, truth, delivery) if delivery else None
        )
        self.transport: Transport = self.faulty or transport
        self.estates: dict[str, EstateWorld] = {}
        self.companies: dict[str, Responder] = {}
        self.on_install: list[InstallHook] = []  # e.g. the nuisances a new device will see
        self.device_places: dict[
            str, tuple[str, str, int, int]
        ] = {}  # id -> estate, bldg, unit, floor
        self.holders: dict[str, Household | None] = {}  # blocker id -> who it holds now
        # Truth for a clip review: the household whose throw raised this falling-object event.
        self.thrower_of: dict[str, Household] = {}
        self.delivered = 0
        for grid, est in scenario.estates():
            self.estates[est.id] = self._build_estate(grid.id, est)
        self.device_faults = (
            DeviceFaults(env, streams, truth, scenario.faults, days)
            if any(isinstance(f, ClockSkew | DeviceDown) for f in scenario.faults)
            else None
        )

    # -- layout -------------------------------------------------------------------------------

    def _build_estate(self, grid: str, est: Estate) -> EstateWorld:
        beh = self.scenario.behaviour
        ids = iter(building_ids(est))
        buildings: dict[str, Building] = {}
        households: list[Household] = []
        for group in est.buildings:
            for _ in range(group.count):
                bid = next(ids)
                elevators = {
                    u: [
                        Elevator(f"{est.id}-{bid}-u{u}e{k}", u)
                        for k in range(1, group.elevators_per_unit + 1)
                    ]
                    for u in range(1, group.units + 1)
                }
                b = Building(bid, group.floors, group.units, group.households_per_floor, elevators)
                buildings[bid] = b
                rng = self.streams.get("layout", est.id, bid)
                for floor in range(1, group.floors + 1):
                    for col in range(1, b.columns + 1):
                        if rng.random() >= group.occupancy:
                            continue
                        unit = b.unit_of_column(col)
                        room = (col - 1) % group.households_per_floor + 1
                        hid = f"{est.id}-{bid}-u{unit}-{floor}{room:02d}"
                        hh = Household(
                            hid,
                            est.id,
                            bid,
                            unit,
                            floor,
                            col,
                            bool(rng.random() < beh.stubborn_share),
                        )
                        if rng.random() < beh.ebike_ownership:
                            hh.ebike = True
                            if rng.random() < beh.charger_share:
                                hh.propensity = float(rng.uniform(*beh.charger_propensity))
                        if rng.random() < beh.thrower_share:
                            hh.throw_rate = float(beh.throws_per_day * rng.uniform(0.5, 1.5))
                        if rng.random() < beh.clutter_share:
                            hh.clutter_rate = float(beh.clutter_per_week * rng.uniform(0.5, 1.5))
                        b.households[(floor, col)] = hh
                        households.append(hh)
        return EstateWorld(est.id, est.name, grid, est.company, buildings, households)

    def lesson(self, hh: Household) -> float:
        return self.scenario.behaviour.stubborn_factor if hh.stubborn else 1.0

    # -- installation -------------------------------------------------------------------------

    def schedule_installs(self) -> None:
        for _, est in self.scenario.estates():
            by_day: dict[int, list[Installation]] = {}
            for inst in est.devices:
                by_day.setdefault(inst.day, []).append(inst)
            for day in sorted(by_day):
                self.env.process(self._install_at(est.id, day, by_day[day]))

    def _install_at(
        self, estate_id: str, day: int, items: list[Installation]
    ) -> Generator[simpy.Event, Any, None]:
        yield self.env.timeout(max(0.0, day * DAY - self.env.now))
        est = self.estates[estate_id]
        if est.gateway is None:
            est.gateway = Gateway(
                self.env,
                est.id,
                self.clock,
                gateway_settings(self.scenario.gateway, self.scenario.faults, est.id),
                self.streams.get("gateway", est.id),
                self.deliver,
                self.truth,
                partial(self.gateway_changes, est),
                self.deliver_beat,
            )
            est.gateway.start()
        for inst in items:
            for bid in inst.buildings or list(est.buildings):
                self._install_in(est, est.buildings[bid], inst)

    def _device_kwargs(
        self, est: EstateWorld, bid: str, floor: int | None, did: str
    ) -> dict[str, Any]:
        assert est.gateway is not None
        return {
            "estate": est.id,
            "building": bid,
            "floor": floor,
            "clock": self.clock,
            "rng": self.streams.get("device", did),
            "health_rng": self.streams.get("health", did),
            "health": self.scenario.devices.health,
            "emit": est.gateway.forward,
            "on_outage": self.on_outage,
            "beats": self.beats,
            "beat_sink": est.gateway.forward_beat if self.beats is not None else None,
            "run_sink": self.transport.run_closed,
        }

    def _install_in(self, est: EstateWorld, b: Building, inst: Installation) -> None:
        s = self.scenario.devices
        new: list[Device] = []
        if inst.kind == "ebike_blocker":
            for unit_elevators in b.elevators.values():
                for el in unit_elevators:
                    if el.blocker is not None:
                        continue
                    did = f"{el.id}-blk"
                    el.blocker = EbikeBlocker(
                        self.env,
                        did,
                        params=s.ebike_blocker,
                        **self._device_kwargs(est, b.id, None, did),
                    )
                    self.device_places[did] = (est.id, b.id, el.unit, 0)
                    new.append(el.blocker)
        elif inst.kind == "falling_object_camera":
            if b.camera is None:
                did = f"{est.id}-{b.id}-cam"
                b.camera = FallingObjectCamera(
                    self.env,
                    did,
                    params=s.falling_object_camera,
                    floors=b.floors,
                    columns=b.columns,
                    **self._device_kwargs(est, b.id, None, did),
                )
                self.device_places[did] = (est.id, b.id, 0, 0)
                new.append(b.camera)
        else:
            floors = [f for f in (inst.floors or range(1, b.floors + 1)) if f <= b.floors]
            for unit in range(1, b.units + 1):
                for floor in floors:
                    if (unit, floor) in b.sensors:
                        continue
                    did = f"{est.id}-{b.id}-u{unit}f{floor:02d}-clt"
                    sensor = ClutterSensor(
                        self.env,
                        did,
                        params=s.clutter_sensor,
                        **self._device_kwargs(est, b.id, floor, did),
                    )
                    b.sensors[(unit, floor)] = sensor
                    self.device_places[did] = (est.id, b.id, unit, floor)
                    new.append(sensor)
        company = self.companies.get(est.company)
        for dev in new:
            if company is not None:
                dev.on_down = company.on_device_down
            if self.device_faults is not None:
                self.device_faults.on_install(dev)  # before the first heartbeat: clock skew
            dev.install()
            est.devices.append(dev)
            for hook in self.on_install:
                hook(est, b, dev)

    # -- routing ------------------------------------------------------------------------------

    def flush_beats(self) -> None:
        """Every heartbeat due by now goes out first (see :mod:`devices.liveness`)."""
        if self.beats is not None:
            self.beats.flush(self.env.now)

    def gateway_changes(self, est: EstateWorld) -> None:
        """Before an estate's gateway goes off or on line: every beat due goes out first, and
        its devices' runs end (beats while it is away wait in its buffer one by one)."""
        self.flush_beats()
        for dev in est.devices:
            dev.close_run()

    def deliver_beat(self, run: BeatRun, j: int) -> None:
        """Beat ``j`` of a run, out of an online gateway (a heartbeat raises no alarm)."""
        self.delivered += 1
        self.transport.beat(run, j)

    def deliver(self, event: DeviceEvent) -> None:
        """Out of a gateway: to the transport, and alarms to the estate's property company."""
        self.flush_beats()
        self.delivered += 1
        self.transport.publish(event)
        if event.type in ALARMS:
            est = self.estates[event.estate]
            self.companies[est.company].on_alarm(event)

    def on_outage(self, outage: Outage, device: Device) -> None:
        self._record_outage(
            device, outage.mode, outage.code, outage.start_s, outage.end_s, outage.event_ids
        )

    def _record_outage(
        self,
        device: Device,
        mode: str,
        code: str,
        start: float,
        end: float | None,
        ids: tuple[str, ...],
    ) -> None:
        _, bid, _unit, _floor = self.device_places[device.device_id]
        rec = self.truth.open(
            "incident",
            "device_silent" if mode == "silent" else "device_fault",
            start,
            device.estate,
            {"building": bid, "device_id": device.device_id},
            mode=mode,
            code=code,
            severity=1,
        )
        rec.end_s = end
        rec.covered_by = device.device_id
        rec.miss_reason = "silent"
        rec.cause.event_ids.extend(ids)

    def finish(self) -> None:
        """At the end of the run: held-back events go out, open outages go into the ledger."""
        if self.beats is not None:  # the run ends before its last instant, as env.run(until) does
            self.beats.flush(self.days * DAY, inclusive=False)
            for est in self.estates.values():
                for dev in est.devices:
                    dev.close_run(inclusive=False)
        if self.faulty is not None:
            self.faulty.drain()
        for est in self.estates.values():
            for dev in est.devices:
                if dev.open_outage is not None:
                    mode, code, start, ids = dev.open_outage
                    self._record_outage(dev, mode, code, start, None, ids)
