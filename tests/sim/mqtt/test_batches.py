"""Batches of device events (``pmsim run --batch N``): decoded element by element, bad elements set
aside alone, the fast path agreeing with the step-by-step one, and a part-filled batch that still
goes out when no further event comes."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import paho.mqtt.client as mqtt
import pytest
from hostile import REASONS, hostile_payloads, valid_doc
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devices.events import (
    DeviceEvent,
    EbikeDetected,
    GatewayStatus,
    Heartbeat,
    batch_topic,
    event_bytes,
    event_from_python,
    event_json,
    topic_for,
)
from sim.mqtt.broker import EmbeddedBroker
from sim.mqtt.decode import _diagnose
from sim.mqtt.intake import DeadLetter, Intake, decode_batch, decode_payload
from sim.mqtt.transport import MqttTransport
from sim.mqtt.url import parse_broker_url

START = datetime(2026, 3, 2, tzinfo=ZoneInfo("Asia/Shanghai"))
BATCH_REASONS = REASONS | {"not_an_array", "oversized"}


def ev(cls: type, t: float, device: str, seq: int, estate: str = "e1", **kw: Any) -> DeviceEvent:
    return cls(  # type: ignore[no-any-return]
        event_id=f"{device}:{seq}",
        device_id=device,
        device_kind="ebike_blocker" if cls is not GatewayStatus else "gateway",
        estate=estate,
        building="b01" if cls is not GatewayStatus else "-",
        time=START + timedelta(seconds=t),
        sim_seconds=t,
        seq=seq,
        **kw,
    )


BIKE = ev(EbikeDetected, 100.0, "d1", 0, confidence=0.9, object_class="ebike")
BEATS = [ev(Heartbeat, 200.0 + i, "d2", i) for i in range(5)]


def array(*items: DeviceEvent | bytes) -> bytes:
    parts = [i if isinstance(i, bytes) else event_bytes(i) for i in items]
    return b"[" + b",".join(parts) + b"]"


def test_a_good_batch_is_its_events_in_order() -> None:
    got = decode_batch(batch_topic("e1"), array(BIKE, *BEATS))
    assert got == [BIKE, *BEATS]
    assert decode_batch(batch_topic("e1"), b"[]") == []


def test_a_bad_element_is_set_aside_alone_with_its_reason() -> None:
    doc = json.loads(event_json(BEATS[1]))
    bad = [
        (json.dumps({**doc, "schema_version": 2}).encode(), "schema_version"),
        (
            json.dumps({k: v for k, v in doc.items() if k != "schema_version"}).encode(),
            "schema_version",
        ),
        (json.dumps({**doc, "type": "teleport"}).encode(), "unknown_type"),
        (json.dumps({**doc, "seq": "one"}).encode(), "invalid"),
        (b"[1]", "not_an_object"),
        (event_bytes(ev(Heartbeat, 1.0, "x", 0, estate="e2")), "wrong_topic"),
        (
            event_bytes(ev(GatewayStatus, 1.0, "e1-gw", 0, status="online")),
            "wrong_topic",
        ),
    ]
    for payload, why in bad:
        got = decode_batch(batch_topic("e1"), array(BEATS[0], payload, BEATS[2]))
        assert got[0] == BEATS[0] and got[2] == BEATS[2], why
        assert isinstance(got[1], DeadLetter) and got[1].reason == why
        assert (got[1].head and got[1].head.startswith("{")) or why == "not_an_object"


@pytest.mark.parametrize(
    ("payload", "why"),
    [
        (b"\xff[]", "not_utf8"),
        (b"[{", "not_json"),
        (event_bytes(BIKE), "not_an_array"),
        (b"1", "not_an_array"),
        (b"[" + b",".join([b"1"] * 11) + b"]", "oversized"),
        (b"[" + b" " * 11 * 100 + b"]", "oversized"),
    ],
)
def test_a_batch_is_refused_whole(payload: bytes, why: str) -> None:
    with pytest.raises(DeadLetter) as info:
        decode_batch(batch_topic("e1"), payload, max_bytes=100, max_batch=10)
    assert info.value.reason == why


def test_the_size_limit_of_a_batch_scales_with_its_events() -> None:
    payload = array(*BEATS)
    per = len(payload) // len(BEATS) + 1
    assert len(decode_batch(batch_topic("e1"), payload, max_bytes=per, max_batch=5)) == 5
    with pytest.raises(DeadLetter, match="oversized"):
        decode_batch(batch_topic("e1"), payload, max_bytes=per, max_batch=4)


def slow(payload: bytes) -> str | DeviceEvent:
    try:
        return _diagnose(payload)
    except DeadLetter as bad:
        return bad.reason


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(hostile_payloads | st.builds(lambda d: json.dumps(d).encode(), st.just(valid_doc())))
def test_the_one_pass_decoder_agrees_with_the_step_by_step_one(payload: bytes) -> None:
    topic = "pm/dev/e1/b01/ebike_blocker/d1"
    try:
        fast: str | DeviceEvent = decode_payload(topic, payload, max_bytes=1 << 20)
    except DeadLetter as bad:
        fast = bad.reason
    if fast == "wrong_topic":
        return
    assert fast == slow(payload)


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(hostile_payloads | st.just(json.dumps(valid_doc()).encode()), max_size=6))
def test_hostile_batches_never_crash(elements: list[bytes]) -> None:
    payload = b"[" + b",".join(elements) + b"]"
    try:
        got = decode_batch(batch_topic("e1"), payload, max_bytes=4096)
    except DeadLetter as bad:
        assert bad.reason in BATCH_REASONS
        return
    for item in got:
        if isinstance(item, DeadLetter):
            assert item.reason in REASONS
        else:
            assert item.estate == "e1" and not isinstance(item, GatewayStatus)


# -- on a broker ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def broker() -> Iterator[EmbeddedBroker]:
    with EmbeddedBroker("mosquitto") as b:
        yield b


class Peer:
    """A plain paho client: collects what arrives on its topics, publishes by hand."""

    def __init__(self, port: int, topics: list[str]) -> None:
        self.got: list[tuple[str, bytes]] = []
        self.lock = threading.Lock()
        ready = threading.Event()
        self.c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
        self.c.on_message = self._on_message
        self.c.on_subscribe = lambda *a: ready.set()
        self.c.connect("127.0.0.1", port)
        self.c.loop_start()
        self.c.subscribe([(t, 1) for t in topics])
        assert ready.wait(10)

    def _on_message(self, _c: Any, _u: Any, msg: mqtt.MQTTMessage) -> None:
        with self.lock:
            self.got.append((msg.topic, bytes(msg.payload)))

    def wait(self, pred: Any, timeout: float = 20.0) -> list[tuple[str, bytes]]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if pred(self.got):
                    return list(self.got)
            time.sleep(0.02)
        with self.lock:
            raise AssertionError(f"timed out; got {self.got}")

    def close(self) -> None:
        self.c.disconnect()
        self.c.loop_stop()


def test_a_part_filled_batch_goes_out_after_the_linger(broker: EmbeddedBroker) -> None:
    p = f"b{uuid.uuid4().hex[:8]}"
    peer = Peer(broker.port, [f"{p}/#"])
    transport = MqttTransport(parse_broker_url(broker.url), prefix=p, batch=50, linger=0.2)
    try:
        online = ev(GatewayStatus, 0.0, "e1-gw", 0, status="online")
        for e in (online, BIKE, *BEATS[:2]):
            transport.publish(e)
        t0 = time.monotonic()
        got = peer.wait(lambda m: any(t.startswith(f"{p}/batch/") for t, _ in m), 5.0)
        assert time.monotonic() - t0 < 2.0  # no further event, no flush: the linger sent it
        assert [t for t, _ in got] == [topic_for(online, p), batch_topic("e1", p)]
        assert [event_from_python(d) for d in json.loads(got[1][1])] == [
            BIKE,
            *BEATS[:2],
        ]
        # A status goes after what the gateway batched before it, on its own topic.
        offline = ev(GatewayStatus, 300.0, "e1-gw", 1, status="offline")
        transport.publish(BEATS[2])
        transport.publish(offline)
        assert transport.flush(10)
        got = peer.wait(lambda m: len(m) >= 4)
        assert [t for t, _ in got[2:]] == [batch_topic("e1", p), topic_for(offline, p)]
        assert transport.published == 6 and transport.messages == 4 and transport.acked == 6
    finally:
        transport.close()
        peer.close()


def test_the_intake_feeds_a_batch_and_dead_letters_its_bad_element(broker: EmbeddedBroker) -> None:
    p = f"b{uuid.uuid4().hex[:8]}"
    fed: list[DeviceEvent] = []
    intake = Intake(
        parse_broker_url(broker.url), prefix=p, client_id=f"intake-{p}", on_event=fed.append
    )
    intake.start()
    peer = Peer(broker.port, [f"{p}/deadletter"])
    try:
        bad = json.dumps({**json.loads(event_json(BEATS[1])), "seq": -1}).encode()
        peer.c.publish(batch_topic("e1", p), array(BEATS[0], bad, BEATS[2]), qos=1)
        got = peer.wait(lambda m: len(m) >= 1)
        letter = json.loads(got[0][1])
        assert letter["reason"] == "invalid" and letter["index"] == 1
        assert letter["topic"] == batch_topic("e1", p) and '"d2:1"' in letter["head"]
        deadline = time.monotonic() + 5
        while len(fed) < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert fed == [BEATS[0], BEATS[2]] and intake.dead == {"invalid": 1}
    finally:
        intake.stop()
        peer.close()


def test_rules_serve_takes_batches(broker: EmbeddedBroker) -> None:
    p = f"b{uuid.uuid4().hex[:8]}"
    peer = Peer(broker.port, [f"{p}/alerts/#"])
    argv = [sys.executable, "-m", "sim", "rules", "serve", "--broker", broker.url]
    argv += ["--prefix", p, "--client-id", f"serve-{p}"]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert proc.stdout is not None
        assert "pmsim rules serve:" in proc.stdout.readline()
        bike = ev(EbikeDetected, 64800.0, "d1", 0, confidence=0.95, object_class="ebike")
        later = ev(Heartbeat, 64900.0, "d1", 1)  # event time moves on: the alert fires
        peer.c.publish(batch_topic("e1", p), array(bike, later), qos=1).wait_for_publish(10)
        got = peer.wait(lambda m: len(m) >= 1)
        alert = json.loads(got[0][1])
        assert (alert["rule_id"], alert["change"]) == ("ebike-in-elevator", "firing")
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.communicate(timeout=15)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(5)
        peer.close()
