"""``pmsim run --replications N``: the same run over N seeds, each metric with its interval.

A difference between two rule files is only real if it is larger than the spread across seeds;
this shows that spread. Each seed is a full run folder under ``--out``; ``replications.json``
holds the per-seed scores and the summary.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from rules.objective import bootstrap
from sim.commands.executors import check_scheduler, run_tasks
from sim.commands.tasks import run_replication
from sim.errors import BadInput
from sim.files.folders import staged_folder
from sim.files.rulefiles import load_rules
from sim.report.ranking import check_rank_file
from sim.report.summary import format_interval, table
from sim.world.scenario import Scenario

__all__ = ["replicate", "summarise"]

SHOWN = ("precision", "recall", "ttd_median_s", "false_alerts_per_1000_household_days")


def summarise(scores: list[dict[str, Any]], seed: int) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for rid in scores[0]["rules"]:
        out[rid] = {}
        for metric in SHOWN:
            values = [
                s["rules"][rid][metric] for s in scores if s["rules"][rid][metric] is not None
            ]
            mean, lo, hi = bootstrap(values, seed) if values else (float("nan"),) * 3
            out[rid][metric] = {"mean": mean, "low": lo, "high": hi, "n": len(values)}
    return out


def replicate(sc: Scenario, args: argparse.Namespace, days: int, seed: int) -> int:
    n = args.replications
    if n < 1:
        raise BadInput(f"--replications {n}: at least 1")
    if args.broker not in ("none", "embedded"):
        raise BadInput("--replications runs in-process; leave out --broker")
    load_rules(args.rules)  # bad rules: refused before any work
    rank_text = None
    if args.rank_config is not None:  # and a bad ranking configuration
        check_rank_file(args.rank_config)
        rank_text = Path(args.rank_config).read_text(encoding="utf-8")
    check_scheduler(args.executor, args.scheduler)
    out: Path = args.out or Path("runs") / f"{sc.name}-s{seed}-d{days}-x{n}"
    if out.exists() and not (out / "replications.json").exists() and any(out.iterdir()):
        raise BadInput(
            f"{out}: --out is a non-empty folder that is not a pmsim replication; not overwriting"
        )
    seeds = [seed + i for i in range(n)]
    rules_text = Path(args.rules).read_text(encoding="utf-8")
    doc = sc.model_dump(mode="json")
    with staged_folder(out) as tmp:
        tasks = [
            (
                run_replication,
                (doc, s, days, rules_text, str((tmp / f"seed-{s}").resolve()), rank_text),
            )
            for s in seeds
        ]
        scores = run_tasks(tasks, executor=args.executor, scheduler=args.scheduler)
        summary = summarise(scores, seed)
        (tmp / "replications.json").write_text(
            json.dumps(
                {"seeds": seeds, "days": days, "summary": summary, "scores": scores}, indent=2
            )
            + "\n",
            encoding="utf-8",
        )

    def ci(m: dict[str, Any], fmt: str) -> str:
        return "-" if m["n"] == 0 else format_interval(m, fmt)

    rows = [
        [
            rid,
            ci(s["precision"], "{:.2f}"),
            ci(s["recall"], "{:.2f}"),
            ci(s["ttd_median_s"], "{:.0f}"),
            ci(s["false_alerts_per_1000_household_days"], "{:.3f}"),
        ]
        for rid, s in summary.items()
    ]
    print(f"pmsim run: {sc.name}, {days} days, seeds {seeds[0]}..{seeds[-1]} ({n} replications)")
    print("mean [95% bootstrap interval across seeds]")
    print(table(["rule", "precision", "recall", "ttd p50 s", "false/1k hh-days"], rows))
    print(f"\nRun folders and replications.json: {out}")
    return 0
