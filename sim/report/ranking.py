"""Rankings of a run: ``rankings.json`` in the run folder, and ``pmsim rank`` to print them.

Periods come from the scenario's calendar (months, quarters, half-years the run covers enough of);
every period is ranked with :func:`rules.rankings.rank_period` on inputs built by
:mod:`sim.report.rankinputs`, and list stability across consecutive periods is reported.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from rules.model import RuleFile
from rules.periods import periods
from rules.rankconfig import RankConfig, RankConfigError, check_config
from rules.rankings import rank_period
from rules.rankstats import stability
from sim.errors import BadInput
from sim.files.records import read_jsonl, run_info
from sim.files.yamlio import load_yaml, validate_loaded
from sim.report.rankinputs import RunRecords, estate_periods
from sim.report.summary import table

__all__ = [
    "DEFAULT_RANKINGS",
    "check_rank_file",
    "compute_rankings",
    "format_rank",
    "load_rank_config",
]

DEFAULT_RANKINGS = Path(__file__).resolve().parents[2] / "seeds" / "rankings" / "default.yaml"


def load_rank_config(
    path: Path,
    *,
    n_estates: int,
    days: int,
    start: Any,
    strict_periods: bool = False,
    kinds: list[str] | None = None,
) -> RankConfig:
    """Load and check; period kinds the run is too short for are dropped (or, with
    ``strict_periods``, are an error)."""
    loaded = load_yaml(path)
    cfg = validate_loaded(loaded, RankConfig)
    if kinds is not None:
        cfg = cfg.model_copy(update={"periods": kinds})
    if not strict_periods:
        fits = [k for k in cfg.periods if periods(start, days, [k], cfg.min_coverage)]
        cfg = cfg.model_copy(update={"periods": fits or cfg.periods[:1]})
    try:
        check_config(cfg, n_estates, days, start=start)
    except RankConfigError as exc:
        raise loaded.error(exc.loc, exc.message) from None
    return cfg


def check_rank_file(path: Path) -> RankConfig:
    """Validate an indicator configuration on its own (before a run starts)."""
    return validate_loaded(load_yaml(path), RankConfig)


def compute_rankings(
    run_dir: Path,
    config: Path = DEFAULT_RANKINGS,
    *,
    strict_periods: bool = False,
    kinds: list[str] | None = None,
    days: int | None = None,
) -> dict[str, Any]:
    """Rank every period of a run folder (``days`` when its run.json is not written yet). With ``kinds`` only those period kinds, and with
    ``strict_periods`` a kind longer than the run is an error rather than skipped."""
    if days is None:
        days = int(run_info(run_dir)["days"])
    try:
        estates = json.loads((run_dir / "estates.json").read_text(encoding="utf-8"))
        scenario = yaml.safe_load((run_dir / "scenario.resolved.yaml").read_text(encoding="utf-8"))
        rules = RuleFile.model_validate(
            yaml.safe_load((run_dir / "rules.yaml").read_text(encoding="utf-8"))
        )
    except FileNotFoundError as exc:
        raise BadInput(
            f"{run_dir}: not a complete run folder ({Path(exc.filename).name} missing)"
        ) from None
    from datetime import date

    start = date.fromisoformat(str(scenario["start"]))
    cfg = load_rank_config(
        config,
        n_estates=len(estates),
        days=days,
        start=start,
        strict_periods=strict_periods,
        kinds=kinds,
    )
    run = RunRecords(
        estates=estates,
        rules=list(rules.rules),
        alerts=list(read_jsonl(run_dir / "alerts.jsonl")),
        workorders=list(read_jsonl(run_dir / "workorders.jsonl")),
        truth=list(read_jsonl(run_dir / "truth.jsonl")),
        end_s=days * 86400.0,
    )
    diligence = {c["id"]: c["diligence"] for c in scenario["companies"]}
    results = []
    for p in periods(start, days, cfg.periods, cfg.min_coverage):
        results.append(rank_period(estate_periods(run, p), cfg, period=p, diligence=diligence))
    return {
        "config": config.name,
        "start": start.isoformat(),
        "days": days,
        "periods": results,
        "stability": stability(results),
    }


def _iv(x: list[Any] | None, fmt: str = "{:.0f}") -> str:
    if not x or x[0] is None:
        return "-"
    return f"[{fmt.format(x[0])}, {fmt.format(x[1])}]"


def format_rank(rankings: dict[str, Any], kind: str) -> str:
    chosen = [p for p in rankings["periods"] if p["period"]["kind"] == kind]
    if not chosen:
        raise BadInput(
            f"--period {kind}: no {kind} is covered by this run (days: {rankings['days']})"
        )
    parts = []
    for res in chosen:
        per = res["period"]
        parts.append(
            f"== {per['id']} ({per['days']:g} days{', partial' if per.get('partial') else ''})"
        )
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
            parts.append(f"{title}: " + ("nobody on strong enough evidence" if not rows else ""))
            if rows:
                parts.append(table(["estate", "name", "P", "why"], rows))
        rows = [
            [
                e["rank"],
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
        tau = res.get("validity", {}).get("kendall_tau")
        if tau is not None:
            parts.append(f"Companies vs latent diligence: Kendall tau {tau}")
        parts.append("")
    return "\n".join(parts)
