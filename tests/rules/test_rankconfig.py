"""The ranking configuration: the shipped file and schema, and every bad input named by its field."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from rules.rankconfig import INDICATOR_NAMES, RankConfig, RankConfigError, check_config

SEEDS = Path(__file__).resolve().parents[2] / "seeds"


def make(**over: Any) -> RankConfig:
    base: dict[str, Any] = {"indicators": {"falling_objects": {"weight": 1}}}
    base.update(over)
    return RankConfig.model_validate(base)


def test_default_file_validates_and_uses_the_whole_vocabulary() -> None:
    raw = yaml.safe_load((SEEDS / "rankings" / "default.yaml").read_text(encoding="utf-8"))
    cfg = RankConfig.model_validate(raw)
    assert tuple(cfg.indicators) == INDICATOR_NAMES
    assert cfg.periods == ["month", "quarter", "half"]
    assert cfg.evidence == 0.8 and cfg.draws == 2000
    assert [v.indicator for v in cfg.vetoes] == ["repeat_unhandled"]
    assert cfg.direction("device_uptime") == "higher_better"
    assert cfg.direction("falling_objects") == "lower_better"
    assert [cfg.band(s) for s in (95, 90, 85, 70, 69.99, 0)] == ["A", "A", "B", "C", "D", "D"]


def test_shipped_json_schema_is_current() -> None:
    shipped = json.loads((SEEDS / "schema" / "rankings.schema.json").read_text(encoding="utf-8"))
    assert shipped == RankConfig.model_json_schema()


def test_defaults_and_direction_override() -> None:
    cfg = make(indicators={"reopens": {"weight": 1, "direction": "higher_better"}})
    assert cfg.direction("reopens") == "higher_better"
    assert cfg.list_size == 3 and cfg.seed == 0 and cfg.min_coverage == 0.5
    assert [b.name for b in cfg.bands] == ["A", "B", "C", "D"]


@pytest.mark.parametrize(
    ("over", "words"),
    [
        ({"indicators": {"noise_complaints": {"weight": 1}}}, "falling_objects"),
        ({"indicators": {"falling_objects": {"weight": -1}}}, "greater than or equal to 0"),
        ({"indicators": {"falling_objects": {"weight": 0}}}, "positive weight"),
        ({"indicators": {}}, "at least 1"),
        ({"indicators": {"falling_objects": {"weight": 1, "sign": 1}}}, "Extra inputs"),
        ({"periods": ["month", "week"]}, "'quarter'"),
        ({"periods": ["month", "month"]}, "at most once"),
        ({"list_size": 0}, "greater than or equal to 1"),
        ({"evidence": 0.5}, "greater than 0.5"),
        ({"draws": 10}, "greater than or equal to 200"),
        ({"bands": [{"name": "A", "min": 70}, {"name": "B", "min": 80}]}, "strictly lower"),
        ({"bands": [{"name": "A", "min": 90}, {"name": "B", "min": 50}]}, "min: 0"),
        ({"bands": [{"name": "A", "min": 90}, {"name": "A", "min": 0}]}, "unique"),
        ({"vetoes": [{"indicator": "reopens", "above": 1}]}, "not among the configured"),
        ({"vetoes": [{"indicator": "falling_objects"}]}, "exactly one"),
        ({"vetoes": [{"indicator": "falling_objects", "above": 1, "below": 0}]}, "exactly one"),
        ({"vetoes": [{"indicator": "falling_objects", "above": 1, "cap": 120}]}, "100"),
        ({"zero_at": 1}, "greater than 1"),
        ({"version": 2}, "1"),
    ],
)
def test_bad_configs_are_refused(over: dict[str, Any], words: str) -> None:
    with pytest.raises(ValidationError) as err:
        make(**over)
    assert words in str(err.value)


def test_unknown_indicator_error_names_the_field() -> None:
    with pytest.raises(ValidationError) as err:
        make(indicators={"falling_objects": {"weight": 1}, "noise": {"weight": 1}})
    (e,) = err.value.errors()
    assert e["loc"] == ("indicators", "noise", "[key]")


def test_check_config_accepts_a_fitting_run() -> None:
    cfg = make(list_size=3)
    check_config(cfg, run_days=183)
    check_config(cfg, 183, "half", start=date(2026, 3, 2))


def test_the_size_of_the_district_is_never_an_error() -> None:
    """A small district gets shorter lists (list_length), never a refused configuration."""
    cfg = make(list_size=5)
    check_config(cfg, 90, "month", start=date(2026, 3, 1))
    assert [cfg.list_length(n) for n in (1, 2, 4, 9, 20, 30)] == [0, 1, 1, 2, 5, 5]


def test_one_coverage_rule_and_no_length_rule() -> None:
    """A half-year covered at least half by a 92-day run is ranked: no separate check that the
    run is as long as a half-year."""
    cfg = make(periods=["month", "half"])
    check_config(cfg, 92, start=date(2026, 3, 2))
    check_config(cfg, 92, "half", start=date(2026, 3, 2))
    with pytest.raises(RankConfigError) as err:
        check_config(cfg, 89, "half", start=date(2026, 3, 2))  # 89 of 181 days: under half
    assert err.value.loc == ("periods", 1)
    assert "no calendar half has at least 50% of its days" in err.value.message


def test_no_period_covered_enough() -> None:
    cfg = make(periods=["month"], min_coverage=1.0)
    with pytest.raises(RankConfigError, match="no calendar month has at least 100%"):
        check_config(cfg, 31, "month", start=date(2026, 3, 15))
    check_config(make(periods=["month"]), 31, "month", start=date(2026, 3, 15))


def test_a_period_kind_not_configured() -> None:
    with pytest.raises(RankConfigError, match="not among the configured periods") as err:
        check_config(make(periods=["month"]), 400, "quarter")
    assert err.value.loc == ("periods",)
