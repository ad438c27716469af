"""The report's HTML building blocks, apart from the sections that use them.

:mod:`sim.report.page` writes one self-contained page out of many sections
(:mod:`sim.report.ranksections`, :mod:`sim.report.runsections`); they all format numbers and intervals,
escape text, build tables, embed PNG plots and label estates and companies the same way. Those
helpers live here, in one small module that imports nothing from the rest of the report, so that
every section module can use them without import cycles. :class:`Page` knows only the estates and
companies of a run (:class:`RunNames`), not the whole run data of :mod:`sim.report.page`.
"""

from __future__ import annotations

import base64
import html
import struct
from collections.abc import Mapping, Sequence
from types import ModuleType
from typing import Any, Generic, Protocol, TypeVar

__all__ = ["CSS", "Page", "RunNames", "esc", "img", "ivl", "num", "table"]

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


class RunNames(Protocol):
    """What :class:`Page` needs of the run data: its estates and companies by id."""

    @property
    def estates(self) -> Mapping[str, Mapping[str, Any]]: ...

    @property
    def companies(self) -> Mapping[str, Mapping[str, Any]]: ...


D = TypeVar("D", bound=RunNames)


class Page(Generic[D]):
    """Labels shared by the sections: estates and companies by name in HTML, and in plots by
    name only when a CJK font is installed (else by id: never a missing glyph)."""

    def __init__(self, data: D, plots: ModuleType) -> None:
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
