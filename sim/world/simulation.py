"""One simulated world, composed: the estates and their devices, the companies and their staff,
the households and the nuisances, over a number of days, publishing into a transport."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import simpy
import simpy.rt

from devices.base import Clock
from sim.world import nuisance
from sim.world.behaviour import start_households
from sim.world.calendar import DAY, start_datetime
from sim.world.prevention import start_prevention
from sim.world.property import PropertyCompany
from sim.world.scenario import Scenario
from sim.world.streams import Streams
from sim.world.transport import Transport
from sim.world.truth import TruthLedger
from sim.world.upkeep import start_upkeep
from sim.world.world import World

__all__ = ["Simulation"]


class Simulation:
    """One simulated world over ``days`` days, publishing into ``transport``."""

    def __init__(
        self,
        scenario: Scenario,
        transport: Transport,
        *,
        days: int,
        seed: int,
        speed: float | None = None,
    ) -> None:
        self.scenario = scenario
        self.days = days
        self.seed = seed
        self.env: simpy.Environment = (
            simpy.rt.RealtimeEnvironment(factor=1.0 / speed, strict=False)
            if speed
            else simpy.Environment()
        )
        self.clock = Clock(start_datetime(scenario.start))
        self.truth = TruthLedger()
        self.streams = Streams(seed)
        self.world = World(
            scenario,
            self.env,
            self.streams,
            self.clock,
            transport,
            self.truth,
            days,
            stepped_heartbeats=speed is not None,
        )
        for company in scenario.companies:
            self.world.companies[company.id] = PropertyCompany(
                self.world, company, scenario.staffing
            )
        self.world.on_install.append(partial(nuisance.start_for, self.world))
        start_households(self.world, days)
        start_prevention(self.world, days)
        start_upkeep(self.world, days)
        self.world.schedule_installs()

    def run(self, on_day: Callable[[int], None] | None = None) -> None:
        for day in range(self.days):
            self.env.run(until=(day + 1) * DAY)
            if on_day is not None:
                on_day(day + 1)
        self.world.finish()
