"""``pmsim scenario generate``: a city-sized synthetic scenario as YAML (see sim/world/generate.py).

The YAML is written here, line by line, in the shipped scenarios' style: building groups and
installations as one-line mappings, a comment on each estate's kind and each company's size, and a
header that repeats the command. Everything in it is plain data that ``pmsim validate`` loads.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections import Counter
from datetime import date
from pathlib import Path
from typing import Any

from sim.errors import BadInput
from sim.world.generate import DEFAULT_START, City, CityOptions, generate_city, option_problem

__all__ = ["add_scenario_parser", "city_yaml", "scenario_command"]

_PLAIN = re.compile(r"[a-z][a-z0-9_-]*|[^\x00-\x7f][^\x00-\x7f/]*(?:/[^\x00-\x7f]+)*")
_WORDS = {"yes", "no", "on", "off", "true", "false", "null"}  # YAML 1.1 would not read as strings


def add_scenario_parser(sub: Any) -> None:
    p = sub.add_parser("scenario", help="scenario tools")
    ssub = p.add_subparsers(
        dest="scenario_command", metavar="generate", required=True, parser_class=type(p)
    )
    g = ssub.add_parser(
        "generate",
        help="write a synthetic city: districts, grids, estates, companies, device roll-outs",
    )
    g.add_argument("--districts", type=int, required=True, help="districts (1 to 100)")
    g.add_argument("--estates", type=int, required=True, help="estates in all (up to 20000)")
    g.add_argument("--seed", type=int, required=True, help="the same seed gives the same file")
    g.add_argument("--companies", type=int, help="property companies (default estates / 5)")
    g.add_argument(
        "--start", type=_iso_date, default=DEFAULT_START, help="first day, YYYY-MM-DD (2026-03-02)"
    )
    g.add_argument("--days", type=int, default=30, help="the scenario's days (default 30)")
    g.add_argument("--out", type=Path, help="YAML file to write (default: standard output)")


def _iso_date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date (YYYY-MM-DD)") from None


def scenario_command(args: argparse.Namespace) -> int:
    opts = CityOptions(
        districts=args.districts,
        estates=args.estates,
        seed=args.seed,
        companies=args.companies,
        start=args.start,
        days=args.days,
    )
    problem = option_problem(opts)
    if problem is not None:
        name, value, what = problem
        raise BadInput(f"--{name} {value}: {what}")
    city = generate_city(opts)
    text = city_yaml(city)
    if args.out is None:
        sys.stdout.write(text)
        return 0
    try:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise BadInput(f"{args.out}: cannot write: {exc.strerror or exc}") from None
    size = len(text.encode("utf-8"))
    print(f"wrote {args.out}: {_overview(city)}; {size / 1e6:.2f} MB")
    return 0


def _overview(city: City) -> str:
    grids = city.data["grids"]
    estates = sum(len(g["estates"]) for g in grids)
    subs = sum(s for _, s, _ in city.districts)
    return (
        f"{len(city.districts)} districts, {subs} subdistricts, {len(grids)} grids, "
        f"{estates} estates, {len(city.data['companies'])} companies, "
        f"{city.households:,} households"
    )


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | date):
        return str(value)
    text = str(value)
    if _PLAIN.fullmatch(text) and text not in _WORDS:
        return text
    return json.dumps(text, ensure_ascii=False)  # a JSON string is a YAML double-quoted scalar


def _flow(value: Any) -> str:
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_flow(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_flow(v) for v in value) + "]"
    return _scalar(value)


def city_yaml(city: City) -> str:
    """The scenario file: the same city gives the same text."""
    o, d = city.options, city.data
    managed = Counter(e["company"] for g in d["grids"] for e in g["estates"])
    equipped = sum(1 for g in d["grids"] for e in g["estates"] if e["devices"])
    kinds = ", ".join(
        f"{city.kinds[k]} {label}"
        for k, label in (
            ("walkup", "walk-up 新村 (1950s-80s, no lifts or lifts added)"),
            ("midrise", "mid-rise (1990s-2000s)"),
            ("highrise", "high-rise (2010s+)"),
            ("village", "villages (低层 村)"),
        )
    )
    lines = [
        "# A generated city: every name and number below is SYNTHETIC (pmsim scenario generate).",
        f"# pmsim scenario generate --districts {o.districts} --estates {o.estates} --seed {o.seed}"
        f" --companies {o.company_count()} --start {o.start} --days {o.days}",
        f"# {_overview(city)} (expected, from occupancy).",
        f"# Estates: {kinds}; {equipped} with devices, installed on a company's roll-out day.",
        "# The scenario model has no district field: a grid's id is dNN-sNN-NAME (district,",
        "# subdistrict) and its name 区/街道或镇/网格.",
        "# Districts (subdistricts, estates):",
    ]
    names = [f"{n} ({s}, {e})" for n, s, e in city.districts]
    for i in range(0, len(names), 6):
        lines.append("#   " + ", ".join(names[i : i + 6]))
    for key in ("name", "title", "start", "days", "seed"):
        lines.append(f"{key}: {_scalar(d[key])}")
    lines += ["", "devices:", f"  health: {_flow(d['devices']['health'])}"]
    lines += [f"gateway: {_flow(d['gateway'])}", ""]
    lines.append("companies:                 # largest first; diligence is the latent truth")
    for c in d["companies"]:
        n = managed[c["id"]]
        lines.append(f"  - {_flow(c)}  # {n} estate{'s' if n != 1 else ''}")
    lines += ["", "grids:"]
    for g in d["grids"]:
        lines += [f"  - id: {_scalar(g['id'])}", f"    name: {_scalar(g['name'])}", "    estates:"]
        for e in g["estates"]:
            lines += [
                f"      - id: {_scalar(e['id'])}  # {city.notes[e['id']]}",
                f"        name: {_scalar(e['name'])}",
                f"        company: {_scalar(e['company'])}",
                "        buildings:",
            ]
            lines += [f"          - {_flow(b)}" for b in e["buildings"]]
            if e["devices"]:
                lines.append("        devices:")
                lines += [f"          - {_flow(x)}" for x in e["devices"]]
            else:
                lines.append("        devices: []")
    return "\n".join(lines) + "\n"
