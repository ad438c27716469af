"""Run the rules engine over events and score it: live during ``pmsim run``, or afterwards with
``pmsim replay`` (another rule file on recorded events, no re-simulation) and ``pmsim score``.

Both paths feed the engine the same events in the same order, so the same rules give a
byte-identical ``alerts.jsonl``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

from devices.events import DeviceEvent
from rules.engine import Engine, Record
from rules.ruleset import RuleSet
from rules.score import score_rules
from sim.errors import BadInput

__all__ = ["RecordWriter", "read_jsonl", "replay_file", "run_info", "score_folder", "write_score"]


class RecordWriter:
    """Engine subscriber: feeds each event to the engine, writes what comes out."""

    def __init__(self, engine: Engine, alerts: IO[str], workorders: IO[str]) -> None:
        self.engine = engine
        self.alerts = alerts
        self.workorders = workorders
        self.counts = {"alert": 0, "workorder": 0}
        self.publish: Callable[[Record], None] | None = None  # e.g. onto the broker

    def __call__(self, topic: str, event: DeviceEvent) -> None:
        self.write(self.engine.consume(event))

    def write(self, records: list[Record]) -> None:
        for r in records:
            fh = self.alerts if r["record"] == "alert" else self.workorders
            fh.write(json.dumps(r, ensure_ascii=False, separators=(",", ":")))
            fh.write("\n")
            self.counts[r["record"]] += 1
            if self.publish is not None:
                self.publish(r)


def read_jsonl(path: Path) -> Iterator[dict[str, Any]]:
    with path.open(encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            try:
                yield json.loads(line)
            except json.JSONDecodeError as exc:
                raise BadInput(f"{path}:{n}: not JSON: {exc.msg}") from None


def replay_file(rules: RuleSet, events: Path, out: Path, end_s: float | None) -> Engine:
    """Feed ``events.jsonl`` through a fresh engine; write alerts and work orders into ``out``."""
    engine = Engine(rules)
    with (
        events.open("rb") as src,
        (out / "alerts.jsonl").open("w", encoding="utf-8", newline="\n") as fa,
        (out / "workorders.jsonl").open("w", encoding="utf-8", newline="\n") as fw,
    ):
        writer = RecordWriter(engine, fa, fw)
        for line in src:
            if line.strip():
                writer.write(engine.consume_payload(line))
        writer.write(engine.finish(end_s))
    return engine


def run_info(run_dir: Path) -> dict[str, Any]:
    try:
        info: dict[str, Any] = json.loads((run_dir / "run.json").read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BadInput(f"{run_dir}: not a run folder (no run.json)") from None
    except json.JSONDecodeError as exc:
        raise BadInput(f"{run_dir / 'run.json'}: not JSON: {exc.msg}") from None
    return info


def score_folder(rules: RuleSet, run_dir: Path, results: Path) -> dict[str, Any]:
    """Score the alerts in ``results`` against the truth of ``run_dir``."""
    info = run_info(run_dir)
    days = float(info["days"])
    truth_path = run_dir / "truth.jsonl"
    if not truth_path.exists():
        raise BadInput(f"{run_dir}: no truth.jsonl to score against")
    return score_rules(
        rules,
        read_jsonl(results / "alerts.jsonl"),
        read_jsonl(results / "workorders.jsonl"),
        list(read_jsonl(truth_path)),
        households=int(info["counts"]["households"]),
        days=days,
        end_s=days * 86400.0,
    )


def write_score(score: dict[str, Any], path: Path) -> None:
    path.write_text(json.dumps(score, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
