"""The engine in a process of its own: fed in publish order whatever the broker's order, word of
what was published arriving late, and failures that reach the parent as one line."""

from __future__ import annotations

import multiprocessing as mp
import time
import uuid
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from devices.events import DeviceEvent, EbikeDetected, Heartbeat, event_bytes, topic_for
from rules.engine import Engine
from rules.model import RuleFile
from rules.ruleset import RuleSet
from sim.errors import BadInput
from sim.files.records import RecordWriter, finish_engine
from sim.mqtt.broker import EmbeddedBroker, free_port
from sim.mqtt.client import connect
from sim.mqtt.enginehost import EngineJob, EngineProcess
from sim.mqtt.sequencer import Sequencer
from sim.mqtt.url import parse_broker_url

T0 = datetime(2026, 3, 2, tzinfo=ZoneInfo("Asia/Shanghai"))
RULES = {
    "rules": [
        {
            "id": "bike",
            "watch": [{"type": "ebike_detected"}],
            "key": ["estate", "device_id"],
            "condition": {"kind": "event"},
            "severity": "warning",
            "keep_firing_for": "10m",
        },
        {
            "id": "silent",
            "watch": [{"type": "heartbeat"}],
            "key": ["estate", "device_id"],
            "condition": {"kind": "absence", "after": "20m"},
            "severity": "warning",
        },
    ]
}


def event(kind: type, estate: str, n: int, t: float, **extra: object) -> DeviceEvent:
    device = f"{estate}-b1-dev"
    return kind(
        event_id=f"{device}:{n}",
        device_id=device,
        device_kind="ebike_blocker",
        estate=estate,
        building="b1",
        time=T0 + timedelta(seconds=t),
        sim_seconds=t,
        seq=n,
        **extra,
    )


def stream() -> list[DeviceEvent]:
    """Two estates' heartbeats and e-bikes, interleaved in time; one estate falls silent."""
    out: list[DeviceEvent] = []
    for i in range(60):
        for k, estate in enumerate(("e1", "e2")):
            t = i * 300.0 + k
            if estate == "e2" and 20 <= i < 40:
                continue  # e2's device is silent for 100 minutes
            n = 2 * i
            out.append(event(Heartbeat, estate, n, t))
            if i % 7 == k:
                out.append(
                    event(EbikeDetected, estate, n + 1, t + 1, confidence=0.9, object_class="ebike")
                )
    return out


def in_process(events: list[DeviceEvent], folder: Path, end_s: float) -> tuple[bytes, dict]:
    folder.mkdir()
    with (folder / "alerts.jsonl").open("w") as fa, (folder / "workorders.jsonl").open("w") as fw:
        writer = RecordWriter(Engine(RuleSet(RuleFile.model_validate(RULES))), fa, fw)
        for e in events:
            writer("", e)
        outcome = finish_engine(writer, end_s)
    return (folder / "alerts.jsonl").read_bytes(), outcome.stats


def test_the_engine_process_feeds_in_publish_order_whatever_the_broker_does(
    tmp_path: Path,
) -> None:
    events = stream()
    end_s = 60 * 300.0
    want, stats = in_process(events, tmp_path / "local", end_s)
    assert b'"silent"' in want and b'"bike"' in want
    prefix = f"t-{uuid.uuid4().hex[:8]}"
    with EmbeddedBroker() as broker:
        url = parse_broker_url(broker.url)
        folder = tmp_path / "child"
        folder.mkdir()
        host = EngineProcess(
            EngineJob(
                spec=RuleFile.model_validate(RULES),
                url=url,
                prefix=prefix,
                client_id=f"{prefix}-engine",
                records_client_id=f"{prefix}-records",
                clean=True,
                folder=folder,
                hold_limit=10_000,
            )
        ).start()
        try:
            # One connection per estate, e2's events all first: the broker's order is not the
            # publish order; word of what was published comes only at the end.
            clients = {e: connect(url, f"{prefix}-{e}") for e in ("e1", "e2")}
            for estate in ("e2", "e1"):
                for e in events:
                    if e.estate == estate:
                        clients[estate].publish(topic_for(e, prefix), event_bytes(e), qos=1)
            deadline = time.monotonic() + 20
            while host.received < len(events) and time.monotonic() < deadline:
                time.sleep(0.02)
            assert host.received == len(events) and host.fed == 0  # held, in order
            for e in events:
                host.expect(e.event_id)
            report = host.finish(end_s, idle_timeout=5.0)
            for c in clients.values():
                c.disconnect()
                c.loop_stop()
        finally:
            host.close()
    assert report.fed == len(events) and report.lost == [] and report.duplicates == 0
    assert report.outcome.stats == stats
    assert (folder / "alerts.jsonl").read_bytes() == want
    assert mp.active_children() == []


def test_a_child_that_cannot_reach_the_broker_is_one_line_and_gone(tmp_path: Path) -> None:
    url = parse_broker_url(f"mqtt://127.0.0.1:{free_port()}")
    host = EngineProcess(
        EngineJob(
            spec=RuleFile.model_validate(RULES),
            url=url,
            prefix="pm",
            client_id="x-engine",
            records_client_id="x-records",
            clean=True,
            folder=tmp_path,
            hold_limit=10,
        )
    )
    try:
        with pytest.raises(BadInput, match=r"engine process: .*127\.0\.0\.1"):
            host.start()
    finally:
        host.close()
    assert mp.active_children() == []


# -- the sequencer's hold mode --------------------------------------------------------------------


def test_held_arrivals_wait_for_their_turn_and_surplus_copies_are_duplicates() -> None:
    events = [event(Heartbeat, "e1", n, n * 60.0) for n in range(5)]
    fed: list[str] = []
    seq = Sequencer(lambda e: fed.append(e.event_id), hold=True, hold_limit=100)
    for e in reversed(events):
        seq.arrived(e)
    seq.arrived(events[2])  # a redelivery
    assert fed == []
    seq.expect_many(e.event_id for e in events[:3])
    assert fed == [e.event_id for e in events[:3]]
    seq.expect_many(e.event_id for e in events[3:])
    assert fed == [e.event_id for e in events]
    assert seq.finish(0.1) == [] and seq.duplicates == 1


def test_past_the_hold_limit_an_unexpected_copy_is_dropped() -> None:
    events = [event(Heartbeat, "e1", n, n * 60.0) for n in range(4)]
    fed: list[str] = []
    seq = Sequencer(lambda e: fed.append(e.event_id), hold=True, hold_limit=2)
    for e in events:
        seq.arrived(e)
    assert seq.duplicates == 2
    seq.expect_many(e.event_id for e in events)
    assert seq.finish(0.1) == [e.event_id for e in events[2:]]
    assert fed == [e.event_id for e in events[:2]]
