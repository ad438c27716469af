"""``pmsim``: the command line. Exit codes: 0 ok, 2 bad input (one line, no traceback), 1 internal."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from devices.events import event_adapter
from sim.errors import BadInput
from sim.scenario import Scenario, load_scenario
from sim.yamlio import load_yaml

__all__ = ["main"]

SCHEMAS: dict[str, Callable[[], dict[str, Any]]] = {
    "scenario": Scenario.model_json_schema,
    "event": event_adapter.json_schema,
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
    run.add_argument("--out", type=Path, help="run folder (default runs/NAME-sSEED-dDAYS)")
    run.add_argument(
        "--broker",
        default="none",
        help="'none' (in-process); MQTT brokers arrive with the MQTT transport",
    )
    run.add_argument("--speed", type=float, help="scaled real time: simulated seconds per second")
    run.add_argument("--no-progress", action="store_true", help="no progress bar")

    val = sub.add_parser("validate", help="check scenario files")
    val.add_argument("files", nargs="+", type=Path)

    sch = sub.add_parser("schema", help="print a JSON Schema")
    sch.add_argument("which", choices=sorted(SCHEMAS))
    return p


def _tick(bar: Any) -> None:
    bar.update(1)


def _cmd_run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from sim.runner import run_to_folder
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
            sc, out, days=days, seed=seed, speed=args.speed, on_day=lambda d: _tick(bar)
        )
    print(format_summary(result))
    return 0


def _cmd_validate(args: argparse.Namespace) -> int:
    bad = 0
    for path in args.files:
        try:
            loaded = load_yaml(path)
            if isinstance(loaded.data, dict) and "rules" in loaded.data:
                raise BadInput(f"{path}: rule files are checked once the rules engine lands")
            sc = load_scenario(path)
        except BadInput as exc:
            print(f"pmsim: error: {exc}", file=sys.stderr)
            bad += 1
            continue
        estates = sum(1 for _ in sc.estates())
        print(f"ok {path}: scenario {sc.name}, {estates} estates, {len(sc.companies)} companies")
    return 2 if bad else 0


def _cmd_schema(args: argparse.Namespace) -> int:
    print(json.dumps(SCHEMAS[args.which](), ensure_ascii=False, indent=2))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = _parser().parse_args(argv)
        if args.command == "run":
            return _cmd_run(args)
        if args.command == "validate":
            return _cmd_validate(args)
        return _cmd_schema(args)
    except BadInput as exc:
        print(f"pmsim: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("pmsim: interrupted", file=sys.stderr)
        return 130
