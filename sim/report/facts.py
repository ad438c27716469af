"""The public facts a run reproduces, measured from its folder (``pmsim facts RUN_DIR``).

Each fact is a figure the source documents or public reports give (DESIGN.md, "Calibration
targets"), measured the way the report measures it, with the range the default scenario should
land in. The truth is used freely here: this is the model's calibration, not a ranking.

- Blocker refusals at launch: doors held per blocker-day in each blocker's first week.
- E-bike entries after installation: attempts per day in the fourth week after a blocker went in,
  against its first week (entries fall 80-95% within weeks).
- Hazardous entries: e-bikes or batteries that reached the flat, per day, in the 4 weeks from the
  third week after a mid-run installation, against the 2 weeks before it (the hazard falls; it does
  not move upstairs in a bag).
- Camera floor estimate: detected throws whose first alarm's estimated floor is within one floor.
- Staff visits for throws that went to a household that never threw anything in the run.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sim.errors import BadInput
from sim.files.records import read_jsonl

__all__ = ["Fact", "format_facts", "measure_facts"]

DAY = 86400.0


@dataclass(frozen=True)
class Fact:
    name: str
    value: float | None  # None: the run cannot measure it (say why in ``basis``)
    low: float | None
    high: float | None
    unit: str
    basis: str
    source: str

    @property
    def holds(self) -> bool | None:
        if self.value is None:
            return None
        return (self.low is None or self.value >= self.low) and (
            self.high is None or self.value <= self.high
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "value": None if self.value is None else round(self.value, 4),
            "range": [self.low, self.high],
            "unit": self.unit,
            "holds": self.holds,
            "basis": self.basis,
            "source": self.source,
        }


def _blockers(estates: Iterable[Mapping[str, Any]]) -> dict[str, float]:
    return {
        d["device_id"]: float(d["installed_s"])
        for e in estates
        for d in e["devices"]
        if d["kind"] == "ebike_blocker" and d["installed_s"] is not None
    }


def measure_facts(run_dir: Path) -> list[Fact]:
    """Every fact, measured from the run folder ``run_dir``."""
    try:
        info = json.loads((run_dir / "run.json").read_text(encoding="utf-8"))
        end = float(info["days"]) * DAY
        estates = json.loads((run_dir / "estates.json").read_text(encoding="utf-8"))
        truth = list(read_jsonl(run_dir / "truth.jsonl"))
        events = [
            json.loads(line)
            for line in (run_dir / "events.jsonl").open("rb")
            if b'"door_held"' in line[:40] or b'"falling_object"' in line[:40]
        ]
    except FileNotFoundError as exc:
        name = Path(str(exc.filename)).name
        raise BadInput(f"{run_dir}: not a run folder ({name} missing)") from None
    except (KeyError, TypeError, ValueError) as exc:
        raise BadInput(f"{run_dir}: not what pmsim writes ({exc})") from None
    blockers = _blockers(estates)
    return [
        _refusals(blockers, events, end),
        _entries_fall(blockers, truth, end),
        _hazard_fall(blockers, truth, end),
        _floor_estimates(truth, events),
        _wrong_visits(truth),
    ]


def _refusals(blockers: Mapping[str, float], events: list[dict[str, Any]], end: float) -> Fact:
    first_week = {b: t for b, t in blockers.items() if t + 7 * DAY <= end}
    held = sum(
        1
        for e in events
        if e["type"] == "door_held"
        and e["device_id"] in first_week
        and 0 <= e["sim_seconds"] - first_week[e["device_id"]] < 7 * DAY
    )
    value = held / (7 * len(first_week)) if first_week else None
    return Fact(
        "blocker refusals at launch", value, 0.35, 0.5, "per elevator-day",
        f"doors held in the first week of {len(first_week)} blockers",
        "Ningbo: about 0.4-0.44 refusals per elevator per day at launch",
    )  # fmt: skip


def _entries(truth: Iterable[Mapping[str, Any]], types: tuple[str, ...]) -> list[Mapping[str, Any]]:
    return [
        t for t in truth if t["kind"] == "incident" and t["type"] in types and t.get("elevator")
    ]


def _entries_fall(blockers: Mapping[str, float], truth: list[dict[str, Any]], end: float) -> Fact:
    watched = {b.removesuffix("-blk"): t for b, t in blockers.items() if t + 28 * DAY <= end}
    week1 = week4 = 0
    for t in _entries(truth, ("ebike_entry",)):
        inst = watched.get(t["elevator"])
        if inst is None:
            continue
        age = t["start_s"] - inst
        week1 += 0 <= age < 7 * DAY
        week4 += 21 * DAY <= age < 28 * DAY
    value = 1.0 - week4 / week1 if week1 else None
    return Fact(
        "e-bike entries down within 4 weeks", value, 0.80, 0.95, "fall, week 4 vs week 1",
        f"{week1} attempts in the first week, {week4} in the fourth, {len(watched)} elevators",
        "沅江: about 80% within a week; vendors: in-home charging down about 95%",
    )  # fmt: skip


def _hazard_fall(blockers: Mapping[str, float], truth: list[dict[str, Any]], end: float) -> Fact:
    mid_run = {  # at least a week before the installation to compare with, and six after
        b.removesuffix("-blk"): t
        for b, t in blockers.items()
        if t >= 7 * DAY and t + 42 * DAY <= end
    }
    by_building: dict[str, float] = {}  # "{estate}-{building}" of elevators "...-u{unit}e{car}"
    for elevator, inst in mid_run.items():
        by_building[elevator.rsplit("-u", 1)[0]] = inst
    before = after = 0
    before_days = {b: min(14 * DAY, inst) for b, inst in by_building.items()}
    for t in _entries(truth, ("ebike_entry", "battery_entry")):
        if t.get("outcome") != "went_up":
            continue
        installed = by_building.get(t["elevator"].rsplit("-u", 1)[0])
        if installed is None:
            continue
        age = t["start_s"] - installed
        before += -before_days[t["elevator"].rsplit("-u", 1)[0]] <= age < 0
        after += 14 * DAY <= age < 42 * DAY
    span = sum(before_days.values()) / DAY  # building-days before
    value = 1.0 - (after / (28.0 * len(by_building))) / (before / span) if before else None
    return Fact(
        "hazardous entries down", value, 0.70, None, "fall in e-bikes and batteries reaching the flat",
        f"{before} in up to 2 weeks before a mid-run installation, {after} in weeks 3-6 after, "
        f"{len(by_building)} buildings",
        "爱博四村: residents park in the bicycle garage instead (彻底解决)",
    )  # fmt: skip


def _floor_estimates(truth: list[dict[str, Any]], events: list[dict[str, Any]]) -> Fact:
    estimated = {
        e["event_id"]: e["estimated_floor"] for e in events if e["type"] == "falling_object"
    }
    near = total = 0
    for t in truth:
        if t["kind"] != "incident" or t["type"] != "throw" or not t.get("event_ids"):
            continue
        est = estimated.get(t["event_ids"][0])
        if est is None:
            continue
        total += 1
        near += abs(est - int(t["floor"])) <= 1
    return Fact(
        "camera floor estimate within one floor", near / total if total else None, 0.90, None,
        "share of detected throws", f"{total} detected throws",
        "vendors: origin floor within one floor for most detections",
    )  # fmt: skip


def _wrong_visits(truth: list[dict[str, Any]]) -> Fact:
    threw = {t.get("household") for t in truth if t["kind"] == "incident" and t["type"] == "throw"}
    visits = [
        t
        for t in truth
        if t["kind"] == "response"
        and t.get("hazard") == "throw"
        and t["type"] in ("staff_visit", "joint_visit")
        and t.get("household")
    ]
    wrong = sum(1 for v in visits if v["household"] not in threw)
    joint = [v for v in visits if v["type"] == "joint_visit"]
    wrong_joint = sum(1 for v in joint if v["household"] not in threw)
    return Fact(
        "staff visits to households that threw nothing", wrong / len(visits) if visits else None,
        None, 0.20, "share of visits for throws",
        f"{wrong} of {len(visits)} visits (joint visits with the police: {wrong_joint} of "
        f"{len(joint)})",
        "staff review the clip before visiting; joint visits are for those who deny or repeat",
    )  # fmt: skip


def format_facts(facts: list[Fact]) -> str:
    """One line per fact: the measured value, the range it should be in, and what it rests on."""
    lines = ["Public facts the run reproduces (DESIGN.md, calibration targets)"]
    for f in facts:
        if f.value is None:
            shown, mark = "-", "not measurable"
        else:
            shown = f"{f.value:.2f}" if f.unit.startswith("per") else f"{100 * f.value:.1f}%"
            mark = "holds" if f.holds else "OUT OF RANGE"
        lo = (
            ""
            if f.low is None
            else (f"{f.low:g}" if f.unit.startswith("per") else f"{100 * f.low:g}%")
        )
        hi = (
            ""
            if f.high is None
            else (f"{f.high:g}" if f.unit.startswith("per") else f"{100 * f.high:g}%")
        )
        span = f"{lo}-{hi}" if lo and hi else (f">= {lo}" if lo else f"<= {hi}")
        lines.append(f"  {f.name}: {shown} {f.unit} (target {span}): {mark}")
        lines.append(f"      {f.basis}; source: {f.source}")
    return "\n".join(lines)
