"""``pmsim validity SCENARIO``: how well the rankings recover the companies' diligence, over seeds.

Runs the scenario once per seed (in-process, no broker; ``--jobs N`` runs seeds in N processes),
each into a full run folder under ``--out`` (``seed-N``, with its ``rankings.json`` and
``report.html``), then reads every period's ``validity`` block (:mod:`rules.rankvalidity`) and
prints one table, a column per seed: the monthly Kendall tau of companies against diligence
(mean and lowest), each quarter's and half-year's, each indicator's tau alone (mean over months),
the Spearman rho of estate scores against their company's diligence, list stability between
consecutive months, and how many estates of diligent companies were ever black-listed. Then one
line per "Done when" threshold of issue 13: met, not met or not measured, with the values.

It is a measurement: exit 0 whether or not the thresholds are met; 2 on bad input.
``validity.json`` in ``--out`` holds the per-seed figures and the thresholds.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from rules.rankvalidity import DILIGENT
from sim.errors import BadInput

__all__ = [
    "HALF_TAU",
    "MONTH_TAU",
    "WEIGHTY",
    "add_validity_parser",
    "seed_summary",
    "thresholds",
    "validity_command",
]

MONTH_TAU = 0.8  # issue 13, Done when: mean monthly tau at least 0.8 for each seed
HALF_TAU = 0.85  # half-year tau at least 0.85
WEIGHTY = 10.0  # every indicator with weight 10 or more positive alone on average
VALIDITY_JSON = "validity.json"


def add_validity_parser(sub: Any) -> None:
    """The ``validity`` subcommand, on the ``pmsim`` parser's subparsers."""
    from sim.commands.ranks import RANK_CONFIG_HELP
    from sim.files.rulefiles import DEFAULT_RULES

    v = sub.add_parser(
        "validity", help="run seeds and measure how well the rankings recover diligence"
    )
    v.add_argument("scenario", type=Path)
    v.add_argument("--seeds", default="1,2,3", help="comma-separated seeds (default 1,2,3)")
    v.add_argument("--days", type=int, help="override the scenario's days")
    v.add_argument("--rank-config", type=Path, help=RANK_CONFIG_HELP)
    v.add_argument("--rules", type=Path, default=DEFAULT_RULES, help="rule file (default rules)")
    v.add_argument("--out", type=Path, help="default runs/validity-NAME-dDAYS")
    v.add_argument("--jobs", type=int, default=1, help="seeds run at once, in processes (1)")


def _seeds(text: str) -> list[int]:
    parts = [p.strip() for p in str(text).split(",")]
    if not all(p.isdigit() for p in parts):
        raise BadInput(f"--seeds {text}: comma-separated non-negative whole numbers, e.g. 1,2,3")
    seeds = [int(p) for p in parts]
    if len(set(seeds)) != len(seeds):
        raise BadInput(f"--seeds {text}: each seed at most once")
    return seeds


def _mean(xs: Sequence[float | None]) -> float | None:
    ok = [x for x in xs if x is not None and math.isfinite(x)]
    return round(sum(ok) / len(ok), 4) if ok else None


def _v(p: dict[str, Any]) -> dict[str, Any]:
    return p.get("validity") or {}


def seed_summary(seed: int, rankings: dict[str, Any]) -> dict[str, Any]:
    """One seed's figures from its ``rankings.json``."""
    periods = rankings["periods"]

    def kind(k: str) -> list[dict[str, Any]]:
        return sorted(
            (p for p in periods if p["period"]["kind"] == k), key=lambda p: p["period"]["id"]
        )

    months = kind("month")
    taus = [_v(p).get("kendall_tau") for p in months]
    known = [t for t in taus if t is not None]
    names: dict[str, float] = {}
    for p in periods:
        for n, ind in (_v(p).get("indicators") or {}).items():
            names.setdefault(n, float(ind.get("weight", 0.0)))
    indicators = {}
    for n, w in names.items():
        alone = [((_v(p).get("indicators") or {}).get(n) or {}).get("kendall_tau") for p in months]
        indicators[n] = {
            "weight": w,
            "mean_month_tau": _mean(alone),
            "months": sum(a is not None for a in alone),
        }
    stab = [_v(p).get("stability") for p in months]
    stab_ok = [s for s in stab if s]
    diligent: dict[str, dict[str, Any]] = {}
    for p in periods:
        for d in _v(p).get("diligent_black_listed") or []:
            entry = diligent.setdefault(
                d["estate"],
                {**{k: d.get(k) for k in ("estate", "company", "diligence")}, "periods": []},
            )
            entry["periods"].append(p["period"]["id"])
    return {
        "seed": seed,
        "months": len(months),
        "mean_month_tau": _mean(known),
        "min_month_tau": min(known) if known else None,
        "month_taus": {p["period"]["id"]: t for p, t in zip(months, taus, strict=True)},
        "quarter_taus": {p["period"]["id"]: _v(p).get("kendall_tau") for p in kind("quarter")},
        "half_taus": {p["period"]["id"]: _v(p).get("kendall_tau") for p in kind("half")},
        "run_tau": next((_v(p).get("kendall_tau") for p in kind("run")), None),
        "indicators": indicators,
        "mean_estate_spearman": _mean([_v(p).get("estate_spearman") for p in months]),
        "month_stability": {
            "pairs": len(stab_ok),
            "red_jaccard": _mean([s.get("red_jaccard") for s in stab_ok]),
            "black_jaccard": _mean([s.get("black_jaccard") for s in stab_ok]),
            "score_spearman": _mean([s.get("score_spearman") for s in stab_ok]),
        },
        "diligent_black_listed": sorted(diligent.values(), key=lambda d: str(d["estate"])),
    }


def _f(x: float | None) -> str:
    return "-" if x is None else f"{x:.2f}"


def _check(values: Sequence[float | None], ok: Callable[[float], bool]) -> str:
    """not met when a measured value fails, else not measured when one is missing, else met."""
    if any(v is not None and not ok(v) for v in values):
        return "not met"
    return "not measured" if not values or None in values else "met"


def _line(what: str, status: str, value: str) -> dict[str, Any]:
    met = None if status == "not measured" else status == "met"
    return {"what": what, "met": met, "status": status, "value": value}


def thresholds(per_seed: Sequence[dict[str, Any]], days: int) -> list[dict[str, Any]]:
    """The Done-when thresholds of issue 13, each met, not met or not measured (``met`` None)."""
    out = []
    what = f"mean monthly tau >= {MONTH_TAU:g} for each seed"
    month = [s["mean_month_tau"] for s in per_seed]
    value = ", ".join(f"seed {s['seed']} {_f(s['mean_month_tau'])}" for s in per_seed)
    if None in month:
        value += f"; a seed with no month ranked with a tau in {days} days"
    out.append(_line(what, _check(month, lambda t: t >= MONTH_TAU), value))

    what = f"half-year tau >= {HALF_TAU:g}"
    halves = [(s["seed"], h, t) for s in per_seed for h, t in s["half_taus"].items()]
    value = ", ".join(f"seed {k} {h} {_f(t)}" for k, h, t in halves)
    if not halves:
        value = f"no half-year ranked in {days} days"
    taus = [t for *_, t in halves]
    out.append(_line(what, _check(taus, lambda t: t >= HALF_TAU), value))

    what = f"every indicator with weight >= {WEIGHTY:g} has positive tau alone on average"
    weighty: dict[str, list[float | None]] = {}
    for s in per_seed:
        for n, ind in s["indicators"].items():
            if ind["weight"] >= WEIGHTY:
                weighty.setdefault(n, []).append(ind["mean_month_tau"])
    means = {n: _mean(ts) for n, ts in weighty.items()}
    value = ", ".join(f"{n} {_f(m)}" for n, m in means.items()) or "no indicator weighs that much"
    out.append(_line(what, _check(list(means.values()), lambda m: m > 0), value))

    what = f"no estate of a company with diligence >= {DILIGENT:g} on a black list"
    found = [(s["seed"], d) for s in per_seed for d in s["diligent_black_listed"]]
    named = ", ".join(f"seed {k} {d['estate']} ({d['company']} {d['diligence']})" for k, d in found)
    value = f"{len(found)} estates" + (f": {named}" if found else "")
    out.append(_line(what, "not met" if found else "met", value))
    return out


def _table(per_seed: Sequence[dict[str, Any]]) -> str:
    from sim.report.summary import table

    def row(label: str, vals: Sequence[Any], mean: bool = True) -> list[str]:
        cells = [str(v) if isinstance(v, int) else _f(v) for v in vals]
        return [label, *cells, _f(_mean(vals)) if mean and len(vals) > 1 else ""]

    def each(key: str) -> list[Any]:
        return [s[key] for s in per_seed]

    rows = [
        row("months ranked", each("months"), mean=False),
        row("tau, mean over months", each("mean_month_tau")),
        row("tau, lowest month", each("min_month_tau")),
    ]
    for key in ("quarter_taus", "half_taus"):
        ids = sorted({k for s in per_seed for k in s[key]})
        rows += [row(f"tau, {i}", [s[key].get(i) for s in per_seed]) for i in ids]
    rows.append(row("tau, whole run", each("run_tau")))
    for n in dict.fromkeys(n for s in per_seed for n in s["indicators"]):
        alone = [s["indicators"].get(n) or {} for s in per_seed]
        w = max(a["weight"] for a in alone if a)
        rows.append(
            row(
                f"{n} (weight {w:g}) alone, mean over months",
                [a.get("mean_month_tau") for a in alone],
            )
        )
    stab = each("month_stability")
    rows += [
        row("estate scores vs diligence (rho), mean", each("mean_estate_spearman")),
        row("month to month: red list Jaccard", [x["red_jaccard"] for x in stab]),
        row("month to month: black list Jaccard", [x["black_jaccard"] for x in stab]),
        row("month to month: scores rho", [x["score_spearman"] for x in stab]),
        row(
            f"estates of companies >= {DILIGENT:g} ever black-listed",
            [len(x) for x in each("diligent_black_listed")],
            mean=False,
        ),
    ]
    head = ["", *(f"seed {s['seed']}" for s in per_seed), "mean" if len(per_seed) > 1 else ""]
    return table(head, rows)


def run_seed(
    scenario_doc: dict[str, Any],
    seed: int,
    days: int,
    rules_text: str,
    out: str,
    rank_text: str | None,
) -> dict[str, Any]:
    """One run folder for one seed; returns its ``rankings.json``."""
    from sim.commands.tasks import run_replication

    run_replication(scenario_doc, seed, days, rules_text, out, rank_text)
    result: dict[str, Any] = json.loads((Path(out) / "rankings.json").read_text(encoding="utf-8"))
    return result


def validity_command(args: argparse.Namespace) -> int:
    from sim.commands.executors import run_tasks
    from sim.files.folders import staged_folder
    from sim.files.rulefiles import load_rules
    from sim.report.ranking import DEFAULT_RANKINGS, check_rank_file
    from sim.world.scenario import load_scenario

    seeds = _seeds(args.seeds)
    if args.jobs < 1:
        raise BadInput(f"--jobs {args.jobs}: at least 1")
    if args.days is not None and args.days < 1:
        raise BadInput(f"--days {args.days}: must be at least 1")
    sc = load_scenario(args.scenario)
    days = args.days if args.days is not None else sc.days
    load_rules(args.rules)  # bad rules or rankings: refused before any run
    rank_path = args.rank_config or DEFAULT_RANKINGS
    check_rank_file(rank_path)
    rank_text = rank_path.read_text(encoding="utf-8") if args.rank_config else None
    out: Path = args.out or Path("runs") / f"validity-{sc.name}-d{days}"
    if out.exists() and not out.is_dir():
        raise BadInput(f"{out}: --out exists and is not a folder")
    if out.exists() and any(out.iterdir()) and not (out / VALIDITY_JSON).exists():
        raise BadInput(
            f"{out}: --out is a non-empty folder that is not a pmsim validity; not overwriting"
        )
    rules_text = Path(args.rules).read_text(encoding="utf-8")
    doc = sc.model_dump(mode="json")
    started = time.perf_counter()

    def done(seed: int | None = None) -> None:
        what = f"seed {seed}" if seed is not None else "a seed"
        print(
            f"pmsim validity: {what} done ({time.perf_counter() - started:.0f} s)", file=sys.stderr
        )

    with staged_folder(out) as tmp:
        tasks = [
            (run_seed, (doc, s, days, rules_text, str((tmp / f"seed-{s}").resolve()), rank_text))
            for s in seeds
        ]
        if args.jobs == 1:
            results = []
            for s, (fn, task_args) in zip(seeds, tasks, strict=True):
                results.append(fn(*task_args))
                done(s)
        else:
            results = run_tasks(tasks, workers=min(args.jobs, len(tasks)), tick=done)
        per_seed = [seed_summary(s, rk) for s, rk in zip(seeds, results, strict=True)]
        checks = thresholds(per_seed, days)
        doc_out = {
            "scenario": sc.name,
            "days": days,
            "seeds": seeds,
            "rules": str(args.rules),
            "rank_config": str(rank_path),
            "run_folders": [f"seed-{s}" for s in seeds],
            "per_seed": per_seed,
            "thresholds": checks,
        }
        (tmp / VALIDITY_JSON).write_text(
            json.dumps(doc_out, ensure_ascii=False, indent=1) + "\n", encoding="utf-8"
        )
    seeds_text = ", ".join(str(s) for s in seeds)
    print(
        f"pmsim validity: {sc.name}, {days} days, seeds {seeds_text} (ranked with {rank_path.name})"
    )
    print("Kendall tau of companies vs latent diligence (1: the same order, -1: reversed)")
    print(_table(per_seed))
    print("\nDone when (issue 13):")
    for c in checks:
        print(f"  {c['what']}: {c['status']} ({c['value']})")
    print(f"\nvalidity.json and a run folder per seed: {out}")
    return 0
