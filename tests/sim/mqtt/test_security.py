"""Security basics: the embedded broker on loopback only with a packet limit; pmsim against a
Mosquitto with TLS (a certificate made here), a password file and the example ACL
(``seeds/mosquitto/acl.example``); the intake's payload limit.

Every broker listens on 127.0.0.1 on a free port, and every process started here is stopped.
"""

from __future__ import annotations

import getpass
import json
import os
import secrets
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest

import sim.mqtt.broker
from sim.mqtt.broker import EmbeddedBroker, free_port, mosquitto_conf
from sim.mqtt.intake import DEFAULT_MAX_PAYLOAD

ROOT = Path(__file__).resolve().parents[3]
ACL = ROOT / "seeds" / "mosquitto" / "acl.example"
TINY = ROOT / "seeds" / "tiny.yaml"
WAIT = 15.0  # the bound on any single wait
MOSQUITTO = sim.mqtt.broker._mosquitto_path()
USERS = ("pmsim", "rules", "dashboard", "aibo4", "huamei")  # the last two: estate gateways

pytestmark = pytest.mark.skipif(MOSQUITTO is None, reason="mosquitto is not installed")


def wait_until(cond: Callable[[], bool], timeout: float = WAIT) -> bool:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def pmsim(*args: str, timeout: float = 120.0) -> tuple[subprocess.CompletedProcess[str], float]:
    """``python -m sim ARGS`` as a user would run it; returns the result and the seconds taken."""
    t0 = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "sim", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    return done, time.monotonic() - t0


def run_tiny(
    out: Path, broker: str, *extra: str, timeout: float = 120.0
) -> tuple[subprocess.CompletedProcess[str], float]:
    """``pmsim run seeds/tiny.yaml --days 1`` into ``out`` over ``broker``."""
    args = ["run", str(TINY), "--days", "1", "--no-progress", "--out", str(out)]
    return pmsim(*args, "--broker", broker, *extra, timeout=timeout)


# -- the embedded broker --------------------------------------------------------------------------


def listening_addresses(port: int) -> list[str]:
    """Local addresses with a socket listening on ``port``, from /proc/net/tcp and tcp6."""
    found = []
    for name in ("tcp", "tcp6"):
        path = Path("/proc/net") / name
        if not path.exists():
            continue
        for line in path.read_text().splitlines()[1:]:
            fields = line.split()
            local, state = fields[1], fields[3]
            addr, hexport = local.split(":")
            if state != "0A" or int(hexport, 16) != port:  # 0A: LISTEN
                continue
            if name == "tcp":  # little-endian IPv4
                found.append(socket.inet_ntop(socket.AF_INET, bytes.fromhex(addr)[::-1]))
            else:  # four little-endian 32-bit words
                raw = b"".join(bytes.fromhex(addr[i : i + 8])[::-1] for i in range(0, 32, 8))
                found.append(socket.inet_ntop(socket.AF_INET6, raw))
    return found


@pytest.mark.parametrize("kind", ["mosquitto", "amqtt"])
def test_the_embedded_broker_listens_on_127_0_0_1_only(
    kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    if kind == "amqtt":
        pytest.importorskip("amqtt")
        # The amqtt broker is `python -m sim.mqtt.amqtt_broker` in a folder of its own: find `sim`
        # from this checkout even where pmsim is not installed.
        monkeypatch.setenv(
            "PYTHONPATH", os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
        )
    with EmbeddedBroker(kind) as b:  # type: ignore[arg-type]
        assert listening_addresses(b.port) == ["127.0.0.1"]  # not 0.0.0.0, not ::


def test_the_embedded_mosquitto_config_binds_loopback_and_limits_packets() -> None:
    lines = mosquitto_conf(1883, 1_048_576).splitlines()
    assert [x for x in lines if x.split()[:1] in (["listener"], ["port"], ["bind_address"])] == [
        "listener 1883 127.0.0.1"
    ]
    assert "max_packet_size 1048576" in lines
    # pmsim run's broker takes what the intake dead-letters as too_large, and refuses far more.
    assert EmbeddedBroker().max_packet_bytes > DEFAULT_MAX_PAYLOAD


def test_the_embedded_broker_refuses_packets_over_its_limit() -> None:
    """The default broker (as ``pmsim run`` starts it) drops a packet over 1 MiB and the sender's
    connection; one just under the limit goes through, and so does a later small one."""
    with EmbeddedBroker("mosquitto") as b:
        topic = f"pmtest/{uuid.uuid4().hex}/size"
        sub = Peer.plain(b.port, "sub")
        sub.subscribe(topic)
        big = Peer.plain(b.port, "big")
        try:
            big.client.publish(topic, b"x" * (b.max_packet_bytes - 1000), qos=1).wait_for_publish(
                WAIT
            )
            assert wait_until(lambda: len(sub.got) == 1)
            big.client.publish(topic, b"y" * (b.max_packet_bytes + 1), qos=0)
            assert wait_until(lambda: big.disconnects >= 1), "the broker kept the connection"
            small = Peer.plain(b.port, "small")
            small.client.publish(topic, b"small", qos=1).wait_for_publish(WAIT)
            small.close()
            assert wait_until(lambda: len(sub.got) == 2)
            assert [p[:1] for _, p in sub.got] == [b"x", b"s"]
        finally:
            big.close()
            sub.close()


# -- a Mosquitto with TLS, passwords and the example ACL -----------------------------------------


def openssl(*args: str, cwd: Path) -> None:
    done = subprocess.run(
        ["openssl", *args], cwd=cwd, capture_output=True, text=True, timeout=30, check=False
    )
    assert done.returncode == 0, done.stderr


@dataclass
class Pki:
    folder: Path
    ca: Path
    cert: Path
    key: Path
    passwords: dict[str, str]
    password_file: Path


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    """A self-signed CA, a server certificate for 127.0.0.1 signed by it, and a password file."""
    d = tmp_path_factory.mktemp("pki")
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    ca = ["-keyout", "ca.key", "-out", "ca.crt", "-days", "2", "-subj", "/CN=pmsim test CA"]
    openssl("req", "-x509", *ec, *ca, cwd=d)
    csr = ["-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=127.0.0.1"]
    openssl("req", *ec, *csr, "-addext", "subjectAltName=IP:127.0.0.1", cwd=d)
    (d / "server.ext").write_text(
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n"
        "keyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n"
    )
    sign = ["-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial"]
    openssl(
        "x509", "-req", *sign, "-out", "server.crt", "-days", "2", "-extfile", "server.ext", cwd=d
    )
    passwords = {u: secrets.token_urlsafe(12) for u in USERS}
    pw = d / "passwords"
    for i, (user, password) in enumerate(passwords.items()):
        cmd = ["mosquitto_passwd", "-b", *(["-c"] if i == 0 else []), str(pw), user, password]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=30, check=False)
        assert done.returncode == 0, done.stderr
    pw.chmod(0o600)
    return Pki(d, d / "ca.crt", d / "server.crt", d / "server.key", passwords, pw)


@dataclass
class TlsBroker:
    port: int
    pki: Pki
    log: Path

    def url(self, user: str, password: str | None = None, scheme: str = "mqtts") -> str:
        pw = self.pki.passwords[user] if password is None else password
        return f"{scheme}://{user}:{pw}@127.0.0.1:{self.port}"

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


@pytest.fixture
def tls_broker(pki: Pki, tmp_path: Path) -> Iterator[TlsBroker]:
    """A Mosquitto of this test's own: TLS only, no anonymous users, the example ACL."""
    assert MOSQUITTO is not None
    port = free_port()
    conf = tmp_path / "mosquitto.conf"
    conf.write_text(
        "\n".join(
            [
                f"listener {port} 127.0.0.1",
                f"cafile {pki.ca}",
                f"certfile {pki.cert}",
                f"keyfile {pki.key}",
                "allow_anonymous false",
                f"password_file {pki.password_file}",
                f"acl_file {ACL}",
                "persistence false",
                # Queues as Mosquitto ships them (max_queued_messages 1000): pmsim must not need
                # a broker tuned for it, as its embedded one is.
                # As root, Mosquitto would switch to its own user, who cannot read tmp_path.
                f"user {getpass.getuser()}",
                "log_dest stderr",
                "log_type error",
                "log_type warning",
                "",
            ]
        )
    )
    log = tmp_path / "mosquitto.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [MOSQUITTO, "-c", str(conf)], stdout=out, stderr=subprocess.STDOUT, cwd=tmp_path
        )
    broker = TlsBroker(port, pki, log)
    try:
        ctx = ssl.create_default_context(cafile=str(pki.ca))

        def handshake() -> bool:
            assert proc.poll() is None, broker.log_text()
            try:
                with (
                    socket.create_connection(("127.0.0.1", port), timeout=1) as raw,
                    ctx.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
                ):
                    tls.unwrap()  # a clean TLS goodbye: nothing in the broker's log
                    return True
            except OSError:
                return False

        assert wait_until(handshake), f"no TLS on {port}: {broker.log_text()}"
        yield broker
    finally:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


class Peer:
    """A plain paho client (MQTT 3.1.1) that keeps what it receives."""

    def __init__(self, client: mqtt.Client) -> None:
        self.client = client
        self.got: list[tuple[str, bytes]] = []
        self.disconnects = 0
        self.lock = threading.Lock()
        self._connected = threading.Event()
        self._subscribed = threading.Event()
        self.rc: Any = None
        client.on_message = self._on_message
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_subscribe = lambda *a: self._subscribed.set()

    @classmethod
    def plain(cls, port: int, name: str) -> Peer:
        peer = cls(mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"{name}-{port}"))
        peer.start(port)
        return peer

    @classmethod
    def tls(cls, broker: TlsBroker, user: str, name: str | None = None) -> Peer:
        c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=name or f"test-{user}")
        c.username_pw_set(user, broker.pki.passwords[user])
        c.tls_set(ca_certs=str(broker.pki.ca))
        peer = cls(c)
        peer.start(broker.port)
        return peer

    def start(self, port: int) -> None:
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        assert self._connected.wait(WAIT), "no CONNACK"
        assert not self.rc.is_failure, self.rc

    def _on_connect(self, _c: Any, _u: Any, _f: Any, rc: Any, _p: Any) -> None:
        self.rc = rc
        self._connected.set()

    def _on_disconnect(self, *_a: Any) -> None:
        self.disconnects += 1

    def _on_message(self, _c: Any, _u: Any, msg: mqtt.MQTTMessage) -> None:
        with self.lock:
            self.got.append((msg.topic, bytes(msg.payload)))

    def subscribe(self, *topics: str) -> None:
        self._subscribed.clear()
        self.client.subscribe([(t, 1) for t in topics])
        assert self._subscribed.wait(WAIT), "no SUBACK"

    def send(self, topic: str, payload: bytes | str) -> None:
        self.client.publish(topic, payload, qos=1).wait_for_publish(WAIT)

    def topics(self) -> list[str]:
        with self.lock:
            return [t for t, _ in self.got]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def test_the_example_acl_loads_without_warnings(tls_broker: TlsBroker) -> None:
    log = tls_broker.log_text().splitlines()
    # Mosquitto's one complaint when the tests run as root is not about the configuration.
    assert [x for x in log if "should not be run as root" not in x] == [], log


def test_pmsim_run_over_tls_with_a_password_gives_the_in_process_alerts(
    tls_broker: TlsBroker, tmp_path: Path
) -> None:
    secret = tls_broker.pki.passwords["pmsim"]
    over, _ = run_tiny(tmp_path / "tls", tls_broker.url("pmsim"), "--ca", str(tls_broker.pki.ca))
    assert over.returncode == 0, over.stderr
    local, _ = run_tiny(tmp_path / "none", "none")
    assert local.returncode == 0, local.stderr
    info = json.loads((tmp_path / "tls" / "run.json").read_text())["broker"]
    assert info["kind"] == "external" and info["url"].startswith("mqtts://pmsim@127.0.0.1:")
    assert info["lost"] == 0 and info["dead_letters"] == {}
    assert info["published"] == info["acknowledged"] == info["consumed"] > 1000
    for name in ("alerts.jsonl", "workorders.jsonl", "events.jsonl"):
        assert (tmp_path / "tls" / name).read_bytes() == (tmp_path / "none" / name).read_bytes()
    assert (tmp_path / "tls" / "alerts.jsonl").read_bytes()  # there is something to compare
    # The password is in no output and in no file of the run folder.
    assert secret not in over.stdout + over.stderr
    for f in (tmp_path / "tls").rglob("*"):
        if f.is_file():
            assert secret.encode() not in f.read_bytes(), f


def one_error_line(done: subprocess.CompletedProcess[str]) -> str:
    """The run's single ``pmsim: error:`` line (other stderr lines are announcements)."""
    assert "Traceback" not in done.stderr, done.stderr
    errors = [x for x in done.stderr.splitlines() if x.startswith("pmsim: error:")]
    assert len(errors) == 1, done.stderr
    return errors[0]


def test_a_wrong_password_is_one_line_and_exit_2_within_seconds(
    tls_broker: TlsBroker, tmp_path: Path
) -> None:
    url = tls_broker.url("pmsim", "wrong-password")
    done, took = run_tiny(tmp_path / "r", url, "--ca", str(tls_broker.pki.ca), timeout=60)
    assert done.returncode == 2, done.stderr
    line = one_error_line(done)
    assert "not authori" in line.lower() and f"mqtts://pmsim@127.0.0.1:{tls_broker.port}" in line
    assert "wrong-password" not in done.stderr + done.stdout
    assert took < 15, took


def test_plain_mqtt_to_the_tls_port_is_one_line_and_exit_2_within_seconds(
    tls_broker: TlsBroker, tmp_path: Path
) -> None:
    done, took = run_tiny(tmp_path / "r", tls_broker.url("pmsim", scheme="mqtt"), timeout=60)
    assert done.returncode == 2, done.stderr
    line = one_error_line(done)
    assert f"mqtt://pmsim@127.0.0.1:{tls_broker.port}" in line and "mqtts://" in line, line
    assert took < 20, took


def test_a_tls_broker_is_not_trusted_without_its_ca(tls_broker: TlsBroker, tmp_path: Path) -> None:
    done, took = run_tiny(tmp_path / "r", tls_broker.url("pmsim"), timeout=60)
    assert done.returncode == 2, done.stderr
    assert "certificate verify failed" in one_error_line(done).lower()
    assert took < 15, took


def test_the_acl_keeps_each_gateway_to_its_own_estate(tls_broker: TlsBroker) -> None:
    watcher = Peer.tls(tls_broker, "pmsim")  # may read everything
    watcher.subscribe("pm/#")
    aibo4 = Peer.tls(tls_broker, "aibo4")
    huamei = Peer.tls(tls_broker, "huamei")
    dashboard = Peer.tls(tls_broker, "dashboard")
    try:
        aibo4.subscribe("pm/#")  # allowed to ask; the ACL lets nothing through to it
        denied = [
            (aibo4, "pm/dev/huamei/b01/ebike_blocker/d1"),  # another estate's device
            (aibo4, "pm/gw/huamei/status"),  # another estate's gateway status
            (aibo4, "pm/batch/huamei"),
            (aibo4, "pm/alerts/aibo4/ebike-in-elevator"),  # a gateway does not raise alerts
            (dashboard, "pm/alerts/aibo4/ebike-in-elevator"),  # read-only
            (dashboard, "pm/dev/aibo4/b01/ebike_blocker/d1"),
        ]
        allowed = [
            (aibo4, "pm/dev/aibo4/b01/ebike_blocker/d1"),
            (aibo4, "pm/gw/aibo4/status"),
            (aibo4, "pm/batch/aibo4"),
            (huamei, "pm/dev/huamei/b02/clutter_sensor/c7"),
        ]
        for peer, topic in denied + allowed:  # denied first: anything wrongly let through
            peer.send(topic, b"{}")  # would arrive before the allowed ones
        assert wait_until(lambda: len(watcher.got) >= len(allowed))
        time.sleep(0.3)
        assert watcher.topics() == [t for _, t in allowed]
        assert aibo4.topics() == []
    finally:
        for p in (watcher, aibo4, huamei, dashboard):
            p.close()


def start_serve(url: str, ca: Path, log: Path) -> subprocess.Popen[bytes]:
    argv = [sys.executable, "-m", "sim", "rules", "serve", "--broker", url, "--ca", str(ca)]
    argv += ["--client-id", f"rules-{uuid.uuid4().hex[:6]}"]
    with open(log, "wb") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT)
    if not wait_until(
        lambda: proc.poll() is not None or "pmsim rules serve:" in log.read_text(errors="replace"),
        30,
    ):
        stop(proc)
    assert proc.poll() is None, log.read_text(errors="replace")
    return proc


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def event(estate: str, t: float, seq: int, **kw: Any) -> tuple[str, bytes]:
    doc = {
        "schema_version": 1,
        "type": "heartbeat",
        "event_id": f"{estate}-lift:{seq}",
        "device_id": f"{estate}-lift",
        "device_kind": "ebike_blocker",
        "estate": estate,
        "building": "b01",
        "time": f"2026-03-02T{int(t // 3600):02d}:{int(t % 3600 // 60):02d}:00+08:00",
        "sim_seconds": t,
        "seq": seq,
    } | kw
    return f"pm/dev/{estate}/b01/ebike_blocker/{estate}-lift", json.dumps(doc).encode()


def test_rules_serve_under_the_acl_alerts_for_gateways_and_enforces_the_size_limit(
    tls_broker: TlsBroker, tmp_path: Path
) -> None:
    """``rules serve`` with the rules login: a gateway's e-bike makes an alert the dashboard sees;
    one forged for another estate is dropped by the broker; payloads over the intake's limit are
    dead-lettered as too_large, one of exactly the limit is not."""
    watcher = Peer.tls(tls_broker, "pmsim")
    watcher.subscribe("pm/deadletter")
    dashboard = Peer.tls(tls_broker, "dashboard")
    dashboard.subscribe("pm/alerts/#")
    aibo4 = Peer.tls(tls_broker, "aibo4")
    proc = start_serve(tls_broker.url("rules"), tls_broker.pki.ca, tmp_path / "serve.log")
    try:
        bike = {"type": "ebike_detected", "confidence": 0.95, "object_class": "ebike"}
        aibo4.send(*event("huamei", 64800.0, 0, **bike))  # forged: the broker drops it
        aibo4.send(*event("aibo4", 64800.0, 0, **bike))
        aibo4.send(*event("aibo4", 64900.0, 1))  # time moves on: the alert is released
        topic = event("aibo4", 0.0, 9)[0]
        aibo4.send(topic, b"x" * DEFAULT_MAX_PAYLOAD)  # at the limit: read, and not JSON
        aibo4.send(topic, b"x" * (DEFAULT_MAX_PAYLOAD + 1))
        assert wait_until(lambda: len(dashboard.got) >= 1 and len(watcher.got) >= 2, 30), (
            dashboard.got,
            watcher.got,
            (tmp_path / "serve.log").read_text(),
        )
        time.sleep(0.5)
        alerts = [json.loads(p) for _, p in dashboard.got]
        assert [(a["rule_id"], a["change"], a["labels"]["estate"]) for a in alerts] == [
            ("ebike-in-elevator", "firing", "aibo4")
        ]
        dead = [json.loads(p) for _, p in watcher.got]
        assert [(d["reason"], d["bytes"]) for d in dead] == [
            ("not_json", DEFAULT_MAX_PAYLOAD),
            ("too_large", DEFAULT_MAX_PAYLOAD + 1),
        ]
        assert dead[1]["detail"] == f"{DEFAULT_MAX_PAYLOAD + 1} bytes > {DEFAULT_MAX_PAYLOAD}"
        assert proc.poll() is None
    finally:
        stop(proc)
        for p in (watcher, dashboard, aibo4):
            p.close()
    out = (tmp_path / "serve.log").read_text()
    assert proc.returncode == 0, out
    assert "Traceback" not in out and tls_broker.pki.passwords["rules"] not in out
    assert "'too_large': 1" in out
