"""``pmsim facts RUN_DIR``: the public facts a run reproduces, measured (see sim/report/facts.py)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

__all__ = ["add_facts_parser", "facts_command"]


def add_facts_parser(sub: Any) -> None:
    p = sub.add_parser("facts", help="measure the public facts a run reproduces")
    p.add_argument("run_dir", type=Path)
    p.add_argument("--json", action="store_true", help="one JSON document instead of lines")


def facts_command(args: argparse.Namespace) -> int:
    from sim.report.facts import format_facts, measure_facts

    facts = measure_facts(args.run_dir)
    if args.json:
        print(json.dumps([f.to_json() for f in facts], ensure_ascii=False, indent=2))
    else:
        print(format_facts(facts))
    return 0
