"""The repetition plan of ``pmsim bench``: which measurements make which pair, in which order.

Machine noise (other processes, CPU frequency, the broker's warm-up) drifts over a bench. Running
all of one side and then all of the other would put the drift into the ratio; instead each
repetition runs every member of a pair in turn, and the member that goes first rotates from one
repetition to the next. pmsim's side goes first in the first repetition because its run tells the
bare side what to match: the event count, the average payload, the SimPy processes, the events file.
"""

from __future__ import annotations

import dataclasses
import shutil
import statistics
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sim.commands.benchlong import LongRun, bare_heartbeats, long_run
from sim.commands.benchpairs import (
    RunFigures,
    bare_pipe,
    bare_simpy,
    bare_window,
    count_processes,
    replay_once,
    run_once,
    write_traffic,
)
from sim.mqtt.carrier import Link
from sim.mqtt.url import BrokerURL, TLSFiles
from sim.world.scenario import Scenario

__all__ = ["Group", "Member", "Pair", "Series", "Setup", "Sides", "measure_all", "plan"]

DAY = 86400.0
Measure = Callable[[int], dict[str, Any]]  # repetition index -> figures, "rate" in events/s


@dataclasses.dataclass
class Series:
    """One side of a pair: a label and each repetition's figures."""

    label: str
    runs: list[dict[str, Any]] = dataclasses.field(default_factory=list)

    @property
    def rates(self) -> list[float]:
        return [float(r["rate"]) for r in self.runs]

    @property
    def median(self) -> float:
        return statistics.median(self.rates)

    def to_json(self) -> dict[str, Any]:
        rates = self.rates
        return {
            "label": self.label,
            "median": round(self.median, 1),
            "min": round(min(rates), 1),
            "max": round(max(rates), 1),
            "runs": self.runs,
        }


@dataclasses.dataclass
class Pair:
    """pmsim's figure and its bare baseline; ``ratio`` is pmsim's median over the bare one."""

    id: str
    title: str
    pmsim: Series
    bare: Series
    details: dict[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def ratio(self) -> float:
        bare = self.bare.median
        return self.pmsim.median / bare if bare > 0 else 0.0

    def to_json(self) -> dict[str, Any]:
        by_rep = [
            round(a / b, 4) if b > 0 else None
            for a, b in zip(self.pmsim.rates, self.bare.rates, strict=True)
        ]
        return {
            "id": self.id,
            "title": self.title,
            "unit": "events/s",
            "pmsim": self.pmsim.to_json(),
            "bare": self.bare.to_json(),
            "ratio": round(self.ratio, 4),
            "ratio_by_repetition": by_rep,
            **self.details,
        }


@dataclasses.dataclass(frozen=True)
class Setup:
    """What every measurement shares: the scenario, the broker, the scratch folder."""

    scenario: Scenario
    seed: int
    rules: Path
    days: int  # of the MQTT runs
    sim_days: int  # of the in-process run and its replay
    prefix: str  # every run and pipe publishes below it
    broker: str  # as Link(broker=...) takes it
    url: BrokerURL
    tls: TLSFiles
    window: int  # the bare publisher's in-flight window
    pipe_messages: int | None  # None: as many as the MQTT run's events
    scratch: Path
    scenario_path: Path | None = None  # for the long pair's pmsim run, as a user types it
    long_days: int = 0  # the long pair (0: not measured)


class Sides:
    """Each side of each pair as a function of the repetition; pmsim's runs record what their
    bare twins must match."""

    def __init__(self, setup: Setup) -> None:
        self.s = setup
        self.mqtt: RunFigures | None = None  # the first MQTT run: events, payload size
        self.sim: RunFigures | None = None  # the first in-process run
        self.processes = 0
        self.events_file = setup.scratch / "sim-r0" / "events.jsonl"
        self.traffic_file = setup.scratch / "traffic.jsonl"  # every event, heartbeats built
        self.long: LongRun | None = None  # the first long pmsim run: devices, period

    def mqtt_run(self, qos: int, batch: int | None) -> Measure:
        def measure(rep: int) -> dict[str, Any]:
            s = self.s
            name = f"r{rep}q{qos}" + (f"b{batch}" if batch else "")
            extra: dict[str, Any] = {"batch": batch} if batch else {}
            link = Link(broker=s.broker, prefix=f"{s.prefix}/{name}", qos=qos, tls=s.tls, **extra)
            out = s.scratch / name
            f = run_once(s.scenario, out, days=s.days, seed=s.seed, rules=s.rules, link=link)
            shutil.rmtree(out, ignore_errors=True)
            if self.mqtt is None:
                self.mqtt = f
            return {"rate": f.rate, **dataclasses.asdict(f)}

        return measure

    def pipe(self, qos: int) -> Measure:
        def measure(rep: int) -> dict[str, Any]:
            assert self.mqtt is not None, "pmsim's MQTT run goes first"
            size = round(self.mqtt.payload_bytes)
            p = bare_pipe(
                self.s.url,
                topic=f"{self.s.prefix}/pipe/r{rep}q{qos}",
                messages=self.s.pipe_messages or self.mqtt.events,
                size=size,
                qos=qos,
                window=self.s.window,
            )
            return {"rate": p.rate, "size": size, **dataclasses.asdict(p)}

        return measure

    def sim_run(self, rep: int) -> dict[str, Any]:
        s = self.s
        out = s.scratch / f"sim-r{rep}"
        with count_processes() as count:
            f = run_once(s.scenario, out, days=s.sim_days, seed=s.seed, rules=s.rules, link=Link())
        if self.sim is None:  # its folder is the replay pair's input
            self.sim, self.processes, self.events_file = f, count.started, out / "events.jsonl"
            self.traffic_file = write_traffic(out, self.s.scratch / "traffic.jsonl")
        else:
            shutil.rmtree(out, ignore_errors=True)
        return {
            "rate": f.rate,
            "events": f.events,
            "seconds": f.seconds,
            "processes": count.started,
        }

    def simpy_loop(self, rep: int) -> dict[str, Any]:
        assert self.sim is not None, "pmsim's in-process run goes first"
        fired, secs = bare_simpy(self.processes, self.sim.events, self.s.sim_days * DAY)
        return {
            "rate": fired / secs,
            "timeouts": fired,
            "processes": self.processes,
            "seconds": secs,
        }

    def replay(self, rep: int) -> dict[str, Any]:
        assert self.sim is not None, "pmsim's in-process run goes first"
        out = self.s.scratch / f"replay-r{rep}"
        secs = replay_once(self.events_file, self.s.rules, self.s.sim_days * DAY, out)
        shutil.rmtree(out, ignore_errors=True)
        return {"rate": self.sim.events / secs, "events": self.sim.events, "seconds": secs}

    def window_loop(self, rep: int) -> dict[str, Any]:
        n, secs = bare_window(self.traffic_file)
        return {"rate": n / secs, "events": n, "seconds": secs}

    def long_pmsim(self, rep: int) -> dict[str, Any]:
        s = self.s
        assert s.scenario_path is not None
        out = s.scratch / f"long-r{rep}"
        f = long_run(s.scenario_path, s.long_days, s.seed, s.rules, out)
        shutil.rmtree(out, ignore_errors=True)
        if self.long is None:
            self.long = f
        return {"rate": f.rate, **dataclasses.asdict(f)}

    def long_bare(self, rep: int) -> dict[str, Any]:
        assert self.long is not None, "pmsim's long run goes first"
        path = self.s.scratch / "bare-heartbeats.jsonl"
        n, secs = bare_heartbeats(self.long.devices, self.long.period, self.s.long_days, path)
        size = path.stat().st_size
        path.unlink()
        return {"rate": n / secs, "heartbeats": n, "seconds": secs, "file_mb": size / 1e6}

    def details(self, pair: Pair) -> dict[str, Any]:
        """What a pair was measured on, for bench.json and the heading of the table."""
        if pair.id == "long" and self.long is not None:
            return {"days": self.s.long_days, **dataclasses.asdict(self.long)}
        if pair.id.startswith("mqtt") and self.mqtt is not None:
            return {
                "events": self.mqtt.events,
                "payload_bytes": round(self.mqtt.payload_bytes, 1),
                "pipe_messages": self.s.pipe_messages or self.mqtt.events,
                "window": self.s.window,
            }
        if self.sim is not None:
            return {"events": self.sim.events, "processes": self.processes}
        return {}


@dataclasses.dataclass(frozen=True)
class Member:
    label: str  # for progress lines
    series: Series
    measure: Measure


@dataclasses.dataclass(frozen=True)
class Group:
    """Members measured in turn each repetition, and the pairs made of them (a bare side may
    serve several pmsim variants)."""

    pairs: list[Pair]
    members: list[Member]


def plan(sides: Sides, qos: tuple[int, ...], batches: tuple[int, ...]) -> list[Group]:
    """The MQTT pairs per QoS (the default carrier, then each batch size), in-process, replay."""
    groups = []
    for q in qos:
        bare = Member(
            f"QoS {q} bare pipe",
            Series("bare paho: publisher -> broker -> subscriber"),
            sides.pipe(q),
        )
        runs = [
            Member(
                f"QoS {q} pmsim run",
                Series("pmsim run: simulation -> broker -> engine"),
                sides.mqtt_run(q, None),
            )
        ]
        runs += [
            Member(
                f"QoS {q} pmsim run, batch {b}",
                Series(f"pmsim run, batch {b}: simulation -> broker -> engine"),
                sides.mqtt_run(q, b),
            )
            for b in batches
        ]
        pairs = [Pair(f"mqtt-qos{q}", f"MQTT QoS {q}", runs[0].series, bare.series)]
        pairs += [
            Pair(f"mqtt-qos{q}-batch{b}", f"MQTT QoS {q}, batch {b}", m.series, bare.series)
            for b, m in zip(batches, runs[1:], strict=True)
        ]
        groups.append(Group(pairs, [*runs, bare]))
    sim = Member("in-process pmsim run", Series("pmsim run --broker none"), sides.sim_run)
    loop = Member(
        "bare SimPy loop",
        Series("bare SimPy loop, as many processes and timeouts"),
        sides.simpy_loop,
    )
    groups.append(Group([Pair("sim", "in-process", sim.series, loop.series)], [sim, loop]))
    rep = Member("pmsim replay", Series("pmsim replay, same rules"), sides.replay)
    win = Member(
        "bare window loop",
        Series("bare json.loads + sliding window per device"),
        sides.window_loop,
    )
    groups.append(Group([Pair("replay", "replay", rep.series, win.series)], [rep, win]))
    if sides.s.long_days:
        days = sides.s.long_days
        run = Member(
            f"pmsim run --days {days}",
            Series(f"pmsim run --days {days} --broker none (the whole command)"),
            sides.long_pmsim,
        )
        bare = Member(
            "bare heartbeat loop",
            Series(f"bare SimPy loop stepping and JSON-writing the heartbeats of {days} days"),
            sides.long_bare,
        )
        groups.append(Group([Pair("long", f"{days} days", run.series, bare.series)], [run, bare]))
    return groups


def measure_all(groups: list[Group], repeat: int, say: Callable[[str], None]) -> list[Pair]:
    """Run the plan ``repeat`` times, rotating who goes first; the pairs, figures filled in."""
    for r in range(repeat):
        for g in groups:
            k = r % len(g.members)
            for m in g.members[k:] + g.members[:k]:
                figures = m.measure(r)
                m.series.runs.append(
                    {key: round(v, 4) if isinstance(v, float) else v for key, v in figures.items()}
                )
                say(f"{r + 1}/{repeat} {m.label}: {figures['rate']:,.0f} events/s")
    return [p for g in groups for p in g.pairs]
