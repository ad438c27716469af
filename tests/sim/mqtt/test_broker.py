"""The embedded broker, against the real brokers: Mosquitto and the amqtt fallback."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

import sim.mqtt.broker
from sim.mqtt.broker import NO_BROKER, BrokerError, BrokerKind, EmbeddedBroker, free_port

ROOT = Path(__file__).resolve().parents[3]
WAIT = 15.0  # the bound on any single wait in these tests

HAVE = {
    "mosquitto": sim.mqtt.broker._mosquitto_path() is not None,
    "amqtt": sim.mqtt.broker._amqtt_available(),
}


@pytest.fixture(params=["mosquitto", "amqtt"])
def kind(request: pytest.FixtureRequest) -> BrokerKind:
    name: BrokerKind = request.param
    if not HAVE[name]:
        pytest.skip(f"{name} is not installed")
    return name


@pytest.fixture
def brokers() -> Iterator[list[EmbeddedBroker]]:
    """Brokers a test makes go here, and are stopped whatever happens."""
    made: list[EmbeddedBroker] = []
    yield made
    for b in made:
        b.stop()


@pytest.fixture
def clients() -> Iterator[list[mqtt.Client]]:
    made: list[mqtt.Client] = []
    yield made
    for c in made:
        c.disconnect()
        c.loop_stop()


def wait_until(cond: Callable[[], bool], timeout: float = WAIT) -> bool:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def children() -> set[int]:
    """Live (not zombie) child processes of this test process, from /proc."""
    me = os.getpid()
    found: set[int] = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[1]) == me and fields[0] != "Z":
            found.add(int(stat.parent.name))
    return found


def refused(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=2):
            return False
    except OSError:
        return True


class Peer:
    """A paho client on a loop thread that re-subscribes on every (re)connect and records messages."""

    def __init__(self, port: int, clients: list[mqtt.Client], topic: str | None = None) -> None:
        self.topic = topic
        self.connects = 0
        self.disconnects = 0
        self.subscribed = 0
        self.got: list[tuple[str, bytes]] = []
        c = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=f"pmtest-{uuid.uuid4().hex[:12]}",
            protocol=mqtt.MQTTv311,  # amqtt speaks 3.1.1 only
        )
        c.reconnect_delay_set(min_delay=1, max_delay=1)
        c.on_connect = self._on_connect
        c.on_disconnect = self._on_disconnect
        c.on_subscribe = self._on_subscribe
        c.on_message = self._on_message
        self.client = c
        clients.append(c)
        c.connect("127.0.0.1", port, keepalive=30)
        c.loop_start()
        assert wait_until(lambda: self.connects >= 1 and (not topic or self.subscribed >= 1))

    def _on_connect(self, c: mqtt.Client, u: object, f: object, rc: object, p: object) -> None:
        self.connects += 1
        if self.topic:
            c.subscribe(self.topic, qos=1)

    def _on_disconnect(self, c: mqtt.Client, u: object, f: object, rc: object, p: object) -> None:
        self.disconnects += 1

    def _on_subscribe(self, c: mqtt.Client, u: object, m: int, rcs: object, p: object) -> None:
        self.subscribed += 1

    def _on_message(self, c: mqtt.Client, u: object, msg: mqtt.MQTTMessage) -> None:
        self.got.append((msg.topic, bytes(msg.payload)))


def test_round_trip_of_200_qos1_messages_in_order_then_a_clean_stop(
    kind: BrokerKind, brokers: list[EmbeddedBroker], clients: list[mqtt.Client]
) -> None:
    before = children()
    b = EmbeddedBroker(kind)
    brokers.append(b)
    assert b.start() is b
    assert b.kind == kind and b.url == f"mqtt://127.0.0.1:{b.port}"
    assert b.describe().startswith(f"{kind} ") and b.describe().endswith(f" on {b.url}")
    pid = b.pid
    assert pid is not None and b.running

    base = f"pmtest/{uuid.uuid4().hex}"
    sub = Peer(b.port, clients, topic=f"{base}/#")
    pub = Peer(b.port, clients)
    sent = [(f"{base}/dev/{i % 7}", f"event {i}".encode()) for i in range(200)]
    infos = [pub.client.publish(t, m, qos=1) for t, m in sent]
    for info in infos:
        info.wait_for_publish(timeout=WAIT)
        assert info.is_published()
    assert wait_until(lambda: len(sub.got) >= len(sent)), f"{len(sub.got)} of {len(sent)} arrived"
    time.sleep(0.2)  # nothing extra trails in
    assert sub.got == sent

    b.stop()
    assert not b.running and b.pid is None
    assert not Path(f"/proc/{pid}").exists()
    assert children() == before
    assert refused("127.0.0.1", b.port)
    b.stop()  # idempotent


def test_a_port_in_use_is_refused_quickly_and_leaves_no_process(
    kind: BrokerKind, brokers: list[EmbeddedBroker]
) -> None:
    before = children()
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        b = EmbeddedBroker(kind, port=port)
        brokers.append(b)
        t0 = time.monotonic()
        with pytest.raises(BrokerError, match=f"port {port} on 127.0.0.1 is in use"):
            b.start()
        assert time.monotonic() - t0 < 12
    assert not b.running and children() == before


def test_a_broker_that_dies_at_start_up_is_reported_with_its_reason(
    kind: BrokerKind, brokers: list[EmbeddedBroker]
) -> None:
    before = children()
    b = EmbeddedBroker(kind, max_packet_bytes=10)  # both refuse a limit under 20 bytes
    brokers.append(b)
    t0 = time.monotonic()
    with pytest.raises(BrokerError, match=rf"{kind} exited with status \d+ at start-up: .+") as err:
        b.start()
    assert time.monotonic() - t0 < 12
    assert "max_packet_size" in str(err.value) or "max-packet-bytes" in str(err.value)
    assert "\n" not in str(err.value)
    assert not b.running and children() == before


def test_two_brokers_get_different_ports(kind: BrokerKind, brokers: list[EmbeddedBroker]) -> None:
    a, b = EmbeddedBroker(kind), EmbeddedBroker(kind)
    brokers += [a, b]
    a.start()
    b.start()
    assert a.port != b.port
    assert a.running and b.running


def non_loopback_address() -> str | None:
    """This machine's outward IPv4 address, if it has one (a UDP connect sends nothing)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("192.0.2.1", 9))  # TEST-NET-1
            addr: str = s.getsockname()[0]
        except OSError:
            return None
    return None if addr.startswith("127.") or addr == "0.0.0.0" else addr


def test_the_broker_listens_on_loopback_only(
    kind: BrokerKind, brokers: list[EmbeddedBroker]
) -> None:
    addr = non_loopback_address()
    if addr is None:
        pytest.skip("this machine has no non-loopback IPv4 address")
    b = EmbeddedBroker(kind)
    brokers.append(b)
    b.start()
    assert not refused("127.0.0.1", b.port)
    assert refused(addr, b.port), f"{kind} answers on {addr}:{b.port}"


def test_restart_keeps_the_port_and_clients_reconnect(
    kind: BrokerKind, brokers: list[EmbeddedBroker], clients: list[mqtt.Client]
) -> None:
    b = EmbeddedBroker(kind)
    brokers.append(b)
    b.start()
    port, pid = b.port, b.pid
    topic = f"pmtest/{uuid.uuid4().hex}/restart"
    sub = Peer(port, clients, topic=topic)
    pub = Peer(port, clients)
    pub.client.publish(topic, b"before", qos=1).wait_for_publish(timeout=WAIT)
    assert wait_until(lambda: len(sub.got) == 1)

    b.restart()
    assert b.running and b.port == port and b.pid != pid
    assert pid is not None and not Path(f"/proc/{pid}").exists()
    # Both clients notice, reconnect to the same port and (the subscriber) subscribe again.
    assert wait_until(lambda: sub.subscribed >= 2 and pub.connects >= 2)
    pub.client.publish(topic, b"after", qos=1).wait_for_publish(timeout=WAIT)
    assert wait_until(lambda: len(sub.got) == 2)
    assert [m for _, m in sub.got] == [b"before", b"after"]


def test_packets_over_the_limit_cost_the_sender_its_connection(
    kind: BrokerKind, brokers: list[EmbeddedBroker], clients: list[mqtt.Client]
) -> None:
    b = EmbeddedBroker(kind, max_packet_bytes=1024)
    brokers.append(b)
    b.start()
    topic = f"pmtest/{uuid.uuid4().hex}/size"
    sub = Peer(b.port, clients, topic=topic)
    big = Peer(b.port, clients)
    big.client.publish(topic, b"x" * 2000, qos=0)  # QoS 0: paho would resend a QoS 1 one forever
    assert wait_until(lambda: big.disconnects >= 1)
    pub = Peer(b.port, clients)  # the broker lives on for everyone else
    pub.client.publish(topic, b"small", qos=1).wait_for_publish(timeout=WAIT)
    assert wait_until(lambda: len(sub.got) >= 1)
    time.sleep(0.2)
    assert [m for _, m in sub.got] == [b"small"]


def test_with_block_starts_and_stops(kind: BrokerKind) -> None:
    with EmbeddedBroker(kind) as b:
        assert b.running
        port = b.port
    assert not b.running and refused("127.0.0.1", port)


def test_no_broker_at_all_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sim.mqtt.broker, "_mosquitto_path", lambda: None)
    monkeypatch.setattr(sim.mqtt.broker, "_amqtt_available", lambda: False)
    b = EmbeddedBroker()
    assert b.kind == "amqtt"
    with pytest.raises(BrokerError) as err:
        b.start()
    assert str(err.value) == NO_BROKER
    assert not b.running


def test_unknown_kind_is_a_broker_error() -> None:
    with pytest.raises(BrokerError, match="unknown broker kind 'hivemq'"):
        EmbeddedBroker("hivemq")  # type: ignore[arg-type]


def test_free_port_is_bindable() -> None:
    port = free_port()
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_serve_forever_runs_until_a_signal(kind: BrokerKind, sig: signal.Signals) -> None:
    port = free_port()
    code = f"from sim.mqtt.broker import serve_forever; raise SystemExit(serve_forever({kind!r}, {port}))"
    proc = subprocess.Popen(
        [sys.executable, "-c", code],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line: list[str] = []
        reader = threading.Thread(target=lambda: line.append(proc.stdout.readline()))  # type: ignore[union-attr]
        reader.start()
        reader.join(WAIT)
        assert line and line[0].startswith(f"pmsim broker: {kind} ")
        assert line[0].rstrip("\n").endswith(f" on mqtt://127.0.0.1:{port} (Ctrl-C to stop)")
        assert not refused("127.0.0.1", port)
        proc.send_signal(sig)
        assert proc.wait(WAIT) == 0
        assert refused("127.0.0.1", port)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(WAIT)
