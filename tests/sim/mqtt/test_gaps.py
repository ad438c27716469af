"""Issue 14, finding 3 (the service's side): gaps in the per-device sequence numbers it receives are
noticed - counted, published on ``{prefix}/health/gaps`` and summed up when ``rules serve`` stops.

A duplicate (a number seen before) is no gap; a number that arrives late, but within the allowed
lateness of the device's clock, is no gap either; one still missing past it, or at the stop, is.
"""

from __future__ import annotations

import json
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
from hostile import valid_doc
from paho.mqtt.enums import CallbackAPIVersion

from sim.mqtt.broker import EmbeddedBroker
from sim.mqtt.gaps import Gap, GapTracker

ROOT = Path(__file__).resolve().parents[3]
WAIT = 30.0


def tracked(events: list[tuple[str, int, float]], lateness: float = 60.0) -> list[Gap]:
    got: list[Gap] = []
    t = GapTracker(lateness, got.append)
    for device, seq, stamp in events:
        t.see(device, seq, stamp)
    t.finish()
    assert (t.gaps, t.missing) == (len(got), sum(g.missing for g in got))
    return got


def test_a_stream_without_holes_has_no_gaps() -> None:
    assert tracked([("d1", i, 10.0 * i) for i in range(100)]) == []


def test_duplicates_and_reordering_within_the_lateness_are_not_gaps() -> None:
    events = [("d1", 0, 0.0), ("d1", 2, 20.0), ("d1", 1, 10.0), ("d1", 1, 10.0), ("d1", 0, 0.0)]
    events += [("d1", 5, 50.0), ("d1", 3, 30.0), ("d1", 4, 40.0), ("d1", 6, 200.0)]
    assert tracked(events) == []


def test_a_number_still_missing_past_the_lateness_is_a_gap_at_once() -> None:
    got: list[Gap] = []
    t = GapTracker(60.0, got.append)
    for seq, stamp in [(0, 0.0), (1, 10.0), (4, 40.0), (5, 50.0)]:
        t.see("d1", seq, stamp)
    assert got == []  # 2 and 3 may still come
    t.see("d1", 6, 101.0)  # the device's clock is more than 60 s past the hole
    assert got == [Gap("d1", 2, 3, 40.0)] and got[0].missing == 2
    t.see("d1", 2, 20.0)  # too late to undo a report: counted once, not again
    t.finish()
    assert (t.gaps, t.missing) == (1, 2)


def test_what_is_missing_at_the_end_is_a_gap_and_devices_are_apart() -> None:
    events = [("d1", 0, 0.0), ("d2", 7, 0.0), ("d1", 3, 5.0), ("d2", 8, 5.0), ("d1", 1, 6.0)]
    assert tracked(events) == [Gap("d1", 2, 2, 5.0)]


def test_numbers_before_the_first_one_seen_are_not_gaps() -> None:
    # a consumer started mid-stream: 0..41 were before its time
    assert tracked([("d1", 42, 0.0), ("d1", 43, 1.0), ("d1", 10, 2.0)]) == []


def test_a_hostile_device_cannot_make_the_tracker_hold_unbounded_state() -> None:
    got: list[Gap] = []
    t = GapTracker(1e9, got.append)
    for i in range(5000):
        t.see("evil", 2 * i, 0.0)  # every other number missing: 4,999 open ranges
    assert t.gaps == 4999 - 1000 and len(got) == t.gaps  # the oldest reported past 1,000 open
    t.see("evil", 10**18, 0.0)  # one range, not 10**18 numbers
    t.finish()
    assert t.missing == 4999 + (10**18 - 9999)


# -- pmsim rules serve on a real broker ---------------------------------------------------------


def beat(device: str, seq: int, stamp: float) -> tuple[str, bytes]:
    doc = valid_doc("e1", device, stamp) | {"seq": seq, "event_id": f"{device}:{seq}"}
    return f"e1/b01/ebike_blocker/{device}", json.dumps(doc).encode()


@pytest.fixture
def broker() -> Iterator[EmbeddedBroker]:
    with EmbeddedBroker("mosquitto") as b:
        yield b


def test_rules_serve_reports_gaps_on_the_health_topic_and_at_stop(
    broker: EmbeddedBroker, tmp_path: Path
) -> None:
    p = f"g{uuid.uuid4().hex[:8]}"
    got: list[dict[str, Any]] = []
    lock = threading.Lock()
    ready = threading.Event()

    def on_message(_c: Any, _u: Any, msg: mqtt.MQTTMessage) -> None:
        with lock:
            got.append(json.loads(msg.payload))

    watch = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"{p}-watch")
    watch.on_message = on_message
    watch.on_subscribe = lambda *a: ready.set()
    watch.connect("127.0.0.1", broker.port)
    watch.loop_start()
    watch.subscribe(f"{p}/health/gaps", qos=1)
    pub = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"{p}-pub")
    pub.connect("127.0.0.1", broker.port)
    pub.loop_start()
    log = tmp_path / "serve.log"
    argv = [sys.executable, "-m", "sim", "rules", "serve", "--broker", broker.url]
    argv += ["--prefix", p, "--client-id", f"{p}-serve"]
    with open(log, "wb") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT)
    try:
        assert ready.wait(WAIT)
        deadline = time.monotonic() + WAIT
        while "Ctrl-C" not in log.read_text():
            assert time.monotonic() < deadline and proc.poll() is None, log.read_text()
            time.sleep(0.05)
        # d1 loses 3 and 4 for good; d2's 1 comes late but in time, its 2 is sent twice;
        # d3 loses 5, and the stop comes before its clock has moved past the lateness (60 s).
        stream = [("d1", 0, 0.0), ("d1", 1, 10.0), ("d1", 2, 20.0), ("d1", 5, 50.0)]
        stream += [("d2", 0, 0.0), ("d2", 2, 20.0), ("d2", 1, 10.0), ("d2", 2, 20.0)]
        stream += [("d3", 4, 0.0), ("d3", 6, 10.0), ("d1", 6, 200.0)]
        for device, seq, stamp in stream:
            topic, payload = beat(device, seq, stamp)
            pub.publish(f"{p}/dev/{topic}", payload, qos=1).wait_for_publish(WAIT)
        deadline = time.monotonic() + WAIT
        while not got:  # d1's gap is reported while the service runs
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
        with lock:
            assert got == [
                {
                    "device_id": "d1",
                    "first_seq": 3,
                    "last_seq": 4,
                    "missing": 2,
                    "after_sim_seconds": 50.0,
                }
            ]
        proc.send_signal(signal.SIGINT)
        assert proc.wait(WAIT) == 0
        lines = log.read_text().splitlines()
        assert (
            f"pmsim rules serve: sequence gaps: 2 gaps, 3 events missing (see {p}/health/gaps)"
            in lines
        ), lines
        deadline = time.monotonic() + WAIT
        while len(got) < 2:  # d3's, at the stop
            assert time.monotonic() < deadline, got
            time.sleep(0.05)
        with lock:
            assert [(g["device_id"], g["first_seq"], g["last_seq"]) for g in got][1:] == [
                ("d3", 5, 5)
            ]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(WAIT)
        for c in (watch, pub):
            c.disconnect()
            c.loop_stop()


def test_the_intake_of_pmsim_runs_engine_reports_gaps_at_its_end(broker: EmbeddedBroker) -> None:
    """``pmsim run``'s engine process uses the same intake: what is missing at the end is a gap
    (its count goes to run.json as ``sequence_gaps``)."""
    from sim.mqtt.intake import Intake
    from sim.mqtt.url import parse_broker_url

    p = f"gi{uuid.uuid4().hex[:8]}"
    fed: list[Any] = []
    gaps: list[Gap] = []
    intake = Intake(
        parse_broker_url(broker.url),
        prefix=p,
        client_id=f"{p}-intake",
        on_event=fed.append,
        lateness=60.0,
        on_gap=gaps.append,
    )
    intake.start()
    pub = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"{p}-pub")
    pub.connect("127.0.0.1", broker.port)
    pub.loop_start()
    try:
        for seq in (0, 1, 3, 1):
            topic, payload = beat("d1", seq, 10.0 * seq)
            pub.publish(f"{p}/dev/{topic}", payload, qos=1).wait_for_publish(WAIT)
        deadline = time.monotonic() + WAIT
        while len(fed) < 4:
            assert time.monotonic() < deadline, fed
            time.sleep(0.02)
        assert gaps == []  # 2 may still come
    finally:
        intake.stop()
        pub.disconnect()
        pub.loop_stop()
    assert gaps == [Gap("d1", 2, 2, 30.0)] and (intake.gaps.gaps, intake.gaps.missing) == (1, 1)
