"""A city-sized scenario, generated (``pmsim scenario generate``): districts, subdistricts and grids;
estates of four kinds; property companies owning estates across grids; device roll-outs over time.

Everything is synthetic and deterministic: each part draws from its own Generator keyed by a stable
name and the seed (:class:`~sim.world.streams.Streams`), so the same options give the same file,
byte for byte. The scenario model has no district field, so a grid's id and name carry its place:
``d03-s02-aibo`` and ``桃华区/新虹街道/爱博`` (district 3, its subdistrict 2, grid 爱博).

Estates are of four kinds, walk-up 新村, mid-rise, high-rise and village (sim/world/estategen.py).
Central districts (the first two fifths) are mostly walk-ups; outer ones have the towers and villages.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import numpy as np

from sim.world.citynames import Namer, chinese_number
from sim.world.estategen import KINDS, NOTES, SUFFIXES, buildings, devices
from sim.world.streams import Streams

__all__ = [
    "DEFAULT_START",
    "KINDS",
    "LIMITS",
    "City",
    "CityOptions",
    "generate_city",
    "option_problem",
]

DEFAULT_START = date(2026, 3, 2)  # a Monday, as in the shipped scenarios
LIMITS = {"districts": (1, 100), "estates": (1, 20000), "days": (1, 3660), "seed": (0, 2**63 - 1)}
_SHARES = {"central": (0.45, 0.33, 0.17, 0.05), "outer": (0.15, 0.30, 0.33, 0.22)}


@dataclass(frozen=True)
class CityOptions:
    districts: int
    estates: int
    seed: int
    companies: int | None = None  # default: one for every five estates
    start: date = DEFAULT_START
    days: int = 30

    def company_count(self) -> int:
        if self.companies is not None:
            return self.companies
        return max(1, min(self.estates, round(self.estates / 5)))


def option_problem(opts: CityOptions) -> tuple[str, int, str] | None:
    """The first option out of bounds, as (option, value, what it must be), or None."""
    for name, (lo, hi) in LIMITS.items():
        value = int(getattr(opts, name))
        if value < lo:
            return name, value, f"must be at least {lo}"
        if value > hi:
            return name, value, f"at most {hi}"
    if opts.estates < opts.districts:
        return "estates", opts.estates, f"at least one per district ({opts.districts})"
    k = opts.company_count()
    if not 1 <= k <= opts.estates:
        return "companies", k, f"from 1 to the number of estates ({opts.estates})"
    return None


@dataclass
class City:
    """The scenario as plain data (in file order) and what the file's header says about it."""

    options: CityOptions
    data: dict[str, Any]
    notes: dict[str, str]  # estate id -> a comment on its kind
    districts: list[tuple[str, int, int]]  # (name, subdistricts, estates)
    kinds: Counter[str] = field(default_factory=Counter)
    households: int = 0


@dataclass
class _Estate:
    index: int
    district: int
    kind: str
    company: int = -1


def generate_city(opts: CityOptions) -> City:
    """The scenario for ``opts`` (raises ValueError on options :func:`option_problem` refuses)."""
    problem = option_problem(opts)
    if problem is not None:
        raise ValueError(f"{problem[0]} {problem[1]}: {problem[2]}")
    streams, namer = Streams(opts.seed), Namer()
    n, k = opts.districts, opts.company_count()
    central = math.ceil(0.4 * n)
    rng = streams.get("city", "districts")
    per_district = _split(rng, opts.estates, n, alpha=4.0)
    estates: list[_Estate] = []
    layout: list[tuple[str, str, list[tuple[str, str, list[_Estate]]]]] = []  # district/subdistrict
    summary: list[tuple[str, int, int]] = []
    for d in range(n):
        drng = streams.get("district", str(d))
        dname, _ = namer.take("district", drng, (("区", ""),))
        where = "central" if d < central else "outer"
        sizes = _split(drng, per_district[d], max(1, round(per_district[d] / 60)), alpha=3.0)
        for s, size in enumerate(sizes):
            srng = streams.get("subdistrict", str(d), str(s))
            town = where == "outer" and srng.random() < 0.6
            sname, _ = namer.take("subdistrict", srng, (("镇" if town else "街道", ""),))
            grids = []
            for gsize in _split(srng, size, max(1, round(size / 6)), alpha=3.0):
                gname, gpy = namer.take("grid", srng, (("", ""),))
                kinds = srng.choice(len(KINDS), size=gsize, p=_SHARES[where])
                members = [_Estate(len(estates) + i, d, KINDS[int(x)]) for i, x in enumerate(kinds)]
                estates.extend(members)
                gid = namer.claim("grid-id", gname, f"d{d + 1:02d}-s{s + 1:02d}-{gpy}")[1]
                grids.append((gid, f"{dname}/{sname}/{gname}", members))
            layout.append((dname, sname, grids))
        summary.append((dname, len(sizes), per_district[d]))
    companies = _companies(streams, namer, opts, estates, per_district)
    city = City(opts, {}, {}, summary)
    hh_of = np.zeros(k)
    out_grids = []
    for _, _, grids in layout:
        for gid, gname, members in grids:
            series = 0
            out_estates = []
            for est in members:
                erng = streams.get("estate", str(est.index))
                comp = companies[est.company]
                if est.kind == "walkup" and erng.random() < 0.45:
                    series += 1
                    stem, py = gname.rsplit("/", 1)[1], gid.split("-", 2)[2]
                    sep = "-" if py[-1].isdigit() else ""
                    candidate = f"{stem}{chinese_number(min(series, 99))}村"
                    if namer.free("estate", candidate):
                        name, eid = namer.claim("estate", candidate, f"{py}{sep}{series}")
                    else:
                        name, eid = namer.take("estate", erng, SUFFIXES[est.kind])
                else:
                    name, eid = namer.take("estate", erng, SUFFIXES[est.kind])
                groups = buildings(erng, est.kind)
                installs = devices(
                    erng, est.kind, groups, comp["diligence"], comp["wave"], opts.days
                )
                out_estates.append(
                    {
                        "id": eid,
                        "name": name,
                        "company": comp["id"],
                        "buildings": groups,
                        "devices": installs,
                    }
                )
                hh = sum(
                    g["count"]
                    * g["floors"]
                    * g["units"]
                    * g["households_per_floor"]
                    * g["occupancy"]
                    for g in groups
                )
                hh_of[est.company] += hh
                city.households += round(hh)
                city.kinds[est.kind] += 1
                city.notes[eid] = NOTES[est.kind]
            out_grids.append({"id": gid, "name": gname, "estates": out_estates})
    srng = streams.get("city", "staff")
    per_staff = srng.uniform(250.0, 600.0, size=k)
    out_companies = [
        {
            "id": c["id"],
            "name": c["name"],
            "diligence": c["diligence"],
            "staff": max(1, round(float(hh_of[i] / per_staff[i]))),
        }
        for i, c in enumerate(companies)
    ]
    city.data = {
        "name": f"city-d{n}-e{opts.estates}",
        "title": f"合成城市 (generated: {n} districts, {opts.estates} estates, seed {opts.seed})",
        "start": opts.start,
        "days": opts.days,
        "seed": opts.seed,
        "devices": {
            "health": {
                "heartbeat_seconds": 900,
                "mean_days_between_outages": 30,
                "mean_outage_hours": 6,
            }
        },
        "gateway": {"mean_days_between_disconnects": 10, "mean_disconnect_minutes": 20},
        "companies": out_companies,
        "grids": out_grids,
    }
    return city


def _split(rng: np.random.Generator, total: int, parts: int, alpha: float) -> list[int]:
    """``total`` into ``parts`` positive counts of varied size (parts <= total)."""
    parts = min(parts, total)
    extra = rng.multinomial(total - parts, rng.dirichlet(np.full(parts, alpha)))
    return [1 + int(x) for x in extra]


def _companies(
    streams: Streams,
    namer: Namer,
    opts: CityOptions,
    estates: list[_Estate],
    per_district: list[int],
) -> list[dict[str, Any]]:
    """Companies, largest first, each with at least one estate (set on ``estates``): a few large
    ones city-wide, a long tail of small ones near home; diligence spread over the range."""
    k, n = opts.company_count(), opts.districts
    rng = streams.get("city", "companies")
    share = np.asarray(per_district, dtype=float) / opts.estates
    home = rng.choice(n, size=k, p=share)
    weight = 1.0 / np.arange(1, k + 1) ** 0.8  # Zipf-like sizes
    spread = 1.0 / (1.0 + np.arange(k) / 5.0)  # the share of its estates away from home
    pools: list[list[_Estate]] = [[] for _ in range(n)]
    for est in estates:
        pools[est.district].append(est)
    for c in range(k):  # one estate each, near home when there is one left
        d = int(home[c]) if pools[int(home[c])] else max(range(n), key=lambda i: len(pools[i]))
        pool = pools[d]
        j = int(rng.integers(len(pool)))
        pool[j], pool[-1] = pool[-1], pool[j]
        pool.pop().company = c
    for d in range(n):
        rest = sorted(pools[d], key=lambda e: e.index)
        if not rest:
            continue
        p = weight * (spread * share[d] + (1.0 - spread) * (home == d))
        for est, c in zip(rest, rng.choice(k, size=len(rest), p=p / p.sum()), strict=True):
            est.company = int(c)
    drng = streams.get("city", "diligence")
    diligence = 0.05 + 0.92 * (drng.permutation(k) + drng.random(k)) / k  # stratified
    wave = np.where(drng.random(k) < 0.35, 0, drng.integers(0, opts.days, size=k))
    out = []
    for c in range(k):
        crng = streams.get("company", str(c))
        name, cid = namer.take(
            "company", crng, (("物业", ""), ("物业", ""), ("物业服务", ""), ("物业管理", ""))
        )
        out.append(
            {
                "id": cid,
                "name": name,
                "diligence": round(float(diligence[c]), 2),
                "wave": int(wave[c]),
            }
        )
    return out
