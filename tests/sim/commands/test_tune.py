"""``pmsim tune`` and ``pmsim run --replications``: search spaces, objectives, executors."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from rules.objective import bootstrap, objective_value, pareto_front, pooled_metrics
from rules.space import Objective, SearchSpace, grid, random_trials
from sim.commands.cli import main
from sim.commands.tasks import replay_trials
from sim.files.records import read_jsonl
from sim.files.rulefiles import load_rules
from sim.mqtt.broker import free_port

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
    import yaml

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
