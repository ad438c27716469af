"""A recorded run replayed with one hostile clock in it (issue 14, finding 1): every real alert
still fires, nothing false fires, the poisoned event is set aside as ``clock_skew``; and
``pmsim replay`` of an events file holding ``sim_seconds: 1e308`` skips that line with a count."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from hostilemix import YEAR, Outcome, feed, forged, mix

from sim.files.rulefiles import load_rules
from sim.replay import run_traffic
from sim.runner import run_to_folder
from sim.world.scenario import load_scenario

ROOT = Path(__file__).resolve().parents[2]
RULES = load_rules(ROOT / "seeds" / "rules" / "default.yaml")
DAYS = 3


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("clock") / "run"
    scenario = load_scenario(ROOT / "seeds" / "tiny.yaml")
    run_to_folder(scenario, out, days=DAYS, seed=1)
    return out


def clean_aside(outcome: Outcome) -> set[tuple[str, str]]:
    return {(i, reason) for i, reason, _ in outcome.aside}


def silent(records: list[dict]) -> int:
    return sum(
        1 for r in records if r.get("rule_id") == "device-silent" and r["change"] == "firing"
    )


@pytest.mark.parametrize("kind", ["future", "huge"])
def test_one_poisoned_clock_costs_no_real_alert(tiny: Path, kind: str) -> None:
    lines = list(run_traffic(tiny))
    end = DAYS * 86400.0
    clean = feed(RULES, lines, end)
    got = feed(RULES, mix(lines, kind), end)
    assert len(clean.records) > 20
    assert got.records == clean.records  # every real alert, and no false device-silent one
    assert silent(got.records) == silent(clean.records)
    assert got.stats["consumed"] == clean.stats["consumed"]
    if kind == "future":
        poison = json.loads(forged(lines[len(lines) // 4], 0.0, 0))["event_id"]
        new = [(i, reason) for i, reason, _ in got.aside if (i, reason) not in clean_aside(clean)]
        assert new == [(poison, "clock_skew")]
    else:
        assert got.stats["invalid"] == 1


@pytest.mark.parametrize(
    ("shift", "number", "said"), [(0.0, "1e308", "invalid 1"), (YEAR, None, "clock_skew 1")]
)
def test_replay_sets_aside_an_absurd_time_with_a_count(
    tiny: Path, tmp_path: Path, shift: float, number: str | None, said: str
) -> None:
    run = tmp_path / "run"
    shutil.copytree(tiny, run)
    events = (run / "events.jsonl").read_bytes().splitlines(keepends=True)
    delivered = (run / "events.delivered").read_bytes().splitlines(keepends=True)
    bad = forged(events[-1].rstrip(), shift, 0, number) + b"\n"  # last: no heartbeat moves
    (run / "events.jsonl").write_bytes(b"".join([*events, bad]))
    (run / "events.delivered").write_bytes(b"".join([*delivered, delivered[-1]]))
    argv = [sys.executable, "-m", "sim", "replay", str(run), "--rules", str(run / "rules.yaml")]
    proc = subprocess.run(
        [*argv, "--out", str(tmp_path / "out")], capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    assert said in proc.stdout
    clean = (tiny / "alerts.jsonl").read_text(encoding="utf-8")
    assert (tmp_path / "out" / "alerts.jsonl").read_text(encoding="utf-8") == clean
