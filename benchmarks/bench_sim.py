"""Event rate of an in-process run next to a bare SimPy loop with as many processes.

    python benchmarks/bench_sim.py [SCENARIO] [--days N] [--repeat R]

Both are measured in the same invocation, alternately, R times; medians and min-max are printed,
with the ratio. The bare loop has the same number of SimPy processes as the run started, and fires
the same total number of timeouts as the run emitted events: the cost of SimPy alone.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Generator
from pathlib import Path
from typing import Any

import simpy

from sim.runner import run_to_folder
from sim.scenario import load_scenario


def pmsim_run(scenario: Path, days: int) -> tuple[int, int, float]:
    """(events, processes started, wall seconds) of one in-process run with its run folder."""
    started = 0
    original = simpy.Environment.__dict__["process"]  # a descriptor binding Process to the env

    def counting(self: simpy.Environment, gen: Any) -> simpy.Process:
        nonlocal started
        started += 1
        return simpy.Process(self, gen)

    simpy.Environment.process = counting  # type: ignore[method-assign]
    try:
        sc = load_scenario(scenario)
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            result = run_to_folder(sc, Path(tmp) / "run", days=days, seed=sc.seed)
            wall = time.perf_counter() - t0
    finally:
        simpy.Environment.process = original  # type: ignore[method-assign]
    return result.events, started, wall


def bare_loop(processes: int, events: int, horizon: float) -> float:
    """Wall seconds for ``processes`` SimPy processes firing ``events`` timeouts in all."""
    env = simpy.Environment()
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
    return time.perf_counter() - t0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("scenario", nargs="?", default="seeds/xinhong.yaml", type=Path)
    ap.add_argument("--days", type=int, default=30)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    sim_rates: list[float] = []
    bare_rates: list[float] = []
    events = processes = 0
    for _ in range(args.repeat):
        events, processes, wall = pmsim_run(args.scenario, args.days)
        sim_rates.append(events / wall)
        bare_rates.append(events / bare_loop(processes, events, args.days * 86400.0))

    def fmt(rates: list[float]) -> str:
        return f"{statistics.median(rates):>10,.0f} ev/s  (min {min(rates):,.0f}, max {max(rates):,.0f})"

    print(f"scenario {args.scenario}, {args.days} days: {events:,} events, {processes:,} processes")
    print(f"pmsim run --broker none : {fmt(sim_rates)}")
    print(f"bare SimPy loop         : {fmt(bare_rates)}")
    print(
        f"ratio pmsim / bare      : {statistics.median(sim_rates) / statistics.median(bare_rates):.3f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
