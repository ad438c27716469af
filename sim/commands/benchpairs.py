"""The measurements behind ``pmsim bench``: each pmsim figure and the bare baseline it is judged by.

A throughput figure means little alone; next to the same work done by the thinnest possible code
on the same machine it says what pmsim costs. Each function here measures one side of one pair
once and returns plain figures; :mod:`sim.commands.bench` repeats, alternates, prints and records them.

- :func:`run_once`: ``pmsim run`` itself (in-process or over a broker), timed as the run times
  itself (simulation, carrier and engine; not the rankings or the report written afterwards).
- :func:`bare_pipe`: one paho publisher -> broker -> one paho subscriber, payloads of a given size.
- :func:`bare_simpy`: a SimPy loop with as many processes and timeouts as a run had.
- :func:`replay_once` and :func:`bare_window`: the engine over ``events.jsonl``, and a bare
  ``json.loads`` + sliding-window count over the same file.
"""

from __future__ import annotations

import inspect
import json
import os
import threading
import time
from collections import deque
from collections.abc import Generator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import simpy

from sim.errors import BadInput
from sim.mqtt.carrier import Link
from sim.mqtt.client import connect, protocol_name
from sim.mqtt.url import BrokerURL
from sim.world.scenario import Scenario

__all__ = [
    "PipeRun",
    "ProcessCount",
    "RunFigures",
    "bare_pipe",
    "bare_simpy",
    "bare_window",
    "broker_version",
    "clear_retained",
    "count_processes",
    "replay_once",
    "run_once",
    "transport_window",
]

SUBSCRIBER_WINDOW = 1000  # what the engine's subscriber (sim.mqtt.intake.Intake) allows in flight
SILENCE = 10.0  # seconds without a message before the bare pipe stops waiting for the rest


def transport_window() -> int:
    """The in-flight window ``pmsim run`` publishes with (MqttTransport's default), so the bare
    pipe is held to the same flow control."""
    from sim.mqtt.transport import MqttTransport

    default = inspect.signature(MqttTransport).parameters["window"].default
    return int(default) if isinstance(default, int) else 2000


@dataclass(frozen=True)
class RunFigures:
    """One ``pmsim run``: events published, events the engine consumed, and the run's own wall
    time (from the engine's creation to its last event, so broker connections are included)."""

    events: int
    consumed: int
    seconds: float
    payload_bytes: float  # average event JSON, as published
    lost: int
    protocol: str

    @property
    def rate(self) -> float:
        return self.consumed / self.seconds if self.seconds > 0 else 0.0


def run_once(
    scenario: Scenario, out: Path, *, days: int, seed: int, rules: Path, link: Link
) -> RunFigures:
    """``pmsim run SCENARIO`` into ``out`` with ``link``, as the CLI does it."""
    from sim.replay import run_traffic
    from sim.runner import run_to_folder

    result = run_to_folder(scenario, out, days=days, seed=seed, rules_path=rules, link=link)
    n = result.events  # heartbeats of runs included: each went out as a message of its own
    size = sum(len(line) for line in run_traffic(out))
    return RunFigures(
        events=n,
        consumed=int(result.mqtt.get("consumed", n)),
        seconds=result.wall_seconds,
        payload_bytes=size / n if n else 0.0,
        lost=int(result.mqtt.get("lost", 0)),
        protocol=str(result.mqtt.get("protocol", "-")),
    )


@dataclass
class ProcessCount:
    started: int = 0


@contextmanager
def count_processes() -> Iterator[ProcessCount]:
    """Count the SimPy processes started inside the block (the bare loop starts as many)."""
    count = ProcessCount()
    original = simpy.Environment.__dict__["process"]  # a descriptor binding Process to the env

    def counting(self: simpy.Environment, gen: Any) -> simpy.Process:
        count.started += 1
        return simpy.Process(self, gen)

    simpy.Environment.process = counting  # type: ignore[method-assign,assignment]
    try:
        yield count
    finally:
        simpy.Environment.process = original  # type: ignore[method-assign]


def bare_simpy(processes: int, events: int, horizon: float) -> tuple[int, float]:
    """``processes`` SimPy processes firing about ``events`` timeouts in all over ``horizon``
    simulated seconds: the cost of SimPy alone. Returns (timeouts fired, wall seconds)."""
    env = simpy.Environment()
    processes = max(1, processes)
    per = max(1, events // processes)
    step = horizon / per
    fired = 0

    def proc(offset: float) -> Generator[simpy.Event, Any, None]:
        nonlocal fired
        yield env.timeout(offset)
        for _ in range(per):
            yield env.timeout(step)
            fired += 1

    t0 = time.perf_counter()
    for i in range(processes):
        env.process(proc(step * i / processes))
    env.run()
    return fired, time.perf_counter() - t0


@dataclass(frozen=True)
class PipeRun:
    """One bare pipe: messages sent, messages that arrived, seconds from first send to last
    arrival."""

    messages: int
    delivered: int
    seconds: float
    protocol: str

    @property
    def rate(self) -> float:
        return self.delivered / self.seconds if self.seconds > 0 else 0.0


def bare_pipe(
    url: BrokerURL, *, topic: str, messages: int, size: int, qos: int, window: int
) -> PipeRun:
    """Publish ``messages`` payloads of ``size`` bytes at ``qos`` from one paho client and count
    them into another; connections made as pmsim makes them (MQTT 5 first, TLS, password)."""
    got = 0
    last = 0.0
    done = threading.Event()
    subscribed = threading.Event()

    def on_message(_c: mqtt.Client, _u: Any, _m: mqtt.MQTTMessage) -> None:
        nonlocal got, last
        got += 1
        last = time.perf_counter()
        if got >= messages:
            done.set()

    def on_subscribe(*_a: Any) -> None:
        subscribed.set()

    def sub_setup(c: mqtt.Client) -> None:
        c.on_message = on_message
        c.on_subscribe = on_subscribe
        c.max_inflight_messages_set(SUBSCRIBER_WINDOW)
        c.max_queued_messages_set(0)

    acked = 0
    flow = threading.Condition()

    def on_publish(*_a: Any) -> None:
        nonlocal acked
        with flow:
            acked += 1
            flow.notify()

    def pub_setup(c: mqtt.Client) -> None:
        c.max_inflight_messages_set(window)
        c.max_queued_messages_set(0)
        c.on_publish = on_publish

    tag = f"{os.getpid()}-{time.monotonic_ns() % 1_000_000_000}"
    sub = connect(url, f"pmsim-bench-sub-{tag}", setup=sub_setup)
    try:
        sub.subscribe(topic, qos=1)  # as the engine subscribes; the publisher's QoS decides
        if not subscribed.wait(10.0):
            raise BadInput(f"broker {url}: no SUBACK within 10 s")
        pub = connect(url, f"pmsim-bench-pub-{tag}", setup=pub_setup)
        try:
            payload = b"x" * size
            t0 = time.perf_counter()
            for i in range(messages):
                # At most ``window`` unacknowledged, as pmsim's transport: paho numbers messages
                # up to 65,535 and drops what it cannot number, so no publisher may run further
                # ahead than that of its acknowledgements.
                with flow:
                    waited = time.monotonic()
                    while i - acked >= window:
                        if time.monotonic() - waited > 60.0:
                            raise BadInput(f"broker {url}: no PUBACK for 60 s in the bare pipe")
                        flow.wait(1.0)
                pub.publish(topic, payload, qos=qos)
            seen = -1
            while not done.wait(SILENCE) and got != seen:  # QoS 0 may lose some: stop on silence
                seen = got
            seconds = (last if got else time.perf_counter()) - t0
            protocol = protocol_name(pub)
        finally:
            pub.disconnect()
            pub.loop_stop()
    finally:
        sub.disconnect()
        sub.loop_stop()
    return PipeRun(messages=messages, delivered=got, seconds=seconds, protocol=protocol)


def replay_once(events: Path, rules: Path, end_s: float, out: Path) -> float:
    """Wall seconds of ``pmsim replay``'s work: a fresh engine over ``events``, alerts and work
    orders written into ``out``."""
    from sim.files.rulefiles import load_rules
    from sim.replay import replay_file, run_start

    ruleset = load_rules(rules)
    out.mkdir(parents=True, exist_ok=True)
    start = run_start(events.parent)
    t0 = time.perf_counter()
    replay_file(ruleset, events, out, end_s, start)
    return time.perf_counter() - t0


def write_traffic(run_dir: Path, path: Path) -> Path:
    """Every event of the run, heartbeats built again, one JSON a line: the bare loop's input."""
    from sim.replay import run_traffic

    with path.open("wb") as fh:
        for line in run_traffic(run_dir):
            fh.write(line)
            fh.write(b"\n")
    return path


def bare_window(events: Path, window: float = 600.0) -> tuple[int, float]:
    """``json.loads`` each line, one deque of event times per device, a count within ``window``
    seconds: the least a rule engine does. Returns (events, wall seconds)."""
    t0 = time.perf_counter()
    windows: dict[str, deque[float]] = {}
    n = 0
    alarms = 0
    with events.open("rb") as fh:
        for line in fh:
            doc = json.loads(line)
            t = doc["sim_seconds"]
            dq = windows.get(doc["device_id"])
            if dq is None:
                dq = windows[doc["device_id"]] = deque()
            dq.append(t)
            while dq[0] < t - window:
                dq.popleft()
            if len(dq) >= 3:
                alarms += 1
            n += 1
    return n, time.perf_counter() - t0


def _listen(url: BrokerURL, topic: str, wait: float) -> tuple[mqtt.Client, list[mqtt.MQTTMessage]]:
    """A connected client that has collected, for ``wait`` seconds, what ``topic`` delivers."""
    got: list[mqtt.MQTTMessage] = []
    subscribed = threading.Event()

    def on_message(_c: mqtt.Client, _u: Any, m: mqtt.MQTTMessage) -> None:
        got.append(m)

    def setup(c: mqtt.Client) -> None:
        c.on_message = on_message
        c.on_subscribe = lambda *_a: subscribed.set()

    client = connect(
        url, f"pmsim-bench-probe-{os.getpid()}-{time.monotonic_ns() % 10**9}", setup=setup
    )
    client.subscribe(topic, qos=1)
    subscribed.wait(wait)
    time.sleep(wait)
    return client, got


def broker_version(url: BrokerURL) -> str:
    """What the broker says it is (``$SYS/broker/version``, Mosquitto's), or ``?``. Connecting
    also proves the broker is there: :class:`BadInput` if it is not."""
    client, got = _listen(url, "$SYS/broker/version", 0.5)
    client.disconnect()
    client.loop_stop()
    return got[0].payload.decode("utf-8", "replace") if got else "?"


def clear_retained(url: BrokerURL, root: str) -> int:
    """Remove the retained messages runs left under ``root/`` (gateway status, rankings), so a
    bench against someone's broker leaves nothing behind. Returns how many."""
    client, got = _listen(url, f"{root}/#", 1.0)
    try:
        topics = sorted({m.topic for m in got if m.retain and m.payload})
        infos = [client.publish(t, b"", qos=1, retain=True) for t in topics]
        for info in infos:
            info.wait_for_publish(5.0)
    finally:
        client.disconnect()
        client.loop_stop()
    return len(topics)
