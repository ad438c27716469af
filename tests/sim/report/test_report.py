"""The run report: a self-contained report.html from real run folders (no mocks).

Two run folders: tiny (one estate, every device from day 0, a few days) and a two-estate district
written here, where one estate gets its falling-object cameras mid-run and has no e-bike blockers
at all (so ebike_entries is unobservable there). rankings.json is made with rules.rankings on
counts taken from each run.
"""

from __future__ import annotations

import base64
import importlib.util
import json
import re
import shutil
import struct
import subprocess
import sys
import warnings
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import yaml

from rules.periods import Period, periods
from rules.rankconfig import RankConfig
from rules.rankings import EstatePeriod, rank_period, stability
from sim.errors import BadInput
from sim.report.page import REPORT_NAME, write_report
from sim.runner import run_to_folder
from sim.world.scenario import load_scenario

ROOT = Path(__file__).resolve().parents[3]
needs_matplotlib = pytest.mark.skipif(
    importlib.util.find_spec("matplotlib") is None, reason="the report extra is not installed"
)
DAY = 86400.0

# Two estates of two companies; 31 days from 2026-03-16 cover the second half of March and the
# first half of April, so there are two (partial) months to rank.
TWO = """
name: two
title: 两个小区 (synthetic)
start: 2026-03-16
days: 31
seed: 3
companies:
  - {id: good-pm, name: 好物业, diligence: 0.9, staff: 3}
  - {id: slow-pm, name: 慢物业, diligence: 0.2, staff: 1}
grids:
  - id: g
    name: 网格
    estates:
      - id: east
        name: 东苑
        company: good-pm
        buildings:
          - {count: 2, floors: 18, units: 2, households_per_floor: 4, elevators_per_unit: 2}
        devices:
          - {kind: ebike_blocker, day: 0}
          - {kind: falling_object_camera, day: 0}
          - {kind: clutter_sensor, day: 0}
      - id: west
        name: 西村
        company: slow-pm
        buildings:
          - {count: 2, floors: 18, units: 2, households_per_floor: 4, elevators_per_unit: 2}
        devices:
          - {kind: clutter_sensor, day: 0}
          - {kind: falling_object_camera, day: 12}
"""

HEADINGS = (
    "Red and black lists (红黑榜)",
    "Company ranking",
    "Validity: the ranking against the truth",
    "Health profiles (健康画像)",
    "Rule precision and recall",
    "Alerts over time",
    "Work-order timeliness",
)
BEFORE_AFTER = "Before and after installing devices"


def _jsonl(path: Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def estate_periods(run_dir: Path, period_id: str, lo: int, hi: int) -> list[EstatePeriod]:
    """A few indicators per estate for days [lo, hi) of the run, from the run's own files."""
    sc = yaml.safe_load((run_dir / "scenario.resolved.yaml").read_text(encoding="utf-8"))
    alerts = _jsonl(run_dir / "alerts.jsonl")
    orders = _jsonl(run_dir / "workorders.jsonl")
    t0, t1 = lo * DAY, hi * DAY
    rows = []
    for grid in sc["grids"]:
        for est in grid["estates"]:
            eid = est["id"]
            hh = sum(
                round(g["count"] * g["floors"] * g.get("units", 1) * g["households_per_floor"])
                for g in est["buildings"]
            )

            def covered(kind: str, est: dict[str, Any] = est) -> float:
                days = [max(lo, d["day"]) for d in est["devices"] if d["kind"] == kind]
                return max(0, hi - min(days)) if days else 0.0

            def fired(rule: str, eid: str = eid) -> float:
                return float(
                    sum(
                        1
                        for a in alerts
                        if a["change"] == "firing"
                        and a["rule_id"] == rule
                        and a["labels"].get("estate") == eid
                        and t0 <= a["sim_seconds"] < t1
                    )
                )

            mine = {
                w["workorder_id"]
                for w in orders
                if w["change"] == "opened" and w["estate"] == eid and t0 <= w["sim_seconds"] < t1
            }
            acked = {
                w["workorder_id"]
                for w in orders
                if w["change"] == "acknowledged" and w.get("within_sla")
            } & mine
            on_time = {
                w["workorder_id"] for w in orders if w["change"] == "closed" and w.get("on_time")
            } & mine
            counts = {
                "falling_objects": (fired("falling-object"), hh * covered("falling_object_camera")),
                "ebike_entries": (fired("ebike-in-elevator"), hh * covered("ebike_blocker")),
                "ack_within_sla": (float(len(acked)), float(len(mine))),
                "closed_on_time": (float(len(on_time)), float(len(mine))),
            }
            rows.append(
                EstatePeriod(eid, est["name"], est["company"], hh, period_id, hi - lo, counts)
            )
    return rows


def add_rankings(run_dir: Path, list_size: int = 1) -> dict[str, Any]:
    """rankings.json for every month the run covers (or the run as one month when none is)."""
    sc = yaml.safe_load((run_dir / "scenario.resolved.yaml").read_text(encoding="utf-8"))
    cfg = RankConfig.model_validate(
        {
            "indicators": {
                n: {"weight": 1.0}
                for n in ("falling_objects", "ebike_entries", "ack_within_sla", "closed_on_time")
            },
            "list_size": list_size,
            "evidence": 0.6,
            "draws": 400,
        }
    )
    start = date.fromisoformat(str(sc["start"]))
    days = int(sc["days"])
    diligence = {c["id"]: c["diligence"] for c in sc["companies"]}
    found: list[Period | None] = list(periods(start, days, ["month"], cfg.min_coverage))
    results = []
    for p in found or [None]:
        pid = p.id if p else f"{start.year}-{start.month:02d}"
        lo, hi = (p.start_day, p.end_day) if p else (0, days)
        rows = estate_periods(run_dir, pid, lo, hi)
        results.append(rank_period(rows, cfg, period=p, diligence=diligence))
    out = {
        "periods": results,
        "stability": stability(results),
        "config": cfg.model_dump(mode="json"),
    }
    (run_dir / "rankings.json").write_text(json.dumps(out, ensure_ascii=False), encoding="utf-8")
    return out


@pytest.fixture(scope="module")
def two(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("two")
    (base / "two.yaml").write_text(TWO, encoding="utf-8")
    sc = load_scenario(base / "two.yaml")
    out = base / "two-run"
    run_to_folder(sc, out, days=sc.days, seed=sc.seed)
    add_rankings(out)
    return out


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("tiny") / "tiny-run"
    run_to_folder(load_scenario(ROOT / "seeds" / "tiny.yaml"), out, days=4, seed=1)
    add_rankings(out)
    return out


def report(run_dir: Path) -> str:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        path = write_report(run_dir)
    assert path == run_dir / REPORT_NAME and path.is_file()
    messages = [str(w.message) for w in caught]
    assert not [m for m in messages if "Glyph" in m and "missing" in m], messages
    assert messages == []  # no matplotlib warning of any kind (layout, fonts, deprecations)
    return path.read_text(encoding="utf-8")


def images(page: str) -> list[bytes]:
    srcs = re.findall(r'<img\b[^>]*\bsrc="([^"]*)"', page)
    assert len(srcs) == page.count("<img")
    out = []
    for src in srcs:
        assert src.startswith("data:image/png;base64,")
        png = base64.b64decode(src.removeprefix("data:image/png;base64,"), validate=True)
        assert png[:8] == b"\x89PNG\r\n\x1a\n"
        width, height = struct.unpack(">II", png[16:24])
        assert 300 <= width <= 2000 and 150 <= height <= 6000, (width, height)
        assert len(png) > 5000
        out.append(png)
    return out


def self_contained(page: str) -> None:
    assert "http://" not in page and "https://" not in page
    assert 'src="/' not in page and "<script" not in page and "<link" not in page
    assert "url(" not in page and "@import" not in page
    assert re.findall(r'\b(?:src|href)="([^"#][^"]*)"', page) == [
        s for s in re.findall(r'\bsrc="([^"]*)"', page) if s.startswith("data:image/png")
    ]


def headings(page: str) -> list[str]:
    return re.findall(r"<h2>(.*?)</h2>", page)


@needs_matplotlib
def test_two_estates_with_a_mid_run_install(two: Path) -> None:
    page = report(two)
    self_contained(page)
    pngs = images(page)
    # forest plots (2 latest months: one kind), companies, radar, before/after, rules, alerts,
    # timeliness, ack times
    assert len(pngs) >= 8
    assert headings(page) == [*HEADINGS[:4], BEFORE_AFTER, *HEADINGS[4:]]
    assert page.index("2026-04: month") < page.index("Earlier periods")
    assert page.index("Earlier periods") < page.index("2026-03: month")
    assert "东苑" in page and "西村" in page and "好物业" in page  # names, not only ids
    assert "falling_object_camera on day 12" in page
    # west has no e-bike blocker: ranked on what is observable, and said so
    assert "ebike_entries" in page and "ranked only on what is observable" in page
    assert "Kendall" in page and "τ" in page
    # validity: one row per period, and each indicator's tau alone (two companies: none)
    validity = page[page.index('<section id="validity">') : page.index('<section id="profiles">')]
    assert "companies τ" in validity and "diligent, black-listed" in validity
    # (names may wrap at an underscore: a zero-width space follows each)
    assert "falling_\u200bobjects (weight 1)" in validity and "2026-04" in validity
    rk = json.loads((two / "rankings.json").read_text(encoding="utf-8"))
    for p in rk["periods"]:
        for entry in p["red_list"] + p["black_list"]:
            assert entry["estate"] in page


@needs_matplotlib
def test_same_run_folder_gives_the_same_bytes(two: Path, tmp_path: Path) -> None:
    first = write_report(two).read_bytes()
    assert write_report(two).read_bytes() == first
    copy = tmp_path / two.name  # elsewhere, same folder name: no path leaks into the page
    shutil.copytree(two, copy, ignore=shutil.ignore_patterns(REPORT_NAME, "events.jsonl"))
    assert write_report(copy).read_bytes() == first


@needs_matplotlib
def test_no_mid_run_install_no_before_after(tiny: Path) -> None:
    page = report(tiny)
    self_contained(page)
    images(page)
    assert headings(page) == list(HEADINGS)
    assert BEFORE_AFTER not in page
    assert "示范小区" in page
    assert "nothing to compare it with, no list" in page  # one estate: nobody named, and why


@needs_matplotlib
def test_missing_rankings_is_said_and_skipped(two: Path, tmp_path: Path) -> None:
    run = tmp_path / "norank"
    shutil.copytree(two, run, ignore=shutil.ignore_patterns("rankings.json", REPORT_NAME))
    page = report(run)
    self_contained(page)
    images(page)
    assert "no rankings.json" in page
    assert headings(page) == ["Rankings", BEFORE_AFTER, *HEADINGS[4:]]


@needs_matplotlib
def test_global_matplotlib_state_is_untouched(tiny: Path) -> None:
    import matplotlib

    before = dict(matplotlib.rcParams)
    backend = matplotlib.get_backend()
    write_report(tiny)
    assert dict(matplotlib.rcParams) == before
    assert matplotlib.get_backend() == backend


@needs_matplotlib
def test_not_a_run_folder(tmp_path: Path) -> None:
    with pytest.raises(BadInput, match="not a folder"):
        write_report(tmp_path / "nothing")
    with pytest.raises(BadInput, match=r"scenario\.resolved\.yaml"):
        write_report(tmp_path)
    assert not (tmp_path / REPORT_NAME).exists()


def test_without_matplotlib_one_clear_line(tiny: Path) -> None:
    # A real interpreter in which matplotlib cannot be imported (None in sys.modules blocks it).
    code = (
        "import sys; sys.modules['matplotlib'] = None\n"
        "from pathlib import Path\n"
        "from sim.errors import BadInput\n"
        "from sim.report.page import write_report\n"
        "try:\n"
        f"    write_report(Path({str(tiny)!r}))\n"
        "except BadInput as e:\n"
        "    print(e)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True
    )
    assert done.stdout.strip() == "the report needs matplotlib: pip install 'pmsim[report]'"


@needs_matplotlib
def test_plots_label_by_id_when_no_font_has_the_glyphs() -> None:
    from sim.report import plots

    assert plots.cjk_font(["\U000f0000"]) is None  # a private-use character: no font has it
    found = plots.cjk_font(["东苑", "好物业"])
    assert found is None or found in plots.CJK_FAMILIES


@needs_matplotlib
def test_a_rankings_json_of_another_shape_is_bad_input(tiny: Path, tmp_path: Path) -> None:
    run = tmp_path / "odd"
    shutil.copytree(tiny, run, ignore=shutil.ignore_patterns(REPORT_NAME, "events.jsonl"))
    (run / "rankings.json").write_text('{"periods": [{"period": {"id": "2026-03"}}]}')
    with pytest.raises(BadInput, match=r"rankings\.json: not the shape pmsim writes"):
        write_report(run)
    assert not (run / REPORT_NAME).exists()
