"""Run the rules engine over events and score it: live during ``pmsim run``, or afterwards with
``pmsim replay`` (another rule file on recorded events, no re-simulation) and ``pmsim score``.

Both paths feed the engine the same events in the same order, so the same rules give a
byte-identical ``alerts.jsonl``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rules.engine import Engine
from rules.ruleset import RuleSet
from rules.score import score_rules
from sim.errors import BadInput
from sim.files.records import RecordWriter, read_jsonl, run_info

__all__ = ["replay_file", "score_folder"]


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
