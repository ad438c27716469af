"""Run a scenario: build the world, simulate day by day, write the run folder.

The run folder is assembled in a hidden sibling directory and renamed into place at the end, so a
failed or interrupted run never leaves a half-written folder behind, and an existing folder is only
replaced when it is a previous pmsim run.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import time
from collections.abc import Callable
from contextlib import ExitStack
from importlib import metadata
from pathlib import Path
from typing import Any

import yaml

from rules.score import score_rules
from sim.errors import BadInput
from sim.files.eventlog import DELIVERED, EVENTS, HEARTBEATS, EventLog
from sim.files.folders import check_run_folder, staged_folder
from sim.files.records import read_jsonl, write_score
from sim.files.rulefiles import DEFAULT_RULES, load_rules
from sim.mqtt.carrier import EngineSide, Link, carry_events
from sim.result import RunResult
from sim.world.calendar import DAY
from sim.world.faultspec import ClockSkew
from sim.world.scenario import Scenario, flats
from sim.world.simulation import Simulation
from sim.world.world import World

__all__ = ["Link", "check_memory", "prepare_out_dir", "run_to_folder", "versions"]


def max_skew(scenario: Scenario) -> float:
    """How far off any device's clock may run (clock-skew faults), in seconds."""
    return max((f.max_skew_s for f in scenario.faults if isinstance(f, ClockSkew)), default=0.0)


def versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for dist in ("pmsim", "simpy", "numpy", "pydantic", "paho-mqtt"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = "unknown"
    return out


def _finish_folder(
    tmp: Path,
    sim: Simulation,
    resolved: Scenario,
    rules_path: Path,
    rankings_path: Path,
    days: int,
    publish: Callable[[str, str], None] | None,
) -> dict[str, Any]:
    """Everything written after the simulation: truth, the run's inputs, the rankings (published
    retained on ``{prefix}/rankings/{period}`` while the broker is still there)."""
    from sim.report.ranking import compute_rankings, write_rankings

    with open(tmp / "truth.jsonl", "w", encoding="utf-8", newline="\n") as fh:
        sim.truth.write(fh, sim.clock)
    shutil.copyfile(rules_path, tmp / "rules.yaml")
    (tmp / "estates.json").write_text(
        json.dumps(estate_table(sim.world), ensure_ascii=False, indent=1) + "\n",
        encoding="utf-8",
    )
    (tmp / "scenario.resolved.yaml").write_text(
        yaml.safe_dump(resolved.model_dump(mode="json"), allow_unicode=True, sort_keys=False),
        encoding="utf-8",
    )
    rankings = compute_rankings(tmp, rankings_path, days=days)  # the run itself at least
    write_rankings(tmp, rankings)
    if publish is not None:
        for result in rankings["periods"]:
            publish(result["period"]["id"], json.dumps(result, ensure_ascii=False))
    return rankings


def _report(folder: Path) -> str:
    """report.html when matplotlib is there; otherwise say how to get it (the run is still good)."""
    import importlib.util

    if importlib.util.find_spec("matplotlib") is None:
        return "no report.html: pip install 'pmsim[report]', then pmsim report RUN_DIR"
    from sim.report.page import write_report

    write_report(folder)
    return "report.html"


def estate_table(world: World) -> list[dict[str, Any]]:
    """What rankings need to know of each estate: who runs it, how many live there, which devices
    watched it from when (the exposure of every indicator)."""
    return [
        {
            "id": est.id,
            "name": est.name,
            "grid": est.grid,
            "company": est.company,
            "households": len(est.households),
            "devices": [
                {"device_id": d.device_id, "kind": d.kind, "installed_s": d.installed_at}
                for d in est.devices
            ],
        }
        for est in world.estates.values()
    ]


# Measured: a 200-estate city of 138,107 households (150,000 flats) peaks at 513 MB for one day of
# `pmsim run --broker none`, about 3.4 KB a flat; with room for longer runs, 4 KB a flat.
BYTES_PER_FLAT = 4096
BASE_BYTES = 300 * 1024 * 1024


def check_memory(scenario: Scenario) -> None:
    """Refuse a scenario larger than this machine's memory can simulate (one line, exit 2)."""
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return  # not a POSIX machine: no figure to check against
    n = flats(scenario)
    need = BASE_BYTES + n * BYTES_PER_FLAT
    if need > 0.8 * total:
        gb = 1024**3
        raise BadInput(
            f"scenario {scenario.name}: {n:,} flats need about {need / gb:.1f} GB to simulate; "
            f"this machine has {total / gb:.1f} GB"
        )


def prepare_out_dir(out: Path) -> None:
    """Refuse to overwrite a folder that is not a previous pmsim run (a real ``run.json``)."""
    check_run_folder(out)


def run_to_folder(
    scenario: Scenario,
    out: Path,
    *,
    days: int,
    seed: int,
    rules_path: Path = DEFAULT_RULES,
    rankings_path: Path | None = None,
    link: Link | None = None,
    speed: float | None = None,
    on_day: Callable[[int], None] | None = None,
) -> RunResult:
    ruleset = load_rules(rules_path)  # bad rules: refused before anything is written
    from sim.report.ranking import DEFAULT_RANKINGS, check_rank_file

    rankings_path = rankings_path or DEFAULT_RANKINGS
    check_rank_file(rankings_path)  # a broken indicator config too
    link = link or Link()
    prepare_out_dir(out)
    check_memory(scenario)
    resolved = scenario.model_copy(update={"days": days, "seed": seed})
    with staged_folder(out) as tmp:
        started = time.perf_counter()
        with ExitStack() as stack:  # files close first, the broker (if any) after the rankings
            fh, fd, fr = (
                stack.enter_context(open(tmp / name, "w", encoding="utf-8", newline="\n"))
                for name in (EVENTS, DELIVERED, HEARTBEATS)
            )
            log = EventLog(fh, fd, fr)
            side = EngineSide(ruleset, tmp, lambda: sim.env.now, max_skew(resolved))
            transport, finish_carrier, publish = stack.enter_context(
                carry_events(
                    link,
                    log,
                    side,
                    run_id=f"{resolved.name}-s{seed}-{os.getpid()}",
                    estates=tuple(e.id for _, e in resolved.estates()),
                )
            )
            sim = Simulation(resolved, transport, days=days, seed=seed, speed=speed)
            log.now = lambda: sim.env.now
            sim.run(on_day)
            mqtt_info, outcome = finish_carrier(days * DAY)
            for f in (fh, fd, fr):
                f.close()
            wall = time.perf_counter() - started
            rankings = _finish_folder(tmp, sim, resolved, rules_path, rankings_path, days, publish)

        households = sum(len(e.households) for e in sim.world.estates.values())
        score = score_rules(
            ruleset,
            read_jsonl(tmp / "alerts.jsonl"),
            read_jsonl(tmp / "workorders.jsonl"),
            list(read_jsonl(tmp / "truth.jsonl")),
            households=households,
            days=float(days),
            end_s=days * DAY,
        )
        score["workorders"] = outcome.workorders
        score["engine"] = outcome.stats
        write_score(score, tmp / "score.json")
        by_kind: dict[str, dict[str, int]] = {}
        for (kind, type_), n in sorted(log.counts.items()):
            by_kind.setdefault(kind, {})[type_] = n
        result = RunResult(
            out=out,
            scenario=resolved,
            days=days,
            seed=seed,
            events=sum(log.counts.values()),
            event_counts=by_kind,
            truth_counts=sim.truth.counts(),
            wall_seconds=wall,
            devices=sum(len(e.devices) for e in sim.world.estates.values()),
            households=households,
            score=score,
            mqtt=mqtt_info,
            rankings=rankings,
        )
        run_json = {
            "versions": versions(),
            "scenario": resolved.name,
            "start": resolved.start.isoformat(),
            "days": days,
            "seed": seed,
            "broker": mqtt_info,
            "counts": {
                "events": result.events,
                "events_by_kind": by_kind,
                "devices": result.devices,
                "households": result.households,
                "alerts": outcome.counts["alert"],
                "workorders": outcome.counts["workorder"],
                **result.truth_counts,
            },
            "timings": {
                "wall_seconds": round(wall, 3),
                "events_per_second": round(result.events_per_second, 1),
            },
        }
        (tmp / "run.json").write_text(
            json.dumps(run_json, ensure_ascii=False, indent=2) + "\n", encoding="utf-8"
        )
        result.report = _report(tmp)
    return result
