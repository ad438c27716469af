"""The embedded broker with passwords and an ACL made for the run (issue 14, finding 5):
``pmsim run --broker-auth`` and ``pmsim broker --auth``. A real Mosquitto on 127.0.0.1, a free
port and a topic prefix per test; every process and client started here is stopped."""

from __future__ import annotations

import json
import secrets
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from authpeers import ROOT, WAIT, Peer5, until

import sim.mqtt.broker
from sim.errors import BadInput
from sim.mqtt.broker import EmbeddedBroker, free_port
from sim.mqtt.brokerauth import ENGINE, WATCH, BrokerAuth, gateway_user, password_line
from sim.mqtt.client import connect
from sim.mqtt.url import parse_broker_url

TINY = ROOT / "seeds" / "tiny.yaml"
pytestmark = pytest.mark.skipif(
    sim.mqtt.broker._mosquitto_path() is None, reason="mosquitto is not installed"
)


def test_the_password_file_is_mosquittos_own_format(tmp_path: Path) -> None:
    """What ``mosquitto_passwd`` makes, byte for byte, for the same salt."""
    pw = tmp_path / "pw"
    cmd = ["mosquitto_passwd", "-b", "-c", str(pw), "alice", "s3cret"]
    subprocess.run(cmd, check=True, capture_output=True, timeout=30)
    theirs = pw.read_text().strip()
    salt = __import__("base64").b64decode(theirs.split("$")[3])
    assert password_line("alice", "s3cret", salt) == theirs


def test_anonymous_clients_are_refused_and_each_user_keeps_to_its_topics() -> None:
    prefix = f"pmtest-{uuid.uuid4().hex[:8]}"
    auth = BrokerAuth.generate(prefix, ("aibo4", "huamei"))
    peers: list[Peer5] = []
    with EmbeddedBroker("mosquitto", auth=auth) as b:
        try:
            with pytest.raises(BadInput, match=r"(?i)not authori"):
                connect(parse_broker_url(b.url), f"anonymous-{prefix}")
            wrong = Peer5(b.port, f"wrong-{prefix}", ("engine", "guessed"))
            peers.append(wrong)
            assert wrong.connack.is_failure

            def login(user: str) -> Peer5:
                name = f"{user}-{prefix}-{len(peers)}"
                peers.append(Peer5(b.port, name, (user, auth.passwords[user])))
                assert not peers[-1].connack.is_failure, peers[-1].connack
                return peers[-1]

            def attempt(user: str, topic: str) -> int:
                """The PUBACK's reason code (Mosquitto then drops a connection that was
                refused a publish: a new one each time)."""
                rc = login(user).send(topic, b'{"record":"alert","change":"firing"}')
                return int(rc.value)

            watcher = login(WATCH)
            watcher.subscribe(f"{prefix}/#")
            gw, alert = gateway_user("aibo4"), f"{prefix}/alerts/aibo4/falling-object"
            denied = [
                attempt(gw, alert),  # a device: no alerts
                attempt(gw, f"{prefix}/dev/huamei/b01/clutter_sensor/x"),  # another estate
                attempt(gw, f"{prefix}/workorders/aibo4"),
                attempt(WATCH, alert),  # watchers only read
            ]
            assert denied == [135] * 4  # not authorised
            assert login(gw).send(f"{prefix}/dev/aibo4/b01/clutter_sensor/x", b"mine").value == 0
            assert login(ENGINE).send(alert, b"real").value == 0
            until(lambda: len(watcher.received()) == 2, what="the two allowed messages")
            assert [p for _, p, _ in watcher.received()] == [b"mine", b"real"]
        finally:
            for peer in peers:
                peer.close()


def test_pmsim_run_with_broker_auth_gives_the_in_process_files(tmp_path: Path) -> None:
    key = tmp_path / "key"
    key.write_text(secrets.token_hex(32))
    runs = {}
    for name, extra in (
        ("auth", ["--broker", "embedded", "--broker-auth", "--sign-key-file", str(key)]),
        ("none", ["--broker", "none"]),
    ):
        args = ["run", str(TINY), "--days", "1", "--no-progress", "--out", str(tmp_path / name)]
        runs[name] = subprocess.run(
            [sys.executable, "-m", "sim", *args, *extra],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert runs[name].returncode == 0, runs[name].stderr
    for f in ("alerts.jsonl", "workorders.jsonl", "events.jsonl", "rankings.json"):
        assert (tmp_path / "auth" / f).read_bytes() == (tmp_path / "none" / f).read_bytes(), f
    info = json.loads((tmp_path / "auth" / "run.json").read_text())["broker"]
    assert info["auth"] == "password+acl" and info["signed"] == "hmac-sha256"
    assert info["url"].startswith("mqtt://engine@127.0.0.1:") and info["lost"] == 0
    assert info["dead_letters"] == {} and info["consumed"] == info["published"] > 1000
    announced = [x for x in runs["auth"].stderr.splitlines() if "credentials.json" in x]
    assert len(announced) == 1 and "user 'watch'" in announced[0], runs["auth"].stderr
    # The credentials went with the broker; no password is in the run folder.
    creds = Path(announced[0].split(" in ")[-1].split()[0])
    assert not creds.exists()


def test_pmsim_broker_auth_prints_where_the_credentials_are() -> None:
    port = free_port()
    cmd = [sys.executable, "-m", "sim", "broker", "--auth", "--estates", "aibo4", "--port"]
    proc = subprocess.Popen(
        [*cmd, str(port)], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        assert "credentials.json" in first and "no anonymous clients" in first, first
        creds_file = Path(first.split(" in ")[1].split()[0])
        assert oct(creds_file.stat().st_mode & 0o777) == "0o600"
        creds = json.loads(creds_file.read_text())
        assert sorted(creds) == ["engine", "gw-aibo4", "watch"]
        client = connect(parse_broker_url(creds["watch"]["url"]), "test-watch")
        client.disconnect()
        client.loop_stop()
        peer = Peer5(port, "anonymous", protocol=mqtt.MQTTv311)
        assert peer.connack.is_failure
        peer.close()
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.communicate(timeout=WAIT)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate(timeout=WAIT)
    assert proc.returncode == 0
    assert not creds_file.exists()
