"""The table printed at the end of a run: events by kind, incidents, false triggers, misses."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sim.result import RunResult

__all__ = ["format_score", "format_summary", "table"]


def table(headers: list[str], rows: Sequence[Sequence[object]]) -> str:
    """A plain text table, numbers right-aligned; wide (CJK) characters count double."""

    def width(s: str) -> int:
        return sum(2 if ord(ch) > 0x2E80 else 1 for ch in s)

    cells = [[str(c) for c in r] for r in rows]
    widths = [max([width(h)] + [width(r[i]) for r in cells]) for i, h in enumerate(headers)]

    def line(vals: list[str], numeric: list[bool]) -> str:
        out = []
        for v, w, num in zip(vals, widths, numeric, strict=True):
            pad = " " * (w - width(v))
            out.append(pad + v if num else v + pad)
        return "  ".join(out).rstrip()

    numeric = [  # right-align columns of numbers ("-" stands for none)
        all(r[i] == "-" or r[i].replace(".", "", 1).isdigit() for r in cells) and bool(cells)
        for i in range(len(headers))
    ]
    sep = "  ".join("-" * w for w in widths)
    return "\n".join([line(headers, numeric), sep, *(line(r, numeric) for r in cells)])


_KIND_NAME = {"run": "whole run", "month": "month", "quarter": "quarter", "half": "half-year"}


def _who(e: dict[str, Any], p: float | None) -> str:
    return f"{e.get('name', e['estate'])} ({e['company']}, P {p:.2f})"


def _list_line(p: dict[str, Any], worst: bool, k: int) -> str:
    """Who is named; when nobody is, the ``k`` closest (highest probability) for the record."""
    named = p["black_list" if worst else "red_list"]
    if named:
        return "; ".join(_who(e, e["probability"]) for e in named)
    key = "p_worst_k" if worst else "p_best_k"
    near = sorted(
        (e for e in p["estates"] if e.get(key) is not None and (worst or not e.get("vetoes"))),
        key=lambda e: (-e[key], e["estate"]),
    )[:k]
    text = "nobody named"
    if near:
        text += "; closest " + ", ".join(_who(e, e[key]) for e in near)
    return text


def _lists(rankings: dict[str, Any]) -> list[str]:
    """The whole run and the latest period of each calendar kind: who is on the red and the black
    list, and which configured kinds the run is too short for."""
    if not rankings:
        return []
    if not rankings.get("periods"):
        return [f"Rankings: none ({rankings.get('skipped', 'no period covered')})", ""]
    latest: dict[str, dict[str, Any]] = {}
    for p in rankings["periods"]:
        latest[p["period"]["kind"]] = p
    cfg = rankings["periods"][0].get("config", {})
    out = [
        f"Red and black lists (红黑榜): an estate is named at P >= {cfg.get('evidence')} of being"
        " among the best (red) or worst (black) k"
    ]
    for kind in ("run", "month", "quarter", "half"):
        p = latest.get(kind)
        if p is None:
            continue
        per, cfg = p["period"], p.get("config", {})
        k = int(cfg.get("list_length", cfg.get("list_size", 0)))
        tau = p.get("validity", {}).get("kendall_tau")
        head = f"  {per['id']} ({_KIND_NAME[kind]}, {per['days']:g} days"
        head += f"{', partial' if per.get('partial') else ''}), k = {k}"
        if tau is not None:
            head += f"; companies vs latent diligence: Kendall tau {tau}"
        out.append(head)
        if k == 0:
            out.append("    no lists: one estate scored, nothing to compare it with")
            continue
        out.append(f"    red (best):    {_list_line(p, False, k)}")
        out.append(f"    black (worst): {_list_line(p, True, k)}")
    left = [_KIND_NAME[k] for k in rankings.get("left_out", [])]
    if left:
        cover = rankings.get("min_coverage", 0.5)
        out.append(
            f"  not ranked: {', '.join(left)} (no calendar period of the kind has at least {cover:.0%} of"
            " its days inside the run; min_coverage)"
        )
    out.append("  every estate's score: pmsim rank RUN_DIR [--period run|month|quarter|half]")
    return [*out, ""]


def format_summary(r: RunResult) -> str:
    sc = r.scenario
    parts = [
        f"pmsim run: {sc.name} ({sc.title or sc.name}), {r.days} days from {sc.start}, seed {r.seed}",
        f"{r.households} households, {r.devices} devices, {r.events} events "
        f"in {r.wall_seconds:.1f} s ({r.events_per_second:,.0f} events/s)",
        "",
    ]
    rows: list[list[object]] = []
    for kind, types in r.event_counts.items():
        for type_, n in types.items():
            rows.append([kind, type_, n])
    parts += ["Events", table(["device kind", "event", "count"], rows), ""]
    tc = r.truth_counts
    rows = []
    for type_, n in tc["incidents"].items():
        det = tc["detected"].get(type_, 0)
        miss = tc["missed_covered"].get(type_, 0)
        rows.append([type_, n, det, miss, n - det - miss])
    parts += [
        "Incidents (truth)",
        table(["incident", "total", "detected", "missed", "no device"], rows),
        "",
    ]
    rows = [[k.split(":")[0], k.split(":")[1], n] for k, n in tc["false_triggers"].items()]
    parts += ["False triggers (truth)", table(["event", "cause", "count"], rows), ""]
    rows = [[k, n] for k, n in tc["responses"].items()]
    parts += ["Staff responses (truth)", table(["action", "count"], rows), ""]
    if tc.get("faults"):
        rows = [[k, n] for k, n in tc["faults"].items()]
        parts += ["Injected faults (truth)", table(["fault", "events or devices"], rows), ""]
    if r.score:
        parts += [format_score(r.score), ""]
    parts += _lists(r.rankings)
    m = r.mqtt
    if m.get("kind", "none") != "none":
        dead = sum(m["dead_letters"].values())
        parts += [
            f"MQTT ({m['kind']}, {m['url']}, MQTT {m['protocol']}, QoS {m['qos']}): "
            f"{m['published']} events published, {m['consumed']} consumed by the engine, "
            f"{m['lost']} lost, {dead} dead-lettered, "
            f"{m.get('sequence_gaps', 0)} sequence gaps ({m.get('sequence_gap_events', 0)} events)",
            "",
        ]
    parts.append(f"Run folder: {r.out}" + (f" ({r.report})" if r.report else ""))
    return "\n".join(parts)


def format_interval(m: dict[str, Any], fmt: str = "{:.3f}") -> str:
    """``mean [low, high]`` of a summarised metric."""
    return f"{fmt.format(m['mean'])} [{fmt.format(m['low'])}, {fmt.format(m['high'])}]"


def _f(x: object, fmt: str = "{:.2f}") -> str:
    return "-" if x is None else fmt.format(x)


def format_score(score: dict[str, Any]) -> str:
    """Per rule: alerts, precision, recall, time to detect, false alerts, misses."""
    rows: list[list[object]] = []
    for rid, s in score["rules"].items():
        rows.append(
            [
                rid,
                s["alerts"],
                _f(s["precision"]),
                _f(s["recall"]),
                _f(s["severity_weighted_recall"]),
                _f(s["ttd_median_s"], "{:.0f}"),
                _f(s["ttd_p90_s"], "{:.0f}"),
                _f(s["false_alerts_per_1000_household_days"], "{:.3f}"),
                s["missed_by_device"],
                s["missed_by_rule"],
                s.get("missed_in_transit", 0),
            ]
        )
    head = [
        "rule",
        "alerts",
        "precision",
        "recall",
        "sev.recall",
        "ttd p50 s",
        "ttd p90 s",
        "false/1k hh-days",
        "miss device",
        "miss rule",
        "miss transit",
    ]
    parts = ["Rules scored against the truth", table(head, rows)]
    wo = score.get("workorders")
    if wo:
        parts += [
            "",
            f"Work orders: {wo['opened']} opened, ack within SLA {_f(wo['ack_within_sla'])}, "
            f"closed on time {_f(wo['closed_on_time'])}, re-opened {wo['reopened']}, "
            f"still open {wo['still_open']}",
        ]
    return "\n".join(parts)
