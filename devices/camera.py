"""Falling-object camera: ground-mounted, looking up one facade of a building.

Public facts modelled: it alarms when a track spans more than 2 floors, estimates the origin floor
and window column with error, covers roughly floors 3-15, loses recall at night, and is fooled by
birds, insects, leaves, rain, laundry and camera shake. Knobs: confidence threshold, sensitivity.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from devices.base import Cause, Device
from devices.events import FallingObject

__all__ = ["FALSE_CAUSES", "CameraParams", "FallingObjectCamera", "Nuisance", "is_daylight"]

FALSE_CAUSES: tuple[str, ...] = ("bird", "insect", "leaves", "rain", "laundry", "camera_shake")
Nuisance = Literal["bird", "insect", "leaves", "rain", "laundry", "camera_shake"]
Share = Annotated[float, Field(ge=0.0, le=1.0)]
Floor = Annotated[int, Field(gt=0, le=200)]


def _default_fooled() -> dict[Nuisance, float]:
    # Share of each nuisance that produces a track the camera takes for a throw (synthetic).
    return {
        "bird": 0.05,
        "insect": 0.02,
        "leaves": 0.04,
        "rain": 0.01,
        "laundry": 0.25,
        "camera_shake": 0.15,
    }


def is_daylight(hour: float) -> bool:
    """Shanghai daylight, roughly, all year (the camera's IR night mode is weaker)."""
    return 6.0 <= hour < 18.5


class CameraParams(BaseModel):
    """Detection knobs (synthetic values inside the ranges vendors publish)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    recall_day: Share = 0.93
    recall_night: Share = 0.65
    small_object_factor: Share = 0.7  # cigarette butts, peel: harder to track than a bag or a pot
    min_floor: Floor = 3  # lowest window floor the view covers
    max_floor: Floor = 15
    above_range_factor: Share = 0.5
    min_floors_spanned: Floor = 3  # "more than 2 floors"
    floor_error_sd: float = Field(0.8, ge=0.0, le=100.0)
    column_error: Share = 0.15
    confidence_threshold: Share = 0.5
    sensitivity: float = Field(1.0, ge=0.0, le=100.0)  # scales how often nuisances fool it
    fooled: dict[Nuisance, Share] = Field(default_factory=_default_fooled)


class FallingObjectCamera(Device):
    """One camera per watched facade; ``floors`` and ``columns`` describe that facade."""

    kind: ClassVar[str] = "falling_object_camera"

    def __init__(self, *args: Any, params: CameraParams, floors: int, columns: int, **kw: Any):
        super().__init__(*args, **kw)
        self.params = params
        self.floors = floors
        self.columns = columns
        self._clips = 0

    def observe_throw(self, floor: int, column: int, small: bool, cause: Cause | None) -> bool:
        """A real object falls from ``floor``/``column``; returns whether an event was sent."""
        if not self.available:
            return False
        p = self.params
        spanned = floor - 1
        if floor < p.min_floor or spanned < p.min_floors_spanned:
            return False
        hour = self.clock.hour_of_day(self.env.now)
        recall = p.recall_day if is_daylight(hour) else p.recall_night
        if small:
            recall *= p.small_object_factor
        if floor > p.max_floor:
            recall *= p.above_range_factor
        if self.rng.random() >= recall:
            return False
        est_floor = round(floor + float(self.rng.normal(0.0, p.floor_error_sd)))
        est_col = column
        if self.rng.random() < p.column_error:
            est_col = column + (1 if self.rng.random() < 0.5 else -1)
        confidence = 0.55 + 0.45 * float(self.rng.beta(8.0, 2.0))
        return self._alarm(est_floor, est_col, confidence, spanned, cause)

    def observe_nuisance(self, what: str, cause: Cause | None) -> bool:
        """A bird, a leaf, rain... crosses the view; returns whether it raised a false alarm."""
        if not self.available:
            return False
        p = self.params
        fooled = p.fooled.get(what, 0.0)  # type: ignore[call-overload]
        if self.rng.random() >= min(1.0, fooled * p.sensitivity):
            return False
        est_floor = int(self.rng.integers(1, self.floors + 1))
        est_col = int(self.rng.integers(1, self.columns + 1))
        spanned = int(self.rng.integers(p.min_floors_spanned, max(p.min_floors_spanned, 8) + 1))
        confidence = 0.3 + 0.7 * float(self.rng.beta(3.0, 4.0))
        return self._alarm(est_floor, est_col, confidence, spanned, cause)

    def _alarm(
        self, est_floor: int, est_col: int, confidence: float, spanned: int, cause: Cause | None
    ) -> bool:
        if confidence < self.params.confidence_threshold:
            return False
        self._clips += 1
        eid = self.emit(
            FallingObject,
            cause,
            estimated_floor=min(max(est_floor, 1), self.floors),
            estimated_column=min(max(est_col, 1), self.columns),
            confidence=round(confidence, 3),
            floors_spanned=spanned,
            clip_id=f"{self.device_id}-clip{self._clips:05d}",
        )
        return eid is not None
