"""``pmsim bench``: pmsim's throughput next to bare baselines, in one run, on one broker.

A figure such as "3,000 events/s over MQTT" says nothing until it stands next to what the broker
and paho manage with no pmsim at all, measured the same minute on the same machine. Each pair here
is pmsim's figure and the thinnest code doing the same job (measured by :mod:`sim.commands.benchpairs`,
in the order :mod:`sim.commands.benchrun` plans):

- MQTT QoS 1 (and 0): ``pmsim run`` over the broker (simulation -> broker -> engine, events the
  engine consumed per second of the run) next to a paho publisher -> broker -> paho subscriber
  pipe carrying as many messages of the average event's size, with the same in-flight window;
  with ``--batch N`` (when the carrier can batch) also the batched run against the same pipe;
- in-process: ``pmsim run --broker none`` next to a bare SimPy loop with as many processes and
  timeouts;
- replay: ``pmsim replay`` of that run's events next to a bare JSON + sliding-window loop.

Repetitions alternate the members of a pair, rotating who goes first, to spread machine noise;
each side reports its median and min-max, each pair the ratio of medians. ``bench.json`` keeps
every repetition's raw figures, the machine, the broker and the parameters.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import platform
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, cast

from sim.errors import BadInput
from sim.files.rulefiles import DEFAULT_RULES
from sim.mqtt.url import BrokerURL, TLSFiles

__all__ = [
    "BenchOptions",
    "add_bench_options",
    "bench_command",
    "carrier_batch",
    "format_bench",
    "run_bench",
]

SEEDS = Path(__file__).resolve().parents[2] / "seeds"
DEFAULT_SCENARIO = SEEDS / "xinhong.yaml"
AUTO_BATCH = 50  # the batched variant measured when the carrier batches but --batch is not given


def add_bench_options(p: argparse.ArgumentParser) -> None:
    """``pmsim bench``'s own options (``--broker``, ``--prefix`` and TLS come from the CLI)."""
    p.add_argument(
        "--broker-kind",
        default="auto",
        choices=["auto", "mosquitto", "amqtt"],
        help="with --broker embedded: which broker (default mosquitto if installed)",
    )
    p.add_argument(
        "--scenario", type=Path, default=DEFAULT_SCENARIO, help="default seeds/xinhong.yaml"
    )
    p.add_argument("--rules", type=Path, default=DEFAULT_RULES, help="rule file (default rules)")
    p.add_argument("--seed", type=int, help="default: the scenario's seed")
    p.add_argument("--days", type=int, default=1, help="simulated days of MQTT runs (default 1)")
    p.add_argument(
        "--sim-days", type=int, default=7, help="simulated days of in-process and replay (7)"
    )
    p.add_argument(
        "--long-days",
        type=int,
        default=0,
        help="also the long pair: pmsim run --days N --broker none against a bare SimPy loop "
        "stepping and JSON-writing the same heartbeats (183: a half-year; default 0, off)",
    )
    p.add_argument("--repeat", type=int, default=3, help="repetitions of each pair (default 3)")
    p.add_argument("--qos", choices=["0", "1", "both"], default="both", help="MQTT pairs' QoS")
    p.add_argument(
        "--batch",
        type=int,
        action="append",
        help="also measure MQTT runs publishing N events per message (repeatable)",
    )
    p.add_argument(
        "--pipe-messages", type=int, help="bare pipe messages (default: as many as events)"
    )
    p.add_argument("--out", type=Path, default=Path("bench.json"), help="default bench.json")
    p.add_argument(
        "--broker-crash",
        type=int,
        metavar="N",
        help="instead: kill -9 the embedded Mosquitto N times in a QoS 1 stream and count the "
        "acknowledged events lost (sim/commands/brokercrash.py)",
    )
    p.add_argument("--crash-events", type=int, default=200_000, help="events in that stream")
    p.add_argument(
        "--crash-autosave", type=int, help="Mosquitto autosave_interval, s (default: ours)"
    )
    p.add_argument(
        "--crash-rate", type=float, help="the subscriber takes R messages/s (default: unpaced)"
    )
    p.add_argument(
        "--crash-publish-rate",
        type=float,
        default=2000.0,
        help="events/s published (default 2,000; 0: full speed)",
    )


def bench_command(args: argparse.Namespace) -> int:
    """The CLI's ``pmsim bench``."""
    if args.broker == "none":
        raise BadInput("--broker none: bench measures over a broker; use embedded or a URL")
    if args.broker_crash is not None:
        from sim.commands.brokercrash import crash_command

        return crash_command(args)
    opts = BenchOptions(
        broker=args.broker,
        broker_kind=args.broker_kind,
        tls=TLSFiles(args.ca, args.cert, args.key),
        prefix=args.prefix,
        scenario=args.scenario,
        rules=args.rules,
        seed=args.seed,
        days=args.days,
        sim_days=args.sim_days,
        repeat=args.repeat,
        qos=(1, 0) if args.qos == "both" else (int(args.qos),),
        batches=tuple(args.batch) if args.batch else None,
        pipe_messages=args.pipe_messages,
        long_days=args.long_days,
        out=args.out,
    )
    run_bench(opts)
    return 0


@dataclasses.dataclass(frozen=True)
class BenchOptions:
    broker: str = "embedded"
    broker_kind: str = "auto"
    tls: TLSFiles = dataclasses.field(default_factory=TLSFiles)
    prefix: str = "pm"  # runs and pipes publish below PREFIX/bench-PID/, and only there
    scenario: Path = DEFAULT_SCENARIO
    rules: Path = DEFAULT_RULES
    seed: int | None = None
    days: int = 1
    sim_days: int = 7
    repeat: int = 3
    qos: tuple[int, ...] = (1, 0)
    batches: tuple[int, ...] | None = None  # None: AUTO_BATCH when the carrier batches
    pipe_messages: int | None = None
    long_days: int = 0  # the long pair (0: not measured)
    out: Path = Path("bench.json")

    @property
    def root(self) -> str:
        """The bench's own topic subtree: nothing of anyone else's is read or cleared."""
        return f"{self.prefix}/bench-{os.getpid()}"

    def check(self) -> None:
        for name in ("days", "sim_days", "repeat"):
            if getattr(self, name) < 1:
                flag = "--" + name.replace("_", "-")
                raise BadInput(f"{flag} {getattr(self, name)}: must be at least 1")
        if self.seed is not None and self.seed < 0:
            raise BadInput(f"--seed {self.seed}: must be non-negative")
        if self.long_days < 0:
            raise BadInput(f"--long-days {self.long_days}: must be 0 (off) or more")
        if self.pipe_messages is not None and self.pipe_messages < 1:
            raise BadInput(f"--pipe-messages {self.pipe_messages}: must be at least 1")
        if any(b < 1 for b in self.batches or ()):
            raise BadInput(f"--batch {min(self.batches or ())}: must be at least 1")
        if self.batches and not carrier_batch()[0]:
            raise BadInput("--batch: this pmsim's carrier (sim.mqtt.carrier.Link) does not batch")
        if self.broker == "embedded" and (self.tls.ca or self.tls.cert or self.tls.key):
            raise BadInput("--ca/--cert/--key need an mqtts:// broker")
        if self.out.is_dir():
            raise BadInput(f"--out {self.out}: is a folder")
        from sim.mqtt.carrier import Link

        Link(prefix=self.root).check()
        for b in self.batches or ():  # the carrier's own limits, before anything starts
            Link(prefix=self.root, batch=b).check()


def carrier_batch() -> tuple[bool, int | None]:
    """Whether the carrier can publish several events per message (``Link.batch``), and its
    default batch size when that is a number."""
    from sim.mqtt.carrier import Link

    for f in dataclasses.fields(Link):
        if f.name == "batch":
            return True, f.default if isinstance(f.default, int) else None
    return False, None


@dataclasses.dataclass(frozen=True)
class _Broker:
    text: str  # what Link(broker=...) gets
    url: BrokerURL
    kind: str
    version: str


@contextmanager
def _broker(opts: BenchOptions) -> Iterator[_Broker]:
    """The one broker every MQTT measurement uses: our own, or the user's (probed first)."""
    from sim.commands.benchpairs import broker_version, clear_retained
    from sim.mqtt.url import parse_broker_url

    if opts.broker == "embedded":
        from sim.mqtt.broker import BrokerError, BrokerKind, EmbeddedBroker

        try:
            embedded = EmbeddedBroker(cast("BrokerKind", opts.broker_kind)).start()
        except BrokerError as exc:
            raise BadInput(str(exc)) from None
        try:
            yield _Broker(
                embedded.url, parse_broker_url(embedded.url), embedded.kind, embedded.version()
            )
        finally:
            embedded.stop()
        return
    url = parse_broker_url(opts.broker, opts.tls)
    version = broker_version(url)  # BadInput, quickly, when nobody answers
    try:
        yield _Broker(opts.broker, url, "external", version)
    finally:
        with contextlib.suppress(BadInput, OSError):  # never hide why the bench stopped
            clear_retained(url, opts.root)


def _say(text: str) -> None:
    print(f"pmsim bench: {text}", file=sys.stderr, flush=True)


def run_bench(opts: BenchOptions, stdout: IO[str] | None = None) -> dict[str, Any]:
    """Measure every pair ``opts.repeat`` times, print the table, write ``opts.out``; returns
    what was written."""
    from sim.commands.benchpairs import transport_window
    from sim.commands.benchrun import Setup, Sides, measure_all, plan
    from sim.files.rulefiles import load_rules
    from sim.runner import versions
    from sim.world.scenario import load_scenario

    opts.check()
    sc = load_scenario(opts.scenario)
    load_rules(opts.rules)  # a bad rule file: refused before anything runs
    seed = opts.seed if opts.seed is not None else sc.seed
    batching, default_batch = carrier_batch()
    batches = opts.batches
    if batches is None:  # the carrier batches but not by default: show what batching gives
        batches = (AUTO_BATCH,) if batching and (default_batch or 1) <= 1 else ()
    batches = tuple(b for b in dict.fromkeys(batches) if b != default_batch)
    window = transport_window()
    started = time.perf_counter()
    stamp = datetime.now(UTC).isoformat(timespec="seconds")
    load = os.getloadavg() if hasattr(os, "getloadavg") else None

    with _broker(opts) as broker, tempfile.TemporaryDirectory(prefix="pmsim-bench-") as tmp:
        _say(f"broker {broker.kind} {broker.version} on {broker.url}")
        sides = Sides(
            Setup(
                scenario=sc,
                seed=seed,
                rules=opts.rules,
                days=opts.days,
                sim_days=opts.sim_days,
                prefix=opts.root,
                broker=broker.text,
                url=broker.url,
                tls=opts.tls,
                window=window,
                pipe_messages=opts.pipe_messages,
                scratch=Path(tmp),
                scenario_path=opts.scenario,
                long_days=opts.long_days,
            )
        )
        pairs = measure_all(plan(sides, opts.qos, batches), opts.repeat, _say)
        for p in pairs:
            p.details = sides.details(p)
        broker_doc = {
            "kind": broker.kind,
            "version": broker.version,
            "url": str(broker.url),
            "protocol": sides.mqtt.protocol if sides.mqtt else "?",
        }
    doc: dict[str, Any] = {
        "bench": 1,
        "started": stamp,
        "wall_seconds": round(time.perf_counter() - started, 1),
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "load_average_at_start": [round(x, 2) for x in load] if load else None,
            "versions": versions(),
        },
        "broker": broker_doc,
        "parameters": {
            "scenario": str(opts.scenario),
            "scenario_name": sc.name,
            "rules": str(opts.rules),
            "seed": seed,
            "mqtt_days": opts.days,
            "sim_days": opts.sim_days,
            "repeat": opts.repeat,
            "qos": list(opts.qos),
            "carrier_batches": batching,
            "batch_default": default_batch,
            "batches": list(batches),
            "window": window,
        },
        "pairs": [p.to_json() for p in pairs],
    }
    out = stdout or sys.stdout
    out.write(format_bench(doc))
    _write_atomic(opts.out, doc)
    out.write(f"wrote {opts.out} in {doc['wall_seconds']:.0f} s\n")
    return doc


def format_bench(doc: dict[str, Any]) -> str:
    """The printed table: a heading, then per pair each side's median (min, max) and the ratio."""
    par, b, m = doc["parameters"], doc["broker"], doc["machine"]
    first = doc["pairs"][0]
    sim = next(p for p in doc["pairs"] if p["id"] == "sim")
    lines = [
        f"pmsim bench: {par['scenario_name']} seed {par['seed']}, {par['repeat']} repetitions "
        f"(median, min-max); {m['cpus']} CPUs, Python {m['versions']['python']}, "
        f"paho-mqtt {m['versions']['paho-mqtt']}",
        f"broker: {b['kind']} {b['version']} on {b['url']}, MQTT {b['protocol']}",
        f"MQTT pairs: {par['mqtt_days']} day(s), {first['events']:,} events of "
        f"{first['payload_bytes']:.0f} bytes; bare pipe {first['pipe_messages']:,} messages, "
        f"in-flight window {par['window']}",
        f"in-process and replay: {par['sim_days']} days, {sim['events']:,} events, "
        f"{sim['processes']:,} SimPy processes",
        "",
    ]
    width = max(len(p[s]["label"]) for p in doc["pairs"] for s in ("pmsim", "bare"))
    width = max(width, len("ratio pmsim / bare"))

    def side(s: dict[str, Any]) -> str:
        return (
            f"  {s['label']:<{width}}  {s['median']:>10,.0f} events/s"
            f"  (min {s['min']:,.0f}, max {s['max']:,.0f})"
        )

    for p in doc["pairs"]:
        lines += [
            p["title"],
            side(p["pmsim"]),
            side(p["bare"]),
            f"  {'ratio pmsim / bare':<{width}}  {p['ratio']:>10.3f}",
            "",
        ]
    return "\n".join(lines)


def _write_atomic(path: Path, doc: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(json.dumps(doc, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
