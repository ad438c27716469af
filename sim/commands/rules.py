"""The rule-side commands: ``pmsim replay``, ``pmsim score``, ``pmsim rules test``."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from rules.ruleset import RuleSet
from rules.ruletest import RuleTestFile, run_case
from rules.workorders import workorder_figures
from sim.errors import BadInput
from sim.files.columns import record_file
from sim.files.records import run_info, write_score
from sim.files.rulefiles import load_rules
from sim.files.yamlio import load_yaml, validate_loaded
from sim.replay import replay_file, run_start, score_folder
from sim.report.summary import format_score

__all__ = ["load_rule_tests", "replay", "rules_test", "score"]


def _events_and_run(source: Path) -> tuple[Path, Path | None]:
    """``RUN_DIR`` (a run folder, or a Parquet or JSON Lines export of one) or an events file ->
    (events.jsonl or events.parquet, run folder if there is one)."""
    if source.is_dir():
        events = record_file(source, "events")
        if events is None:
            raise BadInput(f"{source}: no events.jsonl or events.parquet in this folder")
        return events, source
    if not source.exists():
        raise BadInput(f"{source}: file not found")
    run_dir = source.parent if (source.parent / "run.json").exists() else None
    return source, run_dir


def replay(source: Path, rules_path: Path, out: Path | None) -> int:
    rules = load_rules(rules_path)
    events, run_dir = _events_and_run(source)
    if out is None:
        base = run_dir if run_dir is not None else events.parent
        out = base / "replays" / rules_path.stem
    end_s = float(run_info(run_dir)["days"]) * 86400.0 if run_dir is not None else None
    out.mkdir(parents=True, exist_ok=True)
    start = run_start(run_dir) if run_dir is not None else None
    engine = replay_file(rules, events, out, end_s, start)
    shutil.copyfile(rules_path, out / "rules.yaml")
    stats = dict(sorted(engine.stats.items()))
    print(f"replayed {stats.get('consumed', 0)} events through {rules_path} -> {out}")
    skipped = {
        k: v
        for k, v in stats.items()
        if k in ("late", "clock_skew", "duplicates", "invalid", "unknown_type")
    }
    if skipped:
        print("set aside: " + ", ".join(f"{k} {v}" for k, v in skipped.items()))
    if run_dir is not None and record_file(run_dir, "truth") is not None:
        result = score_folder(rules, run_dir, out)
        result["workorders"] = workorder_figures(
            list(engine.s.workorders.orders.values()), float(result["end_s"])
        )
        result["engine"] = stats
        write_score(result, out / "score.json")
        print(format_score(result))
    return 0


def score(run_dir: Path, rules_path: Path | None) -> int:
    if not run_dir.is_dir():
        raise BadInput(f"{run_dir}: not a run folder")
    if rules_path is None:
        rules_path = run_dir / "rules.yaml"
        if not rules_path.exists():
            raise BadInput(f"{run_dir}: no rules.yaml; pass --rules FILE")
        results = run_dir
    else:
        results = run_dir / "replays" / rules_path.stem
        if not (results / "alerts.jsonl").exists():
            rules = load_rules(rules_path)
            results.mkdir(parents=True, exist_ok=True)
            replay_file(
                rules,
                _events_and_run(run_dir)[0],
                results,
                float(run_info(run_dir)["days"]) * 86400.0,
                run_start(run_dir),
            )
    rules = load_rules(rules_path)
    result = score_folder(rules, run_dir, results)
    write_score(result, results / "score.json")
    print(format_score(result))
    return 0


def load_rule_tests(path: Path) -> tuple[RuleTestFile, RuleSet]:
    loaded = load_yaml(path)
    spec = validate_loaded(loaded, RuleTestFile)
    files = [(path.parent / f) for f in spec.rule_files]
    if len(files) != 1:
        raise BadInput(f"{path}: rule_files: exactly one rule file per test file")
    return spec, load_rules(files[0])


def rules_test(paths: list[Path]) -> int:
    failed = 0
    total = 0
    for path in paths:
        spec, rules = load_rule_tests(path)
        for i, case in enumerate(spec.tests):
            total += 1
            try:
                result = run_case(rules, case, spec.start)
            except ValueError as exc:
                raise BadInput(f"{path}: tests[{i}] ({case.name}): {exc}") from None
            if result.ok:
                print(f"ok   {path}: {case.name}")
            else:
                failed += 1
                print(f"FAIL {path}: {case.name}")
                for f in result.failures:
                    print(f"  {f}")
    print(f"{total - failed} passed, {failed} failed")
    sys.stdout.flush()
    return 1 if failed else 0
