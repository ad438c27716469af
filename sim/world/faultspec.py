"""Fault injection settings: what goes wrong between the devices and the engine, where, how often.

A scenario's ``faults:`` list (or a file given to ``pmsim run --faults``) holds one entry per fault
kind and place. Delivery faults act on each event on its way from the estate gateway to the broker:
``duplicate``, ``reorder`` (held back at most ``max_delay_s``), ``loss``. Device faults act on the
devices themselves: ``clock_skew``, ``device_dead`` (down for good, a visit cannot fix it) and
``device_silent`` (quiet for a while, then back). ``gateway_disconnect`` takes an estate's gateway
off line now and then; its MQTT last will announces it. Every entry is seeded from the run's seed
and its own stream, so turning one kind on or off leaves the others' draws unchanged.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "DEVICE_KINDS",
    "MAX_FAULTS",
    "ClockSkew",
    "DeliveryFault",
    "DeviceDown",
    "FaultSpec",
    "FaultsFile",
    "GatewayDisconnect",
]

DEVICE_KINDS = ("ebike_blocker", "falling_object_camera", "clutter_sensor")
DeviceKind = Literal["ebike_blocker", "falling_object_camera", "clutter_sensor"]
Share = Annotated[float, Field(ge=0.0, le=1.0)]
Estate = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,31}$")]
Day = Annotated[float, Field(ge=0.0, le=3660.0)]  # a run lasts at most 3660 days
MAX_FAULTS = 1000  # entries in one faults list


class _Where(BaseModel):
    """Where a fault applies: the listed estates and device kinds (all when omitted)."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    estates: list[Estate] | None = Field(None, max_length=20000)
    device_kinds: list[DeviceKind] | None = Field(None, max_length=3)

    def applies(self, estate: str, device_kind: str) -> bool:
        return (self.estates is None or estate in self.estates) and (
            self.device_kinds is None or device_kind in self.device_kinds
        )


class DeliveryFault(_Where):
    """Each event, independently, with ``probability``: sent twice, held back, or lost.

    A held-back event goes out after a delay drawn uniformly from (0, ``max_delay_s``], so later
    events overtake it; keep the bound under the rules' ``allowed_lateness`` and the engine
    reorders it invisibly. A duplicate follows its original after up to ``max_delay_s`` (0: at once).
    """

    kind: Literal["duplicate", "reorder", "loss"]
    probability: Share
    max_delay_s: Annotated[float, Field(ge=0.0, le=3600.0)] = 30.0


class ClockSkew(_Where):
    """A ``share`` of the devices run their clocks off by up to ``max_skew_s`` either way."""

    kind: Literal["clock_skew"]
    share: Share = 1.0
    max_skew_s: Annotated[float, Field(ge=0.0, le=86400.0)] = 10.0


class DeviceDown(_Where):
    """A ``share`` of the devices stop at a random moment between ``from_day`` and ``to_day``.

    ``device_dead``: for good, and a technician's visit cannot bring it back. ``device_silent``:
    for ``hours``, unless someone repairs it sooner.
    """

    kind: Literal["device_dead", "device_silent"]
    share: Share
    from_day: Day = 0.0
    to_day: Annotated[float, Field(gt=0.0, le=3660.0)] | None = None  # default: the run's end
    hours: Annotated[float, Field(gt=0.0, le=87840.0)] = 12.0


class GatewayDisconnect(_Where):
    """Estate gateways drop off line every ``mean_days_between`` days for ``mean_minutes``."""

    kind: Literal["gateway_disconnect"]
    mean_days_between: Annotated[float, Field(ge=0.01, le=3660.0)] = 5.0  # 15 min at least
    mean_minutes: Annotated[float, Field(gt=0.0, le=43200.0)] = 20.0


FaultSpec = Annotated[
    DeliveryFault | ClockSkew | DeviceDown | GatewayDisconnect, Field(discriminator="kind")
]


class FaultsFile(BaseModel):
    """A file for ``pmsim run --faults``: the same list a scenario's ``faults:`` takes."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    faults: list[FaultSpec] = Field(default_factory=list, max_length=MAX_FAULTS)
