"""Rankings of a run: ``rankings.json`` in the run folder, and ``pmsim rank`` to print them.

Every run is ranked over its whole length (period ``run``) and over each calendar month, quarter
and half-year it covers enough of (:func:`rules.periods.ranked_periods`: one coverage rule,
``min_coverage``); the configured kinds with no period covered enough are listed in ``left_out``.
Every period is ranked with :func:`rules.rankings.rank_period` on inputs built by
:mod:`sim.report.rankinputs`, and list stability across consecutive periods is reported. The
scenario's company diligence (the simulation's truth) is passed on for the validity block only
(:mod:`rules.rankvalidity`); the inputs to every score are the run's observable records.
"""

from __future__ import annotations

import json
import os
from datetime import date
from pathlib import Path
from typing import Any

from rules.model import RuleFile
from rules.periods import Period, PeriodKind, periods, ranked_periods, run_period
from rules.rankconfig import RankConfig, RankConfigError, check_config
from rules.rankings import rank_period
from rules.rankvalidity import add_stability
from sim.errors import BadInput
from sim.files.records import read_jsonl, run_info
from sim.files.yamlio import load_yaml, validate_loaded, yaml_data
from sim.report.inspections import inspect, staff_events
from sim.report.rankinputs import RunRecords, estate_periods
from sim.report.siteinspections import site_inspections
from sim.report.summary import table

__all__ = [
    "DEFAULT_RANKINGS",
    "PERIOD_NAME",
    "check_rank_file",
    "compute_rankings",
    "format_rank",
    "left_out_reason",
    "load_rank_config",
    "period_title",
    "write_rankings",
]

DEFAULT_RANKINGS = Path(__file__).resolve().parents[2] / "seeds" / "rankings" / "default.yaml"
PERIOD_NAME = {"run": "whole run", "month": "month", "quarter": "quarter", "half": "half-year"}


def load_rank_config(
    path: Path, *, days: int, start: date, period: PeriodKind | None = None
) -> tuple[RankConfig, list[Period], list[str]]:
    """Load ``path`` and choose the periods to rank: every period of :func:`ranked_periods` (and
    the configured kinds of which no calendar period is covered enough), or only ``period``'s,
    when none is covered enough an error naming the configuration's field."""
    loaded = load_yaml(path)
    cfg = validate_loaded(loaded, RankConfig)
    if period == "run":
        return cfg, [run_period(days)], []
    if period is not None:
        try:
            check_config(cfg, days, period, start=start)
        except RankConfigError as exc:
            raise loaded.error(exc.loc, exc.message) from None
        return cfg, periods(start, days, [period], cfg.min_coverage), []
    left_out: list[str] = [
        k for k in cfg.periods if not periods(start, days, [k], cfg.min_coverage)
    ]
    return cfg, ranked_periods(start, days, cfg.periods, cfg.min_coverage), left_out


def check_rank_file(path: Path) -> RankConfig:
    """Validate an indicator configuration on its own (before a run starts)."""
    return validate_loaded(load_yaml(path), RankConfig)


def _read_folder(run_dir: Path) -> tuple[list[Any], dict[str, Any], RuleFile]:
    what = "estates.json"
    try:
        estates = json.loads((run_dir / what).read_text(encoding="utf-8"))
        what = "scenario.resolved.yaml"
        scenario = yaml_data(run_dir / what)
        what = "rules.yaml"
        rules = RuleFile.model_validate(yaml_data(run_dir / what))
    except FileNotFoundError:
        raise BadInput(f"{run_dir}: not a complete run folder ({what} missing)") from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise BadInput(f"{run_dir / what}: cannot be read ({first})") from None
    if not isinstance(estates, list) or not isinstance(scenario, dict):
        raise BadInput(
            f"{run_dir}: estates.json or scenario.resolved.yaml is not what pmsim writes"
        )
    return estates, scenario, rules


def compute_rankings(
    run_dir: Path,
    config: Path = DEFAULT_RANKINGS,
    *,
    period: PeriodKind | None = None,
    days: int | None = None,
) -> dict[str, Any]:
    """Rank every period of a run folder (``days`` when its run.json is not written yet), or with
    ``period`` only the periods of that kind (an error when none is covered enough)."""
    if days is None:
        raw = run_info(run_dir).get("days")
        if not isinstance(raw, int) or raw < 1:
            raise BadInput(f"{run_dir / 'run.json'}: days: not a positive whole number")
        days = raw
    estates, scenario, rules = _read_folder(run_dir)
    try:
        start = date.fromisoformat(str(scenario["start"]))
        diligence = {c["id"]: c["diligence"] for c in scenario["companies"]}
    except (KeyError, TypeError, ValueError) as exc:
        raise BadInput(
            f"{run_dir / 'scenario.resolved.yaml'}: not what pmsim writes ({exc!r})"
        ) from None
    cfg, chosen, left_out = load_rank_config(config, days=days, start=start, period=period)
    try:
        alerts = list(read_jsonl(run_dir / "alerts.jsonl"))
        workorders = list(read_jsonl(run_dir / "workorders.jsonl"))
        with (run_dir / "events.jsonl").open("rb") as fh:
            staff = staff_events(fh)
        seed = int(scenario.get("seed", 0))
        truth = list(read_jsonl(run_dir / "truth.jsonl"))
        run = RunRecords(
            estates=estates,
            rules=list(rules.rules),
            alerts=alerts,
            workorders=workorders,
            staff=staff,
            inspections=inspect(workorders, alerts, truth, seed),
            sites=site_inspections(scenario, truth, seed, days),
            end_s=days * 86400.0,
        )
    except FileNotFoundError as exc:
        name = Path(str(exc.filename)).name
        raise BadInput(f"{run_dir}: not a complete run folder ({name} missing)") from None
    try:
        results = [
            rank_period(estate_periods(run, p), cfg, period=p, diligence=diligence) for p in chosen
        ]
    except (KeyError, TypeError, ValueError) as exc:
        raise BadInput(f"{run_dir}: records not in the shape pmsim writes ({exc!r})") from None
    return {
        "config": config.name,
        "start": start.isoformat(),
        "days": days,
        "min_coverage": cfg.min_coverage,
        "periods": results,
        "left_out": left_out,
        "stability": add_stability(results),  # and each period's validity.stability
    }


def write_rankings(run_dir: Path, rankings: dict[str, Any]) -> Path:
    """``rankings.json`` in ``run_dir``, replaced whole (never half-written)."""
    path = run_dir / "rankings.json"
    tmp = run_dir / f".rankings.json.partial-{os.getpid()}"
    tmp.write_text(json.dumps(rankings, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return path


def _iv(x: list[Any] | None, fmt: str = "{:.0f}") -> str:
    if not x or x[0] is None:
        return "-"
    return f"[{fmt.format(x[0])}, {fmt.format(x[1])}]"


def left_out_reason(rankings: dict[str, Any]) -> str:
    """Why the kinds in ``left_out`` have no ranked period."""
    cover = rankings.get("min_coverage", 0.5)
    return f"no calendar period of it has at least {cover:.0%} of its days inside the run; min_coverage"


def period_title(per: dict[str, Any]) -> str:
    """``run: the whole run, 7 days`` or ``2026-03: month, 30 days (partial)``."""
    text = f"{per['id']}: {PERIOD_NAME[per['kind']]}, {per['days']:g} days"
    return text + (" (partial)" if per.get("partial") else "")


def format_rank(rankings: dict[str, Any], kind: str, source: Path | None = None) -> str:
    """The lists and every estate's score for each period of ``kind``; a ``rankings.json``
    (``source``) that has no such period or is not in pmsim's shape is a :class:`BadInput`."""
    where = str(source) if source is not None else "rankings"
    try:
        return _format_rank(rankings, kind, where)
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
        raise BadInput(
            f"{where}: not the shape pmsim writes ({type(exc).__name__}: {exc})"
        ) from None


def _format_rank(rankings: dict[str, Any], kind: str, where: str) -> str:
    chosen = [p for p in rankings["periods"] if p["period"]["kind"] == kind]
    if not rankings["periods"]:
        why = rankings.get("skipped") or "no period was ranked"
        raise BadInput(f"{where}: no ranked period ({why}); --config FILE ranks the run again")
    if not chosen:
        why = f"no {PERIOD_NAME[kind]} was ranked"
        if kind in (rankings.get("left_out") or []):
            why = left_out_reason(rankings)
        raise BadInput(f"--period {kind}: {where} has none ({why})")
    parts = []
    for res in chosen:
        parts.append(f"== {period_title(res['period'])}")
        for title, key in (("Red list (best)", "red_list"), ("Black list (worst)", "black_list")):
            rows = [
                [
                    e["estate"],
                    e.get("name", ""),
                    f"{e['probability']:.2f}",
                    "; ".join(
                        r.get("text", str(r)) if isinstance(r, dict) else str(r)
                        for r in e.get("reasons", [])[:3]
                    ),
                ]
                for e in res[key]
            ]
            none = "nobody on strong enough evidence"
            if res["config"].get("list_length") == 0:
                none = "none (one estate scored: nothing to compare it with)"
            parts.append(f"{title}: " + ("" if rows else none))
            if rows:
                parts.append(table(["estate", "name", "P", "why"], rows))
        rows = [
            [
                "-" if e.get("rank") is None else e["rank"],
                e["estate"],
                e.get("name", ""),
                "-" if e.get("score") is None else f"{e['score']:.1f}",
                _iv(e.get("interval")),
                e.get("band") or "-",
                _iv(e.get("rank_interval"), "{}"),
                ", ".join(e.get("unobservable", [])) or "",
            ]
            for e in res["estates"]
        ]
        parts.append(
            table(
                ["rank", "estate", "name", "score", "95%", "band", "rank range", "not observable"],
                rows,
            )
        )
        validity = res.get("validity") or {}
        tau = validity.get("kendall_tau")
        if tau is not None:
            iv = _iv(validity.get("interval"), "{:.2f}")
            parts.append(f"Companies vs latent diligence: Kendall tau {tau} (95% {iv})")
        parts.append("")
    return "\n".join(parts)
