"""Forged records (issue 14, finding 5): whoever can publish on the broker must not be able to
pass off an alert as pmsim's, close a work order with a forged ``staff_done``, or drive the
terminal of someone running ``pmsim watch``.

Against a real Mosquitto on 127.0.0.1 (a free port, a topic prefix per test); every process and
client started here is stopped.
"""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from authpeers import ROOT, WAIT, Peer5, WatchProcess, until

import sim.mqtt.broker
from devices.events import parse_event, topic_for
from sim.mqtt.broker import EmbeddedBroker
from sim.mqtt.outbox import Outbox, record_topic
from sim.mqtt.signing import Signer
from sim.mqtt.url import parse_broker_url
from sim.mqtt.watch import clean_line
from sim.replay import run_traffic
from sim.runner import run_to_folder
from sim.world.scenario import load_scenario

TINY = ROOT / "seeds" / "tiny.yaml"
pytestmark = pytest.mark.skipif(
    sim.mqtt.broker._mosquitto_path() is None, reason="mosquitto is not installed"
)


@pytest.fixture
def broker() -> Iterator[EmbeddedBroker]:
    b = EmbeddedBroker("mosquitto")
    try:
        yield b.start()
    finally:
        b.stop()


@pytest.fixture
def key(tmp_path: Path) -> tuple[Path, bytes]:
    """A key file as a user makes one (text, a newline at the end) and the key it holds."""
    text = secrets.token_hex(32)
    path = tmp_path / "sign.key"
    path.write_text(text + "\n")
    return path, text.encode()


@pytest.fixture
def started() -> Iterator[list[Any]]:
    things: list[Any] = []
    yield things
    for t in reversed(things):
        t.close() if hasattr(t, "close") else t.stop()


def alert(prefix: str, rule: str, change: str = "firing", **labels: str) -> tuple[str, str]:
    rec = {
        "record": "alert",
        "alert_id": f"{rule}/e1/b01/dev#1",
        "rule_id": rule,
        "change": change,
        "state": change,
        "severity": "warning",
        "time": "2026-03-02T11:43:46.664000+08:00",
        "sim_seconds": 42226.664,
        "labels": {"estate": "e1", "building": "b01", **labels},
        "workorder_id": None,
    }
    return record_topic(prefix, rec), json.dumps(rec, ensure_ascii=False)


def ping_until_seen(watch: WatchProcess, send: Any) -> None:
    """Send until the watcher prints (it says nothing when its subscription is in place)."""
    deadline = time.monotonic() + WAIT
    while not watch.output():
        assert watch.proc.poll() is None, watch.stop()
        assert time.monotonic() < deadline, "pmsim watch printed nothing"
        send()
        time.sleep(0.3)


def test_watch_with_the_key_marks_forged_and_unsigned_alerts_and_prints_real_ones(
    broker: EmbeddedBroker, key: tuple[Path, bytes], started: list[Any]
) -> None:
    prefix = f"pmtest-{uuid.uuid4().hex[:8]}"
    key_file, secret = key
    watch = WatchProcess(broker.url, "--prefix", prefix, "--sign-key-file", str(key_file))
    started.append(watch)
    real = Outbox(parse_broker_url(broker.url), f"engine-{prefix}", signer=Signer(secret))
    started.append(real)
    outsider = Peer5(broker.port, f"outsider-{prefix}", protocol=mqtt.MQTTv311)
    started.append(outsider)
    insider = Peer5(broker.port, f"other-key-{prefix}")  # MQTT 5, signs with a key of its own
    started.append(insider)

    ping_until_seen(watch, lambda: real.put(*alert(prefix, "ping", "resolved")))
    topic, payload = alert(prefix, "falling-object")
    outsider.send(topic, payload)  # no signature at all
    insider.send(topic, payload, Signer(b"another key, 32 bytes long......").properties(payload))
    tampered = payload.replace('"warning"', '"critical"')  # a real signature, other bytes
    insider.send(topic, tampered, Signer(secret).properties(payload))
    real.put(*alert(prefix, "ebike-in-elevator"))
    until(lambda: any(b"ebike-in-elevator" in x for x in watch.output()), what="the real alert")
    code, err = watch.stop()
    lines = [x.decode() for x in watch.output() if b"ping" not in x]
    assert code == 0, err
    assert [x.split()[0] for x in lines] == [
        "UNSIGNED",
        "FORGED",
        "FORGED",
        "2026-03-02T11:43:46.664000+08:00",
    ]
    assert "FIRING" in lines[-1] and "ebike-in-elevator" in lines[-1]
    assert "marked 2 FORGED, 1 UNSIGNED" in err, err


def test_watch_strips_escape_sequences_and_bidi_overrides_from_labels(
    broker: EmbeddedBroker, started: list[Any]
) -> None:
    """A label that clears the screen, sets the window title and reverses the text prints as
    plain characters (no key needed: the terminal is protected always)."""
    prefix = f"pmtest-{uuid.uuid4().hex[:8]}"
    watch = WatchProcess(broker.url, "--prefix", prefix)
    started.append(watch)
    outsider = Peer5(broker.port, f"outsider-{prefix}", protocol=mqtt.MQTTv311)
    started.append(outsider)
    hostile = alert(
        prefix,
        "falling-object",
        unit="u1\x1b[2J\x1b[H\x1b]0;pwned\x07\x9b31mRED\x00\x7f",
        note="\u202eevil\u2066x\u2069\nnext\rline",
    )
    ping_until_seen(watch, lambda: outsider.send(*hostile))
    watch.stop()
    out = b"".join(watch.output())
    for bad in (b"\x1b", b"\x07", b"\x00", b"\x7f", b"\r", "\u202e".encode(), "\x9b".encode()):
        assert bad not in out, (bad, out)
    line = out.decode().splitlines()[0]
    assert "unit=u1RED" in line and "note=evilxnextline" in line, line


def test_clean_line_leaves_ordinary_text_and_chinese_alone() -> None:
    text = "2026-03-02  FIRING  warning falling-object  estate=爱博四村 unit=3号楼-1201"
    assert clean_line(text) == text
    assert clean_line("a\x1b[38;5;196mb\x1bPq#0;2;0;0;0\x1b\\c\u200fd\u2028e") == "abcde"


def test_a_short_key_is_one_line_and_exit_2(tmp_path: Path) -> None:
    short = tmp_path / "k"
    short.write_text("secret\n")
    args = ["watch", "--broker", "mqtt://127.0.0.1:1", "--sign-key-file", str(short)]
    done = subprocess.run(
        [sys.executable, "-m", "sim", *args], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        f"pmsim: error: --sign-key-file {short}: the key is 6 bytes; at least 16 "
        "(e.g. head -c 32 /dev/urandom | base64 > KEYFILE)"
    ]


# -- rules serve: a forged staff_done ---------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("tiny") / "run"
    sc = load_scenario(TINY)
    run_to_folder(sc, out, days=1, seed=sc.seed)
    return out


def closing_staff_done(run: Path) -> tuple[list[bytes], int, str]:
    """The run's events, the index of a staff_done that closed a work order, and that order."""
    closed = {
        r["sim_seconds"]: r["workorder_id"]
        for r in map(json.loads, (run / "workorders.jsonl").open())
        if r["change"] == "closed" and r.get("reason") == "staff_done"
    }
    traffic = list(run_traffic(run))
    for i, line in enumerate(traffic):
        doc = json.loads(line)
        if doc["type"] == "staff_done" and doc["sim_seconds"] in closed:
            return traffic, i, closed[doc["sim_seconds"]]
    raise AssertionError("no work order closed by staff in the run")


def forge_staff_done(
    broker: EmbeddedBroker, run: Path, started: list[Any], key: tuple[Path, bytes] | None
) -> tuple[str, list[dict[str, Any]], list[dict[str, Any]], str]:
    """``rules serve`` (with ``key`` or without) fed the run's events as its devices and its
    (signing) property app sent them, except that the staff_done that closed a work order comes
    from outsiders: unsigned, and signed with a guessed key. Returns that work order's id, the
    work-order records and the dead letters the service published, and its last line."""
    from test_restarts import Serve

    prefix = f"pmtest-{uuid.uuid4().hex[:8]}"
    app = Signer(key[1] if key else secrets.token_bytes(32))  # the property app's key
    traffic, i, wo = closing_staff_done(run)
    seen = Peer5(broker.port, f"seen-{prefix}")
    started.append(seen)
    seen.subscribe(f"{prefix}/workorders/#", f"{prefix}/deadletter")
    argv = ["--prefix", prefix, "--rules", str(run / "rules.yaml"), "--client-id", prefix]
    serve = Serve(broker, argv + (["--sign-key-file", str(key[0])] if key else []))
    started.append(serve)
    gateway = Peer5(broker.port, f"gw-{prefix}")
    started.append(gateway)
    outsider = Peer5(broker.port, f"outsider-{prefix}", protocol=mqtt.MQTTv311)
    started.append(outsider)
    for n, line in enumerate(traffic):
        event = parse_event(line)
        topic = topic_for(event, prefix)
        if n == i:  # once the broker has everything before it (else it would come early)
            until(lambda: len(gateway.acks) == i, what="the broker's PUBACKs")
            outsider.send(topic, line)
            guessed = Signer(b"a guessed key, 32 bytes long....")
            gateway.send(topic, line, guessed.properties(line))
            continue
        props = app.properties(line) if event.device_kind == "staff_app" else None
        gateway.c.publish(topic, line, qos=1, properties=props)
    # The service takes messages in order: when this one is dead-lettered, all before it are in.
    gateway.send(f"{prefix}/dev/end/b01/x/y", b"the end")
    until(lambda: b"the end" in b"".join(p for _, p, _ in seen.received(f"{prefix}/deadletter")))
    time.sleep(1.0)  # the records of the last events, on the service's other connection
    assert serve.stop() == 0
    consumed = len(traffic) - (1 if key else 0)  # no key: a forgery took the real one's place
    assert f"'consumed': {consumed}" in serve.output[-1], serve.output[-1]
    records = [json.loads(p) for _, p, _ in seen.received(f"{prefix}/workorders/")]
    if key:  # everything the service published is signed, over the payload as it is
        assert all(app.check(p, pr) is None for _, p, pr in seen.received(f"{prefix}/workorders/"))
    dead = [json.loads(p) for _, p, _ in seen.received(f"{prefix}/deadletter")]
    return wo, [r for r in records if r["workorder_id"] == wo], dead, serve.output[-1]


def test_without_a_key_a_forged_staff_done_closes_a_work_order(
    broker: EmbeddedBroker, tiny_run: Path, started: list[Any]
) -> None:
    """The finding, as it stands without a key: an outsider's staff_done closes the order."""
    _wo, records, dead, _ = forge_staff_done(broker, tiny_run, started, None)
    assert [(r["change"], r.get("reason")) for r in records][-1] == ("closed", "staff_done")
    assert [d["reason"] for d in dead] == ["not_json"]  # only the end marker


def test_rules_serve_with_the_key_dead_letters_a_forged_staff_done(
    broker: EmbeddedBroker, key: tuple[Path, bytes], tiny_run: Path, started: list[Any]
) -> None:
    wo, records, dead, last = forge_staff_done(broker, tiny_run, started, key)
    changes = [(r["change"], r.get("reason")) for r in records]
    assert ("closed", "staff_done") not in changes, (wo, changes)
    assert ("acknowledged", None) in changes  # the app's own (signed) staff_arrived went in
    forged = [d for d in dead if d["reason"] != "not_json"]
    assert sorted(d["reason"] for d in forged) == ["bad_signature", "unsigned"]
    assert all('"staff_done"' in d["head"] and "/staff_app/" in d["topic"] for d in forged)
    assert "'bad_signature': 1" in last and "'unsigned': 1" in last, last
