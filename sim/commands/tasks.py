"""The units of work of sweeps and replications: pure functions of (scenario, seed, rules) that
return plain data, so a process pool or a Dask worker can run them anywhere.

A SimPy environment does not pickle, so each task builds its own world. A seed is simulated once
into a cache folder and every trial's rules are replayed on its recorded events (a rule change does
not change the world), which each worker process reads once and keeps in memory; a worker that
lacks the cache (another machine) simulates it itself, with the same result.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from rules.score import score_rules
from sim.commands.trialdata import read_types, replay, seed_data, trial_rules
from sim.mqtt.carrier import Link
from sim.runner import run_to_folder
from sim.world.scenario import Scenario

__all__ = ["replay_trials", "run_replication", "simulate_seed"]


def _key(scenario_doc: dict[str, Any], seed: int, days: int) -> str:
    blob = json.dumps(scenario_doc, sort_keys=True, ensure_ascii=False).encode("utf-8")
    return hashlib.blake2b(blob + f"|{seed}|{days}".encode(), digest_size=8).hexdigest()


def simulate_seed(scenario_doc: dict[str, Any], seed: int, days: int, cache: str) -> str:
    """Simulate once into ``cache`` (a no-op when already there); returns the run folder."""
    sc = Scenario.model_validate(scenario_doc)
    folder = Path(cache) / f"{sc.name}-{_key(scenario_doc, seed, days)}-s{seed}-d{days}"
    if (folder / "run.json").exists():
        return str(folder)
    Path(cache).mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".sim-", dir=cache))
    run_to_folder(sc, tmp / "run", days=days, seed=seed, link=Link())
    with contextlib.suppress(OSError):  # another worker got there first: its copy is identical
        os.rename(tmp / "run", folder)
    shutil.rmtree(tmp, ignore_errors=True)
    return str(folder)


def replay_trials(
    scenario_doc: dict[str, Any],
    seed: int,
    days: int,
    cache: str,
    rule_docs: list[dict[str, Any]],
    only: list[str] | None = None,
    types: list[str] | None = None,
) -> list[dict[str, Any]]:
    """Score each rule file (as a dict) on one seed's recorded events; with ``only``, just those
    rules (and what they depend on) are replayed and scored. The seed's events are read once per
    process (:mod:`sim.commands.trialdata`), keeping the event types these rules read and those
    in ``types`` (every type the rest of the search reads, so that one read serves it all)."""
    folder = Path(simulate_seed(scenario_doc, seed, days, cache))
    rulesets = [trial_rules(doc, only) for doc in rule_docs]
    wanted = set(types or ())
    for rules in rulesets:
        wanted |= read_types(rules)
    data = seed_data(folder, wanted)
    end_s = days * 86400.0
    out = []
    for rules in rulesets:
        records = replay(rules, data.trace, end_s)
        out.append(
            score_rules(
                rules,
                [r for r in records if r["record"] == "alert"],
                [r for r in records if r["record"] == "workorder"],
                data.truth,
                households=data.households,
                days=float(days),
                end_s=end_s,
            )
        )
    return out


def run_replication(
    scenario_doc: dict[str, Any],
    seed: int,
    days: int,
    rules_text: str,
    out: str,
    rank_text: str | None = None,
) -> dict[str, Any]:
    """One full run folder for one seed (``pmsim run --replications``), ranked with ``rank_text``
    (an indicator configuration; None: the default); returns its score."""
    sc = Scenario.model_validate(scenario_doc)
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        rules_path = Path(tmp) / "rules.yaml"
        rules_path.write_text(rules_text, encoding="utf-8")
        rank_path = None
        if rank_text is not None:
            rank_path = Path(tmp) / "rankings.yaml"
            rank_path.write_text(rank_text, encoding="utf-8")
        result = run_to_folder(
            sc,
            Path(out),
            days=days,
            seed=seed,
            rules_path=rules_path,
            rankings_path=rank_path,
            link=Link(),
        )
    return result.score
