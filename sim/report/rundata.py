"""A run folder read for the report: every figure the page needs, aggregated while the JSON Lines
files stream past (``events.jsonl`` is never read). The report's sections take a :class:`RunData`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sim.errors import BadInput
from sim.files.yamlio import yaml_data

__all__ = ["DAY", "RunData", "WorkOrder", "load_run"]

DAY = 86400.0


def _json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BadInput(f"{path}: not found (is {path.parent} a pmsim run folder?)") from None
    except json.JSONDecodeError as e:
        raise BadInput(f"{path}:{e.lineno}: not valid JSON ({e.msg})") from None


def _jsonl(path: Path) -> Iterator[dict[str, Any]]:
    if not path.is_file():
        raise BadInput(f"{path}: not found (is {path.parent} a pmsim run folder?)")
    with open(path, encoding="utf-8") as fh:
        for n, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                yield json.loads(line)
            except json.JSONDecodeError as e:
                raise BadInput(f"{path}:{n}: not valid JSON ({e.msg})") from None


@dataclass
class WorkOrder:
    """A work order's last open spell (a re-open starts a new one, as in rules.workorders)."""

    rule: str
    estate: str
    opened_s: float
    within_sla: bool = False
    on_time: bool = False
    reopens: int = 0


@dataclass
class RunData:
    dir: Path
    run: dict[str, Any]
    scenario: dict[str, Any]
    score: dict[str, Any]
    rankings: dict[str, Any] | None
    days: int
    estates: dict[str, dict[str, Any]] = field(default_factory=dict)  # id -> scenario estate
    companies: dict[str, dict[str, Any]] = field(default_factory=dict)
    alerts_by_rule: dict[str, list[int]] = field(default_factory=dict)  # firings per day
    alerts_by_estate: dict[str, list[int]] = field(default_factory=dict)
    incidents: dict[tuple[str, str], list[int]] = field(default_factory=dict)  # (estate, type)
    orders: dict[str, WorkOrder] = field(default_factory=dict)
    ack_minutes: list[tuple[str, str, float]] = field(default_factory=list)  # rule, estate, min

    def day(self, seconds: float) -> int:
        return min(self.days - 1, max(0, int(seconds // DAY)))

    def per_day(self, table: dict[Any, list[int]], key: Any) -> list[int]:
        return table.setdefault(key, [0] * self.days)


def load_run(run_dir: Path) -> RunData:
    """Everything the page needs, aggregated while the JSON Lines files stream past."""
    try:
        scenario = yaml_data(run_dir / "scenario.resolved.yaml")
    except FileNotFoundError:
        raise BadInput(f"{run_dir}: no scenario.resolved.yaml (not a pmsim run folder?)") from None
    run = _json(run_dir / "run.json")
    rpath = run_dir / "rankings.json"
    data = RunData(
        dir=run_dir,
        run=run,
        scenario=scenario,
        score=_json(run_dir / "score.json"),
        rankings=_json(rpath) if rpath.exists() else None,
        days=max(1, int(run.get("days") or scenario["days"])),
    )
    data.companies = {c["id"]: c for c in scenario.get("companies", [])}
    for grid in scenario.get("grids", []):
        for est in grid.get("estates", []):
            data.estates[est["id"]] = est
    for rec in _jsonl(run_dir / "truth.jsonl"):
        if rec.get("kind") == "incident" and rec.get("start_s") is not None:
            key = (rec["estate"], rec["type"])
            data.per_day(data.incidents, key)[data.day(rec["start_s"])] += 1
    for a in _jsonl(run_dir / "alerts.jsonl"):
        if a.get("change") == "firing":
            d = data.day(a["sim_seconds"])
            data.per_day(data.alerts_by_rule, a["rule_id"])[d] += 1
            estate = str(a.get("labels", {}).get("estate", ""))
            data.per_day(data.alerts_by_estate, estate)[d] += 1
    for w in _jsonl(run_dir / "workorders.jsonl"):
        wid, change, t = w["workorder_id"], w["change"], float(w["sim_seconds"])
        if change == "opened":
            data.orders[wid] = WorkOrder(w["rule_id"], w["estate"], t)
        elif wid not in data.orders:
            continue
        wo = data.orders[wid]
        if change == "reopened":
            wo.opened_s, wo.within_sla, wo.on_time = t, False, False
            wo.reopens += 1
        elif change == "acknowledged":
            wo.within_sla = bool(w.get("within_sla"))
            data.ack_minutes.append((wo.rule, wo.estate, (t - wo.opened_s) / 60.0))
        elif change == "closed":
            wo.on_time = bool(w.get("on_time"))
    return data
