"""Property companies: staff (a SimPy resource) who answer device alarms from the vendor console.

A company's latent ``diligence`` sets how fast it responds (minutes for a diligent one, hours and
only in working hours for a lax one) and how thorough a visit is. Visits are what make households
learn: a staff visit, and for a repeat thrower a joint visit with the community police. Every visit
is a ``response`` record in the truth ledger, with whether it reached the right household or
really removed the clutter (rankings later score true resolution from it).
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import numpy as np
import simpy

from devices.base import Device
from devices.events import DeviceEvent, FallingObject, StaffArrived, StaffDone, event_id
from sim.world.behaviour import remove_clutter
from sim.world.calendar import DAY
from sim.world.scenario import Company, Staffing
from sim.world.world import Household, World

__all__ = ["PropertyCompany"]

_ACTIONS = {
    "falling_object": "visit_thrower",
    "clutter_detected": "clear_clutter",
    "door_open_too_long": "check_elevator",
}


class PropertyCompany:
    def __init__(self, world: World, company: Company, staffing: Staffing) -> None:
        self.world = world
        self.company = company
        self.staffing = staffing
        self.staff = simpy.Resource(world.env, capacity=company.staff)
        self.rng = world.streams.get("company", company.id)
        d = company.diligence
        self.median_response_s = 60.0 * (
            staffing.fast_response_minutes
            + (1.0 - d) * (staffing.slow_response_minutes - staffing.fast_response_minutes)
        )
        self.thoroughness = 0.5 + 0.5 * d
        self.night_duty = d >= 0.7
        self._app_seq: dict[str, int] = {}  # one staff-app stream per estate the company serves

    def _app(
        self, cls: type[StaffArrived] | type[StaffDone], trigger: DeviceEvent, **fields: Any
    ) -> None:
        """Report on the property app: what the rules engine sees of the staff's work."""
        self._app_at(
            cls, trigger.estate, trigger.building, trigger.floor, trigger.event_id, **fields
        )

    def _app_at(
        self,
        cls: type[StaffArrived] | type[StaffDone],
        estate: str,
        building: str,
        floor: int | None,
        ref: str,
        **fields: Any,
    ) -> None:
        did = f"{estate}-{self.company.id}-app"
        seq = self._app_seq.get(did, 0)
        self._app_seq[did] = seq + 1
        now = round(self.world.env.now, 3)
        ev = cls(
            event_id=event_id(did, seq),
            device_id=did,
            device_kind="staff_app",
            estate=estate,
            building=building,
            floor=floor,
            time=self.world.clock.at(now),
            sim_seconds=now,
            seq=seq,
            ref_event_id=ref,
            **fields,
        )
        self.world.deliver(ev)

    def on_alarm(self, event: DeviceEvent) -> None:
        if isinstance(event, FallingObject) and event.confidence < 0.6:
            return  # the console shows it; nobody goes out for a low-confidence track
        self.world.env.process(self._job(event))

    def on_device_down(self, device: Device) -> None:
        """The vendor console shows a fault at once, a silent device once it misses heartbeats."""
        self.world.env.process(self._repair(device))

    def _repair(self, device: Device) -> Generator[simpy.Event, Any, None]:
        env = self.world.env
        ref = device.last_event_id
        if device.silent:
            yield env.timeout(self.staffing.notice_silent_minutes * 60.0)
        requested = env.now
        yield env.timeout(self._delay())
        if device.open_outage is None or ref is None:
            return  # it came back by itself meanwhile
        where = (device.estate, device.building, device.floor, ref)
        with self.staff.request() as req:
            yield req
            arrived = env.now
            self._app_at(StaffArrived, *where, action="repair_device")
            yield env.timeout(
                self.staffing.visit_minutes * 60.0 * float(self.rng.uniform(0.6, 1.4))
            )
            fixed = bool(self.rng.random() < self.thoroughness) and device.repair()
            outcome = "done" if fixed else "not_found"
            self._app_at(StaffDone, *where, action="repair_device", outcome=outcome)
        rec = self.world.truth.open(
            "response",
            "repair_device",
            requested,
            device.estate,
            {"building": device.building, "device_id": device.device_id},
            company=self.company.id,
            trigger_event=ref,
            arrived_s=round(arrived, 3),
            effective=fixed,
        )
        rec.end_s = env.now

    def _delay(self) -> float:
        delay = float(self.rng.lognormal(np.log(self.median_response_s), 0.6))
        if self.night_duty:
            return delay
        env = self.world.env
        t = env.now + delay
        lo, hi = self.staffing.working_hours
        hour = (t % DAY) / 3600.0
        if hour < lo:
            t = (t // DAY) * DAY + lo * 3600.0
        elif hour >= hi:
            t = (t // DAY + 1) * DAY + lo * 3600.0
        return t - env.now

    def _job(self, event: DeviceEvent) -> Generator[simpy.Event, Any, None]:
        env = self.world.env
        requested = env.now
        yield env.timeout(self._delay())
        with self.staff.request() as req:
            yield req
            arrived = env.now
            self._app(StaffArrived, event, action=_ACTIONS[event.type])
            yield env.timeout(
                self.staffing.visit_minutes * 60.0 * float(self.rng.uniform(0.6, 1.4))
            )
            action, target, effective = self._act(event)
            outcome = "not_found" if target is None else "done"
            self._app(StaffDone, event, action=_ACTIONS[event.type], outcome=outcome)
        rec = self.world.truth.open(
            "response",
            action,
            requested,
            event.estate,
            {"building": event.building, "household": target.id if target else None},
            company=self.company.id,
            trigger_event=event.event_id,
            arrived_s=round(arrived, 3),
            effective=effective,
        )
        rec.end_s = env.now

    def _act(self, event: DeviceEvent) -> tuple[str, Household | None, bool]:
        """Do the visit's work now; returns (action, household visited, whether it helped)."""
        w = self.world
        beh = w.scenario.behaviour
        thorough = self.rng.random() < self.thoroughness
        if isinstance(event, FallingObject):
            b = w.estates[event.estate].buildings[event.building]
            hh = b.households.get((event.estimated_floor, event.estimated_column))
            if hh is None:
                return "visit_thrower", None, False
            return self._persuade(hh, "throw", thorough and hh.throw_rate > 0)
        if event.type == "door_open_too_long":
            hh = w.holders.get(event.device_id)
            if hh is None or not thorough:
                return "check_elevator", hh, False
            action, _, _ = self._persuade(hh, "ebike", True)
            return action, hh, True
        # clutter_detected: clear the corridor the sensor watches
        estate, bid, unit, floor = w.device_places[event.device_id]
        items = list(w.clutter.get((estate, bid, unit, floor), ()))
        if not items or not thorough:
            return "clear_clutter", None, False
        for item in items:
            remove_clutter(w, item, "staff")
            item.household.clutter_rate *= 1.0 - beh.learn_staff * w.lesson(item.household)
        return "clear_clutter", items[0].household, True

    def _persuade(self, hh: Household, hazard: str, works: bool) -> tuple[str, Household, bool]:
        w = self.world
        beh = w.scenario.behaviour
        before = hh.visits.get(hazard, 0)
        hh.visits[hazard] = before + 1
        joint = before >= 1  # denied or repeated: the residents' committee and police come too
        action = "joint_visit" if joint else "staff_visit"
        if works:
            cut = (beh.learn_police if joint else beh.learn_staff) * w.lesson(hh)
            if hazard == "throw":
                hh.throw_rate *= 1.0 - cut
            else:
                hh.propensity *= 1.0 - cut
        return action, hh, works
