"""Fault injection: duplicates and bounded reordering are invisible to the alerts; loss, dead and
silent devices, clock skew and gateway disconnects show up in the truth and in the score."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from sim.commands.cli import main
from sim.errors import BadInput
from sim.replay import run_traffic
from sim.runner import run_to_folder
from sim.world.scenario import GatewaySettings, load_scenario, with_faults

ROOT = Path(__file__).resolve().parents[3]
SEEDS = ROOT / "seeds"
ALL = SEEDS / "faults" / "all.yaml"

NOT_DUP_OR_REORDER = """
faults:
  - {kind: loss, probability: 0.02}
  - {kind: clock_skew, share: 0.3, max_skew_s: 10}
  - {kind: device_dead, share: 0.05, from_day: 1}
  - {kind: device_silent, share: 0.1, hours: 8}
  - {kind: gateway_disconnect, mean_days_between: 3, mean_minutes: 15}
"""


def traffic(run_dir: Path) -> list[dict[str, Any]]:
    """Every event the run sent, heartbeats built again, in the order it sent them."""
    return [json.loads(line) for line in run_traffic(run_dir)]


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh]


def run(tmp: Path, name: str, faults: str | Path | None, days: int = 4) -> Path:
    sc = load_scenario(SEEDS / "xinhong.yaml")
    if isinstance(faults, str):
        f = tmp / f"{name}.faults.yaml"
        f.write_text(faults, encoding="utf-8")
        faults = f
    if faults is not None:
        sc = with_faults(sc, faults)
    out = tmp / name
    run_to_folder(sc, out, days=days, seed=3)
    return out


def faults_in(out: Path) -> list[dict[str, Any]]:
    return [t for t in read_jsonl(out / "truth.jsonl") if t["kind"] == "fault"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("faults")
    dup_reorder = """
faults:
  - {kind: duplicate, probability: 0.05, max_delay_s: 5}
  - {kind: duplicate, probability: 0.05, max_delay_s: 0}
  - {kind: reorder, probability: 0.1, max_delay_s: 45}
"""
    return {
        "clean": run(tmp, "clean", None),
        "dup_reorder": run(tmp, "dup_reorder", dup_reorder),
        "all": run(tmp, "all", ALL),
        "rest": run(tmp, "rest", NOT_DUP_OR_REORDER),
    }


def test_duplicates_and_reordering_leave_alerts_and_workorders_unchanged(
    runs: dict[str, Path],
) -> None:
    clean, faulty = runs["clean"], runs["dup_reorder"]
    for name in ("alerts.jsonl", "workorders.jsonl"):
        assert (faulty / name).read_bytes() == (clean / name).read_bytes(), name
    events = traffic(faulty)
    ids = Counter(e["event_id"] for e in events)
    assert sum(n - 1 for n in ids.values()) > 100  # duplicates really went out
    latest, overtaken = 0.0, 0
    for e in events:
        overtaken += e["sim_seconds"] < latest
        latest = max(latest, e["sim_seconds"])
    assert overtaken > 100  # and events really came out of order
    recorded = Counter()
    for f in faults_in(faulty):
        recorded[f["type"]] += f["events"]
        assert f["type"] != "reorder" or f["max_delay_s"] <= 45
    assert recorded["duplicate"] == sum(n - 1 for n in ids.values())
    assert recorded["reorder"] > 0


def test_with_every_fault_on_duplicates_and_reordering_still_change_nothing(
    runs: dict[str, Path],
) -> None:
    all_, rest = runs["all"], runs["rest"]
    assert (all_ / "alerts.jsonl").read_bytes() == (rest / "alerts.jsonl").read_bytes()
    assert (all_ / "alerts.jsonl").read_bytes() != (runs["clean"] / "alerts.jsonl").read_bytes()


def test_lost_events_never_reach_the_engine_and_the_score_shows_it(
    runs: dict[str, Path],
) -> None:
    out = runs["all"]
    lost = {eid for f in faults_in(out) if f["type"] == "loss" for eid in f["event_ids"]}
    assert lost
    seen = {e["event_id"] for e in traffic(out)}
    assert not lost & seen
    score = json.loads((out / "score.json").read_text())["rules"]
    clean = json.loads((runs["clean"] / "score.json").read_text())["rules"]
    assert sum(r["missed_in_transit"] for r in score.values()) > 0
    assert all(r["missed_in_transit"] == 0 for r in clean.values())
    assert score["ebike-in-elevator"]["recall"] < clean["ebike-in-elevator"]["recall"]


def test_dead_devices_stay_dead_and_the_silence_rule_sees_them(runs: dict[str, Path]) -> None:
    out = runs["all"]
    truth = read_jsonl(out / "truth.jsonl")
    dead = [f for f in faults_in(out) if f["type"] == "device_dead"]
    assert dead
    incidents = {
        t["device_id"]: t
        for t in truth
        if t["kind"] == "incident" and t["type"] == "device_silent" and t.get("code") == "dead"
    }
    events = traffic(out)
    for f in dead:
        inc = incidents[f["device_id"]]
        assert inc["end_s"] is None  # never came back, whatever the staff did
        after = [
            e
            for e in events
            if e["device_id"] == f["device_id"] and e["sim_seconds"] > f["start_s"] + 60
        ]
        assert not after
    died = {f["device_id"]: f["start_s"] for f in dead}
    repairs = [  # repairs of the dead device once it was dead (before, it could break and be fixed)
        t
        for t in truth
        if t["kind"] == "response"
        and t.get("device_id") in died
        and t["end_s"] > died[t["device_id"]]
    ]
    assert all(not r["effective"] for r in repairs)
    alerts = read_jsonl(out / "alerts.jsonl")
    silent = {
        a["labels"].get("device_id")
        for a in alerts
        if a["rule_id"] == "device-silent" and a["change"] == "firing"
    }
    assert any(f["device_id"] in silent for f in dead)


def test_skewed_clocks_shift_a_devices_timestamps_by_its_skew(runs: dict[str, Path]) -> None:
    skews = {
        f["device_id"]: f["skew_s"] for f in faults_in(runs["rest"]) if f["type"] == "clock_skew"
    }
    assert skews
    clean = traffic(runs["clean"])
    skewed = traffic(runs["rest"])
    device, skew = next((d, s) for d, s in sorted(skews.items()) if s > 1 and "cam" in d)
    first = [e["sim_seconds"] for e in clean if e["device_id"] == device][:5]
    shifted = [e["sim_seconds"] for e in skewed if e["device_id"] == device][:5]
    assert shifted == pytest.approx([t + skew for t in first], abs=0.002)


def test_gateway_disconnects_are_recorded_only_where_asked(tmp_path: Path) -> None:
    f = tmp_path / "gw.yaml"
    f.write_text(
        "faults:\n  - {kind: gateway_disconnect, estates: [aibo4], mean_days_between: 1}\n"
    )
    sc = with_faults(load_scenario(SEEDS / "xinhong.yaml"), f)
    sc = sc.model_copy(update={"gateway": GatewaySettings()})  # no disconnects of its own
    out = tmp_path / "gw"
    run_to_folder(sc, out, days=5, seed=3)
    outages = [
        t
        for t in read_jsonl(out / "truth.jsonl")
        if t["kind"] == "incident" and t["type"] == "gateway_outage"
    ]
    assert outages and {t["estate"] for t in outages} == {"aibo4"}
    statuses = [
        e for e in traffic(out) if e["type"] == "gateway_status" and e["status"] == "offline"
    ]
    assert {e["estate"] for e in statuses} == {"aibo4"}


def test_same_faults_and_seed_are_byte_identical(tmp_path: Path) -> None:
    a = run(tmp_path, "a", ALL, days=2)
    b = run(tmp_path, "b", ALL, days=2)
    for name in ("events.jsonl", "truth.jsonl", "alerts.jsonl", "score.json"):
        assert (a / name).read_bytes() == (b / name).read_bytes(), name


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("faults:\n  - {kind: loss, probability: 1.5}\n", "faults[0].probability"),
        ("faults:\n  - {kind: meteor, probability: 0.1}\n", "faults[0]"),
        ("faults:\n  - {kind: loss, probability: 0.1, estates: [nope]}\n", "unknown estate"),
        ("faults:\n  - {kind: device_dead, share: 0.1, from_day: 3, to_day: 2}\n", "to_day"),
    ],
)
def test_a_bad_faults_file_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, problem: str
) -> None:
    f = tmp_path / "bad.yaml"
    f.write_text(text, encoding="utf-8")
    out = tmp_path / "never"
    code = main(
        ["run", str(SEEDS / "tiny.yaml"), "--faults", str(f), "--broker", "none", "--out", str(out)]
    )
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert len(err.splitlines()) == 1 and str(f) in err and problem in err
    assert not out.exists()
    with pytest.raises(BadInput):
        with_faults(load_scenario(SEEDS / "tiny.yaml"), f)


def test_validate_knows_a_faults_file(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(ALL)]) == 0
    assert "faults, 7 entries" in capsys.readouterr().out


def test_over_mqtt_injected_duplicates_reach_the_engine_and_change_nothing(tmp_path: Path) -> None:
    from sim.mqtt.carrier import Link

    f = tmp_path / "dr.yaml"
    f.write_text(
        "faults:\n  - {kind: duplicate, probability: 0.1}\n"
        "  - {kind: reorder, probability: 0.1, max_delay_s: 30}\n"
    )
    sc = load_scenario(SEEDS / "tiny.yaml")
    run_to_folder(sc, tmp_path / "clean", days=1, seed=1)
    result = run_to_folder(
        with_faults(sc, f), tmp_path / "mqtt", days=1, seed=1, link=Link(broker="embedded")
    )
    assert result.mqtt["lost"] == 0
    assert result.mqtt["consumed"] == result.mqtt["published"]
    clean = (tmp_path / "clean" / "alerts.jsonl").read_bytes()
    assert (tmp_path / "mqtt" / "alerts.jsonl").read_bytes() == clean


def test_over_mqtt_a_gateway_disconnect_is_announced_by_the_brokers_last_will(
    tmp_path: Path,
) -> None:
    import threading
    import uuid

    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    from sim.mqtt.broker import EmbeddedBroker
    from sim.mqtt.carrier import Link
    from sim.mqtt.client import WILL_MARK

    f = tmp_path / "gw.yaml"
    f.write_text("faults:\n  - {kind: gateway_disconnect, mean_days_between: 0.3}\n")
    sc = with_faults(load_scenario(SEEDS / "tiny.yaml"), f)
    prefix = f"t{uuid.uuid4().hex[:8]}"
    got: list[tuple[dict[str, Any], bool]] = []
    ready = threading.Event()

    def on_message(_c: Any, _u: Any, msg: mqtt.MQTTMessage) -> None:
        props = getattr(msg.properties, "UserProperty", None) or []
        got.append((json.loads(msg.payload), WILL_MARK in [tuple(p) for p in props]))

    with EmbeddedBroker(kind="mosquitto").start() as broker:
        sub = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        sub.on_message = on_message
        sub.on_subscribe = lambda *a: ready.set()
        sub.connect("127.0.0.1", broker.port)
        sub.loop_start()
        try:
            sub.subscribe(f"{prefix}/gw/+/status", qos=1)
            assert ready.wait(10)
            result = run_to_folder(
                sc, tmp_path / "mqtt", days=2, seed=1, link=Link(broker=broker.url, prefix=prefix)
            )
        finally:
            sub.disconnect()
            sub.loop_stop()
    run_to_folder(sc, tmp_path / "local", days=2, seed=1)
    offline = [
        e["event_id"]
        for e in traffic(tmp_path / "local")
        if e["type"] == "gateway_status" and e["status"] == "offline"
    ]
    assert len(offline) >= 2
    assert result.mqtt["last_wills"] == len(offline) and result.mqtt["lost"] == 0
    wills = [doc["event_id"] for doc, marked in got if marked and doc["status"] == "offline"]
    assert wills == offline  # each one published by the broker, as a will, in order
    assert not [doc for doc, marked in got if doc["status"] == "offline" and not marked]
    local = (tmp_path / "local" / "alerts.jsonl").read_bytes()
    assert (tmp_path / "mqtt" / "alerts.jsonl").read_bytes() == local
    assert b"gateway-offline" in local
