"""``pmsim scenario generate``, called in-process: what a user types and sees."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sim.commands.cli import main


def generate(out: Path, *more: str, districts: int = 2, estates: int = 12, seed: int = 1) -> int:
    return main(
        [
            "scenario",
            "generate",
            "--districts",
            str(districts),
            "--estates",
            str(estates),
            "--seed",
            str(seed),
            "--out",
            str(out),
            *more,
        ]
    )


def test_generate_writes_the_same_file_every_time_and_it_validates(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert generate(tmp_path / "a.yaml") == 0
    said = capsys.readouterr().out
    assert said.startswith(f"wrote {tmp_path / 'a.yaml'}: 2 districts,") and "12 estates" in said
    assert generate(tmp_path / "b.yaml") == 0
    assert generate(tmp_path / "c.yaml", seed=2) == 0
    a, b, c = ((tmp_path / f"{x}.yaml").read_bytes() for x in "abc")
    assert a == b and a != c
    assert main(["validate", str(tmp_path / "a.yaml")]) == 0
    assert "scenario city-d2-e12, 12 estates, 2 companies" in capsys.readouterr().out
    main(["scenario", "generate", "--districts", "2", "--estates", "12", "--seed", "1"])
    assert capsys.readouterr().out.encode("utf-8") == a  # without --out: the file on stdout


def test_a_generated_city_runs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    city = tmp_path / "city.yaml"
    assert generate(city, "--days", "2", "--companies", "3") == 0
    out = tmp_path / "run"
    argv = ["run", str(city), "--broker", "none", "--out", str(out), "--no-progress"]
    assert main(argv) == 0
    assert "Red and black lists" in capsys.readouterr().out
    assert sum(1 for _ in (out / "events.jsonl").open(encoding="utf-8")) > 0
    placed = json.loads((out / "estates.json").read_text(encoding="utf-8"))
    assert len(placed) == 12
    assert {e["grid"][:3] for e in placed} == {"d01", "d02"}
    assert len({e["company"] for e in placed}) == 3
    assert any(e["devices"] for e in placed)
    rankings = json.loads((out / "rankings.json").read_text(encoding="utf-8"))
    ranked = {e["estate"] for e in rankings["periods"][0]["estates"]}
    assert ranked == {e["id"] for e in placed}


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--districts", "2", "--estates", "20001"], "--estates 20001: at most 20000"),
        (["--districts", "0", "--estates", "12"], "--districts 0: must be at least 1"),
        (["--districts", "5", "--estates", "3"], "--estates 3: at least one per district (5)"),
        (["--companies", "13"], "--companies 13: from 1 to the number of estates (12)"),
        (["--companies", "0"], "--companies 0: from 1 to the number of estates (12)"),
        (["--days", "0"], "--days 0: must be at least 1"),
        (["--seed", "-1"], "--seed -1: must be at least 0"),
        (["--start", "2026-02-30"], "'2026-02-30' is not a date (YYYY-MM-DD)"),
        (["--estates", "many"], "argument --estates: invalid int value: 'many'"),
    ],
)
def test_absurd_arguments_exit_2_with_one_line_and_write_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    base = {"--districts": "2", "--estates": "12", "--seed": "1"}
    args = dict(base)
    extra: list[str] = []
    for flag, value in zip(argv[::2], argv[1::2], strict=True):
        if flag in base:
            args[flag] = value
        else:
            extra += [flag, value]
    out = tmp_path / "city.yaml"
    flat = [x for kv in args.items() for x in kv]
    assert main(["scenario", "generate", *flat, *extra, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("pmsim: error: ") and message in err
    assert not out.exists()


def test_missing_seed_and_an_unwritable_out_are_one_line_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["scenario", "generate", "--districts", "1", "--estates", "3"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--seed" in err
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    assert generate(blocker / "city.yaml") == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(
        f"pmsim: error: {blocker / 'city.yaml'}: cannot write"
    )
