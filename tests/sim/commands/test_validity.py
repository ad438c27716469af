"""``pmsim validity``: runs seeds, prints one table and the Done-when lines, writes validity.json;
bad input is one line and exit 2. The figures are checked on hand-made rankings."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from sim.commands.cli import main
from sim.commands.validity import seed_summary, thresholds

ROOT = Path(__file__).resolve().parents[3]
TINY = ROOT / "seeds" / "tiny.yaml"


def test_two_seeds_of_tiny_print_the_table_and_write_validity_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "val"
    argv = ["validity", str(TINY), "--seeds", "1,2", "--days", "2", "--out", str(out)]
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert "pmsim validity: tiny, 2 days, seeds 1, 2" in text
    head = next(line for line in text.splitlines() if "seed 1" in line)
    assert "seed 2" in head and "mean" in head
    for row in ("tau, mean over months", "falling_objects (weight", "ever black-listed"):
        assert row in text
    assert "Done when (issue 13):" in text
    assert "half-year tau >= 0.85: not measured (no half-year ranked in 2 days)" in text
    assert "diligence >= 0.75 on a black list: met (0 estates)" in text
    doc = json.loads((out / "validity.json").read_text(encoding="utf-8"))
    assert doc["seeds"] == [1, 2] and doc["days"] == 2
    assert [s["seed"] for s in doc["per_seed"]] == [1, 2] and len(doc["thresholds"]) == 4
    assert (out / "seed-1" / "rankings.json").exists() and (out / "seed-2" / "report.html").exists()
    # a second measurement into the same folder replaces it; two processes give the same figures
    assert main([*argv, "--jobs", "2"]) == 0
    again = json.loads((out / "validity.json").read_text(encoding="utf-8"))
    assert again["per_seed"] == doc["per_seed"]


@pytest.mark.parametrize(
    ("extra", "words"),
    [
        (["--seeds", "1,x"], "--seeds 1,x: comma-separated"),
        (["--seeds", "1,1"], "each seed at most once"),
        (["--jobs", "0"], "--jobs 0"),
        (["--days", "0"], "--days 0"),
        (["--rank-config", "BADRANK"], "bad.yaml"),
        (["--rules", "MISSING"], "nothing.yaml"),
        (["--out", "NOTOURS"], "not a pmsim validity"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str], words: str
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: 1\nindicators: {falling_objects: {weight: -1}}\n", encoding="utf-8")
    ours = tmp_path / "ours"
    ours.mkdir()
    (ours / "keep.txt").write_text("mine", encoding="utf-8")
    sub = {"BADRANK": str(bad), "MISSING": str(tmp_path / "nothing.yaml"), "NOTOURS": str(ours)}
    extra = [sub.get(x, x) for x in extra]
    assert main(["validity", str(TINY), "--out", str(tmp_path / "v"), *extra]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("pmsim: error: ") and words in err
    assert (ours / "keep.txt").exists() and not (tmp_path / "v").exists()


def period(pid: str, kind: str, tau: float | None, **more: Any) -> dict[str, Any]:
    ind = more.get("indicators", {"a": (20.0, 0.5), "b": (10.0, -0.2), "c": (5.0, -1.0)})
    return {
        "period": {"id": pid, "kind": kind},
        "validity": {
            "kendall_tau": tau,
            "indicators": {n: {"weight": w, "kendall_tau": t} for n, (w, t) in ind.items()},
            "estate_spearman": more.get("rho"),
            "stability": more.get("stability"),
            "diligent_black_listed": more.get("diligent", []),
        },
    }


def rankings(m1: float, m2: float, half: float | None, diligent: bool = False) -> dict[str, Any]:
    stab = {"red_jaccard": 0.5, "black_jaccard": None, "score_spearman": 0.8}
    bad = [{"estate": "e9", "company": "best", "diligence": 0.9}] if diligent else []
    periods = [
        period("run", "run", 0.7, diligent=bad),
        period("2026-02", "month", m2, rho=0.4, stability=stab, diligent=bad),
        period("2026-01", "month", m1, rho=0.6),
        period("2026-Q1", "quarter", 0.8),
    ]
    if half is not None:
        periods.append(period("2026-H1", "half", half))
    return {"periods": periods}


def test_seed_summary_on_known_figures() -> None:
    s = seed_summary(7, rankings(0.6, 1.0, 0.9, diligent=True))
    assert s["months"] == 2 and s["mean_month_tau"] == 0.8 and s["min_month_tau"] == 0.6
    assert s["month_taus"] == {"2026-01": 0.6, "2026-02": 1.0}
    assert s["quarter_taus"] == {"2026-Q1": 0.8} and s["half_taus"] == {"2026-H1": 0.9}
    assert s["run_tau"] == 0.7 and s["mean_estate_spearman"] == 0.5
    assert s["indicators"]["b"] == {"weight": 10.0, "mean_month_tau": -0.2, "months": 2}
    assert s["month_stability"] == {
        "pairs": 1,
        "red_jaccard": 0.5,
        "black_jaccard": None,
        "score_spearman": 0.8,
    }
    assert s["diligent_black_listed"] == [
        {"estate": "e9", "company": "best", "diligence": 0.9, "periods": ["run", "2026-02"]}
    ]


def test_thresholds_met_not_met_and_not_measured() -> None:
    good = {"a": (20.0, 0.5), "b": (10.0, 0.1), "c": (5.0, -1.0)}  # c weighs too little to count
    ok = rankings(0.8, 0.9, 0.9)
    for p in ok["periods"]:
        p["validity"]["indicators"] = {
            n: {"weight": w, "kendall_tau": t} for n, (w, t) in good.items()
        }
    checks = thresholds([seed_summary(1, ok), seed_summary(2, ok)], 183)
    assert [c["status"] for c in checks] == ["met"] * 4
    assert checks[0]["value"] == "seed 1 0.85, seed 2 0.85"

    low = [seed_summary(1, rankings(0.6, 0.9, 0.8, diligent=True)), seed_summary(2, ok)]
    checks = thresholds(low, 183)
    assert [c["status"] for c in checks] == ["not met"] * 4
    assert "b -0.05" in checks[2]["value"]  # (-0.2 + 0.1) / 2 over the seeds
    assert checks[3]["value"] == "1 estates: seed 1 e9 (best 0.9)"

    # a seed that fails decides, even when another could not be measured
    none = seed_summary(3, rankings(0.9, 0.9, None))
    none["mean_month_tau"] = None
    mixed = thresholds([none, seed_summary(1, rankings(0.1, 0.2, 0.9))], 183)
    assert mixed[0]["status"] == "not met" and mixed[1]["status"] == "met"
    assert thresholds([none, seed_summary(2, ok)], 183)[0]["status"] == "not measured"

    short = thresholds([seed_summary(1, rankings(0.9, 0.9, None))], 60)
    assert short[1] == {
        "what": "half-year tau >= 0.85",
        "met": None,
        "status": "not measured",
        "value": "no half-year ranked in 60 days",
    }
