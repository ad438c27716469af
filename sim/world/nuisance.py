"""Things that are not incidents but may look like one to a device.

Strollers, wheelchairs, bicycles and trolleys in elevators; deliveries and furniture on the move in
corridors; birds, insects, leaves, laundry, rain and shake in front of falling-object cameras. They are
only simulated where a device watches (elsewhere they cannot matter), from the day it is installed.
A stimulus that fools the device is recorded as a false trigger with its cause; one that does not
leaves no trace.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import Any

import numpy as np
import simpy

from devices.base import Device
from devices.blocker import EbikeBlocker
from devices.camera import FallingObjectCamera
from devices.clutter import ClutterSensor
from sim.world.behaviour import daily
from sim.world.calendar import uniform_hour
from sim.world.world import Building, EstateWorld, World

__all__ = ["start_for"]

_DAYLIGHT = {"bird": (6.0, 18.5), "laundry": (8.0, 17.0), "insect": (19.0, 29.0)}


def start_for(world: World, est: EstateWorld, b: Building, dev: Device) -> None:
    """Start the nuisance stream of a freshly installed device."""
    days = world.days
    rng = world.streams.get("nuisance", dev.device_id)
    if isinstance(dev, EbikeBlocker):
        plan, act = _lookalikes(world, est, b, dev, rng)
    elif isinstance(dev, FallingObjectCamera):
        plan, act = _camera_nuisances(world, est, b, dev, rng)
    elif isinstance(dev, ClutterSensor):
        plan, act = _corridor_visitors(world, est, b, dev, rng)
    else:  # pragma: no cover
        return
    world.env.process(daily(world.env, days, plan, act))


Plan = Callable[[int], list[float]]
Act = Callable[[int], None]


def _lookalikes(
    world: World, est: EstateWorld, b: Building, dev: EbikeBlocker, rng: np.random.Generator
) -> tuple[Plan, Act]:
    rates = world.scenario.behaviour.lookalikes_per_elevator_day
    classes = sorted(rates)
    todo: list[str] = []

    def plan(day: int) -> list[float]:
        todo.clear()
        hours: list[tuple[float, str]] = []
        for cls in classes:
            for _ in range(int(rng.poisson(rates[cls]))):
                hours.append((uniform_hour(rng, 7.0, 22.0), cls))
        hours.sort()
        todo.extend(cls for _, cls in reversed(hours))
        return [h for h, _ in hours]

    def act(day: int) -> None:
        cls = todo.pop()
        stay = float(rng.lognormal(np.log(20.0), 0.5))
        rec = world.truth.open(
            "false_trigger",
            "ebike_detected",
            world.env.now,
            est.id,
            {"building": b.id, "device_id": dev.device_id},
            cause=cls,
        )
        if dev.encounter(cls, stay, rec.cause) != "blocked":
            world.truth.discard_if_silent(rec)
            return
        world.holders[dev.device_id] = None
        rec.end_s = world.env.now + stay + 9.0

    return plan, act


def _camera_nuisances(
    world: World, est: EstateWorld, b: Building, dev: FallingObjectCamera, rng: np.random.Generator
) -> tuple[Plan, Act]:
    rates = world.scenario.behaviour.nuisances_per_camera_day
    causes = sorted(rates)
    todo: list[str] = []

    def plan(day: int) -> list[float]:
        todo.clear()
        hours: list[tuple[float, str]] = []
        for cause in causes:
            if cause == "rain" and not world.rainy[day]:
                continue
            lo, hi = _DAYLIGHT.get(cause, (0.0, 24.0))
            for _ in range(int(rng.poisson(rates[cause]))):
                hours.append((uniform_hour(rng, lo, hi) % 24.0, cause))
        hours.sort()
        todo.extend(c for _, c in reversed(hours))
        return [h for h, _ in hours]

    def act(day: int) -> None:
        cause = todo.pop()
        rec = world.truth.open(
            "false_trigger",
            "falling_object",
            world.env.now,
            est.id,
            {"building": b.id, "device_id": dev.device_id},
            cause=cause,
        )
        if not dev.observe_nuisance(cause, rec.cause):
            world.truth.discard_if_silent(rec)
        else:
            rec.end_s = world.env.now

    return plan, act


def _corridor_visitors(
    world: World, est: EstateWorld, b: Building, dev: ClutterSensor, rng: np.random.Generator
) -> tuple[Plan, Act]:
    beh = world.scenario.behaviour
    flats = b.per_floor
    todo: list[str] = []

    def plan(day: int) -> list[float]:
        todo.clear()
        hours: list[tuple[float, str]] = []
        for _ in range(int(rng.poisson(beh.deliveries_per_household_day * flats))):
            hours.append((uniform_hour(rng, 9.0, 21.5), "delivery"))
        for _ in range(int(rng.poisson(beh.moves_per_1000_household_days / 1000.0 * flats))):
            hours.append((uniform_hour(rng, 8.0, 17.0), "moving"))
        hours.sort()
        todo.extend(c for _, c in reversed(hours))
        return [h for h, _ in hours]

    def act(day: int) -> None:
        what = todo.pop()
        if what == "delivery":
            dwell = float(rng.lognormal(np.log(beh.delivery_minutes_median * 60.0), 0.8))
            area = float(rng.uniform(0.05, 0.35))
        else:
            dwell = float(rng.uniform(20.0, 120.0) * 60.0)
            area = float(rng.uniform(0.4, 0.9))
        world.env.process(_visit(world, est, b, dev, what, dwell, area))

    return plan, act


def _visit(
    world: World,
    est: EstateWorld,
    b: Building,
    dev: ClutterSensor,
    what: str,
    dwell: float,
    area: float,
) -> Generator[simpy.Event, Any, None]:
    rec = world.truth.open(
        "false_trigger",
        "clutter_detected",
        world.env.now,
        est.id,
        {"building": b.id, "floor": dev.floor, "device_id": dev.device_id},
        cause=what,
    )
    dev.place(rec.id, area, rec.cause)
    yield world.env.timeout(dwell)
    dev.remove(rec.id)
    rec.end_s = world.env.now
    world.truth.discard_if_silent(rec)
