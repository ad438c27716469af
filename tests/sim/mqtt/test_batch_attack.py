"""Issue 14, finding 2: four ~15 MB ``pm/batch/...`` messages of zeros on a broker without a packet
limit must neither blow up ``pmsim rules serve``'s memory nor stall its intake.

A real Mosquitto (its packet limit raised to 64 MiB, as a broker "without a packet limit" would
let them through), a real ``pmsim rules serve`` in its own process. The four batches are refused
whole as ``oversized`` before anything is built from them; the 1,000 valid events behind them are
all consumed within a bounded time, and the service's peak RSS (VmHWM) stays under the ceiling the
README states (``INTAKE_RSS_CEILING_MB``).
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from devices.events import parse_event, topic_for
from sim.mqtt.broker import EmbeddedBroker
from sim.mqtt.carrier import Link
from sim.mqtt.intake import INTAKE_RSS_CEILING_MB
from sim.replay import run_traffic
from sim.runner import run_to_folder
from sim.world.scenario import load_scenario

ROOT = Path(__file__).resolve().parents[3]
TINY = ROOT / "seeds" / "tiny.yaml"
WAIT = 30.0
CONSUME_WITHIN = 60.0  # seconds for the attack plus 1,000 valid events to be through
ZEROS = 7_500_000  # elements of each hostile batch: "[0,0,...,0]" is 15 MB


def until(cond: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(0.05)


class Letters:
    """Collects the service's dead letters."""

    def __init__(self, port: int, prefix: str) -> None:
        self.got: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        ready = threading.Event()
        self.c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"{prefix}-letters")
        self.c.on_message = self._on_message
        self.c.on_subscribe = lambda *a: ready.set()
        self.c.connect("127.0.0.1", port)
        self.c.loop_start()
        self.c.subscribe(f"{prefix}/deadletter", qos=1)
        assert ready.wait(WAIT), "no SUBACK"

    def _on_message(self, _c: Any, _u: Any, msg: mqtt.MQTTMessage) -> None:
        with self.lock:
            self.got.append(json.loads(msg.payload))

    def reasons(self) -> list[str]:
        with self.lock:
            return [d["reason"] for d in self.got]

    def close(self) -> None:
        self.c.disconnect()
        self.c.loop_stop()


def status(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise AssertionError(f"no {field} for {pid}")


@pytest.fixture(scope="module")
def valid(tmp_path_factory: pytest.TempPathFactory) -> list[bytes]:
    out = tmp_path_factory.mktemp("attack") / "run"
    run_to_folder(load_scenario(TINY), out, days=2, seed=5, link=Link())
    lines = list(run_traffic(out))
    assert len(lines) >= 1000
    return lines[:1000]


@pytest.fixture
def big_broker() -> Iterator[EmbeddedBroker]:
    with EmbeddedBroker("mosquitto", max_packet_bytes=64 << 20) as b:
        yield b


def test_four_15mb_batches_neither_blow_up_nor_stall_rules_serve(
    big_broker: EmbeddedBroker, valid: list[bytes], tmp_path: Path
) -> None:
    p = f"ba{uuid.uuid4().hex[:8]}"
    log = tmp_path / "serve.log"
    argv = [sys.executable, "-m", "sim", "rules", "serve", "--broker", big_broker.url]
    argv += ["--prefix", p, "--client-id", f"{p}-serve"]
    letters = Letters(big_broker.port, p)
    pub = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"{p}-pub")
    pub.max_inflight_messages_set(100)
    pub.max_queued_messages_set(0)
    pub.connect("127.0.0.1", big_broker.port)
    pub.loop_start()
    with open(log, "wb") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT)
    try:
        until(lambda: "Ctrl-C" in log.read_text(), WAIT, "the banner")
        zeros = b"[" + b"0," * (ZEROS - 1) + b"0]"
        assert 14_000_000 < len(zeros) < 16 * 1024 * 1024  # under the old 16 MB cap
        t0 = time.monotonic()
        infos = [pub.publish(f"{p}/batch/e1", zeros, qos=1) for _ in range(4)]
        del zeros
        for line in valid:
            infos.append(pub.publish(topic_for(parse_event(line), p), line, qos=1))
        end = f"{p}/dev/e1/b01/ebike_blocker/end"
        infos.append(pub.publish(end, b"the end", qos=1))  # dead-lettered after the 1,000
        for info in infos:
            info.wait_for_publish(WAIT)
        until(lambda: len(letters.reasons()) >= 5, CONSUME_WITHIN, f"5 dead letters ({log})")
        took = time.monotonic() - t0
        peak_kb = status(proc.pid, "VmHWM")
        assert proc.poll() is None
        proc.send_signal(signal.SIGINT)
        proc.wait(WAIT)
        summary = next(x for x in log.read_text().splitlines() if "stopped;" in x)
        print(f"attack + 1,000 events through in {took:.1f} s; peak RSS {peak_kb / 1024:.0f} MB")
        print(summary)
        assert letters.reasons() == ["oversized"] * 4 + ["not_json"], letters.reasons()
        assert "'consumed': 1000" in summary, summary
        assert peak_kb < INTAKE_RSS_CEILING_MB * 1024, f"peak RSS {peak_kb} kB"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(WAIT)
        pub.disconnect()
        pub.loop_stop()
        letters.close()
