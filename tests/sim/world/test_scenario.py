"""Scenario files: the shipped ones validate; broken ones give one line naming file, field, line."""

from __future__ import annotations

import itertools
import json
from collections import Counter
from pathlib import Path

import pytest

from sim.commands.cli import SCHEMAS
from sim.errors import BadInput
from sim.world.scenario import building_ids, load_scenario

ROOT = Path(__file__).resolve().parents[3]
SEEDS = ROOT / "seeds"
TINY = (SEEDS / "tiny.yaml").read_text(encoding="utf-8")


def broken(tmp_path: Path, old: str, new: str) -> Path:
    assert old in TINY, old
    p = tmp_path / "broken.yaml"
    p.write_text(TINY.replace(old, new, 1), encoding="utf-8")
    return p


def line_of(path: Path, text: str) -> int:
    for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if text in line:
            return i
    raise AssertionError(text)


@pytest.mark.parametrize("name", ["tiny", "taopu", "xinhong"])
def test_shipped_scenarios_validate(name: str) -> None:
    sc = load_scenario(SEEDS / f"{name}.yaml")
    assert sc.name == name


def test_xinhong_has_what_the_design_asks_for() -> None:
    sc = load_scenario(SEEDS / "xinhong.yaml")
    assert {g.name for g in sc.grids} == {"爱博", "华美", "航华", "枢纽"}
    estates = {e.name: e for _, e in sc.estates()}
    # the source's 20 party organisations: 14 residential areas and 6 villages, one a cooperative
    assert len(estates) == 20
    villages = [e for e in estates.values() if e.id.endswith(("-cun", "-coop"))]
    assert len(villages) == 6 and sum(e.id.endswith("-coop") for e in villages) == 1
    assert {"爱博二村", "爱博四村", "爱博五村", "航一七"} <= set(estates)
    # 13 companies (the skills contest), each with an estate, most with two or more
    assert len(sc.companies) == 13
    managed = Counter(e.company for e in estates.values())
    assert set(managed) == {c.id for c in sc.companies}
    assert sum(n >= 2 for n in managed.values()) > len(sc.companies) / 2
    # latent diligence over a wide range, both ends populated
    diligence = sorted(c.diligence for c in sc.companies)
    assert diligence[0] <= 0.15 and diligence[-1] >= 0.9
    assert sum(d >= 0.75 for d in diligence) >= 3 and sum(d < 0.35 for d in diligence) >= 3
    assert max(b - a for a, b in itertools.pairwise(diligence)) <= 0.1
    aibo4 = estates["爱博四村"]
    assert {d.kind for d in aibo4.devices if d.day == 0} == {
        "ebike_blocker",
        "falling_object_camera",
        "clutter_sensor",
    }
    assert any(d.day > 0 for e in estates.values() for d in e.devices)
    assert any(not e.devices for e in estates.values())


def test_taopu_names_the_six_estates() -> None:
    sc = load_scenario(SEEDS / "taopu.yaml")
    names = {e.name for _, e in sc.estates()}
    assert names == {"樱花苑", "莲花公寓", "石榴苑", "白丽苑", "紫藤苑", "祁连村"}


def test_building_ids_run_across_groups() -> None:
    sc = load_scenario(SEEDS / "tiny.yaml")
    est = next(e for _, e in sc.estates())
    assert building_ids(est) == ["b01", "b02"]


CASES = [
    # (old text, new text, expected field path, expected words, line marker)
    ("days: 3", "days: [3", None, "YAML syntax error", None),
    ("seed: 1", "seed: 1\ncolour: red", "colour", "unknown key 'colour'", "colour: red"),
    ("staff: 2", "staff: two", "companies[0].staff", "valid integer", "staff: two"),
    (
        "count: 1, floors: 18",
        "count: -1, floors: 18",
        "grids[0].estates[0].buildings[0].count",
        "greater than 0",
        "count: -1",
    ),
    (
        "{kind: clutter_sensor, day: 0}",
        "{kind: smoke_sensor, day: 0}",
        "grids[0].estates[0].devices[2].kind",
        "ebike_blocker",
        "smoke_sensor",
    ),
    (
        "{kind: clutter_sensor, day: 0}",
        "{kind: clutter_sensor, day: 9}",
        "grids[0].estates[0].devices[2].day",
        "after the end of the run",
        "day: 9",
    ),
    (
        "company: demo-pm",
        "company: acme",
        "grids[0].estates[0].company",
        "unknown company 'acme'",
        "company: acme",
    ),
    (
        "{kind: ebike_blocker, day: 0}",
        "{kind: ebike_blocker, day: 0, buildings: [b07]}",
        "grids[0].estates[0].devices[0].buildings",
        "unknown building 'b07'",
        "b07",
    ),
]


@pytest.mark.parametrize(("old", "new", "field", "words", "marker"), CASES)
def test_bad_scenario_gives_one_line_with_file_field_and_line(
    tmp_path: Path, old: str, new: str, field: str | None, words: str, marker: str | None
) -> None:
    path = broken(tmp_path, old, new)
    with pytest.raises(BadInput) as info:
        load_scenario(path)
    msg = str(info.value)
    assert "\n" not in msg
    assert msg.startswith(f"{path}:")
    assert words in msg
    if field is not None:
        assert f": {field}: " in msg
    expected_line = line_of(path, marker if marker else "days: [3")
    assert msg.startswith(f"{path}:{expected_line}:") or (
        marker is None and msg.startswith(f"{path}:{expected_line + 1}:")
    )


def test_missing_file_and_non_mapping(tmp_path: Path) -> None:
    with pytest.raises(BadInput, match="file not found"):
        load_scenario(tmp_path / "nope.yaml")
    p = tmp_path / "list.yaml"
    p.write_text("- 1\n- 2\n")
    with pytest.raises(BadInput, match="expected a mapping"):
        load_scenario(p)


@pytest.mark.parametrize(
    "which", ["scenario", "faults", "event", "rules", "ruletest", "space", "rankings"]
)
def test_shipped_json_schema_is_current(which: str) -> None:
    shipped = json.loads((SEEDS / "schema" / f"{which}.schema.json").read_text(encoding="utf-8"))
    assert shipped == SCHEMAS[which](), "regenerate with: pmsim schema " + which
