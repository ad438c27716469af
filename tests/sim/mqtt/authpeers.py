"""MQTT 5 peers and a ``pmsim watch`` process for the authenticity tests (a plain module that
the tests import by name, as ``hostile``). Every wait is bounded; every peer and process is
stopped by its test."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

__all__ = ["ROOT", "WAIT", "Peer5", "WatchProcess", "until"]

ROOT = Path(__file__).resolve().parents[3]
WAIT = 30.0  # the bound on any single wait


def until(cond: Callable[[], bool], timeout: float = WAIT, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(0.02)


class Peer5:
    """A paho client (MQTT 5 unless told otherwise) that keeps what it receives, with the
    message's properties, and the PUBACK reason code of what it publishes."""

    def __init__(
        self,
        port: int,
        name: str,
        user: tuple[str, str] | None = None,
        protocol: int = mqtt.MQTTv5,
    ) -> None:
        self.c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=name, protocol=protocol)
        self.c.max_inflight_messages_set(20)  # the embedded broker's receive maximum
        if user is not None:
            self.c.username_pw_set(*user)
        self.got: list[tuple[str, bytes, Any]] = []
        self.acks: dict[int, Any] = {}
        self.lock = threading.Lock()
        self.connack: Any = None
        connected, self._subscribed = threading.Event(), threading.Event()

        def on_connect(_c: Any, _u: Any, _f: Any, rc: Any, _p: Any) -> None:
            self.connack = rc
            connected.set()

        def on_message(_c: Any, _u: Any, msg: mqtt.MQTTMessage) -> None:
            with self.lock:
                self.got.append((msg.topic, bytes(msg.payload), msg.properties))

        def on_publish(_c: Any, _u: Any, mid: int, rc: Any, _p: Any) -> None:
            with self.lock:
                self.acks[mid] = rc

        self.c.on_connect = on_connect
        self.c.on_message = on_message
        self.c.on_publish = on_publish
        self.c.on_subscribe = lambda *a: self._subscribed.set()
        self.c.connect("127.0.0.1", port)
        self.c.loop_start()
        assert connected.wait(WAIT), "no CONNACK"

    def subscribe(self, *topics: str) -> None:
        self._subscribed.clear()
        self.c.subscribe([(t, 1) for t in topics])
        assert self._subscribed.wait(WAIT), "no SUBACK"

    def send(self, topic: str, payload: bytes | str, properties: Any = None) -> Any:
        """Publish at QoS 1; the PUBACK's reason code (MQTT 5) or its absence of one."""
        info = self.c.publish(topic, payload, qos=1, properties=properties)
        info.wait_for_publish(WAIT)
        until(lambda: info.mid in self.acks, what="PUBACK")
        return self.acks[info.mid]

    def received(self, prefix: str = "") -> list[tuple[str, bytes, Any]]:
        with self.lock:
            return [m for m in self.got if m[0].startswith(prefix)]

    def close(self) -> None:
        self.c.disconnect()
        self.c.loop_stop()


class WatchProcess:
    """``python -m sim watch`` as a user runs it; its stdout (bytes, as the terminal gets them)
    and stderr are read by threads."""

    def __init__(self, url: str, *args: str) -> None:
        cmd = [sys.executable, "-m", "sim", "watch", "--broker", url, "--timeout", "120", *args]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT)
        self.lines: list[bytes] = []
        self.err = b""
        self.lock = threading.Lock()
        self._readers = [
            threading.Thread(target=self._read, daemon=True),
            threading.Thread(target=self._read_err, daemon=True),
        ]
        for t in self._readers:
            t.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with self.lock:
                self.lines.append(line)

    def _read_err(self) -> None:
        assert self.proc.stderr is not None
        self.err = self.proc.stderr.read()

    def output(self) -> list[bytes]:
        with self.lock:
            return list(self.lines)

    def stop(self) -> tuple[int, str]:
        """Ctrl-C; the exit code and stderr."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(WAIT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(WAIT)
        for t in self._readers:
            t.join(WAIT)
        return self.proc.returncode, self.err.decode("utf-8", "replace")
