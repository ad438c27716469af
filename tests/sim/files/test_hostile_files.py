"""Hostile config files (issue 14, finding 6): every one is refused with one line naming the file,
the line and the field, exit code 2, no traceback, in well under a second and without memory
blowing up; duplicate keys are an error naming both lines."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from sim.commands.cli import main

ROOT = Path(__file__).resolve().parents[3]
TINY = (ROOT / "seeds" / "tiny.yaml").read_text(encoding="utf-8")
RULES = (ROOT / "seeds" / "rules" / "default.yaml").read_text(encoding="utf-8")


def _sub(text: str, pattern: str, repl: str) -> str:
    out, n = re.subn(pattern, repl, text, count=1, flags=re.MULTILINE)
    assert n == 1, pattern
    return out


def refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, *argv: str
) -> tuple[str, float]:
    f = tmp_path / "hostile.yaml"
    f.write_text(text, encoding="utf-8")
    args = [a.replace("FILE", str(f)) for a in argv] or ["validate", str(f)]
    started = time.monotonic()
    assert main(args) == 2
    took = time.monotonic() - started
    err = capsys.readouterr().err
    assert err.startswith("pmsim: error: ") and err.count("\n") == 1, err
    assert "Traceback" not in err
    return err.removeprefix("pmsim: error: ").strip(), took


@pytest.mark.parametrize(
    ("change", "says"),
    [
        # 100 million buildings ran until killed at 2.5 GB
        (
            lambda t: _sub(t, r"\{count: 1, floors: 18", "{count: 100000000, floors: 18"),
            r":22: grids\[0\]\.estates\[0\]\.buildings\[0\]\.count: .*less than or equal to 1000",
        ),
        # within every bound one by one, but a city no machine holds
        (
            lambda t: _sub(
                t,
                r"\{count: 1, floors: 18, units: 2, households_per_floor: 4",
                "{count: 1000, floors: 60, units: 50, households_per_floor: 50",
            ),
            r":\d+: grids: 150,000,024 flats in all .*at most 20,000,000",
        ),
        (lambda t: _sub(t, r"^seed: .*$", "seed: " + "9" * 5001), r":8: seed: number too long"),
        (
            lambda t: _sub(t, r"^seed: .*$", "seed: " + "9" * 40),
            r":8: seed: .*less than or equal to 9223372036854775807",
        ),
        (lambda t: t + "deep: " + "[" * 5000 + "]" * 5000 + "\n", r":\d+: nested deeper than 64"),
        (
            lambda t: t + "deep:\n" + "".join("  " * i + "a:\n" for i in range(1, 5000)),
            r":\d+: nested deeper than 64",
        ),
        (
            lambda t: _sub(t, r"^start: .*$", "start: 2026-02-30"),
            r":6: start: not a date: '2026-02-30' \(day is out of range for month\)",
        ),
        (
            lambda t: _sub(t, r"^seed: .*$", "seed: 1\nseed: 2"),
            r":9: seed: duplicate key \(first at line 8\)",
        ),
        (
            lambda t: (
                "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
                + "".join(
                    f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join([f'*{chr(97 + i)}'] * 10)}]\n"
                    for i in range(9)
                )
            ),
            r": aliases expand to more than 20,000,000 values",
        ),
    ],
)
def test_a_hostile_scenario_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], change: object, says: str
) -> None:
    err, took = refused(tmp_path, capsys, change(TINY))  # type: ignore[operator]
    assert err.startswith(str(tmp_path / "hostile.yaml")), err
    assert re.search(says, err), err
    assert took < 10.0


def test_duplicate_keys_deep_inside_name_both_lines(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = _sub(TINY, r"^(\s+)name: (.*)$", r"\1name: \2\n\1name: again")
    err, _ = refused(tmp_path, capsys, text)
    line = next(i for i, x in enumerate(text.splitlines(), 1) if x.strip() == "name: again")
    assert re.search(
        rf":{line}: [a-z\[\]0-9.]*name: duplicate key \(first at line {line - 1}\)", err
    )


def test_a_yaml_merge_key_is_no_duplicate(tmp_path: Path) -> None:
    """``<<: *base`` then a key of the mapping's own overrides the merged one: YAML, not a slip."""
    text = _sub(TINY, r"- \{count: 1, floors: 18", "- &g {count: 1, floors: 18")
    text = _sub(text, r"- \{count: 1, floors: 6, units: 2,", "- {<<: *g, floors: 6,")
    f = tmp_path / "merge.yaml"
    f.write_text(text, encoding="utf-8")
    assert main(["validate", str(f)]) == 0


def _run_with_rules(tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str) -> str:
    """``pmsim run`` of tiny for a day with the rule file ``text``: the one error line."""
    out = str(tmp_path / "run")
    args = ["run", str(ROOT / "seeds" / "tiny.yaml"), "--rules", "FILE", "--days", "1"]
    err, _ = refused(tmp_path, capsys, text, *args, "--broker", "none", "--out", out)
    return err


@pytest.mark.parametrize(
    ("where", "says"),
    [
        ("confidence >= 1e99999", "number 1e99999 is out of range"),
        ("confidence >= 2", "2 is outside the range of 'confidence' (0 to 1)"),
        ("confidence in [0.5, 7]", "7 is outside the range of 'confidence' (0 to 1)"),
        ("seq > -1", "-1 is outside the range of 'seq'"),
        ("confidence > " + "9" * 500, "number longer than 64 characters"),
    ],
)
def test_a_filter_that_can_never_change_is_refused_naming_rule_and_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], where: str, says: str
) -> None:
    text = _sub(
        RULES,
        r"^(\s+)- \{type: ebike_detected.*$",
        rf'\1- {{type: ebike_detected, where: "{where}"}}',
    )
    err = _run_with_rules(tmp_path, capsys, text)
    assert "rule 'ebike-in-elevator'" in err and "watch[0].where" in err and says in err, err
    assert not (tmp_path / "run").exists()


def test_bounds_are_in_the_json_schemas() -> None:
    import json

    scenario = json.loads((ROOT / "seeds" / "schema" / "scenario.schema.json").read_text())
    group = scenario["$defs"]["BuildingGroup"]["properties"]
    assert group["count"]["maximum"] == 1000
    rules = json.loads((ROOT / "seeds" / "schema" / "rules.schema.json").read_text())
    assert rules["properties"]["rules"]["maxItems"] == 1000
    faults = json.loads((ROOT / "seeds" / "schema" / "faults.schema.json").read_text())
    assert faults["properties"]["faults"]["maxItems"] == 1000


def test_a_rule_file_with_a_duplicate_key_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = _sub(RULES, r"^(\s+)severity: (.*)$", r"\1severity: \2\n\1severity: critical")
    err = _run_with_rules(tmp_path, capsys, text)
    assert "duplicate key (first at line" in err and "severity" in err
