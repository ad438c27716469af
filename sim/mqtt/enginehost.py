"""The engine's side of a run over MQTT, in a process of its own.

Over a broker, one Python process that simulates, publishes, receives, decodes and runs the rules
shares one interpreter lock between the gateways' paho threads and the engine's, and cannot keep up
with a bare paho publisher -> broker -> subscriber pipe. So ``pmsim run`` starts the engine's side
in a child process: the subscriber (:class:`~sim.mqtt.intake.Intake`), the
:class:`~sim.mqtt.sequencer.Sequencer` that puts events back in publish order, the rules engine
writing ``alerts.jsonl`` and ``workorders.jsonl``, and the outbox that publishes its records.

The simulation tells the child, in batches over a pipe, which events it published in which order
(:class:`EngineProcess`); the child says how far it has got through two shared counters (events fed
to the engine, messages received), which is all the simulation's back-pressure needs. At the end the
simulation sends the run's end; the child waits for what is still on its way, runs the engine's
timers to the end and sends back its figures. Same events, same order, same engine: the records are
byte-identical to an in-process run.
"""

from __future__ import annotations

import contextlib
import json
import multiprocessing as mp
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.sharedctypes import Synchronized
from pathlib import Path
from typing import Any

from rules.engine import Engine
from rules.model import RuleFile
from rules.ruleset import RuleSet
from sim.errors import LOST_AFTER, BadInput, BrokerLost, lost_message
from sim.files.records import EngineOutcome, RecordWriter, finish_engine
from sim.mqtt.intake import Intake, SetAside
from sim.mqtt.outbox import Outbox, record_topic
from sim.mqtt.sequencer import Sequencer
from sim.mqtt.signing import Signer, staff_check
from sim.mqtt.url import BrokerURL

__all__ = ["EngineJob", "EngineProcess", "EngineReport"]

EXPECT_BATCH = 1024  # event ids per message on the pipe
EXPECT_LINGER = 0.02  # wall seconds an id may wait to be sent (a run under --speed is slow)
START_TIMEOUT = 60.0  # a spawned interpreter imports numpy, pydantic, paho...


@dataclass(frozen=True)
class EngineJob:
    """Everything the child needs (picklable)."""

    spec: RuleFile
    url: BrokerURL
    prefix: str
    client_id: str
    records_client_id: str
    clean: bool
    folder: Path  # alerts.jsonl and workorders.jsonl are written here
    hold_limit: int
    sign_key: bytes | None = None  # records go out signed; staff events must come signed


@dataclass(frozen=True)
class EngineReport:
    """What the child sends back at the end."""

    outcome: EngineOutcome
    fed: int
    duplicates: int
    lost: list[str]
    dead_letters: dict[str, int]
    gaps: int = 0  # ranges of per-device sequence numbers that never arrived (sim.mqtt.gaps)
    gap_events: int = 0  # events in them


def _child(
    job: EngineJob,
    conn: Connection,
    fed: Synchronized[int],
    got: Synchronized[int],
    down: Synchronized[float],
) -> None:
    """The child's main: serve until told the run's end, then report; any failure is reported."""
    try:
        _serve(job, conn, fed, got, down)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            conn.send(("error", _describe(exc)))
    finally:
        conn.close()


def _describe(exc: BaseException) -> str:
    if isinstance(exc, BadInput):
        return str(exc)
    return "".join(traceback.format_exception_only(type(exc), exc)).strip()


def _watch_link(client: Any, down: Synchronized[float]) -> None:
    """Keep ``down`` at the wall time the subscriber's connection dropped, 0 while it is up."""
    answered = client.on_connect

    def on_connect(c: Any, u: Any, f: Any, rc: Any, p: Any) -> None:
        if answered is not None:
            answered(c, u, f, rc, p)
        if not rc.is_failure:
            down.value = 0.0

    def on_disconnect(*_a: Any) -> None:
        if down.value == 0.0:
            down.value = time.time()

    client.on_connect = on_connect
    client.on_disconnect = on_disconnect


def _serve(
    job: EngineJob,
    conn: Connection,
    fed: Synchronized[int],
    got: Synchronized[int],
    down: Synchronized[float],
) -> None:

    ruleset = RuleSet(job.spec)
    engine = Engine(ruleset)
    with (
        open(job.folder / "alerts.jsonl", "w", encoding="utf-8", newline="\n") as fa,
        open(job.folder / "workorders.jsonl", "w", encoding="utf-8", newline="\n") as fw,
    ):
        writer = RecordWriter(engine, fa, fw)

        def feed(event: Any) -> None:
            writer("", event)
            fed.value += 1

        seq = Sequencer(feed, hold=True, hold_limit=job.hold_limit)

        aside: SetAside = []  # late events: dead-lettered by the intake

        def arrived(event: Any) -> SetAside:
            got.value = intake.received
            aside.clear()
            seq.arrived(event)
            return aside

        engine.clock.on_aside = lambda e, reason, detail: aside.append((e, reason, detail))

        signer = Signer(job.sign_key) if job.sign_key is not None else None
        intake = Intake(
            job.url,
            prefix=job.prefix,
            client_id=job.client_id,
            on_event=arrived,
            clean=job.clean,
            verify=staff_check(signer) if signer is not None else None,
            lateness=ruleset.allowed_lateness,
        )
        outbox: Outbox | None = None
        try:
            intake.start()
            _watch_link(intake.client, down)
            outbox = Outbox(job.url, job.records_client_id, signer=signer)
            box = outbox

            def out(rec: Any) -> None:
                box.put(record_topic(job.prefix, rec), json.dumps(rec, ensure_ascii=False))

            writer.publish = out
            conn.send(("ready", None))
            while True:
                kind, body = conn.recv()
                if kind == "expect":
                    seq.expect_many(body)
                elif kind == "finish":
                    end_s, idle_timeout = body
                    break
            lost = seq.finish(idle_timeout)
            got.value = intake.received
            intake.finish_gaps()  # published on {prefix}/health/gaps
            with intake.lock:  # no event is fed while the engine's timers run out
                outcome = finish_engine(writer, end_s)
            fa.flush()
            fw.flush()
            report = EngineReport(
                outcome=outcome,
                fed=seq.fed,
                duplicates=seq.duplicates,
                lost=lost,
                dead_letters=dict(sorted(intake.dead.items())),
                gaps=intake.gaps.gaps,
                gap_events=intake.gaps.missing,
            )
        finally:
            if outbox is not None:
                outbox.close()
            intake.stop(forget=True)  # the run is over: nobody will resume its session
        conn.send(("done", report))


class EngineProcess:
    """The parent's handle on the child: start it, tell it what was published, wait for it."""

    def __init__(self, job: EngineJob) -> None:
        ctx = mp.get_context("spawn")  # never fork a process with paho threads in it
        self._fed = ctx.Value("q", 0, lock=False)
        self._got = ctx.Value("q", 0, lock=False)
        self._down = ctx.Value("d", 0.0, lock=False)  # wall time the engine lost the broker
        self._url = job.url
        self.sim_time: Callable[[], str | None] = lambda: None  # for the lost-broker message
        self._conn, child_conn = ctx.Pipe()
        self._proc = ctx.Process(
            target=_child,
            args=(job, child_conn, self._fed, self._got, self._down),
            name="pmsim-engine",
            daemon=True,
        )
        self._child_conn = child_conn
        self._ids: list[str] = []
        self._since = 0.0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._ticker: threading.Thread | None = None
        self.expected = 0

    @property
    def fed(self) -> int:
        """Events the engine has consumed, in publish order."""
        return int(self._fed.value)

    @property
    def received(self) -> int:
        """MQTT messages the engine's subscriber has taken off the broker."""
        return int(self._got.value)

    def start(self) -> EngineProcess:
        self._proc.start()
        self._child_conn.close()
        kind, body = self._receive(START_TIMEOUT, "start")
        if kind != "ready":
            raise BadInput(f"engine process: {body}")
        self._ticker = threading.Thread(target=self._tick, name="pmsim-expect", daemon=True)
        self._ticker.start()
        return self

    def expect(self, event_id: str) -> None:
        """The simulation is about to publish this event (sent on in batches)."""
        with self._lock:
            if not self._ids:
                self._since = time.monotonic()
            self._ids.append(event_id)
            self.expected += 1
            if len(self._ids) >= EXPECT_BATCH:
                self._send_ids()

    def _send_ids(self) -> None:
        ids, self._ids = self._ids, []
        try:
            self._conn.send(("expect", ids))
        except OSError:
            self._check_alive()
            raise

    def _tick(self) -> None:
        while not self._stop.wait(EXPECT_LINGER):
            with self._lock:
                if self._ids and time.monotonic() - self._since >= EXPECT_LINGER:
                    with contextlib.suppress(OSError, BadInput):
                        self._send_ids()

    def wait_until(self, ready: Callable[[], bool], timeout: float) -> bool:
        """Back-pressure: wait until ``ready()`` (polled every millisecond); False on timeout.
        What is waiting to be sent goes first, so the engine can move on."""
        if ready():
            return True
        with self._lock:
            if self._ids:
                self._send_ids()
        deadline = time.monotonic() + timeout
        while not ready():
            self._check_alive()
            if time.monotonic() > deadline:
                return False
            time.sleep(0.001)
        return True

    def finish(self, end_s: float, idle_timeout: float) -> EngineReport:
        """Tell the child the run is over; its report once it has consumed everything."""
        self._stop.set()
        with self._lock:
            if self._ids:
                self._send_ids()
            self._conn.send(("finish", (end_s, idle_timeout)))
        kind, body = self._receive(idle_timeout + 600.0, "finish")
        if kind != "done":
            raise BadInput(f"engine process: {body}")
        report: EngineReport = body
        return report

    def _receive(self, timeout: float, what: str) -> tuple[str, Any]:
        deadline = time.monotonic() + timeout
        while not self._conn.poll(0.1):
            self._check_alive()
            if time.monotonic() > deadline:
                raise BadInput(f"engine process: no answer to {what} within {timeout:.0f} s")
        try:
            message: tuple[str, Any] = self._conn.recv()
        except EOFError:
            self._check_alive()
            raise BadInput("engine process: closed its pipe") from None
        return message

    def _check_alive(self) -> None:
        self.check_link()
        if not self._proc.is_alive() and not self._conn.poll():
            raise BadInput(f"engine process: exited with code {self._proc.exitcode}")

    def check_link(self) -> None:
        """Raise :class:`BrokerLost` once the engine's connection has been down LOST_AFTER."""
        since = float(self._down.value)
        if since and time.time() - since >= LOST_AFTER:
            raise BrokerLost(lost_message(self._url, since, self.sim_time()))

    @property
    def lost(self) -> bool:
        since = float(self._down.value)
        return bool(since) and time.time() - since >= LOST_AFTER

    def close(self, quick: bool = False) -> None:
        """Stop the child if it is still there (after an error); idempotent. ``quick``: the
        broker is gone, so the child has nothing left to finish."""
        self._stop.set()
        if self._ticker is not None:
            self._ticker.join(1.0)
        with contextlib.suppress(OSError):
            self._conn.close()
        if self._proc.pid is None:
            return
        self._proc.join(1.0 if quick else 10.0)
        if self._proc.is_alive():
            self._proc.terminate()
            self._proc.join(5.0)
        if self._proc.is_alive():
            self._proc.kill()
            self._proc.join(5.0)
