"""``pmsim``: the command line. Exit codes: 0 ok, 2 bad input (one line, no traceback), 1 internal
error or failed rule tests."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from devices.events import event_adapter
from rules.model import RuleFile
from rules.ruletest import RuleTestFile
from sim.errors import BadInput
from sim.rulefiles import DEFAULT_RULES, rules_from_loaded
from sim.scenario import Scenario, check_scenario
from sim.yamlio import load_yaml, validate_loaded

__all__ = ["main"]

SCHEMAS: dict[str, Callable[[], dict[str, Any]]] = {
    "scenario": Scenario.model_json_schema,
    "event": event_adapter.json_schema,
    "rules": RuleFile.model_json_schema,
    "ruletest": RuleTestFile.model_json_schema,
}


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise BadInput(f"{self.prog}: {message}")


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="pmsim", description="Property-management smart-monitoring simulator.")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    run = sub.add_parser("run", help="simulate a scenario and write a run folder")
    run.add_argument("scenario", type=Path)
    run.add_argument("--days", type=int, help="override the scenario's days")
    run.add_argument("--seed", type=int, help="override the scenario's seed")
    run.add_argument("--rules", type=Path, default=DEFAULT_RULES, help="rule file (default rules)")
    run.add_argument("--out", type=Path, help="run folder (default runs/NAME-sSEED-dDAYS)")
    run.add_argument(
        "--broker",
        default="none",
        help="'none' (in-process); MQTT brokers arrive with the MQTT transport",
    )
    run.add_argument("--speed", type=float, help="scaled real time: simulated seconds per second")
    run.add_argument("--no-progress", action="store_true", help="no progress bar")

    val = sub.add_parser("validate", help="check scenario, rule and rule-test files")
    val.add_argument("files", nargs="+", type=Path)

    rep = sub.add_parser("replay", help="rerun a rule file on recorded events (no simulation)")
    rep.add_argument("source", type=Path, help="a run folder or an events.jsonl file")
    rep.add_argument("--rules", type=Path, required=True)
    rep.add_argument("--out", type=Path, help="default RUN_DIR/replays/RULES-NAME")

    sco = sub.add_parser("score", help="score a run's alerts against its truth")
    sco.add_argument("run_dir", type=Path)
    sco.add_argument("--rules", type=Path, help="score another rule file (replayed if needed)")

    rules = sub.add_parser("rules", help="rule tools")
    rsub = rules.add_subparsers(dest="rules_command", required=True, parser_class=_Parser)
    rt = rsub.add_parser("test", help="run rule tests (promtool style)")
    rt.add_argument("files", nargs="+", type=Path)

    sch = sub.add_parser("schema", help="print a JSON Schema")
    sch.add_argument("which", choices=sorted(SCHEMAS))
    return p


def _tick(bar: Any) -> None:
    bar.update(1)


def _cmd_run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from sim.runner import run_to_folder
    from sim.scenario import load_scenario
    from sim.summary import format_summary

    if args.broker != "none":
        raise BadInput(
            f"--broker {args.broker}: only 'none' (in-process) is available in this build"
        )
    if args.days is not None and args.days < 1:
        raise BadInput(f"--days {args.days}: must be at least 1")
    if args.seed is not None and args.seed < 0:
        raise BadInput(f"--seed {args.seed}: must be non-negative")
    if args.speed is not None and args.speed <= 0:
        raise BadInput(f"--speed {args.speed}: must be positive")
    sc = load_scenario(args.scenario)
    days = args.days if args.days is not None else sc.days
    seed = args.seed if args.seed is not None else sc.seed
    out = args.out or Path("runs") / f"{sc.name}-s{seed}-d{days}"
    with tqdm(
        total=days,
        unit="day",
        desc=sc.name,
        disable=True if args.no_progress else None,
        leave=False,
    ) as bar:
        result = run_to_folder(
            sc,
            out,
            days=days,
            seed=seed,
            rules_path=args.rules,
            speed=args.speed,
            on_day=lambda d: _tick(bar),
        )
    print(format_summary(result))
    return 0


def _validate_one(path: Path) -> str:
    """Check one file of whichever kind it is; returns the ``ok`` line."""
    from sim.cmd_rules import load_rule_tests

    loaded = load_yaml(path)
    data = loaded.data
    if isinstance(data, dict) and "tests" in data:
        spec, _ = load_rule_tests(path)
        return f"ok {path}: rule tests, {len(spec.tests)} cases"
    if isinstance(data, dict) and "rules" in data:
        rs = rules_from_loaded(loaded)
        return f"ok {path}: rules, {len(rs.rules)} rules"
    sc = validate_loaded(loaded, Scenario)
    check_scenario(loaded, sc)
    estates = sum(1 for _ in sc.estates())
    return f"ok {path}: scenario {sc.name}, {estates} estates, {len(sc.companies)} companies"


def _cmd_validate(args: argparse.Namespace) -> int:
    bad = 0
    for path in args.files:
        try:
            print(_validate_one(path))
        except BadInput as exc:
            print(f"pmsim: error: {exc}", file=sys.stderr)
            bad += 1
    return 2 if bad else 0


def main(argv: Sequence[str] | None = None) -> int:
    from sim import cmd_rules

    try:
        args = _parser().parse_args(argv)
        if args.command == "run":
            return _cmd_run(args)
        if args.command == "validate":
            return _cmd_validate(args)
        if args.command == "replay":
            return cmd_rules.replay(args.source, args.rules, args.out)
        if args.command == "score":
            return cmd_rules.score(args.run_dir, args.rules)
        if args.command == "rules":
            return cmd_rules.rules_test(args.files)
        print(json.dumps(SCHEMAS[args.which](), ensure_ascii=False, indent=2))
        return 0
    except BadInput as exc:
        print(f"pmsim: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # e.g. piped into head
        return 0
    except KeyboardInterrupt:
        print("pmsim: interrupted", file=sys.stderr)
        return 130
