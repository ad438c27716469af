"""What a property company does before anything alarms: education rounds and corridor patrols.

A diligent company prevents as well as answers, so its estates have fewer hazards to begin with:
once a month its staff go round the households (notices, talks, the residents' committee) and every
habit - taking the e-bike upstairs, throwing, leaving things in the corridor - drops by a share
proportional to its diligence (a stubborn household takes less of it); every morning a patrol walks
the corridors and takes away what stands there, and puts right what is broken there
(:mod:`sim.world.upkeep`), with a chance proportional to its diligence. A lax
company does little of either. Nothing here sends an event: the office sees prevention only in
what devices, work orders and inspections show afterwards.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import simpy

from sim.world.behaviour import remove_clutter
from sim.world.calendar import DAY
from sim.world.scenario import Company
from sim.world.upkeep import fix_defects
from sim.world.world import World

__all__ = ["start_prevention"]

EDUCATION_EVERY_DAYS = 30
PATROL_HOUR = 10.0


def start_prevention(world: World, days: int) -> None:
    """One education process and one patrol process per company that manages an estate."""
    served: dict[str, list[str]] = {}
    for est in world.estates.values():
        served.setdefault(est.company, []).append(est.id)
    for company in world.scenario.companies:
        estates = served.get(company.id)
        if not estates or company.diligence <= 0.0:
            continue
        world.env.process(_education(world, company, estates, days))
        world.env.process(_patrols(world, company, estates, days))


def _education(
    world: World, company: Company, estates: list[str], days: int
) -> Generator[simpy.Event, Any, None]:
    env = world.env
    cut = world.scenario.staffing.education_effect * company.diligence
    rng = world.streams.get("education", company.id)
    first = float(rng.uniform(1.0, EDUCATION_EVERY_DAYS)) * DAY  # each company its own round
    t = first
    while t < days * DAY:
        yield env.timeout(t - env.now)
        for eid in estates:
            for hh in world.estates[eid].households:
                keep = 1.0 - cut * world.lesson(hh)
                hh.propensity *= keep
                hh.throw_rate *= keep
                hh.clutter_rate *= keep
        t += EDUCATION_EVERY_DAYS * DAY


def _patrols(
    world: World, company: Company, estates: list[str], days: int
) -> Generator[simpy.Event, Any, None]:
    env = world.env
    share = world.scenario.staffing.patrol_share * company.diligence
    rng = world.streams.get("patrol", company.id)
    wanted = set(estates)
    for day in range(days):
        t = day * DAY + PATROL_HOUR * 3600.0
        if t > env.now:
            yield env.timeout(t - env.now)
        for key in sorted(k for k in world.clutter if k[0] in wanted):
            for item in list(world.clutter.get(key, ())):
                if rng.random() < share:
                    remove_clutter(world, item, "patrol")
        fix_defects(world, wanted, share, rng)
