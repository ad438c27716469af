"""Replay throughput: events/s through the default rules from ``events.jsonl``, next to a bare loop
that reads the same file and keeps one sliding-window count per key.

    python benchmarks/bench_replay.py RUN_DIR [--rules FILE] [--repeat R]

Both are measured in the same invocation, alternately, R times; medians and min-max are printed,
with the ratio.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections import deque
from pathlib import Path

from rules.engine import Engine
from sim.rulefiles import DEFAULT_RULES, load_rules


def engine_pass(events: Path, rules_path: Path) -> tuple[int, float]:
    rules = load_rules(rules_path)
    t0 = time.perf_counter()
    engine = Engine(rules)
    n = 0
    with events.open("rb") as fh:
        for line in fh:
            engine.consume_payload(line)
            n += 1
    engine.finish()
    return n, time.perf_counter() - t0


def bare_pass(events: Path, window: float = 600.0) -> tuple[int, float]:
    """json.loads each line; a deque of event times per device; count within the window."""
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


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("run_dir", type=Path)
    ap.add_argument("--rules", type=Path, default=DEFAULT_RULES)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    events = args.run_dir / "events.jsonl"
    eng: list[float] = []
    bare: list[float] = []
    n = 0
    for _ in range(args.repeat):
        n, dt = engine_pass(events, args.rules)
        eng.append(n / dt)
        n, dt = bare_pass(events)
        bare.append(n / dt)

    def fmt(rates: list[float]) -> str:
        return f"{statistics.median(rates):>10,.0f} ev/s  (min {min(rates):,.0f}, max {max(rates):,.0f})"

    print(f"{events}: {n:,} events, rules {args.rules}")
    print(f"pmsim replay (default rules)  : {fmt(eng)}")
    print(f"bare json + sliding window    : {fmt(bare)}")
    print(f"ratio replay / bare           : {statistics.median(eng) / statistics.median(bare):.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
