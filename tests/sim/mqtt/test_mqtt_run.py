"""``pmsim run`` over a real broker: same alerts as in-process, nothing lost, wills that fire.

Every test uses its own topic prefix on a broker of its own (Mosquitto and the amqtt fallback) on
a free loopback port, and stops every process it starts.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest

from sim.commands.cli import main
from sim.mqtt.broker import EmbeddedBroker, free_port
from sim.mqtt.carrier import Link
from sim.replay import run_traffic
from sim.runner import run_to_folder
from sim.world.scenario import load_scenario

ROOT = Path(__file__).resolve().parents[3]
TINY = ROOT / "seeds" / "tiny.yaml"


def running(kind: str) -> Iterator[EmbeddedBroker]:
    if kind == "amqtt":
        pytest.importorskip("amqtt")
    with EmbeddedBroker(kind) as b:  # type: ignore[arg-type]
        yield b


@pytest.fixture(scope="module", params=["mosquitto", "amqtt"])
def broker(request: pytest.FixtureRequest) -> Iterator[EmbeddedBroker]:
    yield from running(request.param)


def prefix() -> str:
    return f"t{uuid.uuid4().hex[:10]}"


class Listener:
    """A plain paho subscriber, as a user's own consumer would be."""

    def __init__(self, port: int, topic: str) -> None:
        self.messages: list[tuple[str, bytes, bool]] = []
        self.lock = threading.Lock()
        self.ready = threading.Event()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv311)
        self.client.on_message = self._on_message
        self.client.on_subscribe = lambda *a: self.ready.set()
        self.client.max_queued_messages_set(0)
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        self.client.subscribe(topic, qos=1)
        assert self.ready.wait(10), "no SUBACK"

    def _on_message(self, _c: Any, _u: Any, msg: mqtt.MQTTMessage) -> None:
        with self.lock:
            self.messages.append((msg.topic, bytes(msg.payload), bool(msg.retain)))

    def wait_for(self, pred: Any, timeout: float = 30.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if pred(self.messages):
                    return True
            time.sleep(0.05)
        return False

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def children() -> set[str]:
    """Processes this test process has started and not reaped (other fixtures' brokers too)."""
    found = subprocess.run(
        ["pgrep", "-P", str(os.getpid())], capture_output=True, text=True, check=False
    ).stdout.split()
    return set(found)


def run(tmp: Path, name: str, link: Link, days: int = 1) -> Path:
    out = tmp / name
    run_to_folder(load_scenario(TINY), out, days=days, seed=5, link=link)
    return out


# Every file of the run folder that does not depend on the carrier: the same bytes either way.
FOLDER = (
    "events.jsonl",
    "events.delivered",
    "heartbeats.jsonl",
    "alerts.jsonl",
    "workorders.jsonl",
    "truth.jsonl",
)


def test_over_the_broker_the_run_equals_the_in_process_run(
    broker: EmbeddedBroker, tmp_path: Path
) -> None:
    over = run(tmp_path, "mqtt", Link(broker=broker.url, prefix=prefix()))
    local = run(tmp_path, "none", Link())
    for name in FOLDER:
        assert (over / name).read_bytes() == (local / name).read_bytes(), name
    info = json.loads((over / "run.json").read_text())["broker"]
    assert info["published"] == info["consumed"] == info["acknowledged"] > 1000
    assert info["lost"] == 0 and info["dead_letters"] == {}
    assert info["sequence_gaps"] == info["sequence_gap_events"] == 0  # every device's seq came
    assert info["protocol"] == ("5" if broker.kind == "mosquitto" else "3.1.1")


def test_a_subscriber_receives_every_event_and_alert_of_the_run(
    broker: EmbeddedBroker, tmp_path: Path
) -> None:
    p = prefix()
    listener = Listener(broker.port, f"{p}/#")
    try:
        out = run(tmp_path, "run", Link(broker=broker.url, prefix=p))
        events = [json.loads(line) for line in run_traffic(out)]  # heartbeats built again
        alerts = [json.loads(line) for line in (out / "alerts.jsonl").open()]
        orders = [json.loads(line) for line in (out / "workorders.jsonl").open()]
        want = len(events) + len(alerts) + len(orders)
        assert listener.wait_for(lambda m: len(m) >= want), "messages missing"
        with listener.lock:
            got = list(listener.messages)
    finally:
        listener.close()
    dev = [json.loads(b) for t, b, _ in got if t.startswith((f"{p}/dev/", f"{p}/gw/"))]
    assert sorted(e["event_id"] for e in dev) == sorted(e["event_id"] for e in events)
    assert [json.loads(b) for t, b, _ in got if t.startswith(f"{p}/alerts/")] == alerts
    assert [json.loads(b) for t, b, _ in got if t.startswith(f"{p}/workorders/")] == orders
    topics = {t for t, _, _ in got}
    assert f"{p}/gw/tiny/status" in topics
    assert any(t.startswith(f"{p}/alerts/tiny/") for t in topics)


def test_batched_the_run_equals_the_in_process_run_and_any_client_reads_it(
    broker: EmbeddedBroker, tmp_path: Path
) -> None:
    p = prefix()
    listener = Listener(broker.port, f"{p}/#")
    try:
        over = run(tmp_path, "mqtt", Link(broker=broker.url, prefix=p, batch=7))
        events = [json.loads(line) for line in run_traffic(over)]
        assert listener.wait_for(
            lambda m: (
                sum(len(json.loads(b)) for t, b, _ in m if "/batch/" in t)
                + sum(1 for t, _, _ in m if t.startswith(f"{p}/gw/"))
                >= len(events)
            )
        ), "messages missing"
        with listener.lock:
            got = list(listener.messages)
    finally:
        listener.close()
    local = run(tmp_path, "none", Link())
    for name in FOLDER:
        assert (over / name).read_bytes() == (local / name).read_bytes(), name
    info = json.loads((over / "run.json").read_text())["broker"]
    assert info["published"] == info["consumed"] == info["acknowledged"] > 1000
    assert info["batch"] == 7 and info["messages"] < info["published"] / 2
    assert info["lost"] == 0 and info["dead_letters"] == {}
    # Plain JSON arrays of the same event objects, on the gateway's topic, in publish order.
    assert not any(t.startswith(f"{p}/dev/") for t, _, _ in got)
    batches = [json.loads(b) for t, b, _ in got if t == f"{p}/batch/tiny"]
    assert batches and all(1 <= len(b) <= 7 for b in batches)
    carried = [e for b in batches for e in b]
    status = [json.loads(b) for t, b, _ in got if t == f"{p}/gw/tiny/status"]
    assert carried == [e for e in events if e["type"] != "gateway_status"]
    assert [e["event_id"] for e in status] == [
        e["event_id"] for e in events if e["type"] == "gateway_status"
    ]


def test_embedded_broker_is_announced_and_leaves_no_process(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run"
    argv = ["run", str(TINY), "--days", "1", "--out", str(out), "--no-progress"]
    before = children()
    assert main(argv) == 0
    cap = capsys.readouterr()
    assert "embedded broker:" in cap.err and "mqtt://127.0.0.1:" in cap.err
    assert "events published" in cap.out and " 0 lost" in cap.out
    assert children() == before


def test_an_unreachable_broker_is_one_line_and_exit_2_within_seconds(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run"
    port = free_port()
    t0 = time.monotonic()
    assert main(["run", str(TINY), "--broker", f"mqtt://127.0.0.1:{port}", "--out", str(out)]) == 2
    assert time.monotonic() - t0 < 10
    err = capsys.readouterr().err
    assert f"mqtt://127.0.0.1:{port}" in err and "cannot connect" in err
    assert err.count("pmsim: error:") == 1 and "Traceback" not in err
    assert not out.exists()


@pytest.fixture(params=["mosquitto", "amqtt"])
def fresh_broker(request: pytest.FixtureRequest) -> Iterator[EmbeddedBroker]:
    """A broker of the test's own: amqtt 0.12 stops sending wills once other sessions have come
    and gone (seen here), so the will is tested on a broker no earlier test has used."""
    yield from running(request.param)


def test_the_last_will_marks_a_killed_gateway_offline(
    fresh_broker: EmbeddedBroker, tmp_path: Path
) -> None:
    broker = fresh_broker
    p = prefix()
    listener = Listener(broker.port, f"{p}/gw/+/status")
    argv = [sys.executable, "-m", "sim", "run", str(TINY), "--days", "1", "--speed", "600"]
    argv += ["--broker", broker.url, "--prefix", p, "--out", str(tmp_path / "run"), "--no-progress"]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:

        def online(msgs: list[tuple[str, bytes, bool]]) -> bool:
            return any(json.loads(b)["status"] == "online" for _, b, _ in msgs)

        assert listener.wait_for(online, 30), "gateway never came online"
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)

        def offline(msgs: list[tuple[str, bytes, bool]]) -> bool:
            return any(json.loads(b)["status"] == "offline" for _, b, _ in msgs)

        assert listener.wait_for(offline, 30), "the last will never came"
        with listener.lock:
            will = next(json.loads(b) for _, b, _ in listener.messages if b"offline" in b)
        assert will["type"] == "gateway_status" and will["estate"] == "tiny"
        assert will["event_id"].startswith("tiny-gw:will-")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        listener.close()
    assert not (tmp_path / "run").exists()  # a killed run leaves no half-written folder
