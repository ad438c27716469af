"""Each indicator points the right way where the answer is known: two companies, one diligent and
one lax, each managing two identical estates with every device kind, residents with more habits
than usual so that five weeks show every hazard. The diligent company's estates must come out
better on every indicator the default ranking weighs, and on the whole score."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from rules.rankconfig import INDICATORS
from sim.report.facts import measure_facts
from sim.report.ranking import DEFAULT_RANKINGS
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


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("two") / "run"
    scenario = Scenario.model_validate(yaml.safe_load(json.dumps(SCENARIO)))
    run_to_folder(scenario, out, days=35, seed=3)
    return out


def _whole_run(run: Path) -> dict[str, Any]:
    rankings = json.loads((run / "rankings.json").read_text(encoding="utf-8"))
    (period,) = [p for p in rankings["periods"] if p["period"]["id"] == "run"]
    return period


def test_every_weighted_indicator_favours_the_diligent_company(run: Path) -> None:
    period = _whole_run(run)
    estates = {e["estate"]: e for e in period["estates"]}
    config = yaml.safe_load(DEFAULT_RANKINGS.read_text(encoding="utf-8"))
    weighted = {n for n, c in config["indicators"].items() if c.get("weight", 0) > 0}
    assert weighted
    for name, spec in INDICATORS.items():
        if name not in weighted:
            continue
        shrunk = {
            c: [estates[f"{c}{i}"]["indicators"].get(name, {}).get("shrunk") for i in (1, 2)]
            for c in ("good", "lax")
        }
        if any(v is None for vs in shrunk.values() for v in vs):
            continue  # not observable in this run (say, no repeat left unhandled anywhere)
        good, lax = (sum(shrunk[c]) / 2 for c in ("good", "lax"))
        if name == "repeat_unhandled" and good == lax:
            continue
        if spec.better == "lower_better":
            assert good < lax, (name, shrunk)
        else:
            assert good > lax, (name, shrunk)
    scores = {c["company"]: c["score"] for c in period["companies"]}
    assert scores["good"] > scores["lax"]


def test_facts_are_measured_from_the_folder(run: Path) -> None:
    facts = {f.name: f for f in measure_facts(run)}
    floors = facts["camera floor estimate within one floor"]
    assert floors.value is not None and floors.value >= 0.8
    visits = facts["staff visits to households that threw nothing"]
    assert visits.value is not None and 0.0 <= visits.value <= 1.0
    refusals = facts["blocker refusals at launch"]
    assert refusals.value is not None and refusals.value > 0
