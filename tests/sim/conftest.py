"""Shared runs: a district of two companies, one diligent and one lax, each managing two identical
estates with every device kind; residents with more habits than usual, so that five weeks show
every hazard. Run once per test session."""

from __future__ import annotations

from pathlib import Path

import pytest

from sim.runner import run_to_folder
from sim.world.scenario import Scenario

ESTATE = {
    "buildings": [
        {"count": 2, "floors": 18, "units": 2, "households_per_floor": 4, "elevators_per_unit": 2}
    ],
    "devices": [
        {"kind": "ebike_blocker", "day": 0},
        {"kind": "falling_object_camera", "day": 0},
        {"kind": "clutter_sensor", "day": 0},
    ],
}
SCENARIO = {
    "name": "two-companies",
    "start": "2026-03-02",
    "days": 35,
    "seed": 3,
    "behaviour": {"thrower_share": 0.03, "clutter_share": 0.3, "charger_share": 0.3},
    "companies": [
        {"id": "good", "name": "good", "diligence": 0.95, "staff": 4},
        {"id": "lax", "name": "lax", "diligence": 0.05, "staff": 4},
    ],
    "grids": [
        {
            "id": "g",
            "name": "g",
            "estates": [
                {"id": f"{c}{i}", "name": f"{c}{i}", "company": c, **ESTATE}
                for c in ("good", "lax")
                for i in (1, 2)
            ],
        }
    ],
}


@pytest.fixture(scope="session")
def two_companies(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The run folder of :data:`SCENARIO` (35 days, seed 3, in-process)."""
    out = tmp_path_factory.mktemp("two") / "run"
    run_to_folder(Scenario.model_validate(SCENARIO), out, days=35, seed=3)
    return out
