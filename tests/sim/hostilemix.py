"""Hostile mixes of a recorded run's traffic, fed through a fresh engine (tests and the README's
table). Run as a script to measure: ``PYTHONPATH=. python3 tests/sim/hostilemix.py RUN_DIR``.

Every mix is the run's own traffic (heartbeats built again, in delivery order) with hostile
messages added: a copy of a real device's event dated a year ahead, or with ``sim_seconds: 1e308``;
1% of the events sent twice; 1% more events dated a year ahead or a day behind; 1% more events dated
between the allowed lateness and the engine's skew bound behind. The added events are never real,
so every mix should give the clean traffic's alerts and work orders.
"""

from __future__ import annotations

import json
import random
import sys
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from rules.engine import Engine, Record
from rules.ruleset import RuleSet
from sim.files.rulefiles import load_rules
from sim.replay import run_traffic

__all__ = ["MIXES", "YEAR", "Outcome", "feed", "forged", "mix"]

YEAR = 365 * 86400.0


@dataclass
class Outcome:
    records: list[Record]
    stats: Counter[str]
    aside: list[tuple[str, str, str]] = field(default_factory=list)  # (event id, reason, detail)
    sent: int = 0


def feed(rules: RuleSet, lines: list[bytes], end_s: float | None = None) -> Outcome:
    """Each line as an MQTT payload into a fresh engine, then its end."""
    engine = Engine(rules)
    out = Outcome([], engine.stats, sent=len(lines))
    engine.clock.on_aside = lambda e, reason, detail: out.aside.append((e.event_id, reason, detail))
    for line in lines:
        out.records.extend(engine.consume_payload(line))
    out.records.extend(engine.finish(end_s))
    return out


def forged(line: bytes, shift: float, n: int, sim_seconds: Any = None) -> bytes:
    """A copy of a real event with a new id, dated ``shift`` seconds away (or with the given
    ``sim_seconds`` as written)."""
    doc = json.loads(line)
    seq = 2_000_000_000 + n
    doc["seq"] = seq
    doc["event_id"] = f"{doc['device_id']}:{seq}"
    t = datetime.fromisoformat(doc["time"]) + timedelta(seconds=shift)
    doc["time"] = t.isoformat()
    doc["sim_seconds"] = doc["sim_seconds"] + shift
    text = json.dumps(doc)
    if sim_seconds is not None:
        text = text.replace(json.dumps(doc["sim_seconds"]), sim_seconds)
    return text.encode()


def mix(lines: list[bytes], kind: str, skew: float = 3600.0, seed: int = 1) -> list[bytes]:
    """``lines`` with the hostile messages of ``kind`` (one of :data:`MIXES`) added."""
    rng = random.Random(seed)
    q = len(lines) // 4
    if kind == "clean":
        return list(lines)
    if kind == "future":
        return [*lines[:q], forged(lines[q], YEAR, 0), *lines[q:]]
    if kind == "huge":
        return [*lines[:q], forged(lines[q], 0.0, 0, "1e308"), *lines[q:]]
    out: list[bytes] = []
    for i, line in enumerate(lines):
        out.append(line)
        if i < 5 or rng.random() >= 0.01:
            continue
        if kind == "duplicates":
            out.append(line)
        elif kind == "skewed":
            out.append(forged(line, rng.choice((YEAR, -86400.0)), i))
        elif kind == "late":
            out.append(forged(line, -rng.uniform(120.0, skew - 60.0), i))
    return out


MIXES = ("clean", "future", "huge", "duplicates", "skewed", "late")


def main(run_dir: Path) -> None:
    info = json.loads((run_dir / "run.json").read_text(encoding="utf-8"))
    rules = load_rules(run_dir / "rules.yaml")
    lines = list(run_traffic(run_dir))
    end_s = float(info["days"]) * 86400.0
    clean = feed(rules, lines, end_s)
    print("| mix | sent | added | consumed | set aside | alerts as clean |")
    print("|---|---:|---:|---:|---|---|")
    for kind in MIXES:
        got = feed(rules, mix(lines, kind), end_s) if kind != "clean" else clean
        aside = {k: got.stats[k] for k in ("duplicates", "invalid", "late", "clock_skew")}
        said = ", ".join(f"{k} {v}" for k, v in aside.items() if v)
        same = "yes" if got.records == clean.records else "NO"
        added = got.sent - len(lines)
        print(f"| {kind} | {got.sent:,} | {added} | {got.stats['consumed']:,} | {said} | {same} |")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
