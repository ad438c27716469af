"""Issue 14, finding 3 (the broker's side): a ``kill -9`` of the embedded Mosquitto keeps what it
acknowledged more than its loss window (two autosave periods, README) before the kill.

Mosquitto writes its database only on a clean stop and every ``autosave_interval`` seconds (1,800
by default): before, a kill -9 lost every queued message and every session made since the start.
"""

from __future__ import annotations

import threading
import time
import uuid
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from sim.commands.brokercrash import crash_bench
from sim.mqtt.broker import AUTOSAVE_SECONDS, EmbeddedBroker

WAIT = 30.0
EVENTS = 5000


def subscriber(port: int, client_id: str, got: list[bytes] | None) -> mqtt.Client:
    """A persistent-session subscriber; it subscribes only when ``got`` is None (the first
    time): afterwards only its session on the broker can bring it anything."""
    c = mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id=client_id,
        clean_session=False,
        protocol=mqtt.MQTTv311,
    )
    done = threading.Event()
    if got is None:
        c.on_subscribe = lambda *a: done.set()
    else:
        c.on_connect = lambda *a: done.set()
        c.on_message = lambda _c, _u, msg: got.append(bytes(msg.payload))
    c.connect("127.0.0.1", port)
    c.loop_start()
    if got is None:
        c.subscribe("crash/#", qos=1)
    assert done.wait(WAIT)
    return c


def test_what_mosquitto_acknowledged_before_its_last_save_survives_kill_9(tmp_path: Path) -> None:
    broker = EmbeddedBroker("mosquitto", persist=tmp_path / "db").start()
    cid = f"crash-{uuid.uuid4().hex[:8]}"
    clients: list[mqtt.Client] = []
    try:
        first = subscriber(broker.port, cid, None)
        first.disconnect()  # offline: the broker queues for its session
        first.loop_stop()
        pub = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"{cid}-pub")
        pub.max_queued_messages_set(0)
        pub.connect("127.0.0.1", broker.port)
        pub.loop_start()
        clients.append(pub)
        infos = [pub.publish(f"crash/{i}", b"%d" % i, qos=1) for i in range(EVENTS)]
        for info in infos:
            info.wait_for_publish(WAIT)  # every one acknowledged by the broker
        time.sleep(2 * AUTOSAVE_SECONDS + 1.5)  # past the loss window
        broker.kill()
        broker.start()
        got: list[bytes] = []
        clients.append(subscriber(broker.port, cid, got))
        deadline = time.monotonic() + WAIT
        while len(got) < EVENTS and time.monotonic() < deadline:
            time.sleep(0.05)
        assert sorted(int(x) for x in got) == list(range(EVENTS)), f"{len(got)} of {EVENTS}"
    finally:
        for c in clients:
            c.disconnect()
            c.loop_stop()
        broker.stop()


def test_the_crash_bench_counts_what_a_kill_loses(tmp_path: Path) -> None:
    doc: dict[str, Any] = crash_bench(EVENTS, 1, folder=tmp_path)
    assert doc["kills"] == 1 and doc["acknowledged"] == EVENTS
    assert doc["delivered"] + doc["lost"] == EVENTS
    assert doc["lost"] == sum(k["lost"] for k in doc["per_kill"]) + doc["lost_after_last_kill"]
    assert doc["worst_window_s"] <= 2 * AUTOSAVE_SECONDS + 5.0
