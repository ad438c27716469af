"""``pmsim export``, called in-process on a real one-day run (the tiny estate with every fault but
those of delivery, which step each heartbeat as an event, so the truth holds every kind of record
and the heartbeats travel as runs): JSON Lines -> Parquet -> JSON Lines gives the run's records
back (with the delivery times and run.json), Parquet is reproducible, DuckDB counts what the JSON
Lines hold, bad input leaves nothing, ``--heartbeats`` builds every beat again in its place, and a
Parquet export replays to the very alerts and work orders of its run."""

from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from sim.commands.cli import main
from sim.files.columns import KINDS

duckdb = pytest.importorskip("duckdb")
pytest.importorskip("pyarrow")

ROOT = Path(__file__).resolve().parents[3]
TINY = ROOT / "seeds" / "tiny.yaml"
DEFAULT_RULES = ROOT / "seeds" / "rules" / "default.yaml"
FAULTS = """faults:
  - {kind: clock_skew, share: 0.3, max_skew_s: 10}
  - {kind: device_dead, share: 0.05, from_day: 0}
  - {kind: device_silent, share: 0.2, hours: 4}
  - {kind: gateway_disconnect, mean_days_between: 0.5, mean_minutes: 30}
"""


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("export")
    faults = base / "faults.yaml"
    faults.write_text(FAULTS, encoding="utf-8")
    out = base / "run"
    argv = ["run", str(TINY), "--days", "1", "--broker", "none", "--no-progress"]
    assert main([*argv, "--faults", str(faults), "--out", str(out)]) == 0
    return out


def _jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def _export(*argv: str) -> int:
    return main(["export", *argv])


def test_jsonl_to_parquet_to_jsonl_gives_every_record_back(
    run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _export(str(run), "--format", "parquet", "--out", str(tmp_path / "pq")) == 0
    assert sorted(p.name for p in (tmp_path / "pq").iterdir()) == sorted(
        ["run.json", *(f"{k}.parquet" for k in KINDS)]
    )
    out = capsys.readouterr().out
    assert f"wrote {tmp_path / 'pq' / 'events.parquet'} (" in out
    assert _export(str(tmp_path / "pq"), "--format", "jsonl", "--out", str(tmp_path / "j")) == 0
    kinds = Counter(r["kind"] for r in _jsonl(run / "truth.jsonl"))
    assert set(kinds) == {"incident", "false_trigger", "response", "fault", "defect"}
    for kind in KINDS:
        original = _jsonl(run / f"{kind}.jsonl")
        assert original, kind
        assert _jsonl(tmp_path / "j" / f"{kind}.jsonl") == original, kind
        # and the very same text: key order, integers and times as the run wrote them
        assert (tmp_path / "j" / f"{kind}.jsonl").read_bytes() == (
            run / f"{kind}.jsonl"
        ).read_bytes()
    for name in ("events.delivered", "run.json"):  # what replaying the export needs
        assert (run / name).stat().st_size > 0
        assert (tmp_path / "j" / name).read_bytes() == (run / name).read_bytes(), name
    delivered = duckdb.connect().execute(
        f"SELECT delivered_s FROM '{tmp_path / 'pq' / 'events.parquet'}'"
    )
    times = [float(x) for x in (run / "events.delivered").read_text().split()]
    assert [t for (t,) in delivered.fetchall()] == times


def _replay(source: Path, rules: Path, out: Path) -> None:
    assert main(["replay", str(source), "--rules", str(rules), "--out", str(out)]) == 0


def _same_results(a: Path, b: Path) -> None:
    for name in ("alerts.jsonl", "workorders.jsonl"):
        assert (a / name).stat().st_size > 0, name
        assert (a / name).read_bytes() == (b / name).read_bytes(), name


def test_a_parquet_export_replays_like_its_run(
    run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pq = tmp_path / "pq"
    assert _export(str(run), "--format", "parquet", "--out", str(pq)) == 0
    assert not list(pq.glob("*.jsonl")) and not (pq / "events.delivered").exists()
    _replay(pq, run / "rules.yaml", tmp_path / "same")
    _same_results(tmp_path / "same", run)  # the run's own alerts and work orders
    assert json.loads((tmp_path / "same" / "score.json").read_text())  # scored on truth.parquet
    text = DEFAULT_RULES.read_text(encoding="utf-8")
    assert "after: 45m" in text
    other = tmp_path / "other.yaml"
    other.write_text(text.replace("after: 45m", "after: 20m", 1), encoding="utf-8")
    _replay(run, other, tmp_path / "from-run")
    _replay(pq, other, tmp_path / "from-parquet")
    _replay(pq / "events.parquet", other, tmp_path / "from-file")
    _same_results(tmp_path / "from-parquet", tmp_path / "from-run")
    _same_results(tmp_path / "from-file", tmp_path / "from-run")
    assert (tmp_path / "from-run" / "alerts.jsonl").read_bytes() != (
        run / "alerts.jsonl"
    ).read_bytes()
    back = tmp_path / "back"  # and Parquet -> JSON Lines again, events.delivered included
    assert _export(str(pq), "--format", "jsonl", "--out", str(back)) == 0
    _replay(back, other, tmp_path / "from-jsonl")
    _same_results(tmp_path / "from-jsonl", tmp_path / "from-run")


def test_heartbeats_built_again_are_every_event_the_run_sent(run: Path, tmp_path: Path) -> None:
    argv = ["--format", "jsonl", "--what", "events", "--heartbeats", "--out", str(tmp_path)]
    assert _export(str(run), *argv) == 0
    events = _jsonl(tmp_path / "events.jsonl")
    beats = sum(r["count"] for r in _jsonl(run / "heartbeats.jsonl"))
    assert beats > 0 and len(events) == len(_jsonl(run / "events.jsonl")) + beats
    info = json.loads((run / "run.json").read_text(encoding="utf-8"))
    assert len(events) == info["counts"]["events"]
    seqs: dict[str, list[int]] = {}
    for e in events:
        seqs.setdefault(e["device_id"], []).append(e["seq"])
    assert all(s == sorted(s) for s in seqs.values())  # each device's own order kept


def test_two_exports_of_a_run_are_the_same_bytes(run: Path, tmp_path: Path) -> None:
    for name in ("a", "b"):
        assert _export(str(run), "--format", "parquet", "--out", str(tmp_path / name)) == 0
    for kind in KINDS:
        a = (tmp_path / "a" / f"{kind}.parquet").read_bytes()
        assert a == (tmp_path / "b" / f"{kind}.parquet").read_bytes(), kind


def test_duckdb_counts_what_the_jsonl_holds(run: Path, tmp_path: Path) -> None:
    assert _export(str(run), "--format", "parquet", "--out", str(tmp_path)) == 0
    con = duckdb.connect()
    got = con.execute(
        f"SELECT estate, type, count(*) FROM '{tmp_path / 'events.parquet'}' GROUP BY ALL"
    ).fetchall()
    events = _jsonl(run / "events.jsonl")
    assert {(e, t): n for e, t, n in got} == Counter((e["estate"], e["type"]) for e in events)
    got = con.execute(
        "SELECT rule_id, (time AT TIME ZONE 'Asia/Shanghai')::DATE::VARCHAR, "
        "labels->>'estate', count(*) "
        f"FROM '{tmp_path / 'alerts.parquet'}' WHERE change = 'firing' GROUP BY ALL"
    ).fetchall()
    firing = [a for a in _jsonl(run / "alerts.jsonl") if a["change"] == "firing"]
    assert firing
    assert {(r, d, e): n for r, d, e, n in got} == Counter(
        (a["rule_id"], a["time"][:10], a["labels"]["estate"]) for a in firing
    )
    got = con.execute(
        "SELECT kind, count(*), sum(len(event_ids)), count(*) FILTER (detected) "
        f"FROM '{tmp_path / 'truth.parquet'}' GROUP BY ALL"
    ).fetchall()
    truth = _jsonl(run / "truth.jsonl")
    assert {k: (n, ids, det) for k, n, ids, det in got} == {
        k: (
            sum(1 for r in truth if r["kind"] == k),
            sum(len(r["event_ids"]) for r in truth if r["kind"] == k),
            sum(1 for r in truth if r["kind"] == k and r.get("detected")),
        )
        for k in {r["kind"] for r in truth}
    }


def test_csv_and_the_default_folder(run: Path, tmp_path: Path) -> None:
    src = tmp_path / "run"
    shutil.copytree(run, src)
    assert _export(str(src), "--format", "csv", "--what", "workorders,alerts") == 0
    out = src / "export-csv"
    assert sorted(p.name for p in out.iterdir()) == ["alerts.csv", "workorders.csv"]
    lines = (out / "workorders.csv").read_text(encoding="utf-8").splitlines()
    assert lines[0].startswith("record,workorder_id,alert_id,") and lines[0].endswith(",_extra")
    assert len(lines) == 1 + len(_jsonl(src / "workorders.jsonl"))
    (out / "alerts.csv").write_text("stale")
    assert _export(str(src), "--format", "jsonl", "--what", "truth", "--out", str(out)) == 0
    assert sorted(p.name for p in out.iterdir()) == ["run.json", "truth.jsonl"]  # replaced whole


def _bad(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    assert _export(*argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("pmsim: error: ") and "\n" not in err
    return err


def test_bad_input_exits_2_naming_file_and_line_and_leaves_nothing(
    run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = tmp_path / "run"
    shutil.copytree(run, src)
    lines = (src / "alerts.jsonl").read_text(encoding="utf-8").splitlines(keepends=True)
    lines[2] = lines[2][: len(lines[2]) // 2] + "\n"  # a line cut short
    (src / "alerts.jsonl").write_text("".join(lines), encoding="utf-8")
    out = tmp_path / "out"
    for fmt in ("parquet", "jsonl", "csv"):
        err = _bad([str(src), "--format", fmt, "--out", str(out)], capsys)
        assert f"{src / 'alerts.jsonl'}:3: not JSON" in err
        assert not out.exists()
        assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]  # no partial sibling
    err = _bad([str(tmp_path / "missing"), "--format", "parquet"], capsys)
    assert f"{tmp_path / 'missing'}: no such folder" in err
    err = _bad([str(run), "--format", "parquet", "--what", "events,alert"], capsys)
    assert "--what events,alert: unknown record kind 'alert'" in err
    assert not (run / "export-parquet").exists()
    err = _bad([str(run), "--format", "xml"], capsys)
    assert "invalid choice: 'xml'" in err
    (src / "workorders.jsonl").unlink()
    err = _bad([str(src), "--format", "jsonl", "--what", "workorders"], capsys)
    assert "no workorders.jsonl or workorders.parquet" in err


def test_out_replaces_only_an_export_folder(
    run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    keep = tmp_path / "mine"
    keep.mkdir()
    (keep / "notes.txt").write_text("precious")
    err = _bad([str(run), "--format", "jsonl", "--out", str(keep)], capsys)
    assert "holds notes.txt, not an export folder" in err
    assert (keep / "notes.txt").read_text() == "precious"
    err = _bad([str(run), "--format", "jsonl", "--out", str(run)], capsys)
    assert "is the folder being exported" in err
