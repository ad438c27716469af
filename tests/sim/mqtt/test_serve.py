"""``pmsim rules serve`` as a real process on a real broker: garbage in, alerts out, still running."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
import uuid
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import paho.mqtt.client as mqtt
import pytest

from devices.events import (
    DeviceEvent,
    DoorOpenTooLong,
    EbikeDetected,
    Heartbeat,
    event_bytes,
    topic_for,
)
from sim.mqtt.broker import EmbeddedBroker
from sim.mqtt.serve import owns, parse_partition
from sim.mqtt.watch import format_message

START = datetime(2026, 3, 2, tzinfo=ZoneInfo("Asia/Shanghai"))


class Peer:
    """Publishes by hand and collects what comes back, as a user with mosquitto_pub/sub would."""

    def __init__(self, port: int, topics: list[str]) -> None:
        self.got: list[tuple[str, dict[str, Any]]] = []
        self.lock = threading.Lock()
        self.subscribed = threading.Event()
        self.c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
        self.c.on_message = self._on_message
        self.c.on_subscribe = lambda *a: self.subscribed.set()
        self.c.connect("127.0.0.1", port)
        self.c.loop_start()
        self.c.subscribe([(t, 1) for t in topics])
        assert self.subscribed.wait(10)

    def _on_message(self, _c: Any, _u: Any, msg: mqtt.MQTTMessage) -> None:
        with self.lock:
            self.got.append((msg.topic, json.loads(msg.payload)))

    def send(self, topic: str, payload: bytes) -> None:
        self.c.publish(topic, payload, qos=1).wait_for_publish(10)

    def wait(self, pred: Any, timeout: float = 20.0) -> list[tuple[str, dict[str, Any]]]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if pred(self.got):
                    return list(self.got)
            time.sleep(0.05)
        with self.lock:
            raise AssertionError(f"timed out; got {self.got}")

    def close(self) -> None:
        self.c.disconnect()
        self.c.loop_stop()


def ev(cls: type, t: float, device: str, seq: int, estate: str = "e1", **kw: Any) -> DeviceEvent:
    return cls(  # type: ignore[no-any-return]
        event_id=f"{device}:{seq}",
        device_id=device,
        device_kind="ebike_blocker",
        estate=estate,
        building="b01",
        time=START + timedelta(seconds=t),
        sim_seconds=t,
        seq=seq,
        **kw,
    )


def start_serve(broker: EmbeddedBroker, prefix: str, *extra: str) -> subprocess.Popen[str]:
    argv = [sys.executable, "-m", "sim", "rules", "serve", "--broker", broker.url]
    argv += ["--prefix", prefix, "--client-id", f"serve-{prefix}-{uuid.uuid4().hex[:6]}", *extra]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()  # the start-up line: subscribed and ready
    assert "pmsim rules serve:" in line, line
    return proc


def stop(proc: subprocess.Popen[str]) -> str:
    proc.send_signal(signal.SIGINT)
    try:
        out, _ = proc.communicate(timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
    return out


def test_garbage_is_dead_lettered_and_valid_events_still_alert(broker: EmbeddedBroker) -> None:
    p = f"s{uuid.uuid4().hex[:8]}"
    peer = Peer(broker.port, [f"{p}/deadletter", f"{p}/alerts/#"])
    proc = start_serve(broker, p, "--max-bytes", "2000")
    try:
        topic = f"{p}/dev/e1/b01/ebike_blocker/d1"
        bike = ev(EbikeDetected, 64800.0, "d1", 0, confidence=0.95, object_class="ebike")
        garbage = [
            b"\xff\xfe\x00",
            b"not json at all",
            b'{"schema_version": 9, "type": "heartbeat"}',
            b'{"schema_version": 1, "type": "teleport"}',
            b'{"schema_version": 1, "type": "heartbeat"}',
            b"[" * 3000,
            event_bytes(bike),  # on the wrong topic below
        ]
        for g in garbage[:-1]:
            peer.send(topic, g)
        peer.send(f"{p}/dev/e1/b01/ebike_blocker/d2", garbage[-1])
        got = peer.wait(lambda m: len(m) >= len(garbage))
        reasons = sorted(d["reason"] for t, d in got if t.endswith("/deadletter"))
        assert reasons == sorted(
            [
                "not_utf8",
                "not_json",
                "schema_version",
                "unknown_type",
                "invalid",
                "too_large",
                "wrong_topic",
            ]
        )
        assert proc.poll() is None, "the service died"
        peer.send(topic, event_bytes(bike))
        peer.send(topic, event_bytes(bike))  # redelivered: no second alert
        later = ev(Heartbeat, 64900.0, "d1", 1)
        peer.send(topic, event_bytes(later))
        got = peer.wait(lambda m: any(t.startswith(f"{p}/alerts/") for t, _ in m))
        alerts = [d for t, d in got if t.startswith(f"{p}/alerts/")]
        assert [(a["rule_id"], a["change"]) for a in alerts] == [("ebike-in-elevator", "firing")]
        assert format_message(f"{p}/alerts/e1/ebike-in-elevator", json.dumps(alerts[0]).encode())
    finally:
        out = stop(proc)
        peer.close()
    assert proc.returncode == 0
    assert "'duplicates': 1" in out and "'not_json': 1" in out


def test_two_workers_split_the_estates(broker: EmbeddedBroker) -> None:
    estates = [f"estate{i}" for i in range(40)]
    mine = [[e for e in estates if owns(e, None, (k, 2))] for k in range(2)]
    assert sorted(mine[0] + mine[1]) == sorted(estates) and mine[0] and mine[1]
    p = f"s{uuid.uuid4().hex[:8]}"
    peer = Peer(broker.port, [f"{p}/alerts/#"])
    workers = [start_serve(broker, p, "--partition", f"{k}/2") for k in range(2)]
    try:
        for i, e in enumerate(estates[:6]):
            bike = ev(
                EbikeDetected,
                1000.0 * i + 100,
                f"{e}-d",
                0,
                estate=e,
                confidence=0.9,
                object_class="ebike",
            )
            beat = ev(Heartbeat, 1000.0 * i + 200, f"{e}-d", 1, estate=e)  # live: time moves on
            for x in (bike, beat):
                peer.send(topic_for(x, p), event_bytes(x))

        def fired(m: list[tuple[str, dict[str, Any]]]) -> list[str]:
            return sorted(
                d["labels"]["estate"]
                for _, d in m
                if d["change"] == "firing" and d["rule_id"] == "ebike-in-elevator"
            )

        peer.wait(lambda m: len(fired(m)) >= 6)
        time.sleep(1.0)  # a worker that wrongly took a foreign estate would add a seventh
        with peer.lock:
            assert fired(peer.got) == sorted(estates[:6])
    finally:
        for w in workers:
            stop(w)
        peer.close()


def test_partitions_number_their_work_orders_apart(broker: EmbeddedBroker) -> None:
    """Two workers of one district never hand out the same work-order id (they did: both counted
    from WO000001)."""
    estates = [f"estate{i}" for i in range(8)]
    p = f"w{uuid.uuid4().hex[:8]}"
    peer = Peer(broker.port, [f"{p}/workorders/#"])
    workers = [start_serve(broker, p, "--partition", f"{k}/2") for k in range(2)]
    try:
        for i, e in enumerate(estates):
            held = ev(DoorOpenTooLong, 1000.0 * i + 100, f"{e}-d", 0, estate=e, held_seconds=130.0)
            beat = ev(Heartbeat, 1000.0 * i + 200, f"{e}-d", 1, estate=e)
            for x in (held, beat):
                peer.send(topic_for(x, p), event_bytes(x))

        def opened(m: list[tuple[str, dict[str, Any]]]) -> dict[str, str]:
            return {d["estate"]: d["workorder_id"] for _, d in m if d["change"] == "opened"}

        got = opened(peer.wait(lambda m: len(opened(m)) >= len(estates)))
    finally:
        for w in workers:
            stop(w)
        peer.close()
    assert sorted(got) == sorted(estates)
    assert len(set(got.values())) == len(estates), got  # unique across the partitions
    for e, wid in got.items():
        k = 0 if owns(e, None, (0, 2)) else 1
        assert wid.startswith(f"WO-p{k}of2-"), (e, wid)


def test_partition_and_estate_options() -> None:
    assert parse_partition("1/3") == (1, 3)
    with pytest.raises(Exception, match="K/N"):
        parse_partition("x")
    with pytest.raises(Exception, match="0 <= K < N"):
        parse_partition("3/3")
    assert owns("a", frozenset({"a"}), None) and not owns("b", frozenset({"a"}), None)
