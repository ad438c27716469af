"""Events/s delivered into the engine over a broker, next to a bare paho pipe on the same broker.

    python benchmarks/bench_mqtt.py [--kind mosquitto|amqtt] [--days N] [--repeat R]

The bare pipe is one paho publisher -> broker -> one paho subscriber at QoS 1, with payloads the
size of pmsim's average event and the same in-flight window. The pmsim figure is a full
``pmsim run`` of Xinhong over the same broker: simulation, one connection per estate gateway,
the engine's subscriber, re-sequencing and the engine itself. Both run alternately R times on one
broker; medians and min-max are printed, with the ratio.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt

from sim.broker import EmbeddedBroker
from sim.carrier import Link
from sim.runner import run_to_folder
from sim.scenario import load_scenario

WINDOW = 2000


def bare_pipe(port: int, n: int, size: int, protocol: int) -> float:
    got = 0
    done = threading.Event()
    ready = threading.Event()

    def on_message(_c: Any, _u: Any, _m: Any) -> None:
        nonlocal got
        got += 1
        if got >= n:
            done.set()

    sub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=protocol)
    sub.on_message = on_message
    sub.on_subscribe = lambda *a: ready.set()
    sub.max_inflight_messages_set(WINDOW)
    sub.connect("127.0.0.1", port)
    sub.loop_start()
    sub.subscribe("bench/pipe", qos=1)
    ready.wait(10)
    pub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=protocol)
    pub.max_inflight_messages_set(WINDOW)
    pub.max_queued_messages_set(0)
    pub.connect("127.0.0.1", port)
    pub.loop_start()
    payload = b"x" * size
    t0 = time.perf_counter()
    for _ in range(n):
        pub.publish("bench/pipe", payload, qos=1)
    if not done.wait(300):
        raise RuntimeError(f"bare pipe: {got} of {n} arrived")
    dt = time.perf_counter() - t0
    for c in (pub, sub):
        c.disconnect()
        c.loop_stop()
    return n / dt


def pmsim_run(url: str, days: int) -> tuple[float, int, int]:
    sc = load_scenario(Path("seeds/xinhong.yaml"))
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "run"
        t0 = time.perf_counter()
        result = run_to_folder(sc, out, days=days, seed=1, link=Link(broker=url, prefix="bench"))
        dt = time.perf_counter() - t0
        size = (out / "events.jsonl").stat().st_size // max(1, result.events)
    return result.mqtt["consumed"] / dt, result.events, size


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--kind", default="mosquitto", choices=["mosquitto", "amqtt"])
    ap.add_argument("--days", type=int, default=1)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    pm: list[float] = []
    bare: list[float] = []
    with EmbeddedBroker(args.kind) as broker:
        protocol = mqtt.MQTTv5 if broker.kind == "mosquitto" else mqtt.MQTTv311
        for _ in range(args.repeat):
            rate, n, size = pmsim_run(broker.url, args.days)
            pm.append(rate)
            bare.append(bare_pipe(broker.port, n, size, protocol))
        desc = broker.describe()

    def fmt(rates: list[float]) -> str:
        return f"{statistics.median(rates):>9,.0f} ev/s  (min {min(rates):,.0f}, max {max(rates):,.0f})"

    print(f"{desc}; xinhong {args.days} day(s): {n:,} events of ~{size} bytes, QoS 1")
    print(f"pmsim run (sim -> broker -> engine): {fmt(pm)}")
    print(f"bare paho pub -> broker -> sub    : {fmt(bare)}")
    print(
        f"ratio pmsim / bare                : {statistics.median(pm) / statistics.median(bare):.3f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
