"""Estates of four kinds for the city generator: their building groups, names and device roll-outs.

- ``walkup``: 1950s-80s 新村, four- to six-storey walk-ups, no lifts (some with lifts added later);
- ``midrise``: 1990s-2000s 苑/花园/公寓, eight to eighteen floors with lifts, often beside walk-ups;
- ``highrise``: 2010s+ towers of 18 to 33 floors, two or three lifts a unit;
- ``village``: 村, low-rise resettlement housing, rarely a block with a lift.

Plain data in the scenario file's shape (see sim/world/scenario.py: ``BuildingGroup``,
``Installation``); each function draws only from the Generator it is given.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["ADOPTION", "KINDS", "NOTES", "SUFFIXES", "buildings", "devices"]

KINDS = ("walkup", "midrise", "highrise", "village")
ADOPTION = {  # added to the chance that an estate has any devices
    "walkup": 0.0,
    "midrise": 0.1,
    "highrise": 0.2,
    "village": -0.05,
}
SUFFIXES: dict[str, tuple[tuple[str, str], ...]] = {
    "walkup": (("新村", "xincun"), ("新村", "xincun"), ("新村", "xincun"), ("小区", "xiaoqu")),
    "midrise": (("苑", "yuan"), ("花园", "huayuan"), ("公寓", "gongyu"), ("家园", "jiayuan")),
    "highrise": (
        ("华庭", "huating"),
        ("名苑", "mingyuan"),
        ("花园", "huayuan"),
        ("湾", "wan"),
        ("公馆", "gongguan"),
        ("雅苑", "yayuan"),
        ("名邸", "mingdi"),
    ),
    "village": (("村", "cun"),) * 19 + (("合作社", "coop"),),
}
NOTES = {
    "walkup": "walk-up 新村, 1950s-80s",
    "midrise": "mid-rise, 1990s-2000s",
    "highrise": "high-rise towers, 2010s+",
    "village": "village: low-rise resettlement housing",
}


def _group(
    count: int, floors: int, units: int, hpf: int, lifts: int, occupancy: float
) -> dict[str, Any]:
    """A building group; ``elevators_per_unit`` only when there are lifts (the model's default 0)."""
    group: dict[str, Any] = {
        "count": int(count),
        "floors": int(floors),
        "units": int(units),
        "households_per_floor": int(hpf),
    }
    if lifts:
        group["elevators_per_unit"] = int(lifts)
    group["occupancy"] = round(float(occupancy), 2)
    return group


def _int(rng: np.random.Generator, low: int, high: int) -> int:
    """An integer from ``low`` to ``high - 1``."""
    return int(rng.integers(low, high))


def _pick(rng: np.random.Generator, options: tuple[int, ...]) -> int:
    return options[int(rng.integers(len(options)))]


def buildings(rng: np.random.Generator, kind: str) -> list[dict[str, Any]]:
    """Building groups of an estate of ``kind``, lift-less walk-ups first."""
    if kind == "walkup":
        occ = rng.uniform(0.88, 0.97)
        units, hpf = _pick(rng, (2, 2, 3, 4)), _pick(rng, (2, 2, 2, 3))
        groups = [_group(_int(rng, 8, 33), _pick(rng, (4, 5, 6, 6, 6, 6)), units, hpf, 0, occ)]
        if rng.random() < 0.4:  # a later row, a floor lower or higher
            floors = 5 if groups[0]["floors"] == 6 else 6
            groups.append(_group(_int(rng, 2, 10), floors, units, hpf, 0, occ))
        if rng.random() < 0.3:  # lifts added to some of the first group's buildings (加装电梯)
            added = max(1, round(groups[0]["count"] * rng.uniform(0.1, 0.3)))
            groups[0]["count"] -= added
            first = groups[0]
            groups.append(_group(added, first["floors"], units, hpf, 1, first["occupancy"]))
        return groups
    if kind == "midrise":
        occ = rng.uniform(0.86, 0.96)
        floors = _pick(rng, (8, 11, 12, 14, 16, 18))
        lifts = 1 if floors <= 12 else 2
        if rng.random() < 0.5:
            return [
                _group(_int(rng, 4, 16), 6, 2, 2, 0, occ),
                _group(_int(rng, 2, 8), floors, _pick(rng, (1, 2)), 4, lifts, occ),
            ]
        return [_group(_int(rng, 5, 17), floors, 2, _pick(rng, (2, 3, 4)), lifts, occ)]
    if kind == "highrise":
        occ = rng.uniform(0.75, 0.95)
        floors = _int(rng, 18, 34)
        units = _pick(rng, (1, 2))
        hpf = _pick(rng, (4, 6, 8)) if units == 1 else _pick(rng, (2, 3, 4))
        lifts = 2 if floors < 25 else _pick(rng, (2, 3))
        groups = [_group(_int(rng, 3, 15), floors, units, hpf, lifts, occ)]
        if rng.random() < 0.35:  # 小高层 beside the towers
            groups.append(_group(_int(rng, 2, 7), _pick(rng, (11, 12, 14)), 2, 2, 1, occ))
        return groups
    occ = rng.uniform(0.9, 0.98)
    groups = [
        _group(_int(rng, 10, 31), _pick(rng, (3, 4, 5, 6, 6)), _pick(rng, (1, 2, 2)), 2, 0, occ)
    ]
    if rng.random() < 0.15:
        groups.append(_group(_int(rng, 1, 4), 11, 2, 2, 1, occ))
    return groups


def devices(
    rng: np.random.Generator,
    kind: str,
    groups: list[dict[str, Any]],
    diligence: float,
    wave: int,
    days: int,
) -> list[dict[str, Any]]:
    """Installations: more likely under a diligent company and in newer estates; blockers only in
    buildings with lifts, cameras on the tall ones, clutter sensors in a few; days near the
    company's roll-out ``wave`` (0: installed before the run)."""
    p = min(0.92, max(0.02, 0.1 + 0.55 * diligence + ADOPTION[kind]))
    if rng.random() >= p:
        return []
    total = sum(g["count"] for g in groups)
    width = max(2, len(str(total)))  # as sim.world.scenario.building_ids numbers them
    floors: list[tuple[str, int, int]] = []  # (building id, floors, lifts a unit)
    for g in groups:
        for _ in range(g["count"]):
            floors.append(
                (f"b{len(floors) + 1:0{width}d}", g["floors"], g.get("elevators_per_unit", 0))
            )

    def day() -> int:
        if wave == 0:
            return 0
        return int(min(days - 1, max(0, wave + round(rng.normal(0, 1 + days / 20)))))

    def where(bids: list[str]) -> dict[str, Any]:
        return {} if len(bids) == total else {"buildings": bids}

    out: list[dict[str, Any]] = []
    lifted = [b for b, _, lifts in floors if lifts > 0]
    if lifted and rng.random() < 0.8:
        out.append({"kind": "ebike_blocker", "day": day(), **where(lifted)})
    tall = [b for b, f, _ in floors if f >= 7]
    if tall and rng.random() < 0.75:
        if len(tall) > 4 and rng.random() < 0.4:
            tall = sorted(rng.choice(tall, size=int(rng.integers(2, len(tall))), replace=False))
        out.append({"kind": "falling_object_camera", "day": day(), **where([str(b) for b in tall])})
    elif not tall and kind in ("walkup", "village") and rng.random() < 0.3:
        five = [b for b, f, _ in floors if f >= 5]
        if five:
            some = sorted(
                rng.choice(five, size=min(len(five), int(rng.integers(2, 7))), replace=False)
            )
            out.append(
                {"kind": "falling_object_camera", "day": day(), **where([str(b) for b in some])}
            )
    if rng.random() < 0.5:
        chosen = sorted(
            rng.choice(len(floors), size=min(total, int(rng.integers(1, 5))), replace=False)
        )
        low = [floors[i][0] for i in chosen if floors[i][1] <= 6]
        high = [floors[i] for i in chosen if floors[i][1] > 6]
        when = day()
        if low:
            out.append({"kind": "clutter_sensor", "day": when, **where(low)})
        if high:
            top = min(18, max(f for _, f, _ in high))
            watched = list(range(2, top + 1, 2))
            out.append(
                {
                    "kind": "clutter_sensor",
                    "day": when,
                    "buildings": [b for b, _, _ in high],
                    "floors": watched,
                }
            )
    return out
