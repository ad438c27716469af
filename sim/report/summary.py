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


def _lists(rankings: dict[str, Any]) -> list[str]:
    """The latest period of each kind: who is on the red and the black list."""
    if not rankings:
        return []
    if not rankings.get("periods"):
        return [f"Rankings: none ({rankings.get('skipped', 'no period covered')})", ""]
    latest: dict[str, dict[str, Any]] = {}
    for p in rankings["periods"]:
        latest[p["period"]["kind"]] = p
    out = ["Red and black lists (latest period of each kind; pmsim rank RUN_DIR for all)"]
    for kind in ("month", "quarter", "half"):
        p = latest.get(kind)
        if p is None:
            continue

        def names(entries: list[dict[str, Any]]) -> str:
            return (
                ", ".join(f"{e.get('name', e['estate'])} ({e['probability']:.2f})" for e in entries)
                or "-"
            )

        tau = p.get("validity", {}).get("kendall_tau")
        out.append(
            f"  {p['period']['id']}: red {names(p['red_list'])}; black {names(p['black_list'])}"
            + (f"; companies vs diligence tau {tau}" if tau is not None else "")
        )
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
            f"{m['lost']} lost, {dead} dead-lettered",
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
