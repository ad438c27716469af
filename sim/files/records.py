"""The records of a run folder: the engine's alerts and work orders written as JSON Lines while it
consumes events, JSON Lines read back with line-numbered errors, ``run.json`` and ``score.json``."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from devices.events import DeviceEvent
from devices.liveness import BeatRun
from rules.engine import Engine, Record
from rules.workorders import workorder_figures
from sim.errors import BadInput

__all__ = [
    "EngineOutcome",
    "RecordWriter",
    "finish_engine",
    "read_jsonl",
    "run_info",
    "write_score",
]


def _unknown() -> float | None:
    return None


class RecordWriter:
    """Engine subscriber: feeds each event to the engine, writes what comes out."""

    def __init__(self, engine: Engine, alerts: IO[str], workorders: IO[str]) -> None:
        self.engine = engine
        self.alerts = alerts
        self.workorders = workorders
        self.counts = {"alert": 0, "workorder": 0}
        self.publish: Callable[[Record], None] | None = None  # e.g. onto the broker
        self.now: Callable[[], float | None] = _unknown  # delivery time (quiet heartbeat runs)

    def __call__(self, topic: str, event: DeviceEvent) -> None:
        self.write(self.engine.consume(event, self.now()))

    def beat(self, run: BeatRun, j: int) -> None:
        """Beat ``j`` of a heartbeat run: the first as an event, the rest noted by index, or not
        at all when the engine keeps the run quiet."""
        if j:
            if not run.quiet:
                self.write(self.engine.note_beat(run, j))
        else:
            self.write(self.engine.start_run(run.event(0), run))

    def run_closed(self, run: BeatRun) -> None:
        self.engine.close_run(run)

    def write(self, records: list[Record]) -> None:
        for r in records:
            fh = self.alerts if r["record"] == "alert" else self.workorders
            fh.write(json.dumps(r, ensure_ascii=False, separators=(",", ":")))
            fh.write("\n")
            self.counts[r["record"]] += 1
            if self.publish is not None:
                self.publish(r)


@dataclass(frozen=True)
class EngineOutcome:
    """What a run's engine leaves besides its records: how many it wrote, its counters, and the
    work orders' response figures (picklable: it comes back from an engine process)."""

    counts: dict[str, int]
    stats: dict[str, int]
    workorders: dict[str, Any]


def finish_engine(writer: RecordWriter, end_s: float) -> EngineOutcome:
    """Run the engine's timers to the run's end, write what fires, and sum it up."""
    engine = writer.engine
    writer.write(engine.finish(end_s))
    writer.alerts.flush()  # the rankings read these files before they are closed
    writer.workorders.flush()
    orders = list(engine.s.workorders.orders.values())
    return EngineOutcome(
        counts=dict(writer.counts),
        stats=dict(sorted(engine.stats.items())),
        workorders=workorder_figures(orders, end_s),
    )


def read_jsonl(path: Path) -> Iterator[dict[str, Any]]:
    with path.open(encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            try:
                yield json.loads(line)
            except json.JSONDecodeError as exc:
                raise BadInput(f"{path}:{n}: not JSON: {exc.msg}") from None


def run_info(run_dir: Path) -> dict[str, Any]:
    try:
        info: dict[str, Any] = json.loads((run_dir / "run.json").read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BadInput(f"{run_dir}: not a run folder (no run.json)") from None
    except json.JSONDecodeError as exc:
        raise BadInput(f"{run_dir / 'run.json'}: not JSON: {exc.msg}") from None
    return info


def write_score(score: dict[str, Any], path: Path) -> None:
    path.write_text(json.dumps(score, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
