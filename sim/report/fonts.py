"""Finding a font that can draw the run's Chinese estate and company names in the report's figures.

Which font to use is a question about the machine, not about any figure: matplotlib's font cache,
the system's font files and which glyphs each has. :mod:`sim.report.plots` asks :func:`cjk_font` once per
page and passes the answer to every figure, which then shows the names only when the font has every
glyph needed (else it labels by id: never a missing glyph). Keeping the font search here leaves
:mod:`sim.report.plots` with the figures alone. Like :mod:`sim.report.plots`, it needs matplotlib (the ``report``
extra).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from matplotlib import font_manager
from matplotlib.ft2font import FT2Font

__all__ = ["CJK_FAMILIES", "cjk_font"]

# Families with CJK glyphs, most likely first (Linux, then macOS and Windows).
CJK_FAMILIES = (
    "Noto Sans CJK SC",
    "Noto Sans SC",
    "Source Han Sans SC",
    "Source Han Sans CN",
    "Noto Sans CJK JP",
    "Noto Sans CJK TC",
    "Source Han Sans",
    "WenQuanYi Micro Hei",
    "WenQuanYi Zen Hei",
    "Sarasa Gothic SC",
    "Droid Sans Fallback",
    "AR PL UMing CN",
    "AR PL UKai CN",
    "Noto Serif CJK SC",
    "PingFang SC",
    "Hiragino Sans GB",
    "Heiti SC",
    "Microsoft YaHei",
    "SimHei",
)


def _covers(path: str, chars: Sequence[str]) -> str | None:
    """The family name of the font file at ``path`` when it has a glyph for every char."""
    try:
        font = FT2Font(path)
    except (OSError, RuntimeError, ValueError):
        return None
    return font.family_name if all(font.get_char_index(ord(c)) for c in chars) else None


def cjk_font(texts: Iterable[str]) -> str | None:
    """The first installed family of :data:`CJK_FAMILIES` that has a glyph for every non-ASCII
    character of ``texts``; None when there is none (label by id then).

    matplotlib's font list is a cache, so a font installed after it was built is looked for among
    the system's font files too, and registered with the font manager when it is the one used."""
    chars = sorted({c for t in texts for c in t if ord(c) > 0x7F})
    entries = sorted(font_manager.fontManager.ttflist, key=lambda f: (f.name, f.fname))
    for family in CJK_FAMILIES:
        for entry in (e for e in entries if e.name == family):
            if _covers(entry.fname, chars) == family:
                return family
    known = {e.fname for e in entries}
    found: dict[str, str] = {}
    for path in sorted(font_manager.findSystemFonts()):
        if path not in known and (name := _covers(path, chars)) in CJK_FAMILIES:
            found.setdefault(str(name), path)
    for family in CJK_FAMILIES:
        if family in found:
            font_manager.fontManager.addfont(found[family])
            return family
    return None
