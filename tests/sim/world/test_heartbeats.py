"""Heartbeats as a schedule give the very stream a SimPy process per device gave: same events,
same order, same sequence numbers, through silent outages, dead devices, skewed clocks and gateway
disconnects (whose store-and-forward buffers take the beats due while they are offline)."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from sim.runner import run_to_folder
from sim.world import world as world_module
from sim.world.scenario import load_scenario, with_faults

ROOT = Path(__file__).resolve().parents[3]
FAULTS = """faults:
  - {kind: clock_skew, share: 0.5, max_skew_s: 10}
  - {kind: device_silent, share: 0.3, hours: 5}
  - {kind: device_dead, share: 0.1, from_day: 1}
  - {kind: gateway_disconnect, mean_days_between: 0.5, mean_minutes: 90}
"""


def _run(tmp: Path, name: str, stepped: bool, monkeypatch: pytest.MonkeyPatch) -> Path:
    faults = tmp / "faults.yaml"
    faults.write_text(FAULTS, encoding="utf-8")
    scenario = with_faults(load_scenario(ROOT / "seeds" / "tiny.yaml"), faults)
    with monkeypatch.context() as m:
        if stepped:
            init: Any = world_module.World.__init__

            def stepped_init(self: Any, *a: Any, **k: Any) -> None:
                init(self, *a, **{**k, "stepped_heartbeats": True})

            m.setattr(world_module.World, "__init__", stepped_init)
        run_to_folder(scenario, tmp / name, days=3, seed=5)
    return tmp / name


def test_the_schedule_gives_the_stepped_stream_byte_for_byte(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    scheduled = _run(tmp_path, "scheduled", False, monkeypatch)
    stepped = _run(tmp_path, "stepped", True, monkeypatch)
    for name in ("events.jsonl", "truth.jsonl", "alerts.jsonl", "workorders.jsonl"):
        assert (scheduled / name).read_bytes() == (stepped / name).read_bytes(), name
    events = [json.loads(line) for line in (scheduled / "events.jsonl").open(encoding="utf-8")]
    kinds = Counter(e["type"] for e in events)
    assert kinds["heartbeat"] > 0.9 * len(events)  # the schedule really ran
    assert kinds["gateway_status"] >= 2  # and a gateway really went away and came back
    seqs: dict[str, list[int]] = {}
    for e in events:
        seqs.setdefault(e["device_id"], []).append(e["seq"])
    truth = [json.loads(line) for line in (scheduled / "truth.jsonl").open(encoding="utf-8")]
    lost = any(r.get("detail", {}).get("events_lost") for r in truth)
    if not lost:  # nothing dropped from a full buffer: every device's numbers are gap-free
        assert all(s == list(range(len(s))) for s in seqs.values())
