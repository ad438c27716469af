"""Each indicator points the right way where the answer is known: two companies, one diligent and
one lax, each managing two identical estates with every device kind, residents with more habits
than usual so that five weeks show every hazard (tests/sim/conftest.py). The diligent company's
estates must come out better on every indicator it can be measured on, weighted or not, and on the whole
score."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from rules.rankconfig import INDICATORS
from sim.report.facts import measure_facts
from sim.report.ranking import DEFAULT_RANKINGS


def _whole_run(run: Path) -> dict[str, Any]:
    rankings = json.loads((run / "rankings.json").read_text(encoding="utf-8"))
    (period,) = [p for p in rankings["periods"] if p["period"]["id"] == "run"]
    return period


def test_every_indicator_favours_the_diligent_company(two_companies: Path) -> None:
    period = _whole_run(two_companies)
    estates = {e["estate"]: e for e in period["estates"]}
    config = yaml.safe_load(DEFAULT_RANKINGS.read_text(encoding="utf-8"))
    assert set(config["indicators"]) == set(INDICATORS)  # weighted or not, each is measured
    checked = set()
    for name, spec in INDICATORS.items():
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
        checked.add(name)
    assert {n for n, c in config["indicators"].items() if c["weight"] > 0} <= checked
    scores = {c["company"]: c["score"] for c in period["companies"]}
    assert scores["good"] > scores["lax"]


def test_facts_are_measured_from_the_folder(two_companies: Path) -> None:
    facts = {f.name: f for f in measure_facts(two_companies)}
    floors = facts["camera floor estimate within one floor"]
    assert floors.value is not None and floors.value >= 0.8
    visits = facts["staff visits to households that threw nothing"]
    assert visits.value is not None and 0.0 <= visits.value <= 1.0
    refusals = facts["blocker refusals at launch"]
    assert refusals.value is not None and refusals.value > 0
