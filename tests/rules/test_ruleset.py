"""Rule files refused before any event is read: pydantic errors for what the schema says, RuleError
(rule id and location) for what only the compiled rule set can check."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from rules.model import RuleFile, parse_duration
from rules.ruleset import RuleError, RuleSet, event_fields


def eb(rid: str = "eb", **kw: Any) -> dict[str, Any]:
    return {
        "id": rid,
        "watch": [{"type": "ebike_detected"}],
        "key": ["device_id"],
        "condition": {"kind": "event"},
        **kw,
    }


def repeat(rid: str = "again", source: str = "eb", **kw: Any) -> dict[str, Any]:
    cond = {"kind": "repeat", "rule": source, "k": 2, "within": "1h"}
    return {"id": rid, "key": ["device_id"], "condition": cond, **kw}


def compile_rules(*rules: dict[str, Any], **top: Any) -> RuleSet:
    return RuleSet(RuleFile.model_validate({"rules": list(rules), **top}))


def rule_error(*rules: dict[str, Any]) -> RuleError:
    with pytest.raises(RuleError) as info:
        compile_rules(*rules)
    return info.value


def schema_error(*rules: dict[str, Any], **top: Any) -> ValidationError:
    with pytest.raises(ValidationError) as info:
        compile_rules(*rules, **top)
    return info.value


# -- a valid file ---------------------------------------------------------------------------------


def test_a_valid_file_compiles_in_order() -> None:
    rs = compile_rules(
        eb(**{"for": "30s", "keep_firing_for": "10m", "cooldown": 90, "active_hours": [22, 6]}),
        repeat(inhibited_by=[{"rule": "eb", "equal": ["estate", "device_id"]}]),
        allowed_lateness="2m",
    )
    assert [r.id for r in rs.rules] == ["eb", "again"]
    assert rs.by_id["again"].index == 1
    assert rs.allowed_lateness == 120.0
    first = rs.rules[0].rule
    assert (first.for_, first.keep_firing_for, first.cooldown) == (30.0, 600.0, 90.0)
    assert first.grace == 600.0
    assert rs.rules[1].watch == ()


def test_aliases_raise_and_clear() -> None:
    cond = {"kind": "threshold", "field": "area_share", "raise": 0.6, "clear": 0.3}
    rs = compile_rules(
        {
            "id": "c",
            "watch": [{"type": "clutter_detected"}],
            "key": ["device_id"],
            "condition": cond,
        }
    )
    compiled = rs.rules[0].rule.condition
    assert (compiled.raise_level, compiled.clear_level, compiled.direction) == (0.6, 0.3, "above")


def test_compiled_filters_and_device_kind() -> None:
    watch = [
        {"type": "ebike_detected", "device_kind": "ebike_blocker", "where": "confidence >= 0.8"}
    ]
    m = compile_rules(eb(watch=watch)).rules[0].watch[0]
    base = {"device_kind": "ebike_blocker", "confidence": 0.9}

    class E:
        def __init__(self, **kw: Any) -> None:
            self.__dict__.update(kw)

    assert m.matches(E(**base)) is True
    assert m.matches(E(**(base | {"confidence": 0.7}))) is False
    assert m.matches(E(**(base | {"device_kind": "gateway"}))) is False


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90s", 90.0), ("10m", 600.0), ("2h", 7200.0), ("1.5d", 129600.0), ("1w", 604800.0),
     ("250ms", 0.25), (" 3 m ", 180.0), (45, 45.0), (2.5, 2.5)],
)  # fmt: skip
def test_parse_duration(text: Any, seconds: float) -> None:
    assert parse_duration(text) == seconds


def test_event_fields_types() -> None:
    fields = event_fields("ebike_detected")
    assert fields["confidence"] == "number"
    assert fields["object_class"] == "string"
    assert fields["floor"] == "number"  # int | None
    assert fields["device_id"] == "string"
    assert "time" not in fields
    assert event_fields("gateway_status")["status"] == "string"


# -- RuleError ------------------------------------------------------------------------------------


def test_duplicate_rule_id() -> None:
    err = rule_error(eb(), eb("other"), eb())
    assert (err.rule_id, err.loc) == ("eb", ("rules", 2, "id"))
    assert "duplicate" in err.message


def test_where_naming_an_unknown_field() -> None:
    watch = [{"type": "heartbeat"}, {"type": "ebike_detected", "where": "speed > 3"}]
    err = rule_error(eb(watch=watch))
    assert (err.rule_id, err.loc) == ("eb", ("rules", 0, "watch", 1, "where"))
    assert "speed" in err.message


def test_where_with_a_syntax_error() -> None:
    err = rule_error(eb(), eb("bad", watch=[{"type": "ebike_detected", "where": "confidence >="}]))
    assert (err.rule_id, err.loc) == ("bad", ("rules", 1, "watch", 0, "where"))


@pytest.mark.parametrize(
    ("cond", "part"),
    [
        ({"kind": "duration", "stop": [{"type": "clutter_cleared", "where": "nope"}], "at_least": 9}, "stop"),
        ({"kind": "sequence", "then": [{"type": "clutter_cleared", "where": "nope"}], "within": 9}, "then"),
    ],
)  # fmt: skip
def test_where_error_in_a_stop_or_then_filter_points_at_it(cond: dict, part: str) -> None:
    rule = {
        "id": "c",
        "watch": [{"type": "clutter_detected"}],
        "key": ["device_id"],
        "condition": cond,
    }
    err = rule_error(rule)
    assert err.rule_id == "c"
    assert err.loc == ("rules", 0, "condition", part, 0, "where")


def test_key_field_not_on_the_watched_event_type() -> None:
    err = rule_error(eb(key=["device_id", "clip_id"]))
    assert (err.rule_id, err.loc) == ("eb", ("rules", 0, "key", 1))
    assert "clip_id" in err.message and "ebike_detected" in err.message


def test_key_field_must_also_be_on_stop_events() -> None:
    cond = {"kind": "duration", "stop": [{"type": "door_released"}], "at_least": 60}
    err = rule_error(eb(key=["object_class"], condition=cond))
    assert err.loc == ("rules", 0, "key", 0)
    assert "door_released" in err.message


def test_threshold_clear_above_raise() -> None:
    cond = {"kind": "threshold", "field": "confidence", "raise": 0.5, "clear": 0.6}
    err = rule_error(eb(condition=cond))
    assert (err.rule_id, err.loc) == ("eb", ("rules", 0, "condition", "clear"))
    below = cond | {"direction": "below", "raise": 0.6, "clear": 0.5}
    assert rule_error(eb(condition=below)).loc == ("rules", 0, "condition", "clear")
    compile_rules(eb(condition=cond | {"clear": 0.5}))  # equal levels are allowed


def test_threshold_field_must_be_a_number() -> None:
    cond = {"kind": "threshold", "field": "object_class", "raise": 1, "clear": 0}
    assert rule_error(eb(condition=cond)).loc == ("rules", 0, "condition", "field")


def test_inhibition_naming_an_unknown_rule() -> None:
    err = rule_error(eb(inhibited_by=[{"rule": "nope", "equal": ["device_id"]}]))
    assert (err.rule_id, err.loc) == ("eb", ("rules", 0, "inhibited_by", 0, "rule"))
    assert "nope" in err.message


def test_inhibition_by_itself() -> None:
    err = rule_error(eb(inhibited_by=[{"rule": "eb", "equal": ["device_id"]}]))
    assert err.loc == ("rules", 0, "inhibited_by", 0, "rule")


def test_inhibition_equal_label_missing_on_one_side() -> None:
    src = eb("src", key=["building"])
    target = eb(inhibited_by=[{"rule": "src", "equal": ["estate", "device_id"]}])
    err = rule_error(src, target)
    assert (err.rule_id, err.loc) == ("eb", ("rules", 1, "inhibited_by", 0, "equal"))
    assert "device_id" in err.message


def test_repeat_naming_an_unknown_rule() -> None:
    err = rule_error(eb(), repeat(source="nope"))
    assert (err.rule_id, err.loc) == ("again", ("rules", 1, "condition", "rule"))
    assert rule_error(eb(), repeat(source="again")).loc == ("rules", 1, "condition", "rule")


def test_repeat_with_watch() -> None:
    err = rule_error(eb(), repeat(watch=[{"type": "ebike_detected"}]))
    assert (err.rule_id, err.loc) == ("again", ("rules", 1, "watch"))


def test_repeat_key_must_be_a_source_label() -> None:
    err = rule_error(eb(), repeat(key=["estate", "building"]))
    assert (err.rule_id, err.loc) == ("again", ("rules", 1, "key", 1))


def test_a_non_repeat_rule_without_watch() -> None:
    err = rule_error(eb(), eb("blind", watch=[]))
    assert (err.rule_id, err.loc) == ("blind", ("rules", 1, "watch"))


def test_empty_active_hours() -> None:
    assert rule_error(eb(active_hours=[7, 7])).loc == ("rules", 0, "active_hours")


# -- pydantic -------------------------------------------------------------------------------------


def locs(err: ValidationError) -> list[tuple[Any, ...]]:
    return [tuple(e["loc"]) for e in err.errors()]


def test_unknown_condition_kind() -> None:
    err = schema_error(eb(condition={"kind": "rate"}))
    assert err.errors()[0]["type"] == "union_tag_invalid"
    assert locs(err) == [("rules", 0, "condition")]


def test_zero_window() -> None:
    err = schema_error(eb(condition={"kind": "count", "n": 2, "window": "0s"}))
    assert locs(err) == [("rules", 0, "condition", "count", "window")]


def test_inhibition_without_equal() -> None:
    err = schema_error(eb("src"), eb(inhibited_by=[{"rule": "src"}]))
    assert locs(err) == [("rules", 1, "inhibited_by", 0, "equal")]
    schema_error(eb("src"), eb(inhibited_by=[{"rule": "src", "equal": []}]))


@pytest.mark.parametrize("field", ["cooldown", "keep_firing_for", "for", "grace"])
def test_negative_duration(field: str) -> None:
    err = schema_error(eb(**{field: -5}))
    assert err.errors()[0]["loc"][:2] == ("rules", 0)


@pytest.mark.parametrize("bad", ["10 minutes", "m10", "10", "-5m", "", True])
def test_bad_duration(bad: Any) -> None:
    err = schema_error(eb(cooldown=bad))
    assert locs(err) == [("rules", 0, "cooldown")]


def test_other_schema_errors() -> None:
    schema_error(eb(extra_field=1))
    schema_error(eb("Bad Id"))
    schema_error(eb(key=[]))
    schema_error(eb(watch=[{"type": "teleport"}]))
    schema_error(eb(active_hours=[8, 25]))
    schema_error(repeat(condition={"kind": "repeat", "rule": "eb", "k": 1, "within": 60}))
    schema_error(eb(), version=2)
    with pytest.raises(ValidationError):
        RuleFile.model_validate({"rules": []})
