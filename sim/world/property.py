"""Property companies: staff (a SimPy resource) who answer device alarms from the vendor console.

A company's latent ``diligence`` sets how fast it responds (minutes for a diligent one, hours and
only in working hours for a lax one), how well it reviews a falling-object clip before anyone goes
out (a real throw confirmed, a bird dismissed, the right window found) and how thorough a visit is.
Visits are what make households learn: a staff visit, and for a confirmed repeat a joint visit with
the community police; a blocker that keeps seeing e-bikes gets a visit to the rider's household.
Every review and visit is a ``response`` record in the truth ledger, with whether it was right and
whether it really helped; the app events (review verdicts, arrivals, completions) are what the
housing office sees.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import Any

import numpy as np
import simpy

from devices.base import Device
from devices.events import (
    DeviceEvent,
    EbikeDetected,
    FallingObject,
    StaffArrived,
    StaffDone,
    StaffReview,
    event_id,
)
from sim.world.behaviour import remove_clutter
from sim.world.calendar import DAY
from sim.world.scenario import Company, Staffing
from sim.world.world import Household, World

__all__ = ["PropertyCompany", "between", "between_log"]

StaffEvent = type[StaffArrived] | type[StaffDone] | type[StaffReview]


SETTLE_SECONDS = 60.0  # from a staff member's report on the app to what the device notices


def _nothing() -> None:
    return None


def _later(
    env: simpy.Environment, delay: float, fn: Callable[[], object]
) -> Generator[simpy.Event, Any, None]:
    yield env.timeout(delay)
    fn()


def between(pair: tuple[float, float], diligence: float) -> float:
    """A setting given as (most diligent, least diligent), for a company of this diligence."""
    best, worst = pair
    return worst + diligence * (best - worst)


def between_log(pair: tuple[float, float], diligence: float) -> float:
    """A duration given as (most diligent, least diligent), for a company of this diligence, on a
    log scale: each step of diligence multiplies the time by the same factor, so two lax companies
    differ as much as two diligent ones (six hours against five is no difference to an office;
    six against seven is as telling as twenty minutes against twenty-four)."""
    best, worst = pair
    return float(worst * (best / worst) ** diligence)


_HAZARDS = {
    "ebike_detected": "ebike",
    "falling_object": "throw",
    "clutter_detected": "clutter",
    "door_open_too_long": "ebike",
}
_ACTIONS = {
    "ebike_detected": "visit_rider",
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
        self.median_response_s = 60.0 * between_log(
            (staffing.fast_response_minutes, staffing.slow_response_minutes), d
        )
        self.thoroughness = between(staffing.thoroughness, d)
        self.median_review_s = 60.0 * between_log(staffing.review_minutes, d)
        self.review_miss = between(staffing.review_miss, d)
        self.review_false_accept = between(staffing.review_false_accept, d)
        self.review_identify = between(staffing.review_identify, d)
        self.night_cover = between(staffing.night_cover, d)
        self._app_seq: dict[str, int] = {}  # one staff-app stream per estate the company serves
        self._rides: dict[str, list[float]] = {}  # blocker id -> times of its recent detections

    def _app(self, cls: StaffEvent, trigger: DeviceEvent, **fields: Any) -> None:
        """Report on the property app: what the rules engine sees of the staff's work."""
        self._app_at(
            cls, trigger.estate, trigger.building, trigger.floor, trigger.event_id, **fields
        )

    def _app_at(
        self,
        cls: StaffEvent,
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
        if isinstance(event, FallingObject):
            if event.confidence >= self.staffing.review_min_confidence:  # what the platform raises
                self.world.env.process(self._review(event))
        elif isinstance(event, EbikeDetected):
            if event.confidence >= 0.75:  # the console's own threshold, as the rule's
                self._count_ride(event)
        else:
            self.world.env.process(self._job(event))

    # -- falling objects: review the clip first ---------------------------------------------------

    def _review(self, event: FallingObject) -> Generator[simpy.Event, Any, None]:
        env = self.world.env
        requested = env.now
        yield env.timeout(self._delay(self.median_review_s))
        thrower = self.world.thrower_of.get(event.event_id)  # truth: who really threw, if anyone
        if thrower is not None:
            confirmed = bool(self.rng.random() >= self.review_miss)
        else:
            confirmed = bool(self.rng.random() < self.review_false_accept)
        verdict = "confirmed" if confirmed else "false_alarm"
        self._app(StaffReview, event, action="review_clip", verdict=verdict)
        rec = self.world.truth.open(
            "response",
            "review_clip",
            requested,
            event.estate,
            {"building": event.building, "household": thrower.id if thrower else None},
            company=self.company.id,
            trigger_event=event.event_id,
            arrived_s=round(env.now, 3),
            effective=confirmed == (thrower is not None),
            verdict=verdict,
        )
        rec.end_s = env.now
        if not confirmed:
            return
        b = self.world.estates[event.estate].buildings[event.building]
        target = b.households.get((event.estimated_floor, event.estimated_column))
        if thrower is not None and self.rng.random() < self.review_identify:
            target = thrower  # the clip shows the window: the estimate is corrected
        yield env.process(self._job(event, target, reviewed=True))

    # -- e-bikes: the rider of a blocker that keeps alarming gets a visit -----------------------

    def _count_ride(self, event: EbikeDetected) -> None:
        now = self.world.env.now
        window = self.staffing.ebike_repeat_days * DAY
        rides = [t for t in self._rides.get(event.device_id, ()) if t > now - window]
        if rides and now - rides[-1] < 600.0:
            self._rides[event.device_id] = rides
            return  # the same ride seen again (the rule keeps one alert for 10 minutes)
        rides.append(now)
        if len(rides) >= self.staffing.ebike_repeat_count:
            rides = []  # a visit; counting starts again
            self.world.env.process(self._job(event, self.world.holders.get(event.device_id)))
        self._rides[event.device_id] = rides

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
            fixed = bool(self.rng.random() < self.thoroughness) and device.repairable
            outcome = "done" if fixed else "not_found"
            # On the app first: the device's own recovery (its next heartbeat) comes after.
            self._app_at(StaffDone, *where, action="repair_device", outcome=outcome)
            if fixed:
                env.process(_later(env, SETTLE_SECONDS, device.repair))
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

    def _delay(self, median_s: float | None = None) -> float:
        median = self.median_response_s if median_s is None else median_s
        delay = float(self.rng.lognormal(np.log(median), self.staffing.response_spread))
        env = self.world.env
        t = env.now + delay
        lo, hi = self.staffing.working_hours
        hour = (t % DAY) / 3600.0
        if (hour < lo or hour >= hi) and self.rng.random() < self.night_cover:
            return delay  # someone on duty picks it up at night
        if hour < lo:
            t = (t // DAY) * DAY + lo * 3600.0
        elif hour >= hi:
            t = (t // DAY + 1) * DAY + lo * 3600.0
        return t - env.now

    def _job(
        self, event: DeviceEvent, target: Household | None = None, reviewed: bool = False
    ) -> Generator[simpy.Event, Any, None]:
        env = self.world.env
        requested = env.now
        yield env.timeout(self._delay(self.median_response_s * (0.5 if reviewed else 1.0)))
        with self.staff.request() as req:
            yield req
            arrived = env.now
            self._app(StaffArrived, event, action=_ACTIONS[event.type])
            yield env.timeout(
                self.staffing.visit_minutes * 60.0 * float(self.rng.uniform(0.6, 1.4))
            )
            action, target, effective, then = self._act(event, target)
            outcome = "not_found" if target is None else "done"
            self._app(StaffDone, event, action=_ACTIONS[event.type], outcome=outcome)
            # What the devices see of the work (a corridor cleared) follows the report on the app,
            # as it does on site: the sensor confirms an empty corridor over its own frames.
            env.process(_later(env, SETTLE_SECONDS, then))
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
            hazard=_HAZARDS[event.type],
        )
        rec.end_s = env.now

    def _act(
        self, event: DeviceEvent, target: Household | None
    ) -> tuple[str, Household | None, bool, Callable[[], None]]:
        """Do the visit's work now; returns (action, household visited, whether it helped, what is
        left to do once staff have reported on the app)."""
        w = self.world
        beh = w.scenario.behaviour
        thorough = self.rng.random() < self.thoroughness
        if isinstance(event, FallingObject):
            if target is None:
                return "visit_thrower", None, False, _nothing
            return (*self._persuade(target, "throw", thorough and target.throw_rate > 0), _nothing)
        if isinstance(event, EbikeDetected):  # a repeat rider: talk to the household
            if target is None:
                return "visit_rider", None, False, _nothing
            return (*self._persuade(target, "ebike", thorough), _nothing)
        if event.type == "door_open_too_long":
            hh = w.holders.get(event.device_id)
            if hh is None or not thorough:
                return "check_elevator", hh, False, _nothing
            action, _, _ = self._persuade(hh, "ebike", True)
            return action, hh, True, _nothing
        # clutter_detected: clear the corridor the sensor watches
        estate, bid, unit, floor = w.device_places[event.device_id]
        items = list(w.clutter.get((estate, bid, unit, floor), ()))
        if not items or not thorough:
            return "clear_clutter", None, False, _nothing

        def clear() -> None:
            for item in items:
                remove_clutter(w, item, "staff")
                item.household.clutter_rate *= 1.0 - beh.learn_staff * w.lesson(item.household)

        return "clear_clutter", items[0].household, True, clear

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
                hh.battery = hh.battery and bool(self.rng.random() >= cut)  # the bag too
        return action, hh, works
