"""``pmsim tune``: search rule parameters across seeds, report the trade-off, write the best rules.

Each seed is simulated once; every trial replays its rule file on the recorded events. Trials are
scored per seed, pooled over the scored rules, and summarised as a mean with a bootstrap interval
across seeds. The output folder (written whole at the end) holds ``tune.json`` (every trial, every
seed) and ``best.yaml`` (the best rule file, ready to use).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from rules.model import RuleFile
from rules.objective import bootstrap, objective_value, pareto_front, pooled_metrics
from rules.space import (
    METRICS,
    SearchSpace,
    SpaceError,
    apply_values,
    check_space,
    grid,
    random_trials,
)
from sim.commands.executors import check_scheduler, run_tasks
from sim.commands.tasks import replay_trials, simulate_seed
from sim.commands.trialdata import union_types
from sim.errors import BadInput
from sim.files.folders import staged_folder
from sim.files.rulefiles import load_rules
from sim.files.yamlio import load_yaml, validate_loaded
from sim.report.summary import format_interval, table
from sim.world.scenario import load_scenario

__all__ = ["TuneOptions", "load_space", "tune"]

Task = tuple[Callable[..., Any], tuple[Any, ...]]


@dataclass
class TuneOptions:
    scenario: Path
    rules: Path
    space: Path
    seeds: int = 3
    trials: int | None = None
    days: int | None = None
    executor: str = "local"
    scheduler: str | None = None
    out: Path | None = None
    cache: Path | None = None
    progress: bool = True


def _tick(bar: Any) -> None:
    bar.update(1)


def load_space(path: Path, rules: RuleFile) -> SearchSpace:
    loaded = load_yaml(path)
    space = validate_loaded(loaded, SearchSpace)
    try:
        check_space(space, rules)
    except SpaceError as exc:
        raise loaded.error(exc.loc, exc.message) from None
    return space


def _variants(space: SearchSpace) -> list[dict[str, Any]]:
    """The rule file as given and with each parameter's values one at a time (a distribution's
    ends): what the search reads, told to every worker so that one read of a seed serves all."""
    out: list[dict[str, Any]] = [{}]
    for p in space.parameters:
        d = p.distribution
        out.extend({p.label: v} for v in (p.choices() if d is None else [d.low, d.high]))
    return out


def _workers() -> int:
    return max(1, os.cpu_count() or 1)


@contextlib.contextmanager
def _executor(opts: TuneOptions) -> Iterator[Callable[[list[Task], Callable[[], None]], list[Any]]]:
    """Runs tasks, results in task order. Locally one process pool serves the whole search, so a
    worker keeps the seeds it has read between rounds (Optuna asks one trial at a time)."""
    if opts.executor != "local":
        yield lambda tasks, tick: run_tasks(
            tasks, executor=opts.executor, scheduler=opts.scheduler, tick=tick
        )
        return
    with ProcessPoolExecutor(max_workers=_workers()) as pool:

        def run_on(tasks: list[Task], tick: Callable[[], None]) -> list[Any]:
            futures = {pool.submit(fn, *args): i for i, (fn, args) in enumerate(tasks)}
            results: list[Any] = [None] * len(tasks)
            for fut in as_completed(futures):
                results[futures[fut]] = fut.result()
                tick()
            return results

        yield run_on


def _trials(space: SearchSpace, n: int | None) -> list[dict[str, Any]]:
    if space.search == "grid":
        return grid(space)
    return random_trials(space, n or space.trials or 20)


def _scored_rules(space: SearchSpace, rules: RuleFile) -> list[str]:
    ids = space.objective.rules or sorted({p.rule for p in space.parameters})
    return [r.id for r in rules.rules if r.id in ids and r.detects]


def _summarise(
    space: SearchSpace,
    trials: list[dict[str, Any]],
    scores: list[list[dict[str, Any]]],
    scored: list[str],
) -> list[dict[str, Any]]:
    out = []
    for i, (values, per_seed) in enumerate(zip(trials, scores, strict=True)):
        metrics = [pooled_metrics(s, scored) for s in per_seed]
        objective = [objective_value(m, space.objective) for m in metrics]
        summary: dict[str, Any] = {"trial": i, "values": values}
        for name in METRICS:
            mean, lo, hi = bootstrap([m[name] for m in metrics], space.seed + i)
            summary[name] = {"mean": round(mean, 6), "low": round(lo, 6), "high": round(hi, 6)}
        mean, lo, hi = bootstrap(objective, space.seed + i)
        summary["objective"] = {"mean": _finite(mean), "low": _finite(lo), "high": _finite(hi)}
        summary["per_seed"] = [{k: round(v, 6) for k, v in m.items()} for m in metrics]
        out.append(summary)
    return out


def _finite(x: float) -> float | None:
    return round(x, 6) if math.isfinite(x) else None


def _optuna_trials(
    space: SearchSpace, n: int, evaluate: Callable[[dict[str, Any]], float]
) -> list[dict[str, Any]]:
    try:
        import optuna
    except ImportError:
        raise BadInput("search: optuna needs Optuna: pip install 'pmsim[optuna]'") from None
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=space.seed))
    done: list[dict[str, Any]] = []
    for _ in range(n):
        trial = study.ask()
        values: dict[str, Any] = {}
        for p in space.parameters:
            d = p.distribution
            if d is None:
                values[p.label] = trial.suggest_categorical(p.label, p.choices())
            elif d.kind == "int":
                values[p.label] = trial.suggest_int(p.label, int(d.low), int(d.high))
            else:
                values[p.label] = trial.suggest_float(
                    p.label, d.low, d.high, log=d.kind == "loguniform"
                )
        study.tell(trial, evaluate(values))
        done.append(values)
    return done


def tune(opts: TuneOptions, echo: Callable[[str], None] = print) -> dict[str, Any]:
    from tqdm import tqdm

    sc = load_scenario(opts.scenario)
    rules = load_rules(opts.rules).spec
    space = load_space(opts.space, rules)
    if opts.seeds < 1:
        raise BadInput(f"--seeds {opts.seeds}: at least 1")
    check_scheduler(opts.executor, opts.scheduler)
    days = opts.days or sc.days
    seeds = [sc.seed + i for i in range(opts.seeds)]
    doc = sc.model_dump(mode="json")
    out = opts.out or Path("runs") / f"tune-{sc.name}-{opts.space.stem}"
    cache = str((opts.cache or out.parent / ".pmsim-cache").resolve())
    scored = _scored_rules(space, rules)
    if not scored:
        raise BadInput(f"{opts.space}: objective: none of the scored rules has `detects`")
    by_label = {p.label: p for p in space.parameters}

    def rule_doc(values: dict[str, Any]) -> dict[str, Any]:
        rs = apply_values(rules, [(by_label[k], v) for k, v in values.items()])
        return rs.spec.model_dump(mode="json", by_alias=True, exclude_none=True)

    hint = union_types([rule_doc(v) for v in _variants(space)], scored)

    def run(trials: list[dict[str, Any]], bar: Any) -> list[list[dict[str, Any]]]:
        docs = [rule_doc(v) for v in trials]
        types = sorted(set(hint).union(union_types(docs, scored)))
        per_seed = max(1, math.ceil(_workers() / len(seeds)))  # each seed read by few workers
        size = max(1, math.ceil(len(docs) / per_seed))
        chunks = [(s, j) for s in seeds for j in range(0, len(docs), size)]
        bar.total = (bar.total or 0) + len(chunks)
        tasks = [
            (replay_trials, (doc, s, days, cache, docs[j : j + size], scored, types))
            for s, j in chunks
        ]
        results = run_on(tasks, lambda: _tick(bar))
        per_trial: list[list[dict[str, Any]]] = [[] for _ in docs]
        for (_, j), scores in zip(chunks, results, strict=True):
            for k, score in enumerate(scores):
                per_trial[j + k].append(score)
        return per_trial

    with (
        _executor(opts) as run_on,
        tqdm(
            total=len(seeds),
            unit="task",
            desc="tune",
            disable=not opts.progress or None,
            leave=False,
        ) as bar,
    ):
        run_on([(simulate_seed, (doc, s, days, cache)) for s in seeds], lambda: _tick(bar))
        if space.search == "optuna":
            trials: list[dict[str, Any]] = []
            scores: list[list[dict[str, Any]]] = []

            def evaluate(values: dict[str, Any]) -> float:
                per_seed = run([values], bar)[0]
                trials.append(values)
                scores.append(per_seed)
                objective = [
                    objective_value(pooled_metrics(s, scored), space.objective) for s in per_seed
                ]
                return sum(objective) / len(objective)

            _optuna_trials(space, opts.trials or space.trials or 20, evaluate)
        else:
            trials = _trials(space, opts.trials)
            scores = run(trials, bar)
    summary = _summarise(space, trials, scores, scored)
    best = min(
        range(len(summary)),
        key=lambda i: (
            summary[i]["objective"]["mean"] is None,
            summary[i]["objective"]["mean"] or 0.0,
            i,
        ),
    )
    front = pareto_front([{k: summary[i][k]["mean"] for k in METRICS} for i in range(len(summary))])
    result = {
        "scenario": sc.name,
        "days": days,
        "seeds": seeds,
        "space": str(opts.space),
        "objective": space.objective.model_dump(mode="json"),
        "scored_rules": scored,
        "trials": summary,
        "pareto_front": front,
        "best_trial": best,
    }
    _write(out, result, rule_doc(trials[best]), trials[best], opts)
    echo(format_tune(result, out))
    return result


def _write(
    out: Path,
    result: dict[str, Any],
    best_doc: dict[str, Any],
    values: dict[str, Any],
    opts: TuneOptions,
) -> None:
    with staged_folder(out) as tmp:
        (tmp / "tune.json").write_text(
            json.dumps(result, ensure_ascii=False, indent=2) + "\n", encoding="utf-8"
        )
        header = (
            f"# Best rules from pmsim tune {opts.scenario} --space {opts.space} "
            f"(trial {result['best_trial']}: {values})\n"
        )
        (tmp / "best.yaml").write_text(
            header + yaml.safe_dump(best_doc, allow_unicode=True, sort_keys=False), encoding="utf-8"
        )


def format_tune(result: dict[str, Any], out: Path) -> str:
    def ci(m: dict[str, Any], fmt: str = "{:.3f}") -> str:
        return "infeasible" if m["mean"] is None else format_interval(m, fmt)

    rows = []
    front = set(result["pareto_front"])
    for t in result["trials"]:
        values = ", ".join(f"{k}={v}" for k, v in t["values"].items())
        mark = ("*" if t["trial"] in front else "") + (
            "  best" if t["trial"] == result["best_trial"] else ""
        )
        rows.append(
            [
                t["trial"],
                values,
                ci(t["objective"], "{:.2f}"),
                ci(t["recall"]),
                ci(t["precision"]),
                ci(t["false_alerts_per_1000_household_days"]),
                ci(t["ttd_median_s"], "{:.0f}"),
                mark,
            ]
        )
    head = [
        "trial",
        "values",
        "objective",
        "recall",
        "precision",
        "false/1k hh-days",
        "ttd s",
        "front",
    ]
    seeds = ", ".join(str(s) for s in result["seeds"])
    return "\n".join(
        [
            f"pmsim tune: {result['scenario']}, {result['days']} days, seeds {seeds}; "
            f"scored rules: {', '.join(result['scored_rules'])}",
            "mean [95% bootstrap interval across seeds]; * = on the Pareto front of recall, "
            "false alerts and time to detect",
            table(head, rows),
            "",
            f"best: trial {result['best_trial']} -> {out / 'best.yaml'}  (all trials: {out / 'tune.json'})",
        ]
    )
