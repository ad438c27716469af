"""Rule files, rule tests, replay and score from the command line (in-process)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sim.commands.cli import main

ROOT = Path(__file__).resolve().parents[3]
DEFAULT = ROOT / "seeds" / "rules" / "default.yaml"
RULE_TESTS = ROOT / "seeds" / "rules" / "tests" / "default_test.yaml"
WRONG = ROOT / "tests" / "data" / "wrong_expectation_test.yaml"
TEXT = DEFAULT.read_text(encoding="utf-8")


def test_shipped_rule_tests_pass(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["rules", "test", str(RULE_TESTS)]) == 0
    out = capsys.readouterr().out
    assert "0 failed" in out and "FAIL" not in out


def test_a_wrong_expectation_fails_with_the_difference_shown(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["rules", "test", str(WRONG)]) == 1
    out = capsys.readouterr().out
    assert "1 passed, 1 failed" in out
    assert "FAIL" in out and "alerts at 18h5m" in out
    assert "expected: (none)" in out
    assert "got:      ebike-in-elevator firing" in out


def broken_rules(tmp_path: Path, old: str, new: str) -> Path:
    assert old in TEXT, old
    p = tmp_path / "rules.yaml"
    p.write_text(TEXT.replace(old, new, 1), encoding="utf-8")
    return p


def line_of(path: Path, marker: str) -> int:
    lines = path.read_text(encoding="utf-8").splitlines()
    return max(i for i, line in enumerate(lines, 1) if marker in line)  # the last one


BAD_RULES = [
    # (old, new, rule id, field, words, marker for the line)
    (
        "condition: {kind: event}\n    severity: warning\n    keep_firing_for: 10m",
        "condition: {kind: sometimes}\n    severity: warning\n    keep_firing_for: 10m",
        "ebike-in-elevator",
        "condition",
        "sometimes",
        "kind: sometimes",
    ),
    (
        "k: 3, within: 7d",
        "k: 3, within: 0s",
        "ebike-repeat-elevator",
        "condition.within",
        "greater than 0",
        "within: 0s",
    ),
    (
        'where: "confidence >= 0.75"',
        'where: "confidance >= 0.75"',
        "ebike-in-elevator",
        "watch[0].where",
        "unknown event field 'confidance'",
        "confidance",
    ),
    (
        'where: "confidence >= 0.75"',
        'where: "confidence >= "',
        "ebike-in-elevator",
        "watch[0].where",
        "expected",
        'confidence >= "',
    ),
    (
        "  - id: door-held-too-long",
        "  - id: ebike-in-elevator",
        "ebike-in-elevator",
        "id",
        "duplicate rule id",
        "- id: ebike-in-elevator\n",
    ),
    (
        "{rule: gateway-offline, equal: [estate]}",
        "{rule: gateway-offline}",
        "device-silent",
        "inhibited_by[0].equal",
        "Field required",
        "{rule: gateway-offline}",
    ),
    (
        "key: [estate, building, floor, device_id]\n    condition:\n      kind: duration",
        "key: [estate, building, elevator, device_id]\n    condition:\n      kind: duration",
        "clutter-lasting",
        "key[2]",
        "'elevator' is not on clutter_detected",
        "key: [estate, building, elevator",
    ),
]


@pytest.mark.parametrize(("old", "new", "rule", "field", "words", "marker"), BAD_RULES)
def test_bad_rule_file_gives_one_line_with_file_rule_and_field(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    old: str,
    new: str,
    rule: str,
    field: str,
    words: str,
    marker: str,
) -> None:
    path = broken_rules(tmp_path, old, new)
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert f"rule {rule!r}: {field}" in err, err
    assert words in err, err
    assert err.startswith(f"pmsim: error: {path}:{line_of(path, marker.strip())}: "), err


def test_threshold_clear_above_raise_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    p = tmp_path / "t.yaml"
    p.write_text(
        "rules:\n"
        "  - id: wide-clutter\n"
        "    watch: [{type: clutter_detected}]\n"
        "    key: [device_id]\n"
        "    condition: {kind: threshold, field: area_share, raise: 0.4, clear: 0.6}\n",
        encoding="utf-8",
    )
    assert main(["validate", str(p)]) == 2
    err = capsys.readouterr().err
    assert f"{p}:5: rule 'wide-clutter': condition.clear: clear level 0.6 is above" in err


def test_bad_rules_on_run_exit_2_before_any_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rules = broken_rules(tmp_path, "k: 3, within: 7d", "k: 1, within: 7d")
    out = tmp_path / "run"
    tiny = ROOT / "seeds" / "tiny.yaml"
    assert main(["run", str(tiny), "--rules", str(rules), "--out", str(out)]) == 2
    assert "rule 'ebike-repeat-elevator': condition.k" in capsys.readouterr().err
    assert not out.exists()


@pytest.fixture(scope="module")
def xinhong_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("x") / "run"
    argv = [
        "run",
        str(ROOT / "seeds" / "xinhong.yaml"),
        "--days",
        "7",
        "--seed",
        "1",
        "--broker",
        "none",
    ]
    assert main([*argv, "--out", str(out), "--no-progress"]) == 0
    return out


def test_every_default_rule_is_scored(xinhong_run: Path) -> None:
    score = json.loads((xinhong_run / "score.json").read_text())
    names = {r["id"] for r in __import__("yaml").safe_load(TEXT)["rules"]}
    assert set(score["rules"]) == names
    for rid, s in score["rules"].items():
        assert s["alerts"] >= 0 and s["incidents"] >= 0, rid
    assert score["rules"]["ebike-in-elevator"]["recall"] > 0.5
    assert score["rules"]["ebike-in-elevator"]["precision"] > 0.5
    assert score["workorders"]["opened"] > 0


def test_replay_with_the_same_rules_is_byte_identical(
    xinhong_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "replay"
    assert main(["replay", str(xinhong_run), "--rules", str(DEFAULT), "--out", str(out)]) == 0
    for name in ("alerts.jsonl", "workorders.jsonl"):
        assert (out / name).read_bytes() == (xinhong_run / name).read_bytes(), name
    assert (
        json.loads((out / "score.json").read_text())["rules"]
        == json.loads((xinhong_run / "score.json").read_text())["rules"]
    )
    assert "Rules scored against the truth" in capsys.readouterr().out


def test_replay_with_a_stricter_threshold_gives_fewer_alerts_and_another_score(
    xinhong_run: Path, tmp_path: Path
) -> None:
    strict = tmp_path / "strict.yaml"
    strict.write_text(
        TEXT.replace(
            "confidence >= 0.8 and floors_spanned >= 3", "confidence >= 0.9 and floors_spanned >= 3"
        ),
        encoding="utf-8",
    )
    out = tmp_path / "replay"
    assert main(["replay", str(xinhong_run), "--rules", str(strict), "--out", str(out)]) == 0
    base = json.loads((xinhong_run / "score.json").read_text())["rules"]["falling-object"]
    new = json.loads((out / "score.json").read_text())["rules"]["falling-object"]
    assert new["alerts"] < base["alerts"]
    assert new != base
    lines = (out / "alerts.jsonl").read_text().splitlines()
    assert len(lines) < len((xinhong_run / "alerts.jsonl").read_text().splitlines())


def test_score_recomputes_the_runs_score(
    xinhong_run: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = json.loads((xinhong_run / "score.json").read_text())["rules"]
    assert main(["score", str(xinhong_run)]) == 0
    after = json.loads((xinhong_run / "score.json").read_text())["rules"]
    assert after == before
    assert "ebike-in-elevator" in capsys.readouterr().out
