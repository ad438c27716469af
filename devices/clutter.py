"""Hallway clutter sensor: abandoned-object detection in one corridor or stairwell landing.

Public facts modelled: a minimum dwell time separates passing from occupying (so short-lived
deliveries usually do not alarm), an area-share threshold (~0.3-0.4), a working schedule and a
cooldown (~600 s) after an alarm clears.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass
from typing import Any, ClassVar

import simpy
from pydantic import BaseModel, ConfigDict, Field

from devices.base import Cause, Device
from devices.events import ClutterCleared, ClutterDetected

__all__ = ["ClutterParams", "ClutterSensor"]


class ClutterParams(BaseModel):
    """Detection knobs (synthetic values inside vendor ranges)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    min_dwell_seconds: float = Field(120.0, gt=0.0, le=604800.0)
    area_threshold: float = Field(0.35, ge=0.0, le=1.0)
    area_noise_sd: float = Field(0.05, ge=0.0, le=1.0)
    recall: float = Field(0.95, ge=0.0, le=1.0)  # lighting and occlusion
    active_from_hour: float = Field(0.0, ge=0.0, le=24.0)
    active_to_hour: float = Field(24.0, ge=0.0, le=24.0)
    cooldown_seconds: float = Field(600.0, ge=0.0, le=604800.0)
    recheck_seconds: float = Field(
        600.0, ge=1.0, le=86400.0
    )  # while off duty, faulted or cooling down


@dataclass(slots=True)
class _Item:
    placed_at: float
    area: float
    cause: Cause | None


class ClutterSensor(Device):
    """One sensor per watched corridor (building, unit, floor)."""

    kind: ClassVar[str] = "clutter_sensor"

    def __init__(self, *args: Any, params: ClutterParams, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.params = params
        self._items: dict[str, _Item] = {}
        self._alarmed: set[str] = set()
        self._alarm_since = 0.0
        self._cooldown_until = -1.0

    @property
    def alarm_active(self) -> bool:
        return bool(self._alarmed)

    def place(self, item_id: str, area: float, cause: Cause | None) -> None:
        """Something is put down in the corridor (true clutter, a delivery, a sofa on the move)."""
        item = _Item(self.env.now, area, cause)
        self._items[item_id] = item
        self.env.process(self._watch(item_id, item))

    def remove(self, item_id: str) -> None:
        """The thing is gone; an alarm clears when the last object it saw leaves."""
        item = self._items.pop(item_id, None)
        if item is None or item_id not in self._alarmed:
            return
        self._alarmed.discard(item_id)
        if not self._alarmed:
            present = round(self.env.now - self._alarm_since, 3)
            self.emit(ClutterCleared, item.cause, present_seconds=present)
            self._cooldown_until = self.env.now + self.params.cooldown_seconds

    def _on_duty(self) -> bool:
        p = self.params
        hour = self.clock.hour_of_day(self.env.now)
        if p.active_from_hour <= p.active_to_hour:
            return p.active_from_hour <= hour < p.active_to_hour
        return hour >= p.active_from_hour or hour < p.active_to_hour

    def _watch(self, item_id: str, item: _Item) -> Generator[simpy.Event, Any, None]:
        p = self.params
        yield self.env.timeout(p.min_dwell_seconds)
        # ``is item``: a watcher belongs to one placement, not to whatever later reuses the id.
        while self._items.get(item_id) is item:
            if self.available and self._on_duty() and self.env.now >= self._cooldown_until:
                # One look on duty decides: clutter now, or never for this object.
                measured = item.area + float(self.rng.normal(0.0, p.area_noise_sd))
                if measured < p.area_threshold or self.rng.random() >= p.recall:
                    return
                if self.alarm_active:
                    # Already alarming for this corridor: the object joins the open alarm.
                    self._alarmed.add(item_id)
                    return
                dwell = round(self.env.now - item.placed_at, 3)
                self._alarmed.add(item_id)
                self._alarm_since = item.placed_at
                share = round(min(max(measured, 0.0), 1.0), 3)
                self.emit(ClutterDetected, item.cause, area_share=share, dwell_seconds=dwell)
                return
            yield self.env.timeout(p.recheck_seconds)
