"""Run the rules engine over events and score it: live during ``pmsim run``, or afterwards with
``pmsim replay`` (another rule file on recorded events, no re-simulation) and ``pmsim score``.

Both paths feed the engine the same events in the same order, so the same rules give a
byte-identical ``alerts.jsonl``.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path
from typing import Any

from rules.engine import Engine
from rules.ruleset import RuleSet
from rules.score import score_rules
from sim.errors import BadInput
from sim.files.beatstream import materialise, traffic
from sim.files.columnar import iter_records
from sim.files.columns import find_source, record_file
from sim.files.records import RecordWriter, read_jsonl, run_info
from sim.world.calendar import start_datetime

__all__ = ["replay_file", "run_start", "run_traffic", "score_folder"]


def replay_file(
    rules: RuleSet,
    events: Path,
    out: Path,
    end_s: float | None,
    start: datetime | None = None,
) -> Engine:
    """Feed a run's traffic through a fresh engine: ``events.jsonl`` (or an export's
    ``events.parquet``) and, beside it, the heartbeat runs in their places
    (:mod:`sim.files.beatstream`; ``start`` dates them); write alerts and work orders into
    ``out``. With the delivery times of a run folder, an event dated more than the rules'
    ``max_skew`` after its delivery is set aside (``clock_skew``); a bare events file is
    replayed as it is."""
    engine = Engine(rules)
    with (
        (out / "alerts.jsonl").open("w", encoding="utf-8", newline="\n") as fa,
        (out / "workorders.jsonl").open("w", encoding="utf-8", newline="\n") as fw,
    ):
        writer = RecordWriter(engine, fa, fw)

        def quiet(skew: float, period: float) -> bool:
            return engine.quiet_beats(skew) and engine.takes_quiet_runs(period)

        for kind, what, j in traffic(events, start, quiet):
            if kind == "event":
                if j is None:  # a bare events file, no delivery times: trusted as the run's own
                    engine.clock.max_skew = math.inf  # (rules.eventtime), hours apart or not
                writer.write(engine.consume_payload(what, j))
            elif kind == "beat":
                writer.beat(what, j)
            else:
                writer.run_closed(what)
        writer.write(engine.finish(end_s))
    return engine


def run_traffic(run_dir: Path) -> Iterator[bytes]:
    """Every event ``run_dir`` (a run folder or an export of one) delivered, heartbeats built
    again, in delivery order (one JSON document each): what a subscriber to the run's broker saw
    of the devices."""
    return materialise(find_source(run_dir, "events"), run_start(run_dir))


def run_start(run_dir: Path) -> datetime:
    """The scenario's start, which dates the run's heartbeats."""
    info = run_info(run_dir)
    try:
        return start_datetime(date.fromisoformat(str(info["start"])))
    except (KeyError, ValueError):
        raise BadInput(f"{run_dir / 'run.json'}: no valid start time") from None


def score_folder(rules: RuleSet, run_dir: Path, results: Path) -> dict[str, Any]:
    """Score the alerts in ``results`` against the truth of ``run_dir`` (a run folder or an
    export of one)."""
    info = run_info(run_dir)
    days = float(info["days"])
    truth_path = record_file(run_dir, "truth")
    if truth_path is None:
        raise BadInput(f"{run_dir}: no truth.jsonl or truth.parquet to score against")
    return score_rules(
        rules,
        read_jsonl(results / "alerts.jsonl"),
        read_jsonl(results / "workorders.jsonl"),
        list(iter_records(truth_path)),
        households=int(info["counts"]["households"]),
        days=days,
        end_s=days * 86400.0,
    )
