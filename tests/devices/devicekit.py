"""Helpers shared by the device tests: one device on its own SimPy clock, collecting what it emits.

A plain module, not a test file: the tests import it by name (pytest puts this folder on
``sys.path``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import numpy as np
import simpy

from devices.base import Clock, Device, HealthParams, Outage
from devices.events import DeviceEvent

START = datetime(2026, 3, 2, tzinfo=ZoneInfo("Asia/Shanghai"))  # midnight
NO_OUTAGES = HealthParams(mean_days_between_outages=0)
HOUR = 3600.0

D = TypeVar("D", bound=Device)


def build(
    cls: type[D],
    device_id: str,
    *,
    building: str,
    floor: int | None = None,
    seed: int = 1,
    health_seed: int | None = None,
    health: HealthParams = NO_OUTAGES,
    hour: float | None = None,
    install: bool = True,
    outages: list[Outage] | None = None,
    **kwargs: Any,
) -> tuple[D, list[DeviceEvent]]:
    """A ``cls`` in estate e1 whose events land in the returned list.

    ``hour``: the simulated clock starts at that hour of START's day (None: SimPy's own zero).
    ``health_seed`` defaults to ``seed + 1000``; ``outages`` collects the outages it reports.
    ``kwargs`` (``params`` and the like) go to the device class as they are.
    """
    env = simpy.Environment() if hour is None else simpy.Environment(initial_time=hour * HOUR)
    events: list[DeviceEvent] = []

    def on_outage(outage: Outage, _dev: object) -> None:
        assert outages is not None
        outages.append(outage)

    dev = cls(
        env,
        device_id,
        estate="e1",
        building=building,
        floor=floor,
        clock=Clock(START),
        rng=np.random.default_rng(seed),
        health_rng=np.random.default_rng(seed + 1000 if health_seed is None else health_seed),
        health=health,
        emit=events.append,
        on_outage=on_outage if outages is not None else None,
        **kwargs,
    )
    if install:
        dev.install()
    return dev, events
