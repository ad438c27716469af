"""Surviving restarts: a Mosquitto with persistence stopped and started in the middle of ``pmsim
run`` and of ``pmsim rules serve``, and ``pmsim rules serve`` killed (SIGKILL) and started again.

Nothing lost, nothing published twice: the run's files are byte-identical to an uninterrupted run's,
and what the service publishes equals, record for record and in order, what an engine fed the same
events without interruption makes (a prefix of ``pmsim replay``, which also flushes at the end).

Every test has its own broker on a free loopback port and its own topic prefix, bounds every wait,
and stops every process it starts. The broker's own redeliveries (MQTT DUP flag set, same bytes as a
message already received) are QoS 1 working as designed and are counted, not compared.
"""

from __future__ import annotations

import io
import json
import os
import queue
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
from rules.engine import Engine, Record
from rules.ruleset import RuleSet
from sim.errors import BadInput
from sim.files.rulefiles import load_rules
from sim.mqtt.broker import EmbeddedBroker
from sim.mqtt.carrier import Link
from sim.mqtt.journal import MAGIC, Ledger, journal_path
from sim.mqtt.outbox import record_topic
from sim.mqtt.serve import ServeOptions, serve
from sim.mqtt.url import parse_broker_url
from sim.replay import replay_file, run_start, run_traffic
from sim.runner import run_to_folder
from sim.world.scenario import load_scenario

ROOT = Path(__file__).resolve().parents[3]
TINY = ROOT / "seeds" / "tiny.yaml"
DAYS, SEED = 3, 5
WAIT = 30.0  # the bound on any single wait


def until(cond: Callable[[], bool], timeout: float = WAIT, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(0.02)


@pytest.fixture(scope="module")
def clean_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The uninterrupted run (in-process: over a broker it is byte-identical, test_mqtt_run)."""
    out = tmp_path_factory.mktemp("clean") / "run"
    run_to_folder(load_scenario(TINY), out, days=DAYS, seed=SEED, link=Link())
    return out


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[EmbeddedBroker]:
    """A Mosquitto with persistence on: sessions and their queues survive a restart."""
    b = EmbeddedBroker("mosquitto", persist=tmp_path / "mosquitto-db")
    try:
        yield b.start()
    finally:
        b.stop()


class Collector:
    """A consumer with a persistent session (QoS 1), as a dashboard would have; or a plain
    QoS 0 one (``durable=False``) that only watches."""

    def __init__(self, port: int, topics: list[str], durable: bool = True) -> None:
        self.got: list[tuple[str, bytes, bool]] = []
        self.lock = threading.Lock()
        subscribed = threading.Event()
        self.c = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"collector-{uuid.uuid4().hex[:8]}",
            clean_session=not durable,
            protocol=mqtt.MQTTv311,
        )
        self.c.on_message = self._on_message
        self.c.on_subscribe = lambda *a: subscribed.set()
        qos = 1 if durable else 0
        self.c.on_connect = lambda c, *a: c.subscribe([(t, qos) for t in topics])
        self.c.connect("127.0.0.1", port)
        self.c.loop_start()
        assert subscribed.wait(10), "no SUBACK"

    def _on_message(self, _c: Any, _u: Any, msg: mqtt.MQTTMessage) -> None:
        with self.lock:
            self.got.append((msg.topic, bytes(msg.payload), bool(msg.dup)))

    def records(self) -> tuple[list[Record], int]:
        """What arrived, in order, without the broker's redeliveries; and how many those were."""
        seen: set[bytes] = set()
        out: list[Record] = []
        redelivered = 0
        with self.lock:
            got = list(self.got)
        for _topic, payload, dup in got:
            if dup and payload in seen:
                redelivered += 1
                continue
            seen.add(payload)
            out.append(json.loads(payload))
        return out, redelivered

    def count(self) -> int:
        return len(self.records()[0])

    def settle(self, want: int, quiet: float = 1.0) -> list[Record]:
        """Wait for ``want`` records, then for ``quiet`` seconds of silence (a duplicate would
        arrive in that time)."""
        until(lambda: self.count() >= want, what=f"{want} records (have {self.count()})")
        last = -1
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            with self.lock:
                n = len(self.got)
            if n == last:
                break
            last = n
            time.sleep(quiet)
        return self.records()[0]

    def close(self) -> None:
        self.c.disconnect()
        self.c.loop_stop()


class Feeder:
    """Publishes recorded events at QoS 1, as gateways would; paho keeps them while the broker is
    away and sends them again when it is back."""

    def __init__(self, port: int, prefix: str) -> None:
        self.prefix = prefix
        self.c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"feeder-{prefix}")
        self.c.max_inflight_messages_set(200)
        self.c.on_publish = self._on_publish
        self.c.connect("127.0.0.1", port)
        self.c.loop_start()
        self.lock = threading.Lock()
        self.sent = 0
        self.acked = 0  # paho reports each QoS 1 message once, when the broker has it

    def _on_publish(self, *_a: Any) -> None:
        with self.lock:
            self.acked += 1

    def send(self, lines: list[bytes], rate: float | None = None) -> None:
        t0 = time.monotonic()
        for line in lines:
            event = parse_event(line)
            info = self.c.publish(topic_for(event, self.prefix), line, qos=1)
            assert info.rc in (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_NO_CONN), info.rc
            self.sent += 1
            if rate is not None:
                ahead = self.sent / rate - (time.monotonic() - t0)
                if ahead > 0.01:
                    time.sleep(ahead)

    def wait_acked(self) -> None:
        until(lambda: self.acked == self.sent, what="broker PUBACKs")

    def close(self) -> None:
        self.c.disconnect()
        self.c.loop_stop()


def events_of(run: Path) -> list[bytes]:
    """Every event the run sent, heartbeats built again, in the order it sent them."""
    return list(run_traffic(run))


def reference(run: Path, tmp: Path) -> tuple[list[Record], list[int]]:
    """What an uninterrupted service makes from these events: every record, and after event i
    how many so far. Checked to be what ``pmsim replay`` writes, minus its end-of-input flush."""
    rules = load_rules(run / "rules.yaml")
    engine = Engine(rules)
    tmp.mkdir(parents=True, exist_ok=True)
    records: list[Record] = []
    cum = [0]
    for line in events_of(run):
        records.extend(engine.consume(parse_event(line)))
        cum.append(len(records))
    replay_file(rules, run / "events.jsonl", tmp, None, run_start(run))
    for kind, name in (("alert", "alerts.jsonl"), ("workorder", "workorders.jsonl")):
        mine = [r for r in records if r["record"] == kind]
        replayed = [json.loads(x) for x in (tmp / name).open()]
        assert mine == replayed[: len(mine)] and mine, name
    return records, cum


class Serve:
    """``pmsim rules serve`` as its own process; its output is read by a thread (never blocks)."""

    def __init__(self, broker: EmbeddedBroker, argv: list[str]) -> None:
        cmd = [sys.executable, "-m", "sim", "rules", "serve", "--broker", broker.url, *argv]
        self.proc = subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=ROOT
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.output: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()
        try:
            self.banner = self.lines.get(timeout=WAIT)
            assert "pmsim rules serve:" in self.banner and "Ctrl-C" in self.banner, self.banner
        except BaseException:
            self.proc.kill()
            self.proc.wait(WAIT)
            raise

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.output.append(line)
            self.lines.put(line)

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(WAIT)

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(WAIT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(WAIT)
        return self.proc.returncode


@pytest.fixture
def started() -> Iterator[list[Any]]:
    """Everything a test starts (services, clients) is stopped here, whatever happens."""
    things: list[Any] = []
    yield things
    for t in reversed(things):
        t.stop() if isinstance(t, Serve) else t.close()


def snapshot_consumed(state: Path, rules: RuleSet) -> int:
    """How many events the engine in the state file had consumed (-1: no state file yet)."""
    try:
        blob = state.read_bytes()
    except FileNotFoundError:
        return -1
    assert blob.startswith(MAGIC)
    engine = Engine.restore(rules, blob[len(MAGIC) :].split(b"\n", 1)[1])
    return engine.stats["consumed"]


# -- pmsim run ---------------------------------------------------------------------------------


def test_a_broker_restart_in_the_middle_of_a_run_loses_nothing(
    broker: EmbeddedBroker, clean_run: Path, tmp_path: Path, started: list[Any]
) -> None:
    p = f"r{uuid.uuid4().hex[:8]}"
    total = len(events_of(clean_run))
    alerts = Collector(broker.port, [f"{p}/alerts/#"])
    started.append(alerts)
    seen = Collector(broker.port, [f"{p}/dev/#", f"{p}/batch/#"], durable=False)
    started.append(seen)  # only to know when the run is a third of the way through
    restarted: list[int] = []

    def events_seen() -> int:
        with seen.lock:
            got = list(seen.got)
        return sum(len(json.loads(b)) if "/batch/" in t else 1 for t, b, _ in got)

    def restart_mid_run() -> None:
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            n = events_seen()
            if n >= total // 3:
                restarted.append(n)
                broker.restart()
                return
            time.sleep(0.005)

    t = threading.Thread(target=restart_mid_run)
    t.start()
    try:
        out = tmp_path / "run"
        link = Link(broker=broker.url, prefix=p)
        run_to_folder(load_scenario(TINY), out, days=DAYS, seed=SEED, link=link)
    finally:
        t.join(WAIT)
    assert restarted and restarted[0] < total, "the broker was not restarted mid-run"
    for name in ("events.jsonl", "alerts.jsonl", "workorders.jsonl", "truth.jsonl"):
        assert (out / name).read_bytes() == (clean_run / name).read_bytes(), name
    info = json.loads((out / "run.json").read_text())["broker"]
    assert info["lost"] == 0 and info["dead_letters"] == {}
    assert info["published"] == info["consumed"] == info["acknowledged"] == total
    want = [json.loads(x) for x in (clean_run / "alerts.jsonl").open()]
    assert alerts.settle(len(want)) == want  # on the broker too: each alert once


# -- pmsim rules serve ---------------------------------------------------------------------------


def test_a_broker_restart_under_rules_serve_loses_nothing_and_duplicates_nothing(
    broker: EmbeddedBroker, clean_run: Path, tmp_path: Path, started: list[Any]
) -> None:
    p = f"s{uuid.uuid4().hex[:8]}"
    want, cum = reference(clean_run, tmp_path)
    lines = events_of(clean_run)
    out = Collector(broker.port, [f"{p}/alerts/#", f"{p}/workorders/#"])
    started.append(out)
    argv = ["--rules", str(clean_run / "rules.yaml"), "--prefix", p, "--client-id", f"svc-{p}"]
    assert Serve(broker, argv).stop() == 0  # its session stays: the broker queues for it
    feeder = Feeder(broker.port, p)
    started.append(feeder)
    a = len(lines) * 4 // 5
    feeder.send(lines[:a])
    feeder.wait_acked()
    svc = Serve(broker, argv)  # works through the queue...
    started.append(svc)
    until(lambda: out.count() >= cum[a // 4], what="a quarter of the queue handled")
    at = out.count()
    broker.restart()  # ... and the broker goes away in the middle
    assert at < cum[a], "the service had finished before the broker went away"
    # The feeder waits out the restart: paho, publishing through a reconnect, can send newer
    # messages before older ones (here, with days in seconds, beyond the allowed lateness).
    until(feeder.c.is_connected, what="the feeder to reconnect")
    feeder.send(lines[a:])
    feeder.wait_acked()
    got = out.settle(len(want))
    svc.stop()
    assert got == want, svc.output[-1]


def test_rules_serve_killed_mid_run_resumes_from_snapshot_journal_and_queue(
    broker: EmbeddedBroker, clean_run: Path, tmp_path: Path, started: list[Any]
) -> None:
    p = f"k{uuid.uuid4().hex[:8]}"
    want, cum = reference(clean_run, tmp_path)
    lines = events_of(clean_run)
    n = len(lines)
    rules = load_rules(clean_run / "rules.yaml")
    out = Collector(broker.port, [f"{p}/alerts/#", f"{p}/workorders/#"])
    started.append(out)
    state = tmp_path / "state" / "engine.state"
    state.parent.mkdir()
    argv = ["--rules", str(clean_run / "rules.yaml"), "--prefix", p, "--client-id", f"svc-{p}"]
    argv += ["--state", str(state)]
    feeder = Feeder(broker.port, p)
    started.append(feeder)

    def through(i: int) -> None:
        """Events [0, i) have been handled: their records have all come out."""
        until(lambda: out.count() >= cum[i], what=f"the records of the first {i} events")

    def serve(snapshot_every: float) -> Serve:
        svc = Serve(broker, [*argv, "--snapshot-every", str(snapshot_every)])
        started.append(svc)
        return svc

    # 1. Snapshots every second; killed once one holds the first 40 % of the events (so the
    # restart is from the snapshot alone).
    svc = serve(1)
    a = n * 2 // 5
    feeder.send(lines[:a])
    feeder.wait_acked()
    through(a)
    until(lambda: snapshot_consumed(state, rules) == a, what="a snapshot of the first events")
    svc.kill()
    # 2. Resumed from that snapshot; no snapshot for a minute, so the next events (up to three
    # more records) are only in the journal when it is killed: acknowledged, the broker has
    # forgotten them.
    svc = serve(60)
    assert ", 0 journal entries replayed, 0 records to publish again" in svc.banner, svc.banner
    b = next(i for i in range(a, n) if cum[i] >= cum[a] + 3)
    feeder.send(lines[a:b])
    feeder.wait_acked()
    through(b)
    until(  # the records' acknowledgements reach the journal (not a sleep: a busy machine)
        lambda: journal_path(state).read_text().count('{"a":') >= cum[b] - cum[a],
        what="the records' acknowledgements in the journal",
    )
    svc.kill()
    journal = journal_path(state).read_text()
    assert journal.count('{"e":') == b - a and journal.count('{"a":') >= 3
    # 3. While it is dead the broker queues for its session.
    c = n * 3 // 5
    feeder.send(lines[b:c])
    feeder.wait_acked()
    svc = serve(60)
    # The journal's events are replayed; the records they make again are not published again.
    assert f" {b - a} journal entries replayed, 0 records to publish again" in svc.banner
    through(c)
    # 4. A stretch that makes no record, killed while it is being handled: the journal and the
    # broker's redeliveries overlap, and the engine drops the event ids it already has.
    d = next(i for i in range(c, n - 200) if cum[i + 200] == cum[i]) + 200
    feeder.send(lines[c:d])
    feeder.wait_acked()
    svc.kill()
    # 5. The rest, with snapshots as usual; then a clean stop.
    svc = serve(1)
    feeder.send(lines[d:])
    feeder.wait_acked()
    assert out.settle(len(want)) == want
    assert svc.stop() == 0
    assert snapshot_consumed(state, rules) == n


def test_a_journal_that_cannot_be_written_stops_the_service(
    broker: EmbeddedBroker, clean_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Disk full: the service stops at once with status 1 (it promises nothing it cannot keep);
    started again, it resumes from what it journaled."""
    p = f"j{uuid.uuid4().hex[:8]}"
    state = tmp_path / "engine.state"
    opts = ServeOptions(
        url=parse_broker_url(broker.url),
        rules_path=clean_run / "rules.yaml",
        prefix=p,
        state=state,
        client_id=f"svc-{p}",
    )
    log = Ledger._log
    written = [0]

    def disk_full_after_300_events(self: Ledger, line: str) -> None:
        if line.startswith('{"e":'):
            written[0] += 1
            if written[0] > 300:
                raise OSError(28, "No space left on device")
        log(self, line)

    feeder = Feeder(broker.port, p)
    result: list[int] = []
    err = io.StringIO()
    monkeypatch.setattr(Ledger, "_log", disk_full_after_300_events)
    monkeypatch.setattr(sys, "stderr", err)
    first = threading.Thread(target=lambda: result.append(serve(opts, io.StringIO())))
    first.start()
    try:
        until(lambda: journal_path(state).exists(), what="the service to start")
        feeder.send(events_of(clean_run)[:1000])
        feeder.wait_acked()
        first.join(WAIT)
        assert result == [1], "the service went on without its journal"
        assert "No space left on device" in err.getvalue()
        monkeypatch.undo()
        again = io.StringIO()
        opts.stop = threading.Event()
        opts.stop.set()  # start, resume, stop
        assert serve(opts, again) == 0
        assert ", 300 journal entries replayed," in again.getvalue(), again.getvalue()
    finally:
        opts.stop.set()
        first.join(WAIT)
        feeder.close()


# -- the journal on its own ----------------------------------------------------------------------


def render(r: Record) -> tuple[str, str]:
    return record_topic("pm", r), json.dumps(r)


def test_journal_replay_publishes_only_what_was_never_acknowledged(
    clean_run: Path, tmp_path: Path
) -> None:
    rules = load_rules(clean_run / "rules.yaml")
    events = [parse_event(x) for x in events_of(clean_run)]
    want, cum = reference(clean_run, tmp_path / "ref")
    state = tmp_path / "engine.state"
    first = Ledger.open(rules, render, state)
    half = len(events) // 2
    made = [o for e in events[:half] for o in first.consume(e)]
    assert [json.loads(p) for _, _, p in made] == want[: cum[half]]
    for serial, _, _ in made[:-2]:
        first.acked(serial)  # the last two never reached the broker
    first.close()  # killed here: no save, the journal is all there is
    second = Ledger.open(rules, render, state)
    assert second.replayed == half
    assert [s for s, _, _ in second.unsent()] == [s for s, _, _ in made[-2:]]
    rest = [o for e in events[half:] for o in second.consume(e)]
    assert [json.loads(p) for _, _, p in made + rest] == want
    assert [s for s, _, _ in rest] == list(range(len(made) + 1, len(want) + 1))
    with pytest.raises(BadInput, match="in use"):  # one service per state file
        Ledger.open(rules, render, state)
    second.close()


def test_wall_clock_advances_are_replayed_too(clean_run: Path, tmp_path: Path) -> None:
    rules = load_rules(clean_run / "rules.yaml")
    events = [parse_event(x) for x in events_of(clean_run)][:4000]
    t = events[1999].sim_seconds + 3600.0  # an hour of silence: timers fire on the wall clock
    plain = Ledger.open(rules, render, None)
    want = [o for e in events[:2000] for o in plain.consume(e)]
    silence = plain.advance(t)
    assert silence, "the hour of silence makes no record: pick another"
    want += silence + [o for e in events[2000:] for o in plain.consume(e)]
    state = tmp_path / "engine.state"
    first = Ledger.open(rules, render, state)
    got = [o for e in events[:2000] for o in first.consume(e)] + first.advance(t)
    got += [o for e in events[2000:3000] for o in first.consume(e)]
    first.close()  # killed, nothing acknowledged
    second = Ledger.open(rules, render, state)
    assert second.unsent() == got
    got += [o for e in events[3000:] for o in second.consume(e)]
    second.close()
    assert got == want


def test_journal_of_an_older_generation_and_a_torn_line_are_safe(
    clean_run: Path, tmp_path: Path
) -> None:
    rules = load_rules(clean_run / "rules.yaml")
    events = [parse_event(x) for x in events_of(clean_run)][:3000]
    state = tmp_path / "engine.state"
    ledger = Ledger.open(rules, render, state)
    for e in events[:1000]:
        ledger.consume(e)
    old = journal_path(state).read_bytes()
    ledger.save()  # then "killed" before the next journal began: the old one is back
    ledger.close()
    journal_path(state).write_bytes(old + b'{"e":{"schema_vers')  # and torn mid-line
    again = Ledger.open(rules, render, state)
    assert again.replayed == 0  # all in the snapshot already
    assert again.engine.stats == ledger.engine.stats
    again.close()
    # A torn last line of the current generation is ignored too (it was never acknowledged).
    journal_path(state).write_bytes(journal_path(state).read_bytes() + b'{"e":{"sche')
    third = Ledger.open(rules, render, state)
    assert third.replayed == 0 and third.engine.stats == ledger.engine.stats
    third.close()


def test_a_bare_engine_snapshot_still_restores(clean_run: Path, tmp_path: Path) -> None:
    rules = load_rules(clean_run / "rules.yaml")
    engine = Engine(rules)
    for line in events_of(clean_run)[:500]:
        engine.consume(parse_event(line))
    state = tmp_path / "old.state"
    state.write_bytes(engine.snapshot())
    ledger = Ledger.open(rules, render, state)
    assert ledger.engine.stats == engine.stats and ledger.generation == 1
    assert state.read_bytes().startswith(MAGIC) and os.path.exists(journal_path(state))
    ledger.close()
