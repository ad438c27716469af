"""Heartbeats as a schedule, carried as runs.

The reference is a world that steps every beat through SimPy and writes it to ``events.jsonl`` as
an event. A scheduled world keeps beats as runs (``heartbeats.jsonl``) and must give: the very
stream the stepped world sent, beat for beat, when its runs are built again in their places; the
same alerts and work orders in-process, in a replay of the compact folder, and in a replay of the
built-again stream; and the same again for rules that cannot take a run whole (an absence shorter
than the period, a count of heartbeats, an allowed lateness under twice the clock skew), which
are fed beat by beat. The scenario has silent and
dead devices, skewed clocks and gateway disconnects whose buffers take the beats due while away.
"""

from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml

from sim.errors import BadInput
from sim.files.rulefiles import load_rules
from sim.replay import replay_file, run_start, run_traffic
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
RECORDS = ("alerts.jsonl", "workorders.jsonl", "truth.jsonl")


def _rules(tmp: Path, variant: str) -> Path:
    """The default rules, or a variant no engine can feed from runs."""
    doc: dict[str, Any] = yaml.safe_load((ROOT / "seeds/rules/default.yaml").read_text())
    if variant == "short-absence":  # 10 minutes with beats every 15: fires between beats
        for rule in doc["rules"]:
            if rule["id"] == "device-silent":
                rule["condition"]["after"] = "10m"
    elif variant == "tight-lateness":  # skew 10 s against 15 s: runs noted beat by beat
        doc["allowed_lateness"] = "15s"
    elif variant == "counted":  # a rule that counts heartbeats reads every one of them
        doc["rules"].append(
            {
                "id": "chatty-estate",
                "watch": [{"type": "heartbeat"}],
                "key": ["estate"],
                "condition": {"kind": "count", "n": 30, "window": "10m"},
                "severity": "info",
                "detects": ["device_silent"],
            }
        )
    path = tmp / f"rules-{variant}.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    return path


def _run(tmp: Path, name: str, rules: Path, stepped: bool, monkeypatch: pytest.MonkeyPatch) -> Path:
    faults = tmp / "faults.yaml"
    faults.write_text(FAULTS, encoding="utf-8")
    scenario = with_faults(load_scenario(ROOT / "seeds" / "tiny.yaml"), faults)
    with monkeypatch.context() as m:
        if stepped:
            init: Any = world_module.World.__init__

            def stepped_init(self: Any, *a: Any, **k: Any) -> None:
                init(self, *a, **{**k, "stepped_heartbeats": True})

            m.setattr(world_module.World, "__init__", stepped_init)
        run_to_folder(scenario, tmp / name, days=3, seed=5, rules_path=rules)
    return tmp / name


@pytest.fixture(scope="module")
def default_pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    tmp = tmp_path_factory.mktemp("beats")
    rules = _rules(tmp, "default")
    with pytest.MonkeyPatch.context() as mp:
        return (
            _run(tmp, "runs", rules, False, mp),
            _run(tmp, "stepped", rules, True, mp),
            rules,
        )


def test_runs_built_again_are_the_stepped_stream_byte_for_byte(
    default_pair: tuple[Path, Path, Path],
) -> None:
    runs, stepped, _ = default_pair
    assert not (stepped / "heartbeats.jsonl").read_bytes()  # stepped: every beat an event
    built = b"".join(line + b"\n" for line in run_traffic(runs))
    assert built == (stepped / "events.jsonl").read_bytes()
    events = [json.loads(line) for line in built.splitlines()]
    kinds = Counter(e["type"] for e in events)
    assert kinds["heartbeat"] > 0.9 * len(events)
    assert kinds["gateway_status"] >= 2  # a gateway really went away and came back
    compact = (runs / "events.jsonl").stat().st_size + (runs / "heartbeats.jsonl").stat().st_size
    assert compact * 5 < len(built)  # runs are what makes the folder small
    # the run counts every beat, wherever it travelled
    info = json.loads((runs / "run.json").read_text())
    assert info["counts"]["events"] == len(events)


def test_alerts_are_the_same_in_process_in_a_replay_and_from_the_built_stream(
    default_pair: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    runs, stepped, rules_path = default_pair
    for name in RECORDS:
        assert (runs / name).read_bytes() == (stepped / name).read_bytes(), name
    assert json.loads((runs / "score.json").read_text()) == json.loads(
        (stepped / "score.json").read_text()
    )
    rules = load_rules(rules_path)
    end = 3 * 86400.0
    compact = tmp_path / "compact"
    compact.mkdir()
    replay_file(rules, runs / "events.jsonl", compact, end, run_start(runs))
    full = tmp_path / "full"
    full.mkdir()
    (full / "events.jsonl").write_bytes(b"".join(line + b"\n" for line in run_traffic(runs)))
    replay_file(rules, full / "events.jsonl", full, end)  # no runs beside it: event by event
    for name in ("alerts.jsonl", "workorders.jsonl"):
        assert (compact / name).read_bytes() == (runs / name).read_bytes(), name
        assert (full / name).read_bytes() == (runs / name).read_bytes(), name


@pytest.mark.parametrize("variant", ["short-absence", "counted", "tight-lateness"])
def test_rules_that_read_every_beat_are_fed_every_beat(
    variant: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rules = _rules(tmp_path, variant)
    runs = _run(tmp_path, "runs", rules, False, monkeypatch)
    stepped = _run(tmp_path, "stepped", rules, True, monkeypatch)
    fired = [json.loads(x) for x in (runs / "alerts.jsonl").open(encoding="utf-8")]
    rule = "chatty-estate" if variant == "counted" else "device-silent"
    assert any(a["rule_id"] == rule for a in fired)  # the variant really alerts
    for name in RECORDS:
        assert (runs / name).read_bytes() == (stepped / name).read_bytes(), name
    again = tmp_path / "again"
    again.mkdir()
    replay_file(load_rules(rules), runs / "events.jsonl", again, 3 * 86400.0, run_start(runs))
    assert (again / "alerts.jsonl").read_bytes() == (runs / "alerts.jsonl").read_bytes()


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda lines: [*lines[:4], "abc", *lines[5:]], "events.delivered:5: not a time"),
        (lambda lines: [*lines, "12.5"], "more delivery times than events"),
        (lambda lines: lines[:-1], "fewer delivery times than events"),
        (lambda lines: ["nan", *lines[1:]], "events.delivered:1: not a finite time"),
    ],
)
def test_a_damaged_delivery_file_is_named_with_its_line(
    default_pair: tuple[Path, Path, Path], tmp_path: Path, damage: Any, message: str
) -> None:
    runs, _, rules_path = default_pair
    folder = tmp_path / "run"
    shutil.copytree(runs, folder)
    lines = (folder / "events.delivered").read_text().splitlines()
    (folder / "events.delivered").write_text("\n".join(damage(lines)) + "\n")
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(BadInput, match=message):
        replay_file(load_rules(rules_path), folder / "events.jsonl", out, None, run_start(folder))


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("count", 10**15, "lasts past twenty years"),
        ("period_s", 0, "positive count and period"),
        ("t0_s", "NaN", "finite"),
        ("first_seq", "x", "not a heartbeat run"),
    ],
)
def test_a_forged_heartbeat_run_is_refused_with_its_line(
    default_pair: tuple[Path, Path, Path], tmp_path: Path, field: str, value: Any, message: str
) -> None:
    runs, _, rules_path = default_pair
    folder = tmp_path / "run"
    shutil.copytree(runs, folder)
    lines = (folder / "heartbeats.jsonl").read_text().splitlines()
    doc = json.loads(lines[2])
    doc[field] = float("nan") if value == "NaN" else value
    lines[2] = json.dumps(doc)
    (folder / "heartbeats.jsonl").write_text("\n".join(lines) + "\n")
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(BadInput, match=f"heartbeats.jsonl:3: .*{message}"):
        replay_file(load_rules(rules_path), folder / "events.jsonl", out, None, run_start(folder))
