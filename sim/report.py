"""The run report: one self-contained ``report.html`` in a run folder.

:func:`write_report` reads what a run wrote (``run.json``, ``scenario.resolved.yaml``,
``truth.jsonl``, ``alerts.jsonl``, ``workorders.jsonl``, ``score.json`` and, when present,
``rankings.json``; never the large ``events.jsonl``) and writes a page that opens offline: a small
inline stylesheet, no script, no external fonts, and every plot a PNG embedded as a data URI
(:mod:`sim.plots`, which needs matplotlib, the ``report`` extra). The same run folder gives the same
bytes: nothing on the page depends on the clock, and the plots are drawn deterministically.

The page, in order: the run; the red and black lists (红黑榜) per period, the latest month, quarter
and half-year first and the rest folded, each entry with its score interval and reasons; the
company ranking with Kendall's tau against the companies' latent diligence; a radar health profile
(健康画像) per estate; before/after curves for estates that installed devices mid-run; per-rule
precision and recall; alerts over time; work-order timeliness. Without ``rankings.json`` the page
says so and leaves out the lists, the company ranking and the profiles.
"""

from __future__ import annotations

import base64
import html
import json
import os
import statistics
import struct
import textwrap
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import yaml

from sim.errors import BadInput

__all__ = ["REPORT_NAME", "write_report"]

REPORT_NAME = "report.html"
DAY = 86400.0
KINDS = ("month", "quarter", "half")
KIND_NAME = {"month": "month", "quarter": "quarter", "half": "half-year"}
# What the truth calls the hazards each device kind is there to see.
HAZARDS = {
    "ebike_blocker": ("ebike_entry", "battery_entry"),
    "falling_object_camera": ("throw",),
    "clutter_sensor": ("clutter",),
}
NEEDS_MATPLOTLIB = "the report needs matplotlib: pip install 'pmsim[report]'"

CSS = """
body{font-family:system-ui,"Noto Sans CJK SC","Source Han Sans SC","PingFang SC",
"Microsoft YaHei",sans-serif;max-width:1000px;margin:1.5em auto;padding:0 1em;color:#222;
line-height:1.45}
h1{font-size:1.6em;margin-bottom:.2em}h2{border-bottom:2px solid #ddd;padding-bottom:.2em;
margin-top:2em}h3{margin-top:1.6em}h4{margin:1em 0 .4em}
table{border-collapse:collapse;margin:.5em 0;font-size:.88em}
th,td{border:1px solid #ddd;padding:.25em .5em;text-align:left;vertical-align:top}
th{background:#f4f4f4}td.n{text-align:right;font-variant-numeric:tabular-nums}
img{max-width:100%;height:auto;display:block;margin:.6em 0}
.note{background:#fff8e1;border-left:4px solid #e0a800;padding:.4em .8em}
.muted,.id{color:#666}.id{font-size:.85em}ul.r{margin:0;padding-left:1.1em}
details{margin:.6em 0}summary{cursor:pointer;font-weight:600}
nav ol{columns:2}dl{display:grid;grid-template-columns:max-content auto;gap:.1em 1em}
dt{font-weight:600}dd{margin:0}
"""


# --- reading the run folder --------------------------------------------------------------------


def _json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BadInput(f"{path}: not found (is {path.parent} a pmsim run folder?)") from None
    except json.JSONDecodeError as e:
        raise BadInput(f"{path}:{e.lineno}: not valid JSON ({e.msg})") from None


def _jsonl(path: Path) -> Iterator[dict[str, Any]]:
    if not path.is_file():
        raise BadInput(f"{path}: not found (is {path.parent} a pmsim run folder?)")
    with open(path, encoding="utf-8") as fh:
        for n, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                yield json.loads(line)
            except json.JSONDecodeError as e:
                raise BadInput(f"{path}:{n}: not valid JSON ({e.msg})") from None


@dataclass
class WorkOrder:
    """A work order's last open spell (a re-open starts a new one, as in rules.workorders)."""

    rule: str
    estate: str
    opened_s: float
    within_sla: bool = False
    on_time: bool = False
    reopens: int = 0


@dataclass
class RunData:
    dir: Path
    run: dict[str, Any]
    scenario: dict[str, Any]
    score: dict[str, Any]
    rankings: dict[str, Any] | None
    days: int
    estates: dict[str, dict[str, Any]] = field(default_factory=dict)  # id -> scenario estate
    companies: dict[str, dict[str, Any]] = field(default_factory=dict)
    alerts_by_rule: dict[str, list[int]] = field(default_factory=dict)  # firings per day
    alerts_by_estate: dict[str, list[int]] = field(default_factory=dict)
    incidents: dict[tuple[str, str], list[int]] = field(default_factory=dict)  # (estate, type)
    orders: dict[str, WorkOrder] = field(default_factory=dict)
    ack_minutes: list[tuple[str, str, float]] = field(default_factory=list)  # rule, estate, min

    def day(self, seconds: float) -> int:
        return min(self.days - 1, max(0, int(seconds // DAY)))

    def per_day(self, table: dict[Any, list[int]], key: Any) -> list[int]:
        return table.setdefault(key, [0] * self.days)


def load_run(run_dir: Path) -> RunData:
    """Everything the page needs, aggregated while the JSON Lines files stream past."""
    try:
        scenario = yaml.safe_load((run_dir / "scenario.resolved.yaml").read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BadInput(f"{run_dir}: no scenario.resolved.yaml (not a pmsim run folder?)") from None
    run = _json(run_dir / "run.json")
    rpath = run_dir / "rankings.json"
    data = RunData(
        dir=run_dir,
        run=run,
        scenario=scenario,
        score=_json(run_dir / "score.json"),
        rankings=_json(rpath) if rpath.exists() else None,
        days=max(1, int(run.get("days") or scenario["days"])),
    )
    data.companies = {c["id"]: c for c in scenario.get("companies", [])}
    for grid in scenario.get("grids", []):
        for est in grid.get("estates", []):
            data.estates[est["id"]] = est
    for rec in _jsonl(run_dir / "truth.jsonl"):
        if rec.get("kind") == "incident" and rec.get("start_s") is not None:
            key = (rec["estate"], rec["type"])
            data.per_day(data.incidents, key)[data.day(rec["start_s"])] += 1
    for a in _jsonl(run_dir / "alerts.jsonl"):
        if a.get("change") == "firing":
            d = data.day(a["sim_seconds"])
            data.per_day(data.alerts_by_rule, a["rule_id"])[d] += 1
            estate = str(a.get("labels", {}).get("estate", ""))
            data.per_day(data.alerts_by_estate, estate)[d] += 1
    for w in _jsonl(run_dir / "workorders.jsonl"):
        wid, change, t = w["workorder_id"], w["change"], float(w["sim_seconds"])
        if change == "opened":
            data.orders[wid] = WorkOrder(w["rule_id"], w["estate"], t)
        elif wid not in data.orders:
            continue
        wo = data.orders[wid]
        if change == "reopened":
            wo.opened_s, wo.within_sla, wo.on_time = t, False, False
            wo.reopens += 1
        elif change == "acknowledged":
            wo.within_sla = bool(w.get("within_sla"))
            data.ack_minutes.append((wo.rule, wo.estate, (t - wo.opened_s) / 60.0))
        elif change == "closed":
            wo.on_time = bool(w.get("on_time"))
    return data


# --- HTML helpers ------------------------------------------------------------------------------


def esc(x: object) -> str:
    return html.escape(str(x), quote=True)


def num(x: float | int | None, nd: int = 2) -> str:
    if x is None:
        return "–"
    return f"{x:.{nd}f}" if isinstance(x, float) else str(x)


def ivl(iv: Sequence[float | int | None] | None, nd: int = 1) -> str:
    if not iv:
        return "–"
    return f"[{num(iv[0], nd)}, {num(iv[1], nd)}]"


def img(png: bytes, alt: str) -> str:
    if png[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError("not a PNG")
    w, h = struct.unpack(">II", png[16:24])
    b64 = base64.b64encode(png).decode("ascii")
    return f'<img src="data:image/png;base64,{b64}" width="{w}" height="{h}" alt="{esc(alt)}">'


def table(head: Sequence[str], rows: Sequence[Sequence[str]], numeric: Sequence[int] = ()) -> str:
    """Cells are HTML already (escape before); columns in ``numeric`` are right-aligned."""
    out = ["<table><thead><tr>", *(f"<th>{esc(h)}</th>" for h in head), "</tr></thead><tbody>"]
    for row in rows:
        cells = (
            f'<td class="n">{c}</td>' if i in numeric else f"<td>{c}</td>"
            for i, c in enumerate(row)
        )
        out += ["<tr>", *cells, "</tr>"]
    out.append("</tbody></table>")
    return "".join(out)


class Page:
    """Labels shared by the sections: estates and companies by name in HTML, and in plots by
    name only when a CJK font is installed (else by id: never a missing glyph)."""

    def __init__(self, data: RunData, plots: ModuleType) -> None:
        self.data, self.plots = data, plots
        names = [str(e.get("name", "")) for e in data.estates.values()]
        names += [str(c.get("name", "")) for c in data.companies.values()]
        self.font: str | None = plots.cjk_font(names)

    def estate(self, eid: str, name: str | None = None) -> str:
        name = name or str(self.data.estates.get(eid, {}).get("name", ""))
        if not name or name == eid:
            return esc(eid)
        return f'<span lang="zh-CN">{esc(name)}</span> <span class="id">({esc(eid)})</span>'

    def company(self, cid: str) -> str:
        name = str(self.data.companies.get(cid, {}).get("name", ""))
        if not name or name == cid:
            return esc(cid)
        return f'<span lang="zh-CN">{esc(name)}</span> <span class="id">({esc(cid)})</span>'

    def plot_estate(self, eid: str) -> str:
        name = str(self.data.estates.get(eid, {}).get("name", ""))
        return name if self.font and name else eid

    def plot_company(self, cid: str) -> str:
        name = str(self.data.companies.get(cid, {}).get("name", ""))
        return name if self.font and name else cid


# --- sections ----------------------------------------------------------------------------------


def header(data: RunData) -> str:
    sc, run = data.scenario, data.run
    counts = run.get("counts", {})
    incidents = counts.get("incidents", {})
    title = sc.get("title") or sc.get("name", "")
    facts = [
        (
            "scenario",
            f'<span lang="zh-CN">{esc(title)}</span> <span class="id">({esc(sc.get("name", ""))})</span>',
        ),
        ("start date", esc(sc.get("start", run.get("start", "")))),
        ("days", esc(data.days)),
        ("seed", esc(run.get("seed", sc.get("seed", "")))),
        ("estates / companies", f"{len(data.estates)} / {len(data.companies)}"),
        ("households", esc(counts.get("households", "–"))),
        ("devices", esc(counts.get("devices", "–"))),
        ("events", esc(counts.get("events", "–"))),
        (
            "incidents (truth)",
            f"{sum(incidents.values())}: "
            + ", ".join(f"{esc(k)} {v}" for k, v in incidents.items()),
        ),
        ("detected", esc(sum(counts.get("detected", {}).values()))),
        ("false triggers", esc(sum(counts.get("false_triggers", {}).values()))),
        ("alerts (state changes)", esc(counts.get("alerts", "–"))),
        ("work-order changes", esc(counts.get("workorders", "–"))),
        ("pmsim", esc(run.get("versions", {}).get("pmsim", "–"))),
    ]
    dl = "".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in facts)
    return (
        f'<h1>pmsim run report: <span lang="zh-CN">{esc(title)}</span></h1>'
        f'<p class="muted">{esc(sc.get("name", ""))}: {data.days} days from '
        f"{esc(sc.get('start', ''))}, seed {esc(run.get('seed', ''))}</p><dl>{dl}</dl>"
    )


def _period_key(p: Mapping[str, Any]) -> tuple[int, int, str]:
    per = p["period"]
    return (int(per.get("end_day", 0)), KINDS.index(per["kind"]), str(per["id"]))


def latest_and_rest(
    periods: Sequence[dict[str, Any]],
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The latest period of each kind (month, quarter, half), and the others, latest first."""
    latest: list[dict[str, Any]] = []
    for kind in KINDS:
        mine = sorted((p for p in periods if p["period"]["kind"] == kind), key=_period_key)
        if mine:
            latest.append(mine[-1])
    rest = sorted((p for p in periods if p not in latest), key=_period_key, reverse=True)
    return latest, rest


def _period_title(p: Mapping[str, Any]) -> str:
    per = p["period"]
    text = f"{per['id']}: {KIND_NAME[per['kind']]}, {num(per.get('days'), 1)} days"
    if per.get("partial"):
        text += f" (partial: {per.get('coverage', 0):.0%} of the period is inside the run)"
    return esc(text)


def _list_table(page: Page, p: Mapping[str, Any], which: str) -> str:
    cfg, entries = p["config"], p[which]
    k, ev = cfg["list_size"], cfg["evidence"]
    worst = which == "black_list"
    among = f"the {'worst' if worst else 'best'} {k}"
    if not entries:
        return (
            f'<p class="muted">No estate reaches the evidence (P(among {esc(among)}) ≥ '
            f"{ev:g}): nobody is named.</p>"
        )
    unobs = {e["estate"]: e.get("unobservable", []) for e in p["estates"]}
    rows, marked = [], []
    for n, e in enumerate(entries, start=1):
        mark = ""
        if unobs.get(e["estate"]):
            mark = " †"
            marked.append(e["estate"])
        reasons = "".join(f"<li>{esc(r.get('text', r))}</li>" for r in e.get("reasons", []))
        rows.append(
            [
                str(n),
                page.estate(e["estate"], e.get("name")) + mark,
                page.company(e["company"]),
                num(e.get("score"), 1),
                ivl(e.get("interval")),
                ivl(e.get("rank_interval"), 0),
                num(e.get("probability"), 3),
                f'<ul class="r">{reasons}</ul>',
            ]
        )
    out = table(
        [
            "#",
            "estate",
            "company",
            "score",
            "95% interval",
            "rank interval",
            f"P(among {among})",
            "reasons",
        ],
        rows,
        numeric=(0, 3, 4, 5, 6),
    )
    for eid in marked:
        out += (
            f'<p class="note">† {page.estate(eid)} is ranked only on what is observable: '
            f"{esc(', '.join(unobs[eid]))} cannot be measured there (no device of that kind, "
            "or no work orders), and the weights are shared among the rest.</p>"
        )
    return out


def _estates_table(page: Page, p: Mapping[str, Any]) -> str:
    rows = []
    for e in p["estates"]:
        rows.append(
            [
                num(e.get("rank")),
                page.estate(e["estate"], e.get("name")),
                page.company(e["company"]),
                num(e.get("score"), 1),
                ivl(e.get("interval")),
                esc(e.get("band") or "–"),
                ivl(e.get("rank_interval"), 0),
                num(e.get("p_best_k"), 3),
                num(e.get("p_worst_k"), 3),
                esc("; ".join(v.get("text", "") for v in e.get("vetoes", [])) or "–"),
                esc(", ".join(e.get("unobservable", [])) or "–")
                if e.get("scored", True)
                else "not scored: nothing observable",
            ]
        )
    return table(
        [
            "rank",
            "estate",
            "company",
            "score",
            "95% interval",
            "band",
            "rank interval",
            "P(best k)",
            "P(worst k)",
            "vetoes",
            "unobservable (ranked on the rest)",
        ],
        rows,
        numeric=(0, 3, 4, 6, 7, 8),
    )


def _period_block(page: Page, p: Mapping[str, Any], with_plot: bool) -> str:
    cfg = p["config"]
    out = [f"<h3>{_period_title(p)}</h3>"]
    out.append(f"<h4>Red list (红榜): the best, at most {cfg['list_size']}</h4>")
    out.append(_list_table(page, p, "red_list"))
    out.append(f"<h4>Black list (黑榜): the worst, at most {cfg['list_size']}</h4>")
    out.append(_list_table(page, p, "black_list"))
    if with_plot:
        red = {e["estate"] for e in p["red_list"]}
        black = {e["estate"] for e in p["black_list"]}
        rows = [
            page.plots.Interval(
                page.plot_estate(e["estate"]),
                e["score"],
                e["interval"][0],
                e["interval"][1],
                "red" if e["estate"] in red else "black" if e["estate"] in black else None,
            )
            for e in p["estates"]
            if e.get("score") is not None and e.get("interval")
        ]
        if rows:
            title = f"{p['period']['id']}: every scored estate, best first"
            png = page.plots.forest(rows, title, cfg.get("average_sub_score"), page.font)
            out.append(img(png, f"scores and intervals of every estate, {p['period']['id']}"))
    notes = list(p.get("notes", []))
    notes += [f"{f['indicator']}: prior fallback ({f['reason']})" for f in p.get("fallbacks", [])]
    if notes:
        out.append('<ul class="muted">' + "".join(f"<li>{esc(n)}</li>" for n in notes) + "</ul>")
    out.append(
        f"<details><summary>Every estate ({len(p['estates'])})</summary>"
        f"{_estates_table(page, p)}</details>"
    )
    return "".join(out)


def lists_section(page: Page, rk: Mapping[str, Any]) -> str:
    latest, rest = latest_and_rest(rk["periods"])
    cfg = latest[0]["config"] if latest else {}
    out = [
        '<section id="lists"><h2>Red and black lists (红黑榜)</h2>',
        f"<p>An estate is named only when the evidence is strong: a probability of at least "
        f"{esc(cfg.get('evidence', ''))} of being among the best (red) or worst (black) "
        f"{esc(cfg.get('list_size', ''))} over {esc(cfg.get('draws', ''))} posterior draws. "
        "Scores run 0-100 (an average estate scores "
        f"{esc(cfg.get('average_sub_score', ''))}); intervals are 95%. The latest month, "
        "quarter and half-year come first.</p>",
    ]
    out += [_period_block(page, p, with_plot=True) for p in latest]
    if rest:
        out.append(f"<details><summary>Earlier periods ({len(rest)})</summary>")
        out += [_period_block(page, p, with_plot=False) for p in rest]
        out.append("</details>")
    stab = rk.get("stability") or []
    if stab:
        rows = [
            [
                esc(s["kind"]),
                esc(s["from"]),
                esc(s["to"]),
                num(s.get("red_jaccard")),
                num(s.get("black_jaccard")),
            ]
            for s in stab
        ]
        out.append(
            "<h3>Stability between consecutive periods</h3><p>Jaccard overlap of the "
            "lists (1: the same estates, 0: none in common, –: both empty).</p>"
        )
        out.append(table(["kind", "from", "to", "red list", "black list"], rows, numeric=(3, 4)))
    out.append("</section>")
    return "".join(out)


def companies_section(page: Page, rk: Mapping[str, Any]) -> str:
    periods = sorted(
        rk["periods"], key=lambda p: (KINDS.index(p["period"]["kind"]), _period_key(p))
    )
    out = [
        '<section id="companies"><h2>Company ranking</h2>',
        "<p>Companies are scored by their estates' scores weighted by households. Kendall's "
        "τ-b compares that ranking with the companies' latent diligence in the scenario (1: the "
        "same order, 0: unrelated, −1: reversed); its interval is over the posterior draws.</p>",
    ]
    rows = []
    for p in periods:
        v = p.get("validity") or {}
        rows.append(
            [
                esc(p["period"]["id"]),
                esc(KIND_NAME[p["period"]["kind"]]),
                num(v.get("kendall_tau"), 3),
                ivl(v.get("interval"), 3),
                num(v.get("companies")),
            ]
        )
    out.append(
        table(["period", "kind", "Kendall τ", "95% interval", "companies"], rows, numeric=(2, 3, 4))
    )
    latest, rest = latest_and_rest(rk["periods"])
    panels = []
    for p in latest:
        pts = [
            page.plots.CompanyPoint(
                page.plot_company(c["company"]),
                c["score"],
                c["interval"][0],
                c["interval"][1],
                float(page.data.companies[c["company"]]["diligence"]),
            )
            for c in p["companies"]
            if c.get("score") is not None and c["company"] in page.data.companies
        ]
        tau = (p.get("validity") or {}).get("kendall_tau")
        panels.append((f"{p['period']['id']}: τ = {num(tau, 2)}", pts))
    if panels:
        out.append(
            img(
                page.plots.company_validity(panels, page.font),
                "company scores against latent diligence",
            )
        )

    def block(p: Mapping[str, Any]) -> str:
        crows = [
            [
                num(c.get("rank")),
                page.company(c["company"]),
                num(page.data.companies.get(c["company"], {}).get("diligence")),
                num(c.get("score"), 1),
                ivl(c.get("interval")),
                ivl(c.get("rank_interval"), 0),
                esc(", ".join(c.get("estates", []))),
                num(c.get("households")),
                esc(", ".join(c.get("unscored_estates", [])) or "–"),
            ]
            for c in p["companies"]
        ]
        return f"<h3>{_period_title(p)}</h3>" + table(
            [
                "rank",
                "company",
                "latent diligence",
                "score",
                "95% interval",
                "rank interval",
                "estates",
                "households",
                "unscored estates",
            ],
            crows,
            numeric=(0, 2, 3, 4, 5, 7),
        )

    out += [block(p) for p in latest]
    if rest:
        out.append(f"<details><summary>Earlier periods ({len(rest)})</summary>")
        out += [block(p) for p in rest]
        out.append("</details>")
    out.append("</section>")
    return "".join(out)


def _axis_label(name: str) -> str:
    return "\n".join(textwrap.wrap(name.replace("_", " ").replace("sla", "SLA"), 12))


def profiles_section(page: Page, rk: Mapping[str, Any]) -> str:
    p = max(rk["periods"], key=_period_key)
    names = list(p["indicators"])
    profiles, rows = [], []
    for e in p["estates"]:
        subs = [e["indicators"].get(n, {}).get("sub_score") for n in names]
        title = page.plot_estate(e["estate"])
        title += (
            f": {e['score']:.0f} ({e['band']})" if e.get("score") is not None else ": not scored"
        )
        profiles.append(page.plots.Radar(title, subs))
        rows.append(
            [
                page.estate(e["estate"], e.get("name")),
                num(e.get("score"), 1),
                esc(e.get("band") or "–"),
                *(num(s, 0) if s is not None else "n/o" for s in subs),
            ]
        )
    ref = float(p["config"].get("average_sub_score", 80.0))
    png = page.plots.radars(profiles, [_axis_label(n) for n in names], ref, page.font)
    return "".join(
        [
            '<section id="profiles"><h2>Health profiles (健康画像)</h2>',
            f"<p>Each estate's sub-scores (0-100, higher is healthier) on every indicator for the "
            f"latest period, {_period_title(p)}. The dotted ring is an average estate ({ref:g}). "
            "A gap marked n/o is an indicator the estate cannot be measured on (no device of that kind "
            "or no work orders): it is ranked only on what is observable, never on a guess.</p>",
            img(png, f"radar health profile of every estate, {p['period']['id']}"),
            "<details><summary>The sub-scores as a table</summary>",
            table(
                ["estate", "score", "band", *names], rows, numeric=tuple(range(1, 3 + len(names)))
            ),
            "</details></section>",
        ]
    )


def mid_run_installs(data: RunData) -> dict[str, list[tuple[int, str]]]:
    """Estates that installed devices after day 0: (day, kind) of each such installation."""
    out: dict[str, list[tuple[int, str]]] = {}
    for eid, est in data.estates.items():
        got = sorted(
            {
                (int(d.get("day", 0)), str(d["kind"]))
                for d in est.get("devices") or []
                if 0 < int(d.get("day", 0)) < data.days
            }
        )
        if got:
            out[eid] = got
    return out


def _mean(xs: Sequence[int]) -> float | None:
    return sum(xs) / len(xs) if xs else None


def before_after_section(page: Page, installs: Mapping[str, list[tuple[int, str]]]) -> str:
    data, panels, rows = page.data, [], []
    for eid, inst in installs.items():
        types = list(dict.fromkeys(t for _, kind in inst for t in HAZARDS.get(kind, ())))
        alerts = data.alerts_by_estate.get(eid, [0] * data.days)
        incidents = (
            [
                sum(c)
                for c in zip(
                    *(data.incidents.get((eid, t), [0] * data.days) for t in types), strict=True
                )
            ]
            if types
            else [0] * data.days
        )
        panels.append(
            page.plots.BeforeAfter(
                page.plot_estate(eid), alerts, incidents, ", ".join(types) or "none", inst
            )
        )
        first = inst[0][0]
        rows.append(
            [
                page.estate(eid),
                esc(", ".join(f"{k} on day {d}" for d, k in inst)),
                num(_mean(alerts[:first])),
                num(_mean(alerts[first:])),
                esc(", ".join(types) or "–"),
                num(_mean(incidents[:first])),
                num(_mean(incidents[first:])),
            ]
        )
    return "".join(
        [
            '<section id="before-after"><h2>Before and after installing devices</h2>',
            "<p>Estates that installed devices mid-run. Left: alerts fired per day by every rule, "
            "which is what the office sees (nothing can fire before a device is there). Right: "
            "incidents per day from the simulation's truth, seen or not; a change after the dashed "
            "install line is a change in what residents do, not in what is detected. Bars are days, the "
            "line the mean of the last 7 days.</p>",
            img(page.plots.before_after(panels, page.font), "before/after curves per estate"),
            table(
                [
                    "estate",
                    "installed",
                    "alerts/day before",
                    "after",
                    "truth incident types",
                    "incidents/day before",
                    "after",
                ],
                rows,
                numeric=(2, 3, 5, 6),
            ),
            "</section>",
        ]
    )


def rules_section(page: Page) -> str:
    rules: Mapping[str, Mapping[str, Any]] = page.data.score.get("rules", {})
    bars = [
        (rid, r.get("precision"), r.get("recall"), r.get("severity_weighted_recall"))
        for rid, r in rules.items()
    ]
    rows = [
        [
            esc(rid),
            esc(", ".join(r.get("detects", []))),
            num(r.get("alerts")),
            num(r.get("false_alerts")),
            num(r.get("precision"), 3),
            num(r.get("recall"), 3),
            num(r.get("severity_weighted_recall"), 3),
            num(r.get("incidents_covered")),
            num(r.get("ttd_median_s"), 1),
            num(r.get("ttd_p90_s"), 1),
        ]
        for rid, r in rules.items()
    ]
    return "".join(
        [
            '<section id="rules"><h2>Rule precision and recall</h2>',
            "<p>Every rule scored against the truth (score.json): precision is the share of its "
            "alerts that were real, recall the share of the incidents a device could have seen that "
            "it caught; time to detect in seconds.</p>",
            img(page.plots.rule_quality(bars), "precision and recall per rule") if bars else "",
            table(
                [
                    "rule",
                    "detects",
                    "alerts",
                    "false alerts",
                    "precision",
                    "recall",
                    "severity-weighted recall",
                    "incidents covered",
                    "TTD median (s)",
                    "TTD p90 (s)",
                ],
                rows,
                numeric=tuple(range(2, 10)),
            ),
            "</section>",
        ]
    )


def alerts_section(page: Page) -> str:
    data = page.data
    order = [r for r in data.score.get("rules", {}) if r in data.alerts_by_rule]
    order += sorted(r for r in data.alerts_by_rule if r not in order)
    series = {r: data.alerts_by_rule[r] for r in order}
    start = str(data.scenario.get("start", ""))
    rows = [[esc(r), num(sum(s)), num(max(s)), num(sum(s) / data.days)] for r, s in series.items()]
    return "".join(
        [
            '<section id="alerts"><h2>Alerts over time</h2>',
            "<p>Alerts fired per day (firing state changes in alerts.jsonl), stacked by rule.</p>",
            img(
                page.plots.alerts_over_time(series, data.days, start),
                "alerts fired per day by rule",
            ),
            table(["rule", "fired", "most in a day", "per day"], rows, numeric=(1, 2, 3)),
            "</section>",
        ]
    )


def _wo_rows(
    groups: Mapping[str, list[WorkOrder]],
    minutes: Mapping[str, list[float]],
    label: Callable[[str], str],
) -> list[list[str]]:
    rows = []
    for key, orders in groups.items():
        n, mins = len(orders), minutes.get(key, [])
        rows.append(
            [
                label(key),
                num(n),
                num(sum(o.within_sla for o in orders) / n if n else None),
                num(sum(o.on_time for o in orders) / n if n else None),
                num(sum(o.reopens for o in orders)),
                num(statistics.median(mins), 1) if mins else "–",
            ]
        )
    return rows


def workorders_section(page: Page) -> str:
    data = page.data
    by_company: dict[str, list[WorkOrder]] = defaultdict(list)
    by_rule: dict[str, list[WorkOrder]] = defaultdict(list)
    for wo in data.orders.values():
        by_company[str(data.estates.get(wo.estate, {}).get("company", "?"))].append(wo)
        by_rule[wo.rule].append(wo)
    companies = sorted(
        by_company, key=lambda c: (-float(data.companies.get(c, {}).get("diligence", -1)), c)
    )
    by_company = {c: by_company[c] for c in companies}
    by_rule = {r: by_rule[r] for r in sorted(by_rule)}
    bars = [
        (
            page.plot_company(c),
            sum(o.within_sla for o in os) / len(os),
            sum(o.on_time for o in os) / len(os),
        )
        for c, os in by_company.items()
    ]
    per_rule: dict[str, list[float]] = defaultdict(list)
    per_company: dict[str, list[float]] = defaultdict(list)
    for rule, estate, m in data.ack_minutes:
        per_rule[rule].append(m)
        per_company[str(data.estates.get(estate, {}).get("company", "?"))].append(m)
    wo = data.score.get("workorders", {})
    head = [
        "",
        "opened",
        "acknowledged within SLA",
        "closed on time",
        "re-opens",
        "median minutes to acknowledge",
    ]
    return "".join(
        [
            '<section id="workorders"><h2>Work-order timeliness</h2>',
            f"<p>{num(wo.get('opened'))} work orders opened; acknowledged within SLA "
            f"{num(wo.get('ack_within_sla'))}, closed on time {num(wo.get('closed_on_time'))} (shares "
            f"of the work orders opened, their last spell after any re-open); {num(wo.get('reopened'))} "
            f"re-opens, {num(wo.get('still_open'))} still open at the end. Companies from the most to "
            "the least diligent (latent, from the scenario).</p>",
            img(page.plots.timeliness(bars, page.font), "work-order timeliness per company")
            if bars
            else "",
            "<h3>Per company</h3>",
            table(
                ["company", *head[1:]],
                _wo_rows(by_company, per_company, page.company),
                numeric=(1, 2, 3, 4, 5),
            ),
            "<h3>Per rule</h3>",
            table(["rule", *head[1:]], _wo_rows(by_rule, per_rule, esc), numeric=(1, 2, 3, 4, 5)),
            "<h3>Time to acknowledge</h3>",
            img(
                page.plots.ack_times([m for _, _, m in data.ack_minutes], sorted(per_rule.items())),
                "distribution of the time to acknowledge",
            ),
            "</section>",
        ]
    )


def render(data: RunData, plots: ModuleType) -> str:
    page = Page(data, plots)
    installs = mid_run_installs(data)
    rk = data.rankings if data.rankings and data.rankings.get("periods") else None
    toc = (
        [
            ("lists", "Red and black lists"),
            ("companies", "Company ranking"),
            ("profiles", "Health profiles"),
        ]
        if rk
        else [("rankings", "Rankings")]
    )
    if installs:
        toc.append(("before-after", "Before and after installing devices"))
    toc += [
        ("rules", "Rule precision and recall"),
        ("alerts", "Alerts over time"),
        ("workorders", "Work-order timeliness"),
    ]
    body = [
        header(data),
        "<nav><ol>",
        *(f'<li><a href="#{a}">{esc(t)}</a></li>' for a, t in toc),
        "</ol></nav>",
    ]
    if rk:
        try:
            body += [
                lists_section(page, rk),
                companies_section(page, rk),
                profiles_section(page, rk),
            ]
        except (KeyError, IndexError, TypeError, ValueError) as e:
            raise BadInput(
                f"{data.dir / 'rankings.json'}: not the shape pmsim writes ({type(e).__name__}: {e})"
            ) from None
    else:
        why = "no rankings.json" if data.rankings is None else "a rankings.json with no period"
        body.append(
            '<section id="rankings"><h2>Rankings</h2><p class="note">This run folder has '
            f"{why}, so the red and black lists, the company ranking and the health "
            "profiles are left out of this report.</p></section>"
        )
    if installs:
        body.append(before_after_section(page, installs))
    body += [rules_section(page), alerts_section(page), workorders_section(page)]
    title = f"pmsim report: {data.scenario.get('title') or data.scenario.get('name', '')}"
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{esc(title)}</title><style>{CSS}</style></head><body>\n"
        + "\n".join(body)
        + "\n</body></html>\n"
    )


def write_report(run_dir: Path) -> Path:
    """Write ``report.html`` into the run folder ``run_dir`` and return its path. Raises
    :class:`BadInput` when matplotlib is missing or the folder is not a run folder."""
    try:
        from sim import plots
    except ImportError as e:
        if (e.name or "").split(".")[0] != "matplotlib":
            raise
        raise BadInput(NEEDS_MATPLOTLIB) from None
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise BadInput(f"{run_dir}: not a folder")
    page = render(load_run(run_dir), plots)
    out = run_dir / REPORT_NAME
    tmp = run_dir / f".{REPORT_NAME}.partial-{os.getpid()}"
    tmp.write_text(page, encoding="utf-8", newline="\n")
    os.replace(tmp, out)
    return out
