"""Elevator e-bike blocker: a ceiling camera that holds the door while an e-bike stays in the car.

Public facts modelled: recognition in 1-2 s over ~2 s of frames, a voice warning, the door held and
floor buttons disabled until the bike leaves, release ~7 s after the last e-bike frame, a
door-open-too-long alarm at ~120 s. Vendors claim 94-99% accuracy; look-alikes (strollers,
wheelchairs, bicycles, trolleys) sometimes fool it; a bike under a rain cover is usually still caught;
a battery carried in a bag is missed.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Annotated, Any, ClassVar, Literal

import simpy
from pydantic import BaseModel, ConfigDict, Field

from devices.base import Cause, Device
from devices.events import DoorHeld, DoorOpenTooLong, DoorReleased, EbikeDetected

__all__ = ["LOOKALIKES", "BlockerParams", "EbikeBlocker", "Encounter", "Lookalike"]

LOOKALIKES: tuple[str, ...] = ("stroller", "wheelchair", "bicycle", "trolley")
Seconds = Annotated[float, Field(gt=0.0, le=86400.0)]
Lookalike = Literal["stroller", "wheelchair", "bicycle", "trolley"]

Encounter = Literal["blocked", "passed", "busy", "off"]


def _default_lookalikes() -> dict[Lookalike, float]:
    return {"stroller": 0.03, "wheelchair": 0.02, "bicycle": 0.12, "trolley": 0.02}


class BlockerParams(BaseModel):
    """Detection and timing knobs (vendor-claim ranges; the exact values are synthetic)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    recall: float = Field(0.96, ge=0.0, le=1.0)
    covered_recall: float = Field(0.85, ge=0.0, le=1.0)
    battery_recall: float = Field(0.0, ge=0.0, le=1.0)
    lookalike_rates: dict[Lookalike, Annotated[float, Field(ge=0.0, le=1.0)]] = Field(
        default_factory=_default_lookalikes
    )
    confidence_floor: float = Field(0.5, ge=0.0, lt=1.0)
    confirm_seconds: tuple[Seconds, Seconds] = (1.0, 2.0)
    release_delay_seconds: float = Field(7.0, ge=0.0, le=3600.0)
    open_too_long_seconds: Seconds = 120.0


class EbikeBlocker(Device):
    """One blocker per elevator car."""

    kind: ClassVar[str] = "ebike_blocker"

    def __init__(self, *args: Any, params: BlockerParams, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.params = params
        self.holding = False

    def encounter(self, obj: str, stay_seconds: float, cause: Cause | None) -> Encounter:
        """An object enters the car and would stay ``stay_seconds`` if held.

        ``obj`` is ``ebike``, ``ebike_covered``, ``battery`` or a look-alike. Returns what the rider
        experiences: ``blocked`` (the door is held: events follow), ``passed`` (not recognised),
        ``busy`` (the car is already held by someone else) or ``off`` (no working blocker).
        """
        if not self.available:
            return "off"
        if self.holding:
            return "busy"
        p = self.params
        if obj == "ebike":
            hit_p = p.recall
        elif obj == "ebike_covered":
            hit_p = p.covered_recall
        elif obj == "battery":
            hit_p = p.battery_recall
        else:
            hit_p = p.lookalike_rates.get(obj, 0.0)  # type: ignore[call-overload]
        if self.rng.random() >= hit_p:
            return "passed"
        true_bike = obj in ("ebike", "ebike_covered", "battery")
        # Real e-bikes score high; look-alikes that fool the model score lower (rules can filter).
        a, b = (14.0, 2.0) if true_bike else (4.0, 4.0)
        confidence = p.confidence_floor + (1.0 - p.confidence_floor) * float(self.rng.beta(a, b))
        seen: Literal["ebike", "ebike_covered"] = (
            "ebike_covered" if obj == "ebike_covered" or self.rng.random() < 0.1 else "ebike"
        )
        confirm = float(self.rng.uniform(*p.confirm_seconds))
        self.holding = True
        self.env.process(self._hold(confirm, stay_seconds, round(confidence, 3), seen, cause))
        return "blocked"

    def _hold(
        self,
        confirm: float,
        stay: float,
        confidence: float,
        seen: Literal["ebike", "ebike_covered"],
        cause: Cause | None,
    ) -> Generator[simpy.Event, Any, None]:
        p = self.params
        yield self.env.timeout(confirm)
        self.emit(EbikeDetected, cause, confidence=confidence, object_class=seen)
        self.emit(DoorHeld, cause)
        held_from = self.env.now
        held_total = stay + p.release_delay_seconds
        if held_total > p.open_too_long_seconds:
            yield self.env.timeout(p.open_too_long_seconds)
            self.emit(DoorOpenTooLong, cause, held_seconds=p.open_too_long_seconds)
            yield self.env.timeout(held_total - p.open_too_long_seconds)
        else:
            yield self.env.timeout(held_total)
        self.emit(DoorReleased, cause, held_seconds=round(self.env.now - held_from, 3))
        self.holding = False
