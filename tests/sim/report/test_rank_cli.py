"""Rankings of a run: ``rankings.json``, ``pmsim rank``, bad configurations, the retained topic."""

from __future__ import annotations

import json
import shutil
import threading
import uuid
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
import yaml

from sim.commands.cli import main
from sim.mqtt.broker import EmbeddedBroker
from sim.mqtt.carrier import Link
from sim.report.ranking import compute_rankings
from sim.runner import run_to_folder
from sim.world.scenario import load_scenario

ROOT = Path(__file__).resolve().parents[3]
CONFIG = (ROOT / "seeds" / "rankings" / "default.yaml").read_text(encoding="utf-8")

# Four small estates for a month: enough for lists of one, quick enough for a test.
SCENARIO = """\
name: four
start: 2026-03-01
days: 31
seed: 3
devices:
  health: {heartbeat_seconds: 2400}  # under device-silent's 45 minutes, and fewer events
companies:
  - {id: good, name: 好物业, diligence: 0.9, staff: 3}
  - {id: poor, name: 差物业, diligence: 0.2, staff: 1}
grids:
  - id: g
    name: 网格
    estates:
"""
for i, company in enumerate(["good", "good", "poor", "poor"]):
    SCENARIO += (
        f"      - id: e{i}\n        name: 小区{i}\n        company: {company}\n"
        "        buildings: [{count: 3, floors: 12, units: 2, households_per_floor: 4,"
        " elevators_per_unit: 1}]\n"
        "        devices: [{kind: ebike_blocker, day: 0}, {kind: falling_object_camera, day: 0},"
        " {kind: clutter_sensor, day: 0, buildings: [b01], floors: [1, 2]}]\n"
    )


def config(tmp: Path, old: str = "", new: str = "") -> Path:
    text = CONFIG.replace("list_size: 3", "list_size: 1")
    if old:
        assert old in text, old
        text = text.replace(old, new, 1)
    p = tmp / "rankings.yaml"
    p.write_text(text, encoding="utf-8")
    return p


@pytest.fixture(scope="module")
def four(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("four")
    scen = tmp / "four.yaml"
    scen.write_text(SCENARIO, encoding="utf-8")
    out = tmp / "run"
    run_to_folder(load_scenario(scen), out, days=31, seed=3, rankings_path=config(tmp))
    return out


def test_the_run_writes_rankings_for_itself_and_its_month(four: Path) -> None:
    r = json.loads((four / "rankings.json").read_text(encoding="utf-8"))
    assert [p["period"]["id"] for p in r["periods"]] == ["run", "2026-03"]
    assert r["left_out"] == ["quarter", "half"]
    whole, period = r["periods"]
    assert whole["period"]["kind"] == "run" and whole["period"]["days"] == 31
    assert period["period"]["days"] == 31 and not period["period"]["partial"]
    assert {e["estate"] for e in period["estates"]} == {"e0", "e1", "e2", "e3"}
    for e in period["estates"]:
        lo, hi = e["interval"]
        assert lo <= e["score"] <= hi
    assert len(period["red_list"]) <= 1 and len(period["black_list"]) <= 1
    assert "kendall_tau" in period["validity"]


def test_rankings_are_deterministic(four: Path, tmp_path: Path) -> None:
    scen = tmp_path / "four.yaml"
    scen.write_text(SCENARIO, encoding="utf-8")
    again = tmp_path / "again"
    run_to_folder(load_scenario(scen), again, days=31, seed=3, rankings_path=config(tmp_path))
    assert (again / "rankings.json").read_bytes() == (four / "rankings.json").read_bytes()


def test_rank_prints_the_lists(four: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["rank", str(four), "--period", "month"]) == 0
    out = capsys.readouterr().out
    assert "== 2026-03" in out and "Red list" in out and "Black list" in out and "小区" in out
    assert main(["rank", str(four)]) == 0  # the whole run by default
    out = capsys.readouterr().out
    assert out.startswith("== run: whole run, 31 days") and "== 2026-03" not in out


@pytest.mark.parametrize(
    ("args", "old", "new", "words"),
    [
        (["--period", "quarter"], "", "", "periods[1]: no calendar quarter has at least 50%"),
        ([], "min_coverage: 0.5", "min_coverage: 2", "min_coverage: Input should be less"),
        ([], "ack_speed: {weight: 50}", "ack_speed: {weight: -5}", "greater than or equal to 0"),
        ([], "ack_speed: {weight: 50}", "happiness: {weight: 5}", "happiness"),
    ],
)
def test_bad_rank_input_is_one_line_exit_2(
    four: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    old: str,
    new: str,
    words: str,
) -> None:
    cfg = config(tmp_path, old, new)
    assert main(["rank", str(four), "--config", str(cfg), *args]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and words in err and "Traceback" not in err, err


def test_rankings_are_published_retained(tmp_path: Path) -> None:
    scen = tmp_path / "four.yaml"
    scen.write_text(SCENARIO, encoding="utf-8")
    prefix = f"r{uuid.uuid4().hex[:8]}"
    with EmbeddedBroker("mosquitto") as broker:
        run_to_folder(
            load_scenario(scen),
            tmp_path / "run",
            days=28,  # a month's shortest length: March is ranked on its first 28 days
            seed=3,
            rankings_path=config(tmp_path),
            link=Link(broker=broker.url, prefix=prefix),
        )
        got: list[tuple[str, Any, bool]] = []
        done = threading.Event()

        def on_message(_c: Any, _u: Any, msg: mqtt.MQTTMessage) -> None:
            got.append((msg.topic, json.loads(msg.payload), bool(msg.retain)))
            if len(got) == 2:
                done.set()

        c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
        c.on_message = on_message
        c.connect("127.0.0.1", broker.port)
        c.loop_start()
        c.subscribe(
            f"{prefix}/rankings/#", qos=1
        )  # after the run: only a retained message can come
        try:
            assert done.wait(10), f"not both retained rankings: {got}"
        finally:
            c.disconnect()
            c.loop_stop()
    got.sort(key=lambda m: m[0])
    assert [(topic, retained) for topic, _, retained in got] == [
        (f"{prefix}/rankings/2026-03", True),
        (f"{prefix}/rankings/run", True),
    ]
    assert [payload["period"]["id"] for _, payload, _ in got] == ["2026-03", "run"]


def test_diligence_in_the_run_folder_changes_only_the_validity(four: Path, tmp_path: Path) -> None:
    """The scenario's diligence is the truth: ranking the same records under another diligence
    changes the validity figures and nothing else (no score, interval, rank or list)."""
    swapped = tmp_path / "swapped"
    shutil.copytree(four, swapped)
    path = swapped / "scenario.resolved.yaml"
    sc = yaml.safe_load(path.read_text(encoding="utf-8"))
    for c in sc["companies"]:
        c["diligence"] = {"good": 0.2, "poor": 0.9}[c["id"]]
    path.write_text(yaml.safe_dump(sc, allow_unicode=True, sort_keys=False), encoding="utf-8")
    cfg = config(tmp_path)
    before, after = compute_rankings(four, cfg), compute_rankings(swapped, cfg)

    def blind(r: dict[str, Any]) -> str:
        periods = [{k: v for k, v in p.items() if k != "validity"} for p in r["periods"]]
        return json.dumps({**r, "periods": periods}, sort_keys=True)

    assert blind(before) == blind(after)
    taus = [(p["validity"]["kendall_tau"], q["validity"]["kendall_tau"])
            for p, q in zip(before["periods"], after["periods"], strict=True)]  # fmt: skip
    assert all(a == -b for a, b in taus if a is not None) and any(a is not None for a, _ in taus)


def test_the_runs_own_rankings_read_every_record(four: Path, tmp_path: Path) -> None:
    """Ranked at the end of an in-process run, the records must all be on disk by then: ranking
    the finished folder again gives the same rankings.json."""
    again = compute_rankings(four, config(tmp_path))
    assert json.loads((four / "rankings.json").read_text(encoding="utf-8")) == again
