"""Common-area upkeep: defects in the corridors and stairwells that only people notice.

An emergency light goes out, a fire door is propped open or will not close, an extinguisher goes
missing, a notice board falls. No device sees any of it. Defects appear at
``Staffing.defects_per_corridor_month`` in every corridor (one open defect per corridor at a time);
the company's morning patrol (:mod:`sim.world.prevention`) puts each right with the patrol's chance,
and a defect nobody fixes still ends some day (a resident complains, a contractor passes:
:data:`OUTSIDE_FIX_DAYS` on average). A diligent company's corridors are therefore in order most
of the time, a lax one's often are not: what the housing office's monthly site inspection finds
(:func:`sim.report.inspections.site_inspections`). Each defect is a ``defect`` record in the truth
ledger (not an incident: no rule is meant to detect it).
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import numpy as np
import simpy

from sim.world.calendar import DAY
from sim.world.world import EstateWorld, World

__all__ = ["DEFECT_ITEMS", "OUTSIDE_FIX_DAYS", "fix_defects", "start_upkeep"]

DEFECT_ITEMS = ("emergency_light", "fire_door", "extinguisher", "stair_light", "notice_board")
OUTSIDE_FIX_DAYS = 30.0


def corridors(est: EstateWorld) -> list[tuple[str, str, int, int]]:
    """Every corridor of the estate: (estate, building, unit, floor), in a fixed order."""
    return [
        (est.id, b.id, unit, floor)
        for b in est.buildings.values()
        for unit in range(1, b.units + 1)
        for floor in range(1, b.floors + 1)
    ]


def start_upkeep(world: World, days: int) -> None:
    """One defect process per estate."""
    rate = world.scenario.staffing.defects_per_corridor_month / 30.0 / DAY
    if rate <= 0.0:
        return
    for est in world.estates.values():
        world.env.process(_defects(world, est, rate, days))


def _defects(
    world: World, est: EstateWorld, rate: float, days: int
) -> Generator[simpy.Event, Any, None]:
    env = world.env
    rng = world.streams.get("upkeep", est.id)
    places = corridors(est)
    if not places:
        return
    total = rate * len(places)
    while True:
        t = env.now + float(rng.exponential(1.0 / total))
        if t >= days * DAY:
            return
        yield env.timeout(t - env.now)
        key = places[int(rng.integers(len(places)))]
        item = DEFECT_ITEMS[int(rng.integers(len(DEFECT_ITEMS)))]
        lasts = float(rng.exponential(OUTSIDE_FIX_DAYS * DAY))
        if key in world.defects:
            continue  # already out of order there
        rec = world.truth.open(
            "defect",
            "common_area",
            env.now,
            est.id,
            {"building": key[1], "unit": key[2], "floor": key[3]},
            item=item,
            fixed_by=None,
        )
        world.defects[key] = rec
        env.process(_outside_fix(world, key, rec, lasts))


def _outside_fix(
    world: World, key: tuple[str, str, int, int], rec: Any, lasts: float
) -> Generator[simpy.Event, Any, None]:
    yield world.env.timeout(lasts)
    if world.defects.get(key) is rec:
        _close(world, key, "outside")


def _close(world: World, key: tuple[str, str, int, int], by: str) -> None:
    rec = world.defects.pop(key)
    rec.end_s = world.env.now
    rec.detail["fixed_by"] = by


def fix_defects(world: World, estates: set[str], share: float, rng: np.random.Generator) -> int:
    """A patrol through the estates: each open defect put right with chance ``share``."""
    fixed = 0
    for key in sorted(k for k in world.defects if k[0] in estates):
        if rng.random() < share:
            _close(world, key, "patrol")
            fixed += 1
    return fixed
