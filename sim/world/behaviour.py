"""What residents do: take e-bikes upstairs, throw things out of windows, leave clutter in corridors.

One SimPy process per household with a habit (most households have none and cost nothing). Each
process plans its day from its own Generator, then acts at the planned times. Every act is a true
incident in the ledger; the device that could see it, if any, gets the stimulus with the incident's
:class:`~devices.base.Cause`. Households learn after being blocked, after a staff visit, after a
visit with the community police; stubborn ones learn little.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import Any

import numpy as np
import simpy

from sim.world.calendar import DAY, evening_hour, evening_return_hour, is_weekend
from sim.world.world import Building, EstateWorld, Household, World

__all__ = ["ClutterItem", "daily", "remove_clutter", "start_households"]

CLUTTER_OBJECTS = ("shoe_rack", "cardboard_boxes", "old_furniture", "flower_pots", "ebike_parked")
THROWN_OBJECTS = ("trash_bag", "flower_pot", "bottle", "cigarette_butt", "fruit_peel")
SMALL_THROWN = ("cigarette_butt", "fruit_peel")
# How bad an incident is, for severity-weighted recall (synthetic weights: a flower pot can kill).
THROW_SEVERITY = {
    "flower_pot": 3,
    "bottle": 3,
    "trash_bag": 2,
    "cigarette_butt": 1,
    "fruit_peel": 1,
}


def daily(
    env: simpy.Environment,
    days: int,
    plan: Callable[[int], list[float]],
    act: Callable[[int], None],
) -> Generator[simpy.Event, Any, None]:
    """Each day from today on, ask ``plan`` for the hours of the day's acts; run ``act`` at each."""
    for day in range(int(env.now // DAY), days):
        day_start = day * DAY
        if env.now < day_start:
            yield env.timeout(day_start - env.now)
        for hour in sorted(plan(day)):
            t = day_start + hour * 3600.0
            if t > env.now:
                yield env.timeout(t - env.now)
            act(day)


def start_households(world: World, days: int) -> None:
    for est in world.estates.values():
        for hh in est.households:
            rng = world.streams.get("household", hh.id)
            b = est.buildings[hh.building]
            if hh.propensity > 0 and b.elevators.get(hh.unit):
                _start(world, days, *_ebike(world, est, b, hh, rng))
            if hh.throw_rate > 0:
                _start(world, days, *_thrower(world, est, b, hh, rng))
            if hh.clutter_rate > 0:
                _start(world, days, *_clutterer(world, est, b, hh, rng))


def _start(
    world: World, days: int, plan: Callable[[int], list[float]], act: Callable[[int], None]
) -> None:
    world.env.process(daily(world.env, days, plan, act))


# -- e-bikes ----------------------------------------------------------------------------------


def _ebike(
    world: World, est: EstateWorld, b: Building, hh: Household, rng: np.random.Generator
) -> tuple[Callable[[int], list[float]], Callable[[int], None]]:
    beh = world.scenario.behaviour
    start = world.scenario.start

    def plan(day: int) -> list[float]:
        ride = beh.ride_weekend if is_weekend(start, day) else beh.ride_weekday
        return [evening_return_hour(rng)] if rng.random() < ride else []

    def act(day: int) -> None:
        if hh.battery and rng.random() < beh.battery_quit:
            hh.battery = False  # tired of the bag: the bicycle garage from now on, mostly
            hh.propensity *= 1.0 - beh.learn_blocked
        if rng.random() >= hh.propensity:
            return  # parks in the bicycle garage tonight
        lesson = world.lesson(hh)
        obj = (
            "battery"
            if hh.battery
            else ("ebike_covered" if rng.random() < beh.covered_share else "ebike")
        )
        cars = list(b.elevators[hh.unit])
        car = cars[int(rng.integers(len(cars)))]
        rec = world.truth.open(
            "incident",
            "battery_entry" if hh.battery else "ebike_entry",
            world.env.now,
            est.id,
            {
                "building": b.id,
                "unit": hh.unit,
                "floor": hh.floor,
                "household": hh.id,
                "elevator": car.id,
            },
            object=obj,
            severity=2,
        )
        insist = rng.random() < beh.insist_share * (2.0 if hh.stubborn else 1.0)
        stay = float(
            rng.lognormal(np.log(160.0), 0.4) if insist else rng.lognormal(np.log(15.0), 0.6)
        )
        blocker = car.blocker
        result = "off" if blocker is None else blocker.encounter(obj, stay, rec.cause)
        if result == "busy":
            others = [c for c in cars if c is not car and c.blocker is not None]
            if others:
                car, blocker = others[0], others[0].blocker
                result = blocker.encounter(obj, stay, rec.cause) if blocker else "off"
                rec.place["elevator"] = car.id
        rec.covered_by = blocker.device_id if blocker is not None and blocker.installed else None
        if result == "blocked":
            assert blocker is not None
            world.holders[blocker.device_id] = hh
            rec.end_s = world.env.now + stay + 9.0
            rec.detail["outcome"] = "turned_back"
            hh.blocked += 1
            hh.propensity *= 1.0 - beh.learn_blocked * lesson
            if not hh.battery and rng.random() < beh.battery_switch:
                hh.battery = True
        else:
            rec.end_s = world.env.now
            rec.detail["outcome"] = "went_up"
            rec.miss_reason = {"off": "device_down", "busy": "device_busy"}.get(
                result, "not_detected"
            )

    return plan, act


# -- throwing ---------------------------------------------------------------------------------


def _thrower(
    world: World, est: EstateWorld, b: Building, hh: Household, rng: np.random.Generator
) -> tuple[Callable[[int], list[float]], Callable[[int], None]]:
    def plan(day: int) -> list[float]:
        return [evening_hour(rng, 17.0, 4.0) for _ in range(int(rng.poisson(hh.throw_rate)))]

    def act(day: int) -> None:
        obj = THROWN_OBJECTS[int(rng.integers(len(THROWN_OBJECTS)))]
        now = world.env.now
        rec = world.truth.open(
            "incident",
            "throw",
            now,
            est.id,
            {"building": b.id, "unit": hh.unit, "floor": hh.floor, "household": hh.id},
            column=hh.column,
            object=obj,
            severity=THROW_SEVERITY[obj],
        )
        rec.end_s = now + float(np.sqrt(2 * 2.9 * hh.floor / 9.81))  # the fall
        cam = b.camera
        if cam is None or not cam.installed:
            return
        rec.covered_by = cam.device_id
        if not cam.available:
            rec.miss_reason = "device_down"
        elif hh.floor - 1 < cam.params.min_floors_spanned:
            rec.miss_reason = "below_range"
        else:
            rec.miss_reason = "not_detected"
        if cam.observe_throw(hh.floor, hh.column, obj in SMALL_THROWN, rec.cause):
            world.thrower_of[rec.cause.event_ids[-1]] = hh

    return plan, act


# -- clutter ----------------------------------------------------------------------------------


class ClutterItem:
    """An object standing in a corridor; its truth record closes when somebody removes it."""

    __slots__ = ("household", "key", "rec")

    def __init__(self, rec: Any, key: tuple[str, str, int, int], household: Household) -> None:
        self.rec = rec
        self.key = key
        self.household = household


def _clutterer(
    world: World, est: EstateWorld, b: Building, hh: Household, rng: np.random.Generator
) -> tuple[Callable[[int], list[float]], Callable[[int], None]]:
    beh = world.scenario.behaviour
    start = world.scenario.start

    def plan(day: int) -> list[float]:
        rate = hh.clutter_rate / 7.0
        if is_weekend(start, day):
            rate *= beh.weekend_clutter_factor
        return [evening_hour(rng, 15.0, 4.0) for _ in range(int(rng.poisson(rate)))]

    def act(day: int) -> None:
        obj = CLUTTER_OBJECTS[int(rng.integers(len(CLUTTER_OBJECTS)))]
        rec = world.truth.open(
            "incident",
            "clutter",
            world.env.now,
            est.id,
            {"building": b.id, "unit": hh.unit, "floor": hh.floor, "household": hh.id},
            object=obj,
            severity=2 if obj == "ebike_parked" else 1,
        )
        key = (est.id, b.id, hh.unit, hh.floor)
        item = ClutterItem(rec, key, hh)
        world.clutter.setdefault(key, []).append(item)
        sensor = b.sensors.get((hh.unit, hh.floor))
        if sensor is not None:
            rec.covered_by = sensor.device_id
            rec.miss_reason = "device_down" if not sensor.available else "not_detected"
            sensor.place(rec.id, float(rng.beta(5.0, 5.0) * 0.6 + 0.2), rec.cause)
        dwell = float(rng.lognormal(np.log(beh.clutter_hours_median * 3600.0), 1.0))
        world.env.process(_owner_removes(world, item, dwell))

    return plan, act


def _owner_removes(
    world: World, item: ClutterItem, dwell: float
) -> Generator[simpy.Event, Any, None]:
    yield world.env.timeout(dwell)
    remove_clutter(world, item, "owner")


def remove_clutter(world: World, item: ClutterItem, by: str) -> bool:
    """Take an item out of its corridor (owner or staff); False if it was already gone."""
    items = world.clutter.get(item.key)
    if not items or item not in items:
        return False
    items.remove(item)
    item.rec.end_s = world.env.now
    item.rec.detail["removed_by"] = by
    _, bid, unit, floor = item.key
    sensor = world.estates[item.key[0]].buildings[bid].sensors.get((unit, floor))
    if sensor is not None:
        sensor.remove(item.rec.id)
    return True
