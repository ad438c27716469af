"""The city generator: valid through the real loader, sized as asked, deterministic, plausible."""

from __future__ import annotations

import statistics
import time
from collections import Counter
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import yaml

from sim.commands.scenariogen import city_yaml
from sim.world.generate import City, CityOptions, generate_city, option_problem
from sim.world.scenario import Scenario, building_ids, load_scenario


def write(tmp_path: Path, city: City, name: str = "city.yaml") -> Path:
    path = tmp_path / name
    path.write_text(city_yaml(city), encoding="utf-8")
    return path


def estates(sc: Scenario) -> list[Any]:
    return [e for _, e in sc.estates()]


@pytest.fixture(scope="module")
def big() -> tuple[City, Scenario]:
    """600 estates in 5 districts: enough for every kind and a long tail of companies."""
    city = generate_city(CityOptions(districts=5, estates=600, seed=11, days=60))
    return city, Scenario.model_validate(city.data)


@pytest.mark.parametrize(
    ("districts", "n", "companies"),
    [(1, 1, None), (1, 5, None), (4, 9, None), (2, 12, 12), (3, 40, 8)],
)
def test_the_file_loads_through_the_real_loader_with_the_size_asked_for(
    tmp_path: Path, districts: int, n: int, companies: int | None
) -> None:
    opts = CityOptions(districts, n, seed=5, companies=companies, start=date(2026, 4, 6), days=20)
    city = generate_city(opts)
    path = write(tmp_path, city)
    assert yaml.safe_load(path.read_text(encoding="utf-8")) == city.data  # the file is the data
    sc = load_scenario(path)  # schema and check_scenario, as pmsim validate
    assert len(estates(sc)) == n
    assert {g.id.split("-")[0] for g in sc.grids} == {f"d{d:02d}" for d in range(1, districts + 1)}
    assert len({g.name.split("/")[0] for g in sc.grids}) == districts  # 区/街道/网格
    assert len(sc.companies) == (companies or max(1, round(n / 5)))
    managed = Counter(e.company for e in estates(sc))
    assert set(managed) == {c.id for c in sc.companies}  # every company has an estate
    assert (sc.start, sc.days, sc.seed) == (date(2026, 4, 6), 20, 5)


def test_same_options_give_the_same_bytes_and_another_seed_differs(tmp_path: Path) -> None:
    opts = CityOptions(districts=3, estates=50, seed=3)
    a = write(tmp_path, generate_city(opts), "a.yaml").read_bytes()
    b = write(tmp_path, generate_city(opts), "b.yaml").read_bytes()
    c = write(tmp_path, generate_city(CityOptions(3, 50, seed=4)), "c.yaml").read_bytes()
    assert a == b
    assert a != c
    names = [{e.name for e in estates(load_scenario(tmp_path / f))} for f in ("a.yaml", "c.yaml")]
    assert names[0] != names[1]


def test_every_kind_of_estate_with_its_own_buildings(big: tuple[City, Scenario]) -> None:
    city, sc = big
    kinds = Counter(city.notes.values())
    assert len(kinds) == 4 and min(kinds.values()) >= 20
    for est in estates(sc):
        note = city.notes[est.id]
        groups = est.buildings
        if note.startswith("walk-up"):  # 新村: walk-ups, lifts only where added (one a unit)
            assert est.name.endswith(("村", "小区"))
            assert all(g.floors <= 7 and g.elevators_per_unit <= 1 for g in groups)
            assert groups[0].elevators_per_unit == 0
        elif note.startswith("high-rise"):
            assert max(g.floors for g in groups) >= 18
            assert all(g.elevators_per_unit >= 1 for g in groups)
        elif note.startswith("village"):
            assert est.id.endswith(("-cun", "-coop")) and est.name.endswith(("村", "合作社"))
            assert all(g.floors <= 6 for g in groups if g.elevators_per_unit == 0)
        else:  # mid-rise: the taller blocks have lifts
            assert all(g.elevators_per_unit >= 1 for g in groups if g.floors > 6)
        households = sum(
            g.count * g.floors * g.units * g.households_per_floor * g.occupancy for g in groups
        )
        assert 50 <= households <= 8000
    assert len({e.id for e in estates(sc)}) == len({e.name for e in estates(sc)}) == 600
    assert any(e.elevators_per_unit for est in estates(sc) for e in est.buildings)


def test_devices_only_where_they_fit_and_rolled_out_over_time(
    big: tuple[City, Scenario],
) -> None:
    _, sc = big
    installs = 0
    days: set[int] = set()
    for est in estates(sc):
        info: dict[str, tuple[int, int]] = {}  # building id -> (floors, lifts a unit)
        ids = iter(building_ids(est))
        for g in est.buildings:
            for _ in range(g.count):
                info[next(ids)] = (g.floors, g.elevators_per_unit)
        tall = any(f >= 7 for f, _ in info.values())
        for inst in est.devices:
            installs += 1
            days.add(inst.day)
            assert 0 <= inst.day < sc.days
            where = inst.buildings or list(info)
            if inst.kind == "ebike_blocker":
                assert all(info[b][1] > 0 for b in where)  # no blocker without a lift
            if inst.kind == "falling_object_camera":
                assert all(info[b][0] >= (7 if tall else 5) for b in where)
    with_devices = sum(bool(e.devices) for e in estates(sc))
    assert 0.15 * 600 < with_devices < 0.85 * 600  # some estates have none
    assert installs > with_devices and len(days) >= 10 and 0 in days


def test_a_few_large_companies_across_districts_and_a_long_tail(
    big: tuple[City, Scenario],
) -> None:
    _, sc = big
    managed = Counter(e.company for e in estates(sc))
    sizes = sorted(managed.values(), reverse=True)
    assert sizes[0] >= 5 * statistics.median(sizes)
    assert sum(s <= 2 for s in sizes) >= len(sizes) / 3  # most companies are small
    largest = sc.companies[0].id
    assert managed[largest] == sizes[0]  # companies are listed largest first
    districts = {g.id[:3] for g in sc.grids for e in g.estates if e.company == largest}
    assert len(districts) >= 4
    diligence = sorted(c.diligence for c in sc.companies)
    assert diligence[0] <= 0.15 and diligence[-1] >= 0.9
    staff = {c.id: c.staff for c in sc.companies}
    assert staff[largest] > statistics.median(staff.values())


def test_thirteen_thousand_estates_in_seconds_and_a_compact_file() -> None:
    began = time.perf_counter()
    city = generate_city(CityOptions(districts=16, estates=13000, seed=1))
    text = city_yaml(city)
    seconds = time.perf_counter() - began
    assert seconds < 30  # about 1.5 s on the 2-core development machine
    assert sum(len(g["estates"]) for g in city.data["grids"]) == 13000
    assert len(text.encode("utf-8")) < 8_000_000  # building groups, not one entry a building
    Scenario.model_validate(city.data)


@pytest.mark.parametrize(
    ("opts", "problem"),
    [
        (CityOptions(0, 10, 1), ("districts", 0, "must be at least 1")),
        (CityOptions(1, 20001, 1), ("estates", 20001, "at most 20000")),
        (CityOptions(5, 3, 1), ("estates", 3, "at least one per district (5)")),
        (
            CityOptions(1, 10, 1, companies=11),
            ("companies", 11, "from 1 to the number of estates (10)"),
        ),
        (CityOptions(1, 10, 1, days=0), ("days", 0, "must be at least 1")),
        (CityOptions(1, 10, -1), ("seed", -1, "must be at least 0")),
    ],
)
def test_absurd_options_are_refused(opts: CityOptions, problem: tuple[str, int, str]) -> None:
    assert option_problem(opts) == problem
    with pytest.raises(ValueError, match=problem[2].replace("(", r"\(").replace(")", r"\)")):
        generate_city(opts)
