"""A broker of pmsim's own, so an MQTT run needs no set-up and shares nothing with other runs.

Mosquitto when it is installed (fast, and the broker real deployments use), else amqtt in a child
Python process (``sim.mqtt.amqtt_broker``; ``pip install 'pmsim[broker]'``). Either way it listens on
127.0.0.1 only, on a port of its own, and is stopped - never left behind - when the run ends.
"""

from __future__ import annotations

import atexit
import contextlib
import importlib.metadata
import importlib.util
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from types import FrameType, TracebackType
from typing import Literal, cast, get_args

from sim.mqtt.brokerauth import ENGINE, BrokerAuth
from sim.mqtt.mosquittoconf import AUTOSAVE_SECONDS, HOST, mosquitto_conf

__all__ = [
    "AUTOSAVE_SECONDS",
    "BrokerError",
    "BrokerKind",
    "EmbeddedBroker",
    "free_port",
    "mosquitto_conf",
    "serve_forever",
]

BrokerKind = Literal["auto", "mosquitto", "amqtt"]

START_TIMEOUT = 10.0  # seconds for the broker to answer a CONNECT
POLL_STEP = 0.05
STOP_TIMEOUT = 5.0  # seconds between SIGTERM and SIGKILL
NO_BROKER = (
    "no MQTT broker available: install mosquitto (apt-get install mosquitto) "
    "or pip install 'pmsim[broker]'"
)


class BrokerError(Exception):
    """The broker cannot be had. ``str()`` is the one line shown to the user."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now (the OS picks it; we release it for the broker)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        port: int = s.getsockname()[1]
        return port


def _mosquitto_path() -> str | None:
    """``mosquitto`` on PATH, or in the sbin folders PATH often lacks for non-root users."""
    return shutil.which("mosquitto") or shutil.which(
        "mosquitto", path=os.pathsep.join(["/usr/sbin", "/usr/local/sbin"])
    )


def _amqtt_available() -> bool:
    return importlib.util.find_spec("amqtt") is not None


def _port_in_use(port: int) -> bool:
    """Whether something listens on 127.0.0.1:PORT (SO_REUSEADDR, as brokers use, so TIME_WAIT is no bar)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((HOST, port))
        except OSError:
            return True
        return False


def _mqtt_connack(port: int, timeout: float, login: tuple[str, str] | None = None) -> bool:
    """One MQTT 3.1.1 CONNECT answered by CONNACK 0: the broker serves, not merely listens."""
    client_id = f"pmsim-probe-{os.getpid()}-{time.monotonic_ns() % 1_000_000}".encode()
    # protocol name "MQTT", level 4, clean session, keep-alive 10 s; payload: the client id
    body = b"\x00\x04MQTT\x04\x02\x00\x0a" + len(client_id).to_bytes(2, "big") + client_id
    if login is not None:  # user name and password flags, and both after the client id
        body = body[:7] + b"\xc2" + body[8:]
        for part in (login[0].encode(), login[1].encode()):
            body += len(part).to_bytes(2, "big") + part
    try:
        with socket.create_connection((HOST, port), timeout=timeout) as s:
            s.sendall(bytes([0x10, len(body)]) + body)
            ack = b""
            while len(ack) < 4:
                chunk = s.recv(4 - len(ack))
                if not chunk:
                    return False
                ack += chunk
            if ack[0] != 0x20 or ack[1] != 2 or ack[3] != 0:
                return False
            s.sendall(b"\xe0\x00")  # DISCONNECT: a clean goodbye, no warning in the broker's log
            return True
    except OSError:
        return False


# Mosquitto's time stamps (seconds, or log_timestamp_format): noise in a one-line error.
_LOG_STAMP = re.compile(r"^(\d{9,}|\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d): ")

_running: set[EmbeddedBroker] = set()


@atexit.register
def _stop_all() -> None:
    """Stop any broker its owner forgot, so the interpreter never leaves one running."""
    for broker in list(_running):
        broker.stop()


class EmbeddedBroker:
    """A broker of our own on 127.0.0.1 for the length of a run (or of `pmsim broker`)."""

    host = HOST

    def __init__(
        self,
        kind: BrokerKind = "auto",
        port: int | None = None,
        workdir: Path | None = None,
        max_packet_bytes: int = 1_048_576,
        persist: Path | None = None,
        auth: BrokerAuth | None = None,
        autosave: int = AUTOSAVE_SECONDS,
    ) -> None:
        if kind not in get_args(BrokerKind):
            raise BrokerError(f"unknown broker kind {kind!r}: use auto, mosquitto or amqtt")
        self._mosquitto = _mosquitto_path()
        self.kind: str = kind if kind != "auto" else ("mosquitto" if self._mosquitto else "amqtt")
        if persist is not None and self.kind != "mosquitto":
            raise BrokerError("a persistent broker (sessions kept across restarts) needs mosquitto")
        if auth is not None and self.kind != "mosquitto":
            raise BrokerError("a broker with passwords and an ACL needs mosquitto")
        self.auth = auth  # users, passwords and ACL (sim.mqtt.brokerauth), written at start
        # Mosquitto's database folder, kept across stop/start (absolute: it runs elsewhere)
        self.persist = persist.resolve() if persist is not None else None
        self.port: int = port if port is not None else free_port()
        self.max_packet_bytes = max_packet_bytes
        self.autosave = autosave
        self._workdir = workdir
        self._dir: Path | None = None  # where the config and log live while running
        self._tmpdir = False  # whether _dir is ours to remove
        self._proc: subprocess.Popen[bytes] | None = None
        self._version: str | None = None

    @property
    def url(self) -> str:
        return f"mqtt://{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        """Whether the broker process is alive (it can die under us, e.g. in a fault test)."""
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def version(self) -> str:
        if self._version is None:
            self._version = "?"
            if self.kind == "amqtt":
                with contextlib.suppress(importlib.metadata.PackageNotFoundError):
                    self._version = importlib.metadata.version("amqtt")
            elif self._mosquitto:
                try:
                    out = subprocess.run(
                        [self._mosquitto, "-h"], capture_output=True, text=True, timeout=5
                    ).stdout
                except (OSError, subprocess.TimeoutExpired):
                    out = ""
                m = re.search(r"mosquitto version (\S+)", out)
                if m:
                    self._version = m.group(1)
        return self._version

    def describe(self) -> str:
        return f"{self.kind} {self.version()} on {self.url}"

    def last_log_line(self) -> str:
        """The broker's last line of output (its stderr), for error messages."""
        if self._dir is None:
            return ""
        try:
            lines = (self._dir / "broker.log").read_text(errors="replace").splitlines()
        except OSError:
            return ""
        for line in reversed(lines):
            line = _LOG_STAMP.sub("", line.strip())
            if line and not line.startswith("Error found at"):  # Mosquitto's trailer to its reason
                return line
        return ""

    def _command(self, folder: Path) -> list[str]:
        if self.kind == "mosquitto":
            if not self._mosquitto:
                raise BrokerError(
                    NO_BROKER
                    if not _amqtt_available()
                    else "mosquitto not found: install it (apt-get install mosquitto) or use amqtt"
                )
            conf = folder / "mosquitto.conf"
            if self.persist is not None:
                self.persist.mkdir(parents=True, exist_ok=True)
            files = self.auth.write(folder, HOST, self.port) if self.auth is not None else None
            conf.write_text(
                mosquitto_conf(self.port, self.max_packet_bytes, self.persist, files, self.autosave)
            )
            return [self._mosquitto, "-c", str(conf)]
        if not _amqtt_available():
            raise BrokerError(
                NO_BROKER if not self._mosquitto else "amqtt is not installed: pip install amqtt"
            )
        return [
            sys.executable,
            "-m",
            "sim.mqtt.amqtt_broker",
            "--port",
            str(self.port),
            "--max-packet-bytes",
            str(self.max_packet_bytes),
        ]

    def start(self) -> EmbeddedBroker:
        """Spawn the broker and return once it answers an MQTT CONNECT (within 10 s), or raise."""
        if self.running:
            return self
        if _port_in_use(self.port):
            raise BrokerError(f"cannot start {self.kind}: port {self.port} on {HOST} is in use")
        if self._workdir is not None:
            self._workdir.mkdir(parents=True, exist_ok=True)
            self._dir, self._tmpdir = self._workdir, False
        else:
            self._dir, self._tmpdir = Path(tempfile.mkdtemp(prefix="pmsim-broker-")), True
        try:
            cmd = self._command(self._dir)
            # Output to a file, not a pipe: nobody reads a pipe, and a full one would stall the broker.
            with open(self._dir / "broker.log", "wb") as log:
                self._proc = subprocess.Popen(
                    cmd,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    cwd=self._dir,
                    start_new_session=True,  # Ctrl-C reaches us, and we stop the broker in order
                )
        except BrokerError:
            self.stop()
            raise
        except OSError as exc:
            self.stop()
            raise BrokerError(f"cannot run {self.kind}: {exc}") from exc
        _running.add(self)
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if self._proc.poll() is not None:
                self._fail(f"{self.kind} exited with status {self._proc.returncode} at start-up")
            wait = max(0.1, min(1.0, deadline - time.monotonic()))
            login = (ENGINE, self.auth.passwords[ENGINE]) if self.auth is not None else None
            if _mqtt_connack(self.port, wait, login):
                if self._proc.poll() is None:
                    return self
                continue  # someone else answered on our port; the next turn reports our exit
            if time.monotonic() >= deadline:
                self._fail(
                    f"{self.kind} did not answer MQTT on {self.url} within {START_TIMEOUT:g} s"
                )
            time.sleep(POLL_STEP)

    def _fail(self, what: str) -> None:
        last = self.last_log_line()
        self.stop()
        raise BrokerError(f"{what}: {last}" if last else what)

    def stop(self, kill: bool = False) -> None:
        """Terminate (SIGTERM, 5 s, then SIGKILL) and clean up; safe to call any number of times.
        ``kill``: SIGKILL at once, as a crash or a power cut would (no save, no goodbye)."""
        proc, self._proc = self._proc, None
        _running.discard(self)
        if proc is not None and proc.poll() is None:
            proc.kill() if kill else proc.terminate()
            try:
                proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(STOP_TIMEOUT)
        if self._dir is not None and self._tmpdir:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None

    def kill(self) -> None:
        self.stop(kill=True)

    def restart(self) -> None:
        """Stop and start again on the same port: clients see the broker go away and come back."""
        self.stop()
        self.start()

    def __enter__(self) -> EmbeddedBroker:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def serve_forever(
    kind: str, port: int | None, auth: BrokerAuth | None = None, persist: Path | None = None
) -> int:
    """`pmsim broker`: a broker for other tools until Ctrl-C or SIGTERM. 0 on a stop, 1 on failure."""
    try:
        if kind not in get_args(BrokerKind):
            raise BrokerError(f"unknown broker kind {kind!r}: use auto, mosquitto or amqtt")
        broker = EmbeddedBroker(cast(BrokerKind, kind), port, auth=auth, persist=persist)
        broker.start()
    except BrokerError as exc:
        print(f"pmsim broker: error: {exc}", file=sys.stderr)
        return 1
    main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _interrupt) if main_thread else None
    try:
        if auth is not None and auth.folder is not None:
            print(
                f"pmsim broker: users and passwords in {auth.folder / 'credentials.json'} "
                "(engine, watch read-only, gw-ESTATE per gateway); no anonymous clients",
                flush=True,
            )
        print(f"pmsim broker: {broker.describe()} (Ctrl-C to stop)", flush=True)
        while broker.running:
            time.sleep(0.2)
        last = broker.last_log_line()
        print(
            f"pmsim broker: error: the broker exited{': ' + last if last else ''}", file=sys.stderr
        )
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        broker.stop()
        if main_thread:
            signal.signal(signal.SIGTERM, previous)
