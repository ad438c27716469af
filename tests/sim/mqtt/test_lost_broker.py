"""A broker killed in the middle of ``pmsim run`` (issue 14, finding 9): its own exit code (3, not
the 2 of bad input), a line that says the connection was lost, within seconds, and no run folder
left half-written."""

from __future__ import annotations

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
from paho.mqtt.enums import CallbackAPIVersion

from sim.mqtt.broker import EmbeddedBroker

ROOT = Path(__file__).resolve().parents[3]
TINY = ROOT / "seeds" / "tiny.yaml"


@pytest.fixture
def broker() -> Iterator[EmbeddedBroker]:
    b = EmbeddedBroker("mosquitto")  # a free port of its own
    try:
        yield b.start()
    finally:
        b.stop()


class Seen:
    """Counts the device messages of one prefix on the broker."""

    def __init__(self, port: int, prefix: str) -> None:
        self.n = 0
        self.lock = threading.Lock()
        self.c = mqtt.Client(CallbackAPIVersion.VERSION2)
        self.c.on_message = self._on_message
        self.c.connect("127.0.0.1", port)
        self.c.loop_start()
        self.c.subscribe(f"{prefix}/#", 0)

    def _on_message(self, *_a: Any) -> None:
        with self.lock:
            self.n += 1

    def wait(self, n: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if self.n >= n:
                    return True
            time.sleep(0.05)
        return False

    def close(self) -> None:
        self.c.disconnect()
        self.c.loop_stop()


@pytest.mark.parametrize(
    "pace",
    [
        ["--days", "200"],  # flat out: the simulation is waiting for acknowledgements
        ["--days", "2", "--speed", "600"],  # paced: it publishes now and then
    ],
    ids=["flat-out", "paced"],
)
def test_a_broker_killed_mid_run_is_exit_3_and_one_line_within_seconds(
    broker: EmbeddedBroker, tmp_path: Path, pace: list[str]
) -> None:
    p = f"lost{uuid.uuid4().hex[:8]}"
    seen = Seen(broker.port, p)
    out = tmp_path / "run"
    argv = [sys.executable, "-m", "sim", "run", str(TINY), *pace, "--broker", broker.url]
    argv += ["--prefix", p, "--out", str(out), "--no-progress"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )
    try:
        assert seen.wait(200, 60), "the run never got going"
        seen.close()
        assert broker.pid is not None
        os.kill(broker.pid, signal.SIGKILL)  # gone, no goodbye
        killed = time.monotonic()
        try:
            _, err = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            pytest.fail("pmsim run did not stop within 30 s of losing its broker")
        took = time.monotonic() - killed
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=10)
    assert proc.returncode == 3, err
    lines = [x for x in err.splitlines() if x.startswith("pmsim: error:")]
    assert len(lines) == 1 and "Traceback" not in err, err
    assert f"lost the connection to {broker.url} at " in lines[0], err
    print(f"stopped {took:.1f} s after the kill: {lines[0]}")
    assert took < 15.0, f"{took:.1f} s"
    assert not out.exists()
    assert [x.name for x in tmp_path.iterdir()] == []  # no staged folder left either
