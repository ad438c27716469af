"""Rankings in every run, through the command line called in-process (``--broker none``): the
whole run is always ranked, small districts get shorter lists, ``--rank-config`` on ``pmsim run``
and ``pmsim report``, and ``pmsim rank`` answers a bad run folder with one line and exit 2."""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

import pytest

from sim.commands.cli import main

ROOT = Path(__file__).resolve().parents[3]
SEEDS = ROOT / "seeds"
CONFIG = (SEEDS / "rankings" / "default.yaml").read_text(encoding="utf-8")
needs_matplotlib = pytest.mark.skipif(
    importlib.util.find_spec("matplotlib") is None, reason="the report extra is not installed"
)

# Two estates, a diligent company and a lax one: the smallest district that can have lists.
TWO = """\
name: two
start: 2026-03-02
days: 7
seed: 3
devices:
  health: {heartbeat_seconds: 2400}
companies:
  - {id: good, name: 好物业, diligence: 0.9, staff: 3}
  - {id: poor, name: 差物业, diligence: 0.2, staff: 1}
grids:
  - id: g
    name: 网格
    estates:
"""
for _i, _company in enumerate(["good", "poor"]):
    TWO += (
        f"      - id: e{_i}\n        name: 小区{_i}\n        company: {_company}\n"
        "        buildings: [{count: 3, floors: 12, units: 2, households_per_floor: 4,"
        " elevators_per_unit: 1}]\n"
        "        devices: [{kind: ebike_blocker, day: 0}, {kind: falling_object_camera, day: 0},"
        " {kind: clutter_sensor, day: 0, buildings: [b01], floors: [1, 2]}]\n"
    )


def run(
    capsys: pytest.CaptureFixture[str], scenario: Path, out: Path, days: int, *extra: str
) -> tuple[int, str, str]:
    args = ["run", str(scenario), "--days", str(days), "--broker", "none", "--no-progress"]
    code = main([*args, "--out", str(out), *extra])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def rankings(run_dir: Path) -> dict:
    return json.loads((run_dir / "rankings.json").read_text(encoding="utf-8"))


def config(tmp: Path, old: str = "", new: str = "") -> Path:
    text = CONFIG
    if old:
        assert old in text, old
        text = text.replace(old, new, 1)
    p = tmp / "rankings.yaml"
    p.write_text(text, encoding="utf-8")
    return p


def one_line_exit_2(code: int, err: str, *words: str) -> None:
    assert code == 2, err
    assert err.startswith("pmsim: error: ") and err.count("\n") == 1, err
    assert "Traceback" not in err
    for w in words:
        assert w in err, (w, err)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("tiny") / "run"
    args = ["run", str(SEEDS / "tiny.yaml"), "--days", "2", "--broker", "none", "--no-progress"]
    assert main([*args, "--out", str(out)]) == 0
    return out


# --- the three runs that had no lists ----------------------------------------------------------


def test_the_readme_week_of_xinhong_shows_a_red_and_a_black_list(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "x7"
    code, text, _ = run(capsys, SEEDS / "xinhong.yaml", out, 7)
    assert code == 0
    lists = text[text.index("Red and black lists (红黑榜)") :]
    assert "  run (whole run, 7 days), k = " in lists
    assert "    red (best):    " in lists and "    black (worst): " in lists
    assert "Rankings: none" not in text
    r = rankings(out)
    (whole,) = r["periods"]  # a week covers no calendar period half
    assert whole["period"] == {
        "id": "run", "kind": "run", "days": 7, "start_day": 0, "end_day": 7, "length": 7,
        "coverage": 1.0, "partial": False,
    }  # fmt: skip
    assert whole["config"]["list_length"] >= 1
    assert r["left_out"] == ["month", "quarter", "half"]
    if importlib.util.find_spec("matplotlib") is not None:
        page = (out / "report.html").read_text(encoding="utf-8")
        assert "Red list (红榜)" in page and "Black list (黑榜)" in page
        assert "left out of this report" not in page


def test_a_92_day_run_is_ranked_on_its_months_quarter_and_half_year(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "t92"
    code, text, _ = run(capsys, SEEDS / "tiny.yaml", out, 92)
    assert code == 0
    r = rankings(out)
    ids = [p["period"]["id"] for p in r["periods"]]
    assert ids == ["run", "2026-03", "2026-04", "2026-05", "2026-Q2", "2026-H1"]
    half = r["periods"][-1]["period"]
    assert half["days"] == 92 and half["partial"] and half["coverage"] == round(92 / 181, 4)
    assert r["left_out"] == []
    assert "2026-H1 (half-year, 92 days, partial)" in text
    # one estate: nothing to compare it with, said so rather than left out
    assert "no lists: one estate scored" in text


def test_a_two_estate_district_gets_lists_of_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    scen = tmp_path / "two.yaml"
    scen.write_text(TWO, encoding="utf-8")
    out = tmp_path / "two"
    code, text, _ = run(capsys, scen, out, 7)
    assert code == 0
    (whole,) = rankings(out)["periods"]
    assert whole["config"]["list_size"] == 3 and whole["config"]["list_length"] == 1
    est = {e["estate"]: e for e in whole["estates"]}
    assert set(est) == {"e0", "e1"} and all(e["scored"] for e in est.values())
    # one of two is the best: the probabilities of the two add up to one
    assert est["e0"]["p_best_k"] + est["e1"]["p_best_k"] == pytest.approx(1.0, abs=1e-3)
    assert est["e0"]["p_worst_k"] == pytest.approx(est["e1"]["p_best_k"], abs=1e-3)
    named = [e["estate"] for e in whole["red_list"] + whole["black_list"]]
    assert len(named) == len(set(named)) <= 2
    assert "run (whole run, 7 days), k = 1" in text
    assert "    red (best):    " in text and "    black (worst): " in text


# --- --rank-config -----------------------------------------------------------------------------


def test_run_takes_a_rank_config(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = config(tmp_path, "draws: 2000", "draws: 300")
    out = tmp_path / "run"
    code, _, _ = run(capsys, SEEDS / "tiny.yaml", out, 2, "--rank-config", str(cfg))
    assert code == 0
    r = rankings(out)
    assert r["config"] == "rankings.yaml" and r["periods"][0]["config"]["draws"] == 300


@pytest.mark.parametrize(
    ("old", "new", "words"),
    [
        ("ack_speed: {weight: 50}", "ack_speed: {weight: -5}", ":14: indicators.ack_speed.weight:"),
        ("list_size: 3", "list_size: 0", ":43: list_size:"),
        ("version: 1", "version: 1\nversion: [", "rankings.yaml"),
    ],
)
def test_run_refuses_a_bad_rank_config_before_it_starts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], old: str, new: str, words: str
) -> None:
    cfg = config(tmp_path, old, new)
    out = tmp_path / "run"
    code, _, err = run(capsys, SEEDS / "tiny.yaml", out, 2, "--rank-config", str(cfg))
    one_line_exit_2(code, err, str(cfg), words)
    assert not out.exists()
    code, _, err = run(capsys, SEEDS / "tiny.yaml", out, 2, "--rank-config", str(tmp_path / "no"))
    one_line_exit_2(code, err, "no: file not found")


@needs_matplotlib
def test_report_ranks_again_with_a_rank_config(
    tiny: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "run"
    shutil.copytree(tiny, folder)
    assert rankings(folder)["periods"][0]["config"]["draws"] == 2000
    cfg = config(tmp_path, "draws: 2000", "draws: 400")
    assert main(["report", str(folder), "--rank-config", str(cfg)]) == 0
    out = capsys.readouterr().out
    assert f"wrote {folder / 'rankings.json'}" in out and f"wrote {folder / 'report.html'}" in out
    assert rankings(folder)["periods"][0]["config"]["draws"] == 400
    assert "over 400 posterior draws" in (folder / "report.html").read_text(encoding="utf-8")

    before = (folder / "rankings.json").read_bytes()
    bad = config(tmp_path, "draws: 2000", "draws: 10")
    code = main(["report", str(folder), "--rank-config", str(bad)])
    one_line_exit_2(code, capsys.readouterr().err, f"{bad}:", "draws:")
    assert (folder / "rankings.json").read_bytes() == before  # nothing rewritten


# --- pmsim rank on bad run folders ---------------------------------------------------------------


def test_rank_prints_the_whole_run_by_default(
    tiny: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["rank", str(tiny)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("== run: whole run, 2 days\n") and "示范小区" in out
    assert "Red list (best): none (one estate scored" in out
    code = main(["rank", str(tiny), "--period", "month"])
    one_line_exit_2(code, capsys.readouterr().err, "--period month", "min_coverage")


@pytest.mark.parametrize(
    ("content", "words"),
    [
        # what pmsim wrote before every run was ranked: no period, and why
        (
            '{"periods": [], "stability": [], "skipped": "a month is longer than the run"}',
            "no ranked period (a month is longer than the run); --config FILE ranks",
        ),
        ('{"periods": []}', "no ranked period"),
        ("{not json", "rankings.json:1: not valid JSON"),
        ("[]", "not the shape pmsim writes"),
        ('{"periods": [{"period": {"id": "run"}}]}', "not the shape pmsim writes (KeyError"),
        ('{"periods": [{"period": {"kind": "run"}}]}', "not the shape pmsim writes"),
    ],
)
def test_rank_on_a_folder_without_a_ranked_period_is_one_line_exit_2(
    tiny: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str, words: str
) -> None:
    folder = tmp_path / "run"
    shutil.copytree(tiny, folder)
    (folder / "rankings.json").write_text(content, encoding="utf-8")
    code = main(["rank", str(folder)])
    one_line_exit_2(code, capsys.readouterr().err, words)


def test_rank_with_config_ranks_an_old_folder_again(
    tiny: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "run"
    shutil.copytree(tiny, folder)
    (folder / "rankings.json").write_text('{"periods": []}', encoding="utf-8")
    assert main(["rank", str(folder), "--config", str(SEEDS / "rankings" / "default.yaml")]) == 0
    assert capsys.readouterr().out.startswith("== run: whole run, 2 days")


@pytest.mark.parametrize(
    ("damage", "words"),
    [
        ("missing", "not a folder"),
        ("run.json", "not a run folder (no run.json)"),
        ("estates.json", "not a complete run folder (estates.json missing)"),
        ("alerts.jsonl", "not a complete run folder (alerts.jsonl missing)"),
        ("bad-alerts", "alerts.jsonl:1: not JSON"),
        ("bad-estates", "estates.json: cannot be read"),
        ("bad-days", "run.json: days: not a positive whole number"),
        ("bad-records", "records not in the shape pmsim writes"),
    ],
)
def test_rank_again_on_a_damaged_folder_is_one_line_exit_2(
    tiny: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], damage: str, words: str
) -> None:
    folder = tmp_path / "run"
    if damage != "missing":
        shutil.copytree(tiny, folder)
    if damage in ("run.json", "estates.json", "alerts.jsonl"):
        (folder / damage).unlink()
    elif damage == "bad-alerts":
        (folder / "alerts.jsonl").write_text("{oops\n", encoding="utf-8")
    elif damage == "bad-estates":
        (folder / "estates.json").write_text("[{", encoding="utf-8")
    elif damage == "bad-days":
        (folder / "run.json").write_text('{"days": "a week"}', encoding="utf-8")
    elif damage == "bad-records":
        (folder / "alerts.jsonl").write_text('{"change": "firing"}\n', encoding="utf-8")
    code = main(["rank", str(folder), "--config", str(SEEDS / "rankings" / "default.yaml")])
    one_line_exit_2(code, capsys.readouterr().err, words)
