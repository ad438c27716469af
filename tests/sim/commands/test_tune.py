"""``pmsim tune`` and ``pmsim run --replications``: search spaces, objectives, executors."""

from __future__ import annotations

import json
import os
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import yaml

from devices.events import DeviceEvent, EbikeDetected, Heartbeat, StaffArrived, event_json
from rules.engine import Engine, Record
from rules.model import RuleFile
from rules.objective import bootstrap, objective_value, pareto_front, pooled_metrics
from rules.ruleset import RuleSet
from rules.score import score_rules
from rules.space import Objective, SearchSpace, apply_values, grid, random_trials
from sim.commands.cli import main
from sim.commands.tasks import replay_trials
from sim.commands.trialdata import load_trace, read_types, replay, seed_data, trial_rules
from sim.files.beatstream import materialise
from sim.files.records import read_jsonl
from sim.files.rulefiles import load_rules
from sim.mqtt.broker import free_port
from sim.replay import run_start

ROOT = Path(__file__).resolve().parents[3]
TINY = ROOT / "seeds" / "tiny.yaml"
RULES = ROOT / "seeds" / "rules" / "default.yaml"
EXAMPLE = ROOT / "seeds" / "tune" / "example.yaml"

SPACE = """\
version: 1
seed: 3
parameters:
  - name: conf
    rule: falling-object
    path: watch[0].where
    template: "confidence >= {value} and floors_spanned >= 3"
    values: [0.7, 0.9]
  - name: dwell
    rule: clutter-lasting
    path: condition.at_least
    range: {from: 5m, to: 15m, step: 10m}
"""


def write(tmp: Path, text: str, name: str = "space.yaml") -> Path:
    p = tmp / name
    p.write_text(text, encoding="utf-8")
    return p


def tune(tmp: Path, space: Path, *extra: str, out: str = "tune") -> int:
    argv = ["tune", str(TINY), "--rules", str(RULES), "--space", str(space), "--seeds", "2"]
    return main([*argv, "--days", "3", "--out", str(tmp / out), "--no-progress", *extra])


@pytest.fixture(scope="module")
def local_result(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("tune")
    assert tune(tmp, write(tmp, SPACE)) == 0
    return tmp / "tune"


def test_tune_writes_trials_front_and_a_best_rule_file(local_result: Path) -> None:
    result = json.loads((local_result / "tune.json").read_text())
    assert [t["values"] for t in result["trials"]] == [
        {"conf": 0.7, "dwell": 300.0},
        {"conf": 0.7, "dwell": 900.0},
        {"conf": 0.9, "dwell": 300.0},
        {"conf": 0.9, "dwell": 900.0},
    ]
    assert result["seeds"] == [1, 2]
    assert set(result["pareto_front"]) <= {0, 1, 2, 3} and result["pareto_front"]
    best = result["trials"][result["best_trial"]]
    means = [t["objective"]["mean"] for t in result["trials"]]
    assert best["objective"]["mean"] == min(means)
    for t in result["trials"]:
        lo, mean, hi = t["recall"]["low"], t["recall"]["mean"], t["recall"]["high"]
        assert lo <= mean <= hi


def test_the_best_rule_file_validates_and_reproduces_its_score(
    local_result: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    best_path = local_result / "best.yaml"
    assert main(["validate", str(best_path)]) == 0
    result = json.loads((local_result / "tune.json").read_text())
    best = result["trials"][result["best_trial"]]
    rules = load_rules(best_path)
    doc = rules.spec.model_dump(mode="json", by_alias=True, exclude_none=True)
    from sim.world.scenario import load_scenario

    sc = load_scenario(TINY).model_dump(mode="json")
    cache = str((local_result.parent / ".pmsim-cache").resolve())
    for seed, want in zip(result["seeds"], best["per_seed"], strict=True):
        score = replay_trials(sc, seed, 3, cache, [doc])[0]  # the whole file, every rule
        got = pooled_metrics(score, result["scored_rules"])
        assert {k: round(v, 6) for k, v in got.items()} == want


def test_dask_gives_identical_results(local_result: Path, tmp_path: Path) -> None:
    pytest.importorskip("distributed")
    assert tune(tmp_path, write(tmp_path, SPACE), "--executor", "dask") == 0
    a = json.loads((local_result / "tune.json").read_text())
    b = json.loads((tmp_path / "tune" / "tune.json").read_text())
    a.pop("space")
    b.pop("space")
    assert a == b

    def body(p: Path) -> list[str]:  # past the header line, which names the space file's path
        return p.read_text(encoding="utf-8").splitlines()[1:]

    assert body(local_result / "best.yaml") == body(tmp_path / "tune" / "best.yaml")


BAD = [
    ("rule: clutter-lasting", "rule: clutter-forever", "names no rule: 'clutter-forever'"),
    ("path: condition.at_least", "path: condition.at_most", "has no field 'condition.at_most'"),
    (
        "range: {from: 5m, to: 15m, step: 10m}",
        "range: {from: 15m, to: 5m, step: 1m}",
        "empty range",
    ),
    ("values: [0.7, 0.9]", "values: [0.7, lots]", "value 'lots' gives a broken rule"),
    (
        "version: 1",
        "version: 1\nobjective: {kind: constraint, constraint: {metric: happiness, at_most: 1}}",
        "objective.constraint.metric",
    ),
]


@pytest.mark.parametrize(("old", "new", "words"), BAD)
def test_bad_space_is_one_line_exit_2_and_no_trial(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], old: str, new: str, words: str
) -> None:
    assert old in SPACE
    space = write(tmp_path, SPACE.replace(old, new))
    assert tune(tmp_path, space) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and words in err and str(space) in err, err
    assert not (tmp_path / "tune").exists() and not (tmp_path / ".pmsim-cache").exists()


def test_unreachable_scheduler_is_exit_2_within_seconds(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("distributed")
    t0 = time.monotonic()
    address = f"tcp://127.0.0.1:{free_port()}"
    code = tune(tmp_path, write(tmp_path, SPACE), "--executor", "dask", "--scheduler", address)
    assert code == 2 and time.monotonic() - t0 < 20
    assert f"dask scheduler {address}: cannot connect" in capsys.readouterr().err
    assert not (tmp_path / "tune").exists() and not (tmp_path / ".pmsim-cache").exists()


def test_grid_and_random_trials_are_deterministic() -> None:
    space = SearchSpace.model_validate(yaml.safe_load(EXAMPLE.read_text(encoding="utf-8")))
    assert len(grid(space)) == 3 * 3 * 2
    rnd = SearchSpace.model_validate(
        {
            "seed": 5,
            "search": "random",
            "parameters": [
                {
                    "rule": "r",
                    "path": "p",
                    "distribution": {"kind": "uniform", "low": 0.5, "high": 1},
                },
                {"rule": "r", "path": "q", "values": ["a", "b"]},
            ],
        }
    )
    a, b = random_trials(rnd, 6), random_trials(rnd, 6)
    assert a == b and len({t["r.p"] for t in a}) == 6
    assert all(0.5 <= t["r.p"] <= 1 for t in a)


def metrics(**kw: float) -> dict[str, float]:
    base = {
        "recall": 0.5,
        "precision": 0.5,
        "severity_weighted_recall": 0.5,
        "false_alerts_per_1000_household_days": 1.0,
        "ttd_median_s": 60.0,
        "misses": 10.0,
        "false_alerts": 5.0,
        "delay_hours": 2.0,
    }
    return base | kw


def test_objectives() -> None:
    cost = Objective.model_validate({"cost": {"miss": 1, "false_alert": 0.2, "delay_hour": 0.05}})
    assert objective_value(metrics(), cost) == pytest.approx(10 + 1 + 0.1)
    limit = Objective.model_validate(
        {"kind": "constraint", "constraint": {"maximise": "recall", "at_most": 2.0}}
    )
    assert objective_value(metrics(recall=0.7), limit) == -0.7
    assert objective_value(metrics(false_alerts_per_1000_household_days=3.0), limit) == float("inf")


def test_pareto_front_and_bootstrap() -> None:
    pts = [
        metrics(recall=0.9, false_alerts_per_1000_household_days=2.0, ttd_median_s=10),
        metrics(recall=0.8, false_alerts_per_1000_household_days=1.0, ttd_median_s=10),
        metrics(recall=0.7, false_alerts_per_1000_household_days=2.0, ttd_median_s=20),  # beaten
    ]
    assert pareto_front(pts) == [0, 1]
    mean, lo, hi = bootstrap([1.0, 2.0, 3.0, 4.0], seed=1)
    assert mean == 2.5 and lo < mean < hi and bootstrap([1.0, 2.0, 3.0, 4.0], seed=1)[1] == lo


def test_replications_report_intervals(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "reps"
    argv = ["run", str(TINY), "--days", "2", "--replications", "3", "--out", str(out)]
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert "3 replications" in text and "ebike-in-elevator" in text and "[" in text
    data = json.loads((out / "replications.json").read_text())
    assert data["seeds"] == [1, 2, 3]
    assert sorted(p.name for p in out.iterdir()) == [
        "replications.json",
        "seed-1",
        "seed-2",
        "seed-3",
    ]
    recall = data["summary"]["ebike-in-elevator"]["recall"]
    per_seed = [s["rules"]["ebike-in-elevator"]["recall"] for s in data["scores"]]
    assert recall["mean"] == pytest.approx(sum(per_seed) / 3)
    first = list(read_jsonl(out / "seed-1" / "alerts.jsonl"))
    assert first and all(a["record"] == "alert" for a in first)


# -- the in-memory trace: each seed read once, filtered, and replayed exactly like the file -----


def full_replay(rules: RuleSet, events: Path, end_s: float) -> list[Record]:
    """Every event the run sent (heartbeats built again from their runs, when the folder has
    them) through a fresh engine, event by event."""
    engine = Engine(rules)
    out: list[Record] = []
    start = run_start(events.parent) if (events.parent / "run.json").exists() else None
    for line in materialise(events, start):
        out.extend(engine.consume_payload(line))
    return out + engine.finish(end_s)


def as_jsonl(records: list[Record]) -> str:  # as the run folder writes them
    return "".join(json.dumps(r, ensure_ascii=False, separators=(",", ":")) + "\n" for r in records)


def test_the_trace_replays_a_real_seed_exactly_like_the_whole_file(local_result: Path) -> None:
    from sim.world.scenario import load_scenario

    sc = load_scenario(TINY).model_dump(mode="json")
    cache = str((local_result.parent / ".pmsim-cache").resolve())
    rules = load_rules(RULES).spec
    space = SearchSpace.model_validate(yaml.safe_load(SPACE))
    variant = apply_values(rules, [(space.parameters[0], 0.9), (space.parameters[1], 900.0)])
    doc = variant.spec.model_dump(mode="json", by_alias=True, exclude_none=True)
    scored = ["falling-object", "clutter-lasting"]
    folder = Path(sorted(Path(cache).glob("tiny-*-s1-d3"))[0])
    events, end_s = folder / "events.jsonl", 3 * 86400.0
    truth = list(read_jsonl(folder / "truth.jsonl"))
    households = json.loads((folder / "run.json").read_text())["counts"]["households"]
    for only in (scored, ["ebike-in-elevator"], None):  # a variant, no work orders, every rule
        rs = trial_rules(doc, only)
        trace = load_trace(events, read_types(rs), run_start(folder))
        assert trace.types is not None
        if only is not None:
            assert len(trace.events) < trace.lines  # some events left out
        full = full_replay(rs, events, end_s)
        got = replay(rs, trace, end_s)
        assert as_jsonl(got) == as_jsonl(full)
        want = score_rules(
            rs,
            [r for r in full if r["record"] == "alert"],
            [r for r in full if r["record"] == "workorder"],
            truth,
            households=households,
            days=3.0,
            end_s=end_s,
        )
        assert replay_trials(sc, 1, 3, cache, [doc], only) == [want]


T0 = datetime(2026, 3, 2, tzinfo=timezone(timedelta(hours=8)))
RULE = yaml.safe_load("""
version: 1
allowed_lateness: 60
rules:
  - {id: ebike, watch: [{type: ebike_detected}], key: [device_id], condition: {kind: event},
     keep_firing_for: 2h, detects: [ebike_entry]}
""")


def event(kind: str, seq: int, t: float, **kw: Any) -> DeviceEvent:
    dev = {"hb": "gw", "eb": "blk", "st": "app"}[kind]
    env: dict[str, Any] = {
        "event_id": f"{dev}:{seq}",
        "device_id": dev,
        "estate": "e1",
        "building": "b1",
        "time": T0 + timedelta(seconds=t),
        "sim_seconds": t,
        "seq": seq,
    }
    if kind == "eb":
        return EbikeDetected(
            **env, device_kind="ebike_blocker", confidence=0.9, object_class="ebike"
        )
    if kind == "st":
        return StaffArrived(**env, device_kind="staff_app", action="check", **kw)
    return Heartbeat(**env, device_kind="gateway")


def write_events(path: Path, events: list[DeviceEvent | str]) -> None:
    text = [e if isinstance(e, str) else event_json(e) for e in events]
    path.write_text("".join(t + "\n" for t in text), encoding="utf-8")


def test_skipped_events_still_move_the_clock_and_staff_still_acknowledge(tmp_path: Path) -> None:
    rules = RuleSet(RuleFile.model_validate({**RULE, "max_skew": "30d"}))  # events hours apart
    late_maker = event("hb", 1, 5000.0)
    stream: list[DeviceEvent | str] = [
        event("hb", 0, 0.0),  # the first event: the engine's epoch
        event("eb", 0, 100.0),  # fires; held for 2 h
        json.dumps(json.loads(event_json(late_maker))),  # a heartbeat (spaced JSON: parsed)
        # moves the clock to 5000 s...
        event("eb", 1, 200.0),  # ...so this one is late and dropped
        event("st", 0, 5100.0, ref_event_id="blk:0"),  # acknowledges a rule without work orders
        late_maker,  # a duplicate
        "not json",
        '{"type": "heartbeat"}',
        event("hb", 2, 5200.0),
        event("eb", 2, 6000.0),  # later than every skipped line: no carrier needed
        event("hb", 3, 90000.0),  # past the end: finish runs the timers up to here
    ]
    path = tmp_path / "events.jsonl"
    write_events(path, stream)
    trace = load_trace(path, read_types(rules))
    full = full_replay(rules, path, 10000.0)
    assert as_jsonl(replay(rules, trace, 10000.0)) == as_jsonl(full)
    assert [e.event_id for e in trace.events] == [
        "gw:0", "blk:0", "gw:1", "blk:1", "app:0", "blk:2", "gw:3"
    ]  # fmt: skip
    changes = [(r["change"], r["sim_seconds"]) for r in full]
    assert ("acknowledged", 5100.0) in changes and ("resolved", 13200.0) in changes
    naive = Engine(rules)  # only the events the rule watches: a different answer
    wanted = [e for e in stream if isinstance(e, EbikeDetected)]
    assert as_jsonl(naive.consume_all(wanted, 10000.0)) != as_jsonl(full)


def test_an_event_id_with_two_times_leaves_the_file_whole(tmp_path: Path) -> None:
    rules = RuleSet(RuleFile.model_validate(RULE))
    path = tmp_path / "events.jsonl"
    write_events(path, [event("hb", 0, 0.0), event("eb", 0, 100.0), event("hb", 0, 50.0)])
    trace = load_trace(path, read_types(rules))
    assert trace.types is None and trace.lines == 3
    assert replay(rules, trace, 1000.0) == full_replay(rules, path, 1000.0)


def test_a_worker_reads_a_seed_once_and_again_when_it_changes(tmp_path: Path) -> None:
    (tmp_path / "run.json").write_text('{"counts": {"households": 3}}')
    (tmp_path / "truth.jsonl").write_text('{"kind": "incident"}\n')
    events = tmp_path / "events.jsonl"
    write_events(events, [event("hb", 0, 0.0), event("eb", 0, 100.0), event("hb", 1, 200.0)])
    first = seed_data(tmp_path, {"ebike_detected"})
    assert seed_data(tmp_path, ["ebike_detected"]) is first  # from memory
    assert first.households == 3 and [e.event_id for e in first.trace.events] == [
        "gw:0",
        "blk:0",
        "gw:1",
    ]
    wider = seed_data(tmp_path, {"heartbeat"})  # another type: read again, keeping both
    assert wider is not first and wider.trace.types is not None
    assert {"heartbeat", "ebike_detected"} <= wider.trace.types
    assert seed_data(tmp_path, {"ebike_detected"}) is wider
    write_events(events, [event("hb", 0, 0.0), event("eb", 0, 100.0), event("eb", 1, 300.0)])
    resimulated = seed_data(tmp_path, {"ebike_detected"})  # rewritten: read again
    assert [e.event_id for e in resimulated.trace.events] == ["gw:0", "blk:0", "blk:1"]
    st = events.stat()
    os.utime(events, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # same size, touched
    assert seed_data(tmp_path, {"ebike_detected"}) is not resimulated
