"""The office's monthly site inspection: one visit per estate and calendar month, devices or none,
finding what is really out of order (with its own small errors), the same way on every rerun."""

from __future__ import annotations

from typing import Any

from sim.report.siteinspections import SITE_SAMPLE, site_inspections

DAY = 86400.0


def _scenario(devices: bool) -> dict[str, Any]:
    estate = {
        "id": "e1",
        "name": "e1",
        "company": "c",
        "buildings": [{"count": 5, "floors": 6, "units": 2}],  # 60 corridors
    }
    if devices:
        estate["devices"] = [{"kind": "falling_object_camera", "day": 0}]
    small = {"id": "e2", "name": "e2", "company": "c", "buildings": [{"count": 1, "floors": 5}]}
    return {"start": "2026-03-15", "grids": [{"id": "g", "estates": [estate, small]}]}


def _broken(estate: str, corridors: list[tuple[str, int, int]]) -> list[dict[str, Any]]:
    return [
        {"kind": "defect", "estate": estate, "building": b, "unit": u, "floor": f,
         "start_s": 0.0, "end_s": None}
        for b, u, f in corridors
    ]  # fmt: skip


def test_one_visit_per_estate_and_month_covered() -> None:
    visits = site_inspections(_scenario(devices=False), [], seed=1, days=40)
    # 2026-03-15 + 40 days touches March and April
    assert sorted((v["estate"], v["visit_s"] < 17 * DAY) for v in visits) == [
        ("e1", False), ("e1", True), ("e2", False), ("e2", True)
    ]  # fmt: skip
    assert {v["estate"]: v["checked"] for v in visits} == {"e1": SITE_SAMPLE, "e2": 5}
    for v in visits:
        hour = v["visit_s"] % DAY / 3600
        assert 9 <= hour < 17 and 0 <= v["visit_s"] < 40 * DAY


def test_what_is_broken_is_found_and_a_rerun_finds_the_same() -> None:
    everything = [("b01", 1, f) for f in range(1, 7)] + [("b01", 2, f) for f in range(1, 7)]
    everything += [(f"b0{b}", u, f) for b in range(2, 6) for u in (1, 2) for f in range(1, 7)]
    truth = _broken("e1", everything)
    visits = site_inspections(_scenario(devices=True), truth, seed=7, days=15)
    e1 = [v for v in visits if v["estate"] == "e1"]
    assert len(e1) == 1 and e1[0]["found"] >= 0.8 * e1[0]["checked"]
    e2 = [v for v in visits if v["estate"] == "e2"]
    assert e2[0]["found"] <= 1  # nothing broken there: at most an inspector's slip
    assert site_inspections(_scenario(devices=True), truth, seed=7, days=15) == visits
    assert site_inspections(_scenario(devices=True), truth, seed=8, days=15) != visits


def test_a_defect_fixed_before_the_visit_is_not_found() -> None:
    corridors = [(f"b0{b}", u, f) for b in range(1, 6) for u in (1, 2) for f in range(1, 7)]
    truth = [dict(t, end_s=1.0) for t in _broken("e1", corridors)]
    visits = site_inspections(_scenario(devices=False), truth, seed=3, days=15)
    (e1,) = [v for v in visits if v["estate"] == "e1"]
    assert e1["found"] <= 3  # only the inspector's own slips (1% of 40)
