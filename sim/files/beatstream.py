"""A run's device traffic read back in the order it was delivered: the events of ``events.jsonl``
and the heartbeats of ``heartbeats.jsonl`` interleaved exactly as the simulation sent them.

During a run the world hands out every beat due by the moment something else is delivered, before
it (:mod:`devices.liveness`), in the order (true time, device's place). So beat ``j`` of a run
comes before event ``i`` exactly when its true time is at or before the event's delivery time
(``events.delivered``), and beats with nothing after them come at the end. Replaying in this order
feeds an engine what the live run fed it, beat for beat.
"""

from __future__ import annotations

import heapq
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from devices.base import Clock
from devices.liveness import BeatRun
from sim.errors import BadInput
from sim.files.eventlog import DELIVERED, HEARTBEATS

__all__ = ["Beat", "Line", "beat_runs", "interleave", "materialise", "traffic"]


@dataclass(frozen=True, slots=True)
class _Owner:
    """The device a stored run belongs to, as far as rebuilding its beats goes."""

    device_id: str
    kind: Any
    estate: str
    building: str
    floor: int | None
    clock: Clock


Line = bytes  # one line of events.jsonl, as written
Beat = tuple[BeatRun, int]  # beat j of a run


def beat_runs(path: Path, start: datetime) -> list[BeatRun]:
    """The runs of ``heartbeats.jsonl``, ready to rebuild each beat (clock from ``start``)."""
    clock = Clock(start)
    runs: list[BeatRun] = []
    with path.open(encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                r = json.loads(line)
                owner = _Owner(
                    r["device_id"], r["device_kind"], r["estate"], r["building"], r["floor"], clock
                )
                run = BeatRun(
                    owner,
                    int(r["first_seq"]),
                    int(r["first_k"]),
                    float(r["t0_s"]),
                    float(r["period_s"]),
                    float(r["skew_s"]),
                    int(r["order"]),
                )
                run.count = int(r["count"])
            except (ValueError, KeyError, TypeError) as exc:
                raise BadInput(f"{path}:{n}: not a heartbeat run ({exc})") from None
            if run.count <= 0 or run.period <= 0:
                raise BadInput(f"{path}:{n}: a heartbeat run needs a count and a period")
            runs.append(run)
    return runs


def interleave(
    lines: Iterator[Line], delivered: Iterator[float], runs: list[BeatRun]
) -> Iterator[Line | Beat]:
    """Event lines and beats in delivery order (see the module's docstring)."""
    heap = [(run.true_time(0), run.order, i, 0) for i, run in enumerate(runs)]
    heapq.heapify(heap)
    for line in lines:
        at = next(delivered, None)
        if at is None:
            raise ValueError("fewer delivery times than events")
        while heap and heap[0][0] <= at:
            yield from _pop(heap, runs)
        yield line
    while heap:
        yield from _pop(heap, runs)


def _pop(heap: list[tuple[float, int, int, int]], runs: list[BeatRun]) -> Iterator[Beat]:
    _t, order, i, j = heap[0]
    run = runs[i]
    if j + 1 < run.count:
        heapq.heapreplace(heap, (run.true_time(j + 1), order, i, j + 1))
    else:
        heapq.heappop(heap)
    yield (run, j)


def traffic(events: Path, start: datetime | None) -> Iterator[Line | Beat]:
    """What a run delivered: ``events`` with the heartbeat runs beside it when there are some
    (and a ``start`` to date them), else the lines of ``events`` alone."""
    runs_path = events.parent / HEARTBEATS
    delivered_path = events.parent / DELIVERED
    with events.open("rb") as src:
        lines = (line for line in src if line.strip())
        if start is None or not runs_path.exists() or not delivered_path.exists():
            yield from lines
            return
        runs = beat_runs(runs_path, start)
        with delivered_path.open(encoding="utf-8") as fd:
            times = (float(x) for x in fd if x.strip())
            try:
                yield from interleave(lines, times, runs)
            except ValueError as exc:
                raise BadInput(f"{delivered_path}: {exc} in {events.name}") from None


def materialise(events: Path, start: datetime | None) -> Iterator[bytes]:
    """Every event a run delivered, in delivery order, each heartbeat of a run built again as the
    JSON its message carried: the lines a subscriber to ``{prefix}/dev/#`` and ``gw/#`` saw."""
    for item in traffic(events, start):
        if isinstance(item, bytes):
            yield item.rstrip(b"\r\n")
        else:
            run, j = item
            yield run.event(j).model_dump_json().encode()
