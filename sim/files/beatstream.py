"""A run's device traffic read back in the order it was delivered: the events of ``events.jsonl``
and the heartbeats of ``heartbeats.jsonl`` interleaved exactly as the simulation sent them.

During a run the world hands out every beat due by the moment something else is delivered, before
it (:mod:`devices.liveness`), in the order (true time, device's place). So beat ``j`` of a run
comes before event ``i`` exactly when its true time is at or before the event's delivery time
(``events.delivered``), and beats with nothing after them come at the end. Replaying in this order
feeds an engine what the live run fed it, beat for beat.

An export folder of a run (``pmsim export --format parquet``) reads the same: ``events.parquet``
carries the delivery times in its ``delivered_s`` column, ``heartbeats.parquet`` the runs, and each
event's JSON is built again from its record, the very text of its line in ``events.jsonl``.
"""

from __future__ import annotations

import heapq
import json
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from devices.base import Clock
from devices.events import event_bytes
from devices.liveness import BeatRun
from sim.errors import BadInput
from sim.files.columnar import read_delivered, read_parquet
from sim.files.columns import record_file
from sim.files.eventlog import DELIVERED

__all__ = ["Item", "Line", "Quiet", "beat_runs", "interleave", "materialise", "traffic"]


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
# ("event", line, delivered at or None), ("beat", run, j) or ("end", run, last j): what was sent
Item = tuple[str, Any, Any]


def _run_records(path: Path) -> Iterator[tuple[int, Any]]:
    if path.suffix == ".parquet":
        yield from enumerate(read_parquet(path), 1)
        return
    with path.open(encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                yield n, json.loads(line)
            except ValueError as exc:
                raise BadInput(f"{path}:{n}: not a heartbeat run ({exc})") from None


def beat_runs(path: Path, start: datetime) -> list[BeatRun]:
    """The runs of ``heartbeats.jsonl`` (or ``heartbeats.parquet``), ready to rebuild each beat
    (clock from ``start``)."""
    clock = Clock(start)
    runs: list[BeatRun] = []
    for n, r in _run_records(path):
        try:
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
        problem = _implausible(run)
        if problem:
            raise BadInput(f"{path}:{n}: {problem}")
        runs.append(run)
    return runs


MAX_SPAN_S = 20 * 366 * 86400.0  # no run of pmsim's is simulated for twenty years


def _implausible(run: BeatRun) -> str:
    """Why a stored run cannot be one pmsim wrote ('' if it can): rebuilding it must end."""
    numbers = (run.t0, run.period, run.skew)
    if any(x != x or x in (float("inf"), float("-inf")) for x in numbers):
        return "a heartbeat run's times must be finite numbers"
    if run.count <= 0 or run.period <= 0 or run.first_k < 0 or run.first_seq < 0:
        return "a heartbeat run needs a positive count and period and no negative index"
    if not -MAX_SPAN_S <= run.t0 <= MAX_SPAN_S or abs(run.skew) > 86400.0:
        return "a heartbeat run's start or clock skew is out of range"
    if run.true_time(run.count - 1) > MAX_SPAN_S or not isinstance(run.device_id, str):
        return "a heartbeat run that lasts past twenty years or has no device id"
    return ""


def interleave(
    lines: Iterator[Line],
    delivered: Iterator[float],
    runs: list[BeatRun],
    every_beat: bool = True,
) -> Iterator[Item]:
    """Event lines (with their delivery times), beats and ends of runs in delivery order (see
    the module's docstring). Without ``every_beat``, a run gives its first beat and its end only
    (for an engine that keeps runs quiet)."""
    heap: list[tuple[float, int, int, int]] = [
        (run.true_time(0), run.order, i, 0) for i, run in enumerate(runs)
    ]
    heapq.heapify(heap)
    for line in lines:
        at = next(delivered, None)
        if at is None:
            raise ValueError("fewer delivery times than events")
        while heap and heap[0][0] <= at:
            yield from _pop(heap, runs, every_beat)
        yield ("event", line, at)
    while heap:
        yield from _pop(heap, runs, every_beat)


def _pop(
    heap: list[tuple[float, int, int, int]], runs: list[BeatRun], every_beat: bool
) -> Iterator[Item]:
    _t, order, i, j = heap[0]
    run = runs[i]
    last = run.count - 1
    if j < last:
        nxt = j + 1 if every_beat else last
        heapq.heapreplace(heap, (run.true_time(nxt), order, i, nxt))
    else:
        heapq.heappop(heap)
    if j == 0 or every_beat:
        yield ("beat", run, j)
    if j == last:
        yield ("end", run, j)


Quiet = Callable[[float, float], bool]  # (largest clock skew, longest period) -> runs may be quiet


def traffic(events: Path, start: datetime | None, quiet: Quiet | None = None) -> Iterator[Item]:
    """What a run delivered: ``events`` (a run's ``events.jsonl`` or an export's
    ``events.parquet``) with the heartbeat runs beside it when there are some (and a ``start`` to
    date them), else the lines of ``events`` alone (delivery times unknown). ``quiet`` is asked
    once, with the runs' largest clock skew and longest period, whether a run's first beat and
    its end are all the consumer needs (else every beat comes)."""
    runs_path = record_file(events.parent, "heartbeats", events.suffix)
    with ExitStack() as stack:
        lines = _lines(events, stack)
        times = None if start is None or runs_path is None else _delivered(events, stack)
        if start is None or runs_path is None or times is None:
            for line in lines:
                yield ("event", line, None)
            return
        runs = beat_runs(runs_path, start)
        skew = max((abs(run.skew) for run in runs), default=0.0)
        period = max((run.period for run in runs), default=0.0)
        every_beat = quiet is None or not quiet(skew, period)
        where = events if events.suffix == ".parquet" else events.parent / DELIVERED
        try:
            yield from interleave(lines, times, runs, every_beat)
        except ValueError as exc:
            raise BadInput(f"{where}: {exc} in {events.name}") from None
        if next(times, None) is not None:
            raise BadInput(f"{where}: more delivery times than events in {events.name}")


def _lines(events: Path, stack: ExitStack) -> Iterator[Line]:
    """The events as JSON text: the lines of a JSON Lines file as they are, or each record of a
    Parquet file as the line it was exported from."""
    if events.suffix == ".parquet":
        dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
        return (dumps(rec).encode() for rec in read_parquet(events))
    src = stack.enter_context(events.open("rb"))
    return (line for line in src if line.strip())


def _delivered(events: Path, stack: ExitStack) -> Iterator[float] | None:
    """When each event was delivered: ``events.delivered`` beside a JSON Lines file, the
    ``delivered_s`` column of a Parquet one; None if unknown."""
    if events.suffix == ".parquet":
        return read_delivered(events)
    path = events.parent / DELIVERED
    if not path.exists():
        return None
    fd = stack.enter_context(path.open(encoding="utf-8"))
    return _times(path, fd)


def _times(path: Path, fd: Iterator[str]) -> Iterator[float]:
    for n, text in enumerate(fd, 1):
        try:
            at = float(text)
        except ValueError:
            raise BadInput(f"{path}:{n}: not a time in seconds: {text.strip()[:40]!r}") from None
        if at != at or at in (float("inf"), float("-inf")):
            raise BadInput(f"{path}:{n}: not a finite time: {text.strip()[:40]!r}")
        yield at


def materialise(events: Path, start: datetime | None) -> Iterator[bytes]:
    """Every event a run delivered, in delivery order, each heartbeat of a run built again as the
    JSON its message carried: the lines a subscriber to ``{prefix}/dev/#`` and ``gw/#`` saw."""
    for kind, what, j in traffic(events, start):
        if kind == "event":
            yield what.rstrip(b"\r\n")
        elif kind == "beat":
            yield event_bytes(what.event(j))
