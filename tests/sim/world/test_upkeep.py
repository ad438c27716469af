"""Common-area defects: they appear in every estate, devices or none, and a diligent company's
patrols keep its corridors in order far more of the time than a lax company's."""

from __future__ import annotations

import itertools
import json
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

from sim.runner import run_to_folder
from sim.world.scenario import Scenario

DAY = 86400.0


def _defects(run: Path) -> list[dict[str, Any]]:
    with (run / "truth.jsonl").open(encoding="utf-8") as fh:
        return [t for t in map(json.loads, fh) if t["kind"] == "defect"]


def _open_share(defects: list[dict[str, Any]], estate: str, corridors: int, days: int) -> float:
    """The time-averaged share of the estate's corridors with a defect open."""
    total = 0.0
    for d in defects:
        if d["estate"] == estate:
            end = days * DAY if d["end_s"] is None else d["end_s"]
            total += end - d["start_s"]
    return total / (corridors * days * DAY)


def test_diligent_patrols_keep_corridors_in_order(two_companies: Path) -> None:
    defects = _defects(two_companies)
    corridors = 2 * 2 * 18  # two buildings of two units and 18 floors
    share = {e: _open_share(defects, e, corridors, 35) for e in ("good1", "good2", "lax1", "lax2")}
    assert all(v > 0 for v in share.values())
    assert max(share["good1"], share["good2"]) * 2 < min(share["lax1"], share["lax2"])
    by = defaultdict(int)
    for d in defects:
        by[(d["estate"][:-1], d["fixed_by"])] += 1
    assert by[("good", "patrol")] > by[("lax", "patrol")]
    assert {d["item"] for d in defects} >= {"emergency_light", "fire_door"}
    # one open defect per corridor at a time
    spans = defaultdict(list)
    for d in defects:
        key = (d["estate"], d["building"], d["unit"], d["floor"])
        spans[key].append((d["start_s"], d["end_s"] or float("inf")))
    for s in spans.values():
        s.sort()
        assert all(a[1] <= b[0] for a, b in itertools.pairwise(s))


@pytest.mark.parametrize("rate", [0.0])
def test_no_defects_when_the_scenario_says_none(tmp_path: Path, rate: float) -> None:
    doc = {
        "name": "quiet",
        "start": "2026-03-02",
        "days": 3,
        "staffing": {"defects_per_corridor_month": rate},
        "companies": [{"id": "c", "name": "c", "diligence": 0.5, "staff": 1}],
        "grids": [
            {
                "id": "g",
                "name": "g",
                "estates": [
                    {
                        "id": "e",
                        "name": "e",
                        "company": "c",
                        "buildings": [{"count": 2, "floors": 6}],
                    }
                ],
            }
        ],
    }
    run_to_folder(Scenario.model_validate(doc), tmp_path / "run", days=3, seed=1)
    assert _defects(tmp_path / "run") == []
