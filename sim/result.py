"""What one run produced, as the summary at its end reports it."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sim.world.scenario import Scenario

__all__ = ["RunResult"]


@dataclass
class RunResult:
    out: Path
    scenario: Scenario
    days: int
    seed: int
    events: int
    event_counts: dict[str, dict[str, int]]
    truth_counts: dict[str, Any]
    wall_seconds: float
    devices: int
    households: int
    score: dict[str, Any] = field(default_factory=dict)
    mqtt: dict[str, Any] = field(default_factory=dict)
    report: str = ""
    rankings: dict[str, Any] = field(default_factory=dict)

    @property
    def events_per_second(self) -> float:
        return self.events / self.wall_seconds if self.wall_seconds > 0 else 0.0
