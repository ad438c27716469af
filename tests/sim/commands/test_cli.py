"""The command line, called in-process: what a user types and sees."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sim.commands.cli import main
from sim.replay import run_traffic

ROOT = Path(__file__).resolve().parents[3]
TINY = ROOT / "seeds" / "tiny.yaml"


def test_run_writes_the_run_folder_and_prints_a_summary(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run"
    assert (
        main(
            ["run", str(TINY), "--days", "2", "--seed", "3", "--out", str(out), "--broker", "none"]
        )
        == 0
    )
    names = sorted(p.name for p in out.iterdir())
    assert names == [
        "alerts.jsonl",
        "estates.json",
        "events.delivered",
        "events.jsonl",
        "heartbeats.jsonl",
        "rankings.json",
        "report.html",
        "rules.yaml",
        "run.json",
        "scenario.resolved.yaml",
        "score.json",
        "truth.jsonl",
        "workorders.jsonl",
    ]
    text = capsys.readouterr().out
    for heading in (
        "Events",
        "Incidents (truth)",
        "False triggers (truth)",
        "heartbeat",
        "Rules scored against the truth",
        "ebike-in-elevator",
    ):
        assert heading in text
    run = json.loads((out / "run.json").read_text())
    assert run["seed"] == 3 and run["days"] == 2 and run["broker"]["kind"] == "none"
    assert run["counts"]["events"] == sum(1 for _ in run_traffic(out))  # heartbeats included
    assert run["counts"]["events"] > 10 * sum(1 for _ in (out / "events.jsonl").open())
    assert {"python", "pmsim", "simpy", "numpy", "pydantic"} <= set(run["versions"])
    assert run["timings"]["wall_seconds"] > 0
    resolved = (out / "scenario.resolved.yaml").read_text(encoding="utf-8")
    assert "days: 2" in resolved and "seed: 3" in resolved and "示范小区" in resolved
    assert not list(tmp_path.glob(".run.partial-*"))


def test_python_dash_m_sim_is_pmsim() -> None:
    import subprocess
    import sys

    proc = subprocess.run(
        [sys.executable, "-m", "sim", "validate", str(TINY)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(f"ok {TINY}")


def test_bad_scenario_exits_2_with_one_line_and_no_run_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(TINY.read_text(encoding="utf-8").replace("floors: 18", "floors: many"))
    out = tmp_path / "run"
    assert main(["run", str(bad), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert f"{bad}:" in err and "buildings[0].floors" in err
    assert not out.exists()
    assert list(tmp_path.iterdir()) == [bad]


def test_validate_reports_every_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nstart: 2026-03-02\ndays: 1\ncompanies: []\ngrids: []\n")
    assert main(["validate", str(TINY), str(bad)]) == 2
    cap = capsys.readouterr()
    assert f"ok {TINY}" in cap.out
    assert f"{bad}:4: companies:" in cap.err


@pytest.mark.parametrize(
    "argv",
    [
        ["run", str(TINY), "--broker", "ftp://127.0.0.1:1883"],
        ["run", str(TINY), "--broker", "mqtt://127.0.0.1:notaport"],
        ["run", str(TINY), "--qos", "2", "--broker", "none"],
        ["run", str(TINY), "--days", "0"],
        ["run", str(TINY), "--seed", "-1"],
        ["run", str(TINY), "--days", "many"],
        ["frobnicate"],
    ],
)
def test_bad_arguments_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("pmsim: error:") and err.count("\n") == 1


def test_run_refuses_to_overwrite_a_folder_that_is_not_a_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    precious = tmp_path / "thesis"
    precious.mkdir()
    (precious / "chapter1.txt").write_text("do not delete")
    assert main(["run", str(TINY), "--days", "1", "--out", str(precious)]) == 2
    assert (precious / "chapter1.txt").read_text() == "do not delete"
    assert "not a pmsim run" in capsys.readouterr().err


@pytest.mark.parametrize("stub", ["{}", '{"scenario": "x", "days": 1}', "[1, 2]", "not json"])
def test_run_refuses_a_folder_whose_run_json_is_only_a_stub(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], stub: str
) -> None:
    precious = tmp_path / "thesis"
    precious.mkdir()
    (precious / "run.json").write_text(stub)
    (precious / "chapter1.txt").write_text("do not delete")
    assert main(["run", str(TINY), "--days", "1", "--out", str(precious)]) == 2
    assert (precious / "chapter1.txt").read_text() == "do not delete"
    assert (precious / "run.json").read_text() == stub
    err = capsys.readouterr().err
    assert "not a pmsim run" in err and err.count("\n") == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["thesis"]  # nothing staged left


def test_rerun_replaces_a_previous_run(tmp_path: Path) -> None:
    out = tmp_path / "run"
    assert (
        main(
            [
                "run",
                str(TINY),
                "--days",
                "1",
                "--out",
                str(out),
                "--no-progress",
                "--broker",
                "none",
            ]
        )
        == 0
    )
    first = (out / "events.jsonl").read_bytes()
    assert (
        main(
            [
                "run",
                str(TINY),
                "--days",
                "2",
                "--out",
                str(out),
                "--no-progress",
                "--broker",
                "none",
            ]
        )
        == 0
    )
    assert len((out / "events.jsonl").read_bytes()) > len(first)


def test_schema_command_prints_json_schema(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["schema", "event"]) == 0
    schema = json.loads(capsys.readouterr().out)
    assert "ebike_detected" in json.dumps(schema)


def test_speed_runs_in_scaled_real_time_with_the_same_events(tmp_path: Path) -> None:
    import time

    fast = tmp_path / "fast"
    paced = tmp_path / "paced"
    assert (
        main(
            [
                "run",
                str(TINY),
                "--days",
                "1",
                "--out",
                str(fast),
                "--no-progress",
                "--broker",
                "none",
            ]
        )
        == 0
    )
    t0 = time.perf_counter()
    argv = [
        "run",
        str(TINY),
        "--days",
        "1",
        "--out",
        str(paced),
        "--speed",
        "432000",
        "--broker",
        "none",
    ]
    assert main([*argv, "--no-progress"]) == 0
    assert time.perf_counter() - t0 >= 0.2  # one simulated day at 432,000x is 0.2 s of wall time
    # in real time every beat is stepped and sent as an event; otherwise beats travel as runs
    assert list(run_traffic(fast)) == list(run_traffic(paced))
    assert (fast / "alerts.jsonl").read_bytes() == (paced / "alerts.jsonl").read_bytes()


def test_validate_knows_every_kind_of_file_pmsim_reads(capsys: pytest.CaptureFixture[str]) -> None:
    seeds = ROOT / "seeds"
    files = [
        seeds / "xinhong.yaml",
        seeds / "rules" / "default.yaml",
        seeds / "rules" / "tests" / "default_test.yaml",
        seeds / "rankings" / "default.yaml",
        seeds / "tune" / "example.yaml",
    ]
    assert main(["validate", *map(str, files)]) == 0
    out = capsys.readouterr().out
    for kind in ("scenario", "rules", "rule tests", "ranking configuration", "search space"):
        assert f": {kind}" in out, kind
