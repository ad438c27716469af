"""``pmsim``: the command line. Exit codes: 0 ok, 2 bad input (one line, no traceback), 1 internal
error or failed rule tests."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from devices.events import event_schema
from rules.model import RuleFile
from rules.rankconfig import RankConfig
from rules.ruletest import RuleTestFile
from rules.space import SearchSpace
from sim.commands.facts import add_facts_parser, facts_command
from sim.commands.ranks import RANK_CONFIG_HELP, add_rank_parsers, rank_command, report_command
from sim.commands.scenariogen import add_scenario_parser, scenario_command
from sim.errors import BadInput
from sim.files.rulefiles import DEFAULT_RULES, rules_from_loaded
from sim.files.yamlio import load_yaml, validate_loaded
from sim.world.faultspec import FaultsFile
from sim.world.scenario import Scenario, check_scenario

__all__ = ["main"]

SCHEMAS: dict[str, Callable[[], dict[str, Any]]] = {
    "space": SearchSpace.model_json_schema,
    "rankings": RankConfig.model_json_schema,
    "scenario": Scenario.model_json_schema,
    "faults": FaultsFile.model_json_schema,
    "event": event_schema,
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
    run.add_argument("--rank-config", type=Path, help=RANK_CONFIG_HELP)
    run.add_argument("--out", type=Path, help="run folder (default runs/NAME-sSEED-dDAYS)")
    _broker_options(run, default="embedded")
    run.add_argument("--qos", type=int, default=1, help="device events' QoS, 0 or 1 (default 1)")
    run.add_argument(
        "--batch",
        type=int,
        default=1,
        help="device events per MQTT message: N > 1 sends each gateway's events as JSON arrays "
        "on PREFIX/batch/ESTATE instead of one per device topic (default 1)",
    )
    run.add_argument("--speed", type=float, help="scaled real time: simulated seconds per second")
    run.add_argument("--no-progress", action="store_true", help="no progress bar")
    run.add_argument(
        "--faults", type=Path, help="fault injection file (replaces the scenario's faults:)"
    )
    run.add_argument(
        "--replications", type=int, help="run N seeds (seed, seed+1, ...) and report intervals"
    )
    _executor_options(run)

    val = sub.add_parser(
        "validate", help="check scenario, rule, rule-test, ranking and search-space files"
    )
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
    rs = rsub.add_parser("serve", help="the rules engine as a service on live MQTT")
    _broker_options(rs, default=None)
    rs.add_argument("--rules", type=Path, default=DEFAULT_RULES)
    rs.add_argument("--estates", help="comma-separated estate ids this worker owns")
    rs.add_argument("--partition", help="K/N: own the estates whose stable hash is K mod N")
    rs.add_argument(
        "--state", type=Path, help="engine snapshot file: restored on start, saved often"
    )
    rs.add_argument(
        "--snapshot-every",
        type=float,
        default=10.0,
        metavar="SECONDS",
        help="how often --state is saved (a journal covers the time between)",
    )
    rs.add_argument("--client-id", help="MQTT client id (a persistent session is kept under it)")
    rs.add_argument("--max-bytes", type=int, default=16384, help="payload size limit")
    rs.add_argument(
        "--wall-clock", action="store_true", help="advance timers by the wall clock (live devices)"
    )

    wat = sub.add_parser("watch", help="print alerts (or any topic) as they arrive")
    _broker_options(wat, default=None)
    wat.add_argument("topic", nargs="?", help="default PREFIX/alerts/#")
    wat.add_argument("--count", type=int, help="stop after N messages")
    wat.add_argument("--timeout", type=float, help="stop after N seconds")

    brk = sub.add_parser("broker", help="run the embedded MQTT broker on its own")
    brk.add_argument(
        "--kind", default="auto", help="auto (mosquitto if installed), mosquitto, amqtt"
    )
    brk.add_argument("--port", type=int, help="default: a free port")
    brk.add_argument(
        "--persist",
        type=Path,
        metavar="DIR",
        help="keep sessions and queued messages in DIR (Mosquitto; saved every second)",
    )

    add_rank_parsers(sub)

    tun = sub.add_parser("tune", help="search rule parameters across seeds")
    tun.add_argument("scenario", type=Path)
    tun.add_argument("--rules", type=Path, default=DEFAULT_RULES)
    tun.add_argument("--space", type=Path, required=True, help="search-space file")
    tun.add_argument("--seeds", type=int, default=3, help="replications (default 3)")
    tun.add_argument("--trials", type=int, help="random/optuna: number of trials")
    tun.add_argument("--days", type=int, help="override the scenario's days")
    _executor_options(tun)
    tun.add_argument("--out", type=Path, help="default runs/tune-SCENARIO-SPACE")
    tun.add_argument("--no-progress", action="store_true")

    from sim.commands.bench import add_bench_options

    ben = sub.add_parser("bench", help="pmsim's throughput next to bare baselines (bench.json)")
    _broker_options(ben, default="embedded")
    add_bench_options(ben)

    from sim.commands.export import add_export_parser

    add_export_parser(sub)

    from sim.commands.validity import add_validity_parser

    add_validity_parser(sub)
    add_facts_parser(sub)
    add_scenario_parser(sub)
    sch = sub.add_parser("schema", help="print a JSON Schema")
    sch.add_argument("which", choices=sorted(SCHEMAS))
    return p


def _executor_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--executor", default="local", help="local (process pool) or dask")
    p.add_argument("--scheduler", help="Dask scheduler address (default DASK_SCHEDULER_ADDRESS)")


def _broker_options(p: argparse.ArgumentParser, default: str | None) -> None:
    p.add_argument(
        "--broker",
        default=default,
        required=default is None,
        help="'embedded' (a broker of our own on 127.0.0.1), 'none' (in-process), "
        "or mqtt[s]://[user:pass@]host:port",
    )
    p.add_argument("--prefix", default="pm", help="topic prefix (default pm)")
    p.add_argument("--ca", type=Path, help="mqtts: CA certificate file")
    p.add_argument("--cert", type=Path, help="mqtts: client certificate file")
    p.add_argument("--key", type=Path, help="mqtts: client key file")


def _link(args: argparse.Namespace) -> Any:
    from sim.mqtt.carrier import Link
    from sim.mqtt.url import TLSFiles

    def announce(text: str) -> None:
        print(f"pmsim: {text}", file=sys.stderr, flush=True)

    link = Link(
        broker=args.broker,
        prefix=args.prefix,
        qos=getattr(args, "qos", 1),
        batch=getattr(args, "batch", 1),
        tls=TLSFiles(args.ca, args.cert, args.key),
        announce=announce,
    )
    link.check()
    return link


def _url(args: argparse.Namespace) -> Any:
    from sim.mqtt.url import TLSFiles, parse_broker_url

    if args.broker in ("none", "embedded"):
        raise BadInput(f"--broker {args.broker}: this command needs a broker URL, mqtt://host:port")
    return parse_broker_url(args.broker, TLSFiles(args.ca, args.cert, args.key))


def _cmd_serve(args: argparse.Namespace) -> int:
    from sim.mqtt.serve import ServeOptions, parse_partition, serve

    if args.max_bytes < 256:
        raise BadInput(f"--max-bytes {args.max_bytes}: at least 256")
    if not args.snapshot_every > 0:
        raise BadInput(f"--snapshot-every {args.snapshot_every}: must be positive")
    estates = (
        frozenset(e.strip() for e in args.estates.split(",") if e.strip()) if args.estates else None
    )
    opts = ServeOptions(
        url=_url(args),
        rules_path=args.rules,
        prefix=args.prefix,
        estates=estates,
        partition=parse_partition(args.partition) if args.partition else None,
        state=args.state,
        client_id=args.client_id,
        max_bytes=args.max_bytes,
        wall_clock=args.wall_clock,
        snapshot_every=args.snapshot_every,
    )
    return serve(opts)


def _tick(bar: Any) -> None:
    bar.update(1)


def _cmd_run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from sim.report.summary import format_summary
    from sim.runner import run_to_folder
    from sim.world.scenario import load_scenario, with_faults

    link = _link(args)
    if args.days is not None and args.days < 1:
        raise BadInput(f"--days {args.days}: must be at least 1")
    if args.seed is not None and args.seed < 0:
        raise BadInput(f"--seed {args.seed}: must be non-negative")
    if args.speed is not None and args.speed <= 0:
        raise BadInput(f"--speed {args.speed}: must be positive")
    sc = load_scenario(args.scenario)
    if args.faults is not None:
        sc = with_faults(sc, args.faults)
    days = args.days if args.days is not None else sc.days
    seed = args.seed if args.seed is not None else sc.seed
    if args.replications is not None:
        from sim.commands.replications import replicate

        return replicate(sc, args, days, seed)
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
            rankings_path=args.rank_config,
            link=link,
            speed=args.speed,
            on_day=lambda d: _tick(bar),
        )
    print(format_summary(result))
    return 0


def _validate_one(path: Path) -> str:
    """Check one file of whichever kind it is; returns the ``ok`` line."""
    from sim.commands.rules import load_rule_tests

    loaded = load_yaml(path)
    data = loaded.data
    if isinstance(data, dict) and "tests" in data:
        spec, _ = load_rule_tests(path)
        return f"ok {path}: rule tests, {len(spec.tests)} cases"
    if isinstance(data, dict) and "rules" in data:
        rs = rules_from_loaded(loaded)
        return f"ok {path}: rules, {len(rs.rules)} rules"
    if isinstance(data, dict) and "indicators" in data:
        cfg = validate_loaded(loaded, RankConfig)
        return f"ok {path}: ranking configuration, {len(cfg.indicators)} indicators"
    if isinstance(data, dict) and "parameters" in data:
        space = validate_loaded(loaded, SearchSpace)
        return f"ok {path}: search space, {len(space.parameters)} parameters (checked against rules by pmsim tune)"
    if isinstance(data, dict) and set(data) == {"faults"}:
        ff = validate_loaded(loaded, FaultsFile)
        return f"ok {path}: faults, {len(ff.faults)} entries (estates checked by pmsim run)"
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
    from sim.commands import rules as cmd_rules

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
        if args.command == "rules" and args.rules_command == "test":
            return cmd_rules.rules_test(args.files)
        if args.command == "rules":
            return _cmd_serve(args)
        if args.command == "watch":
            from sim.mqtt.watch import watch

            topic = args.topic or f"{args.prefix}/alerts/#"
            return watch(_url(args), topic, sys.stdout, count=args.count, timeout=args.timeout)
        if args.command == "report":
            return report_command(args)
        if args.command == "rank":
            return rank_command(args)
        if args.command == "facts":
            return facts_command(args)
        if args.command == "scenario":
            return scenario_command(args)
        if args.command == "tune":
            from sim.commands.tune import TuneOptions, tune

            tune(
                TuneOptions(
                    scenario=args.scenario,
                    rules=args.rules,
                    space=args.space,
                    seeds=args.seeds,
                    trials=args.trials,
                    days=args.days,
                    executor=args.executor,
                    scheduler=args.scheduler,
                    out=args.out,
                    progress=not args.no_progress,
                )
            )
            return 0
        if args.command == "broker":
            from sim.mqtt.broker import serve_forever

            return serve_forever(args.kind, args.port, args.persist)
        if args.command == "export":
            from sim.commands.export import export_command

            return export_command(args)
        if args.command == "validity":
            from sim.commands.validity import validity_command

            return validity_command(args)
        if args.command == "bench":
            from sim.commands.bench import bench_command

            return bench_command(args)
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
