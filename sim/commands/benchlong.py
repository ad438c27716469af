"""The half-year pair of ``pmsim bench --long-days N``: the command a housing office runs for its
半年展, against the least a simulator of the same heartbeats must do.

- pmsim side: ``pmsim run SCENARIO --days N --broker none`` as a user runs it, in a child process
  (the whole command: simulation, engine, run folder, rankings, report), with its wall time, peak
  resident memory (``wait4``) and the size of the folder it wrote.
- bare side: a SimPy loop with one process per device of that run, stepping every heartbeat at the
  device's period over the same N days and writing each as a line of JSON the size of pmsim's
  heartbeat message: what stepping and writing the heartbeats costs, before any rule, truth or
  report. Both rates count events per wall second (pmsim: every event, heartbeats included).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Generator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import simpy

__all__ = ["LongRun", "bare_heartbeats", "long_run"]

DAY = 86400.0


@dataclass(frozen=True)
class LongRun:
    """One ``pmsim run`` of the long pair."""

    events: int
    heartbeats: int
    devices: int
    period: float
    seconds: float
    peak_rss_mb: float
    folder_mb: float

    @property
    def rate(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else 0.0


def long_run(scenario: Path, days: int, seed: int, rules: Path, out: Path) -> LongRun:
    """``pmsim run`` in a child process; its figures."""
    argv = [sys.executable, "-m", "sim", "run", str(scenario), "--days", str(days)]
    argv += ["--seed", str(seed), "--rules", str(rules), "--broker", "none"]
    argv += ["--out", str(out), "--no-progress"]
    t0 = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _pid, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - t0
    err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(f"pmsim run exited {proc.returncode}: {err.strip()[-500:]}")
    info = json.loads((out / "run.json").read_text(encoding="utf-8"))
    by_kind: dict[str, dict[str, int]] = info["counts"]["events_by_kind"]
    estates = json.loads((out / "estates.json").read_text(encoding="utf-8"))
    resolved = (out / "scenario.resolved.yaml").read_text(encoding="utf-8")
    period = 900.0
    for line in resolved.splitlines():  # devices.health.heartbeat_seconds, if the file sets it
        if line.strip().startswith("heartbeat_seconds:"):
            period = float(line.split(":", 1)[1])
    return LongRun(
        events=int(info["counts"]["events"]),
        heartbeats=sum(kinds.get("heartbeat", 0) for kinds in by_kind.values()),
        devices=sum(len(e["devices"]) for e in estates),
        period=period,
        seconds=seconds,
        peak_rss_mb=usage.ru_maxrss / 1024.0,  # kilobytes on Linux
        folder_mb=sum(p.stat().st_size for p in out.rglob("*") if p.is_file()) / 1e6,
    )


def bare_heartbeats(devices: int, period: float, days: int, path: Path) -> tuple[int, float]:
    """One SimPy process per device stepping a heartbeat every ``period`` for ``days`` and
    JSON-writing each; returns (heartbeats written, wall seconds)."""
    env = simpy.Environment()
    horizon = days * DAY
    written = 0
    t0 = time.perf_counter()
    with path.open("w", encoding="utf-8") as fh:

        def device(i: int) -> Generator[simpy.Event, Any, None]:
            nonlocal written
            name = f"estate-b{i % 40:02d}-u1f{i % 30:02d}-dev{i}"
            yield env.timeout(period * i / max(1, devices))
            seq = 0
            while True:
                doc = {
                    "schema_version": 1,
                    "event_id": f"{name}:{seq}",
                    "device_id": name,
                    "device_kind": "clutter_sensor",
                    "estate": "estate",
                    "building": "b01",
                    "floor": i % 30,
                    "time": "2026-03-02T00:00:00.000000+08:00",
                    "sim_seconds": round(env.now, 3),
                    "seq": seq,
                    "type": "heartbeat",
                }
                fh.write(json.dumps(doc, separators=(",", ":")))
                fh.write("\n")
                written += 1
                seq += 1
                yield env.timeout(period)

        for i in range(max(1, devices)):
            env.process(device(i))
        env.run(until=horizon)
    return written, time.perf_counter() - t0
