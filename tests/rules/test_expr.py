"""The rule filter language: operators, precedence, literals, null handling, errors, limits, safety."""

from __future__ import annotations

import ast
import builtins
import dataclasses
import itertools
import operator
import pickle
from collections.abc import Callable, Mapping
from fractions import Fraction
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

import rules.expr as expr_module
import rules.exprlex as exprlex_module
import rules.exprnodes as exprnodes_module
from rules.expr import Expr, ExprError, FieldType, compile_expr

FIELDS: dict[str, FieldType] = {
    "area_share": "number",
    "code": "string",
    "confidence": "number",
    "daylight": "bool",
    "floor": "number",
    "held_seconds": "number",
    "object_class": "string",
}
KNOWN = "area_share, code, confidence, daylight, floor, held_seconds, object_class"
EVENT: dict[str, Any] = {
    "area_share": 0.5,
    "code": "lens",
    "confidence": 0.9,
    "daylight": True,
    "floor": 2,
    "held_seconds": 130.0,
    "object_class": "ebike",
}


def run(text: str, values: Mapping[str, Any] = EVENT) -> bool:
    return compile_expr(text, FIELDS)(values)


def error(text: str) -> ExprError:
    with pytest.raises(ExprError) as info:
        compile_expr(text, FIELDS)
    return info.value


# -- evaluation -----------------------------------------------------------------------------------


def test_the_examples_from_the_rules_issue() -> None:
    ebike = compile_expr('confidence >= 0.8 and object_class == "ebike"', FIELDS)
    assert ebike({"confidence": 0.85, "object_class": "ebike"}) is True
    assert ebike({"confidence": 0.75, "object_class": "ebike"}) is False
    assert ebike({"confidence": 0.95, "object_class": "ebike_covered"}) is False

    clutter = compile_expr("floor in [1, 2, 3] and not (area_share < 0.3)", FIELDS)
    assert clutter({"floor": 2, "area_share": 0.3}) is True
    assert clutter({"floor": 2, "area_share": 0.29}) is False
    assert clutter({"floor": 4, "area_share": 0.9}) is False


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("floor == 2", True),
        ("floor == 3", False),
        ("floor == 2.0", True),  # ints and floats are both numbers
        ("floor != 3", True),
        ("floor != 2", False),
        ("confidence < 0.95", True),
        ("confidence < 0.9", False),
        ("confidence <= 0.9", True),
        ("confidence <= 0.89", False),
        ("confidence > 0.89", True),
        ("confidence > 0.9", False),
        ("confidence >= 0.9", True),
        ("confidence >= 0.91", False),
        ('object_class == "ebike"', True),
        ('object_class == "ebike_covered"', False),
        ('object_class != "ebike_covered"', True),
        ('object_class != "ebike"', False),
        ("daylight == true", True),
        ("daylight == false", False),
        ("daylight != false", True),
        ("floor in [1, 2, 3]", True),
        ("floor in [4, 5]", False),
        ("floor not in [4, 5]", True),
        ("floor not in [1, 2]", False),
        ('object_class in ["ebike", "ebike_covered"]', True),
        ('object_class in ["scooter"]', False),
        ('code not in ["lens", "ir"]', False),
        ("daylight in [true]", True),
        ("daylight not in [true]", False),
        ("floor in []", False),
        ("floor not in []", True),
        ("floor in [2.0]", True),
        ("daylight", True),
        ("not daylight", False),
        ("true", True),
        ("false", False),
        ("not false", True),
        ("floor == 2 and confidence > 0.5", True),
        ("floor == 2 and confidence > 0.95", False),
        ("floor == 3 or confidence > 0.5", True),
        ("floor == 3 or confidence > 0.95", False),
        ("floor == 2 and daylight and code == 'lens' and held_seconds > 120", True),
        ("floor == 9 or not daylight or code == 'x' or held_seconds > 999", False),
    ],
)
def test_each_operator_true_and_false(text: str, expected: bool) -> None:
    assert run(text) is expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1 < 2", True),
        ("2 <= 1", False),
        ("1 == 1.0", True),
        ('"a" == "a"', True),
        ("'a' != \"a\"", False),
        ("true != false", True),
        ("null == null", True),
        ("null != null", False),
        ("1 == null", False),
        ("3 in [1, 2, 3]", True),
        ('"z" not in ["a"]', True),
        ("(1 < 2) == true", True),
    ],
)
def test_comparing_literals_is_allowed(text: str, expected: bool) -> None:
    expr = compile_expr(text, FIELDS)
    assert expr({}) is expected
    assert expr.fields == frozenset({"floor"} if "floor" in text else set())


BOOLS: dict[str, FieldType] = {"a": "bool", "b": "bool", "c": "bool"}
COMBOS = [
    dict(zip("abc", bits, strict=True)) for bits in itertools.product([False, True], repeat=3)
]


def test_precedence_not_binds_tighter_than_and_tighter_than_or() -> None:
    expr = compile_expr("not a or b and c", BOOLS)
    for v in COMBOS:
        assert expr(v) is ((not v["a"]) or (v["b"] and v["c"])), v
    # ...and it really differs from the other readings somewhere
    wrong: list[Callable[[dict[str, bool]], bool]] = [
        lambda v: not (v["a"] or (v["b"] and v["c"])),
        lambda v: ((not v["a"]) or v["b"]) and v["c"],
    ]
    for reading in wrong:
        assert any(expr(v) != reading(v) for v in COMBOS)


def test_parentheses_override_precedence() -> None:
    cases: dict[str, Callable[[dict[str, bool]], bool]] = {
        "(a or b) and c": lambda v: (v["a"] or v["b"]) and v["c"],
        "a or (b and c)": lambda v: v["a"] or (v["b"] and v["c"]),
        "not (a or b)": lambda v: not (v["a"] or v["b"]),
        "not (a and b) or c": lambda v: not (v["a"] and v["b"]) or v["c"],
        "((a))": lambda v: v["a"],
        "not not a": lambda v: v["a"],
        "a and not b and not not c": lambda v: v["a"] and not v["b"] and v["c"],
    }
    for text, reference in cases.items():
        expr = compile_expr(text, BOOLS)
        for v in COMBOS:
            assert expr(v) is reference(v), (text, v)
    assert compile_expr("(a or b) and c", BOOLS)({"a": True, "b": False, "c": False}) is False
    assert compile_expr("a or b and c", BOOLS)({"a": True, "b": False, "c": False}) is True


def test_comparison_binds_tighter_than_not() -> None:
    assert run("not floor == 3") is True
    assert run("not floor in [2]") is False
    assert run("(floor > 1) == (confidence > 0.5)") is True


def test_whitespace_is_free() -> None:
    assert run("floor==2 and(confidence>=0.9)and(daylight)") is True
    assert run("floor>-1") is True
    assert run("\n\tobject_class  in\n[\"ebike\" ,'x']   ") is True


@pytest.mark.parametrize(
    ("text", "value", "expected"),
    [
        ("held_seconds == -1.5e3", -1500.0, True),
        ("held_seconds == -1500", -1500.0, True),
        ("held_seconds == 1E+2", 100, True),
        ("held_seconds == 2.5e-1", 0.25, True),
        ("held_seconds == 25e-2", 0.25, True),
        ("held_seconds == 0.25", 0.25, True),
        ("held_seconds > -1", 0, True),
        ("held_seconds < -0.5", -1, True),
        ("held_seconds < -0.5", 0, False),
        ("held_seconds == -0", 0, True),
        ("held_seconds >= 1e3", 999.9, False),
        ("held_seconds == 12345678901234567890", 12345678901234567890, True),
    ],
)
def test_numbers(text: str, value: float, expected: bool) -> None:
    assert run(text, {"held_seconds": value}) is expected


@pytest.mark.parametrize(
    "text", ["held_seconds > 1e400", "held_seconds < -1e99999", "held_seconds > 2e300"]
)
def test_a_number_beyond_any_measurement_is_refused(text: str) -> None:
    """1e400 is infinity in a float: a filter comparing with it could never change (issue 14)."""
    with pytest.raises(ExprError, match="out of range"):
        compile_expr(text, {"held_seconds": "number"})


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ('code == "lens"', "lens"),
        ("code == 'lens'", "lens"),
        ('code == "it\'s"', "it's"),
        ("code == 'say \"hi\"'", 'say "hi"'),
        (r'code == "a\"b"', 'a"b'),
        (r"code == 'it\'s'", "it's"),
        (r'code == "back\\slash"', "back\\slash"),
        (r"code == 'C:\\dir\\'", "C:\\dir\\"),
        ('code == ""', ""),
        ("code == 'with spaces and and or not'", "with spaces and and or not"),
        ('code == "电梯"', "电梯"),
    ],
)
def test_strings_in_both_quote_styles_with_escapes(text: str, value: str) -> None:
    assert run(text, {"code": value}) is True
    assert run(text, {"code": value + "x"}) is False


@pytest.mark.parametrize("empty", [{}, {"floor": None, "daylight": None}])
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("floor == null", True),
        ("null == floor", True),
        ("floor != null", False),
        ("floor == 1", False),
        ("floor != 1", False),
        ("floor < 1", False),
        ("floor <= 1", False),
        ("floor > 1", False),
        ("floor >= 1", False),
        ("floor in [1, 2]", False),
        ("floor not in [1, 2]", False),
        ("floor in [1, null]", True),
        ("floor not in [1, null]", False),
        ("not (floor == 1)", True),
        ("not (floor != 1)", True),
        ("not floor < 1", True),
        ("not floor not in [1]", True),
        ("daylight", False),
        ("not daylight", True),
        ("daylight == true", False),
        ("daylight == false", False),
        ("floor == held_seconds", False),  # both absent: only the null literal matches null
        ("floor != held_seconds", False),
        ("floor == 1 or floor == null", True),
    ],
)
def test_missing_and_none_values(text: str, expected: bool, empty: dict[str, Any]) -> None:
    assert run(text, empty) is expected


def test_null_tests_on_present_values() -> None:
    assert run("floor == null") is False
    assert run("floor != null") is True
    assert run("floor in [2, null]") is True
    assert run("floor in [1, null]") is False
    assert run("floor not in [1, null]") is True


@pytest.mark.parametrize(
    ("text", "values", "expected"),
    [
        ("floor == 1", {"floor": True}, False),
        ("floor >= 1", {"floor": True}, False),
        ("floor in [1]", {"floor": True}, False),
        ("floor in [0]", {"floor": False}, False),
        ("daylight", {"daylight": 1}, False),
        ("daylight == true", {"daylight": 1}, False),
        ("daylight in [true]", {"daylight": 1}, False),
        ("daylight == true", {"daylight": True}, True),
    ],
)
def test_bools_are_not_numbers(text: str, values: dict[str, Any], expected: bool) -> None:
    assert run(text, values) is expected


@pytest.mark.parametrize(
    "value", ["3", b"3", [3], {"x": 3}, object(), float("nan"), 3j, Fraction(1, 2)]
)
@pytest.mark.parametrize(
    "text",
    [
        "floor == 3",
        "floor != 3",
        "floor > 1",
        "floor < 1",
        "floor in [3]",
        "floor not in [3]",
        "floor == null",
        "floor == held_seconds",
    ],
)
def test_values_of_the_wrong_type_never_raise(text: str, value: object) -> None:
    assert run(text, {"floor": value, "held_seconds": value}) in (True, False)


def test_fractions_count_as_numbers() -> None:
    assert run("floor == 0.5 and floor in [0.5] and floor < 1", {"floor": Fraction(1, 2)}) is True


# -- the Expr object ------------------------------------------------------------------------------


def test_fields_lists_every_field_read_and_only_those() -> None:
    expr = compile_expr(
        'confidence > 0.5 and (floor == 1 or confidence < 0.9) and not object_class in ["x"]',
        FIELDS,
    )
    assert expr.fields == frozenset({"confidence", "floor", "object_class"})
    assert compile_expr("true", FIELDS).fields == frozenset()
    assert compile_expr("daylight", FIELDS).fields == frozenset({"daylight"})


def test_expr_keeps_its_text_and_is_frozen() -> None:
    text = "  floor == 1 "
    expr = compile_expr(text, FIELDS)
    assert isinstance(expr, Expr)
    assert expr.text == text
    with pytest.raises(dataclasses.FrozenInstanceError):
        expr.text = "true"  # type: ignore[misc]
    assert compile_expr(text, FIELDS) == expr
    assert "floor == 1" in repr(expr)


def test_extra_values_are_ignored() -> None:
    assert run("floor == 2", {**EVENT, "unrelated": object()}) is True


def test_field_types_are_validated() -> None:
    with pytest.raises(ValueError, match="expected one of number, string, bool") as info:
        compile_expr("true", {"floor": "int"})  # type: ignore[dict-item]
    assert not isinstance(info.value, ExprError)


# -- ExprError ------------------------------------------------------------------------------------


def test_expr_error_shape() -> None:
    err = ExprError("bad thing", 4)
    assert isinstance(err, ValueError)
    assert (err.message, err.column) == ("bad thing", 4)
    assert str(err) == "bad thing (at column 5)"
    again = pickle.loads(pickle.dumps(err))
    assert (type(again), again.message, again.column, str(again)) == (
        ExprError,
        "bad thing",
        4,
        "bad thing (at column 5)",
    )


def test_unknown_field_names_the_known_ones_sorted() -> None:
    err = error("confidance >= 0.8")
    assert err.message == f"unknown event field 'confidance'; known: {KNOWN}"
    assert err.column == 0
    assert str(err).endswith("(at column 1)")


def test_unknown_field_with_no_fields() -> None:
    with pytest.raises(ExprError, match=r"unknown event field 'x'; known: \(none\)"):
        compile_expr("x == 1", {})


def test_the_leftmost_problem_is_reported() -> None:
    err = error("flor == 1 and code = 'x'")
    assert (err.column, err.message.startswith("unknown event field 'flor'")) == (0, True)


@pytest.mark.parametrize(
    ("text", "column", "fragment"),
    [
        # unknown identifiers
        ("floor == 1 and flor == 2", 15, "unknown event field 'flor'"),
        ("Floor == 1", 0, "unknown event field 'Floor'"),
        ("True", 0, "unknown event field 'True'"),
        ("floor in [1] or ebike", 16, "unknown event field 'ebike'"),
        # empty
        ("", 0, "empty expression"),
        ("   \n ", 0, "empty expression"),
        # unexpected tokens and missing operands
        ("floor ==", 8, "expected a value (field, number, string, true, false, null, list or '(')"),
        ("floor == 1 and", 14, "expected a value"),
        ("and floor == 1", 0, "expected a value"),
        ("floor == == 1", 9, "expected a value"),
        ("floor == )", 9, "expected a value"),
        ("floor == 1 or or daylight", 14, "expected a value"),
        ("not", 3, "got end of expression"),
        ("floor = 1", 6, "use '==' to compare"),
        ("!daylight", 0, "use '!=' or 'not'"),
        ("floor @ 1", 6, "unexpected character '@'"),
        ("floor == 1 ; daylight", 11, "unexpected character ';'"),
        ("- 1 < floor", 0, "'-' must be followed directly by a digit"),
        ("floor not 3", 10, "expected 'in' after 'not'"),
        ("1 < 2 < 3", 6, "comparisons cannot be chained"),
        ("floor == 1 != true", 11, "comparisons cannot be chained"),
        ("floor == 1 in [true]", 11, "comparisons cannot be chained"),
        # malformed numbers
        ("floor == 1.", 10, "expected a digit after '.'"),
        ("floor == 1.x", 11, "expected a digit after '.'"),
        ("floor == 1e+", 11, "expected a digit in the exponent"),
        ("floor == 1.5.3", 12, "malformed number"),
        ("floor == 12abc", 11, "malformed number"),
        # unclosed things and trailing input
        ("(floor == 1", 0, "unclosed '(': expected ')'"),
        ("((floor == 1)", 0, "unclosed '('"),
        ("(floor == 1 floor)", 12, "expected ')'"),
        ("floor in [1, 2", 9, "unclosed '[': expected ']'"),
        ("floor in [1,", 9, "unclosed '['"),
        ("floor in [", 9, "unclosed '['"),
        ('code == "abc', 8, 'unclosed string: expected a closing "'),
        ("code == 'abc\\'", 8, "unclosed string: expected a closing '"),
        ("floor == 1)", 10, "unmatched ')'"),
        (
            "floor == 1 floor",
            11,
            "expected 'and', 'or' or end of expression, got identifier 'floor'",
        ),
        ("daylight true", 9, "expected 'and', 'or' or end of expression"),
        # list syntax
        ("floor in [1,]", 12, "expected a list element"),
        ("floor in [,]", 10, "expected a list element"),
        ("floor in [1 2]", 12, "expected ',' or ']' in list"),
        ("floor in [floor]", 10, "expected a list element"),
        ("floor in [[1]]", 10, "expected a list element"),
        ("floor in [(1)]", 10, "expected a list element"),
        # string escapes
        (r'code == "a\nb"', 10, "invalid escape"),
        (r'''code == "\'"''', 9, "invalid escape"),
        ('code == "abc\\', 12, "invalid escape"),
    ],
)
def test_syntax_errors(text: str, column: int, fragment: str) -> None:
    err = error(text)
    assert fragment in err.message
    assert err.column == column, err


@pytest.mark.parametrize(
    ("text", "column", "fragment"),
    [
        # ordering needs numbers on both sides
        ('object_class > "a"', 0, "'>' compares numbers only, got string field 'object_class'"),
        ('floor < "3"', 8, "'<' compares numbers only, got a string"),
        ("daylight >= 1", 0, "'>=' compares numbers only, got bool field 'daylight'"),
        ("floor <= null", 9, "compares numbers only, got null"),
        ("(floor > 1) < 2", 1, "compares numbers only, got a condition"),
        ("'a' < 'b'", 0, "compares numbers only"),
        # == and != need the same type, or null
        ('confidence == "high"', 14, "'==' needs the same type on both sides"),
        ("object_class != 3", 16, "'!=' needs the same type"),
        ("daylight == 1", 12, "bool field 'daylight' vs a number"),
        ("floor == code", 9, "number field 'floor' vs string field 'code'"),
        ("1 == 'a'", 5, "same type"),
        ("(floor > 1) == 1", 15, "a condition vs a number"),
        # in / not in
        ('floor in ["1", "2"]', 10, "list element is a string but 'in' needs number elements"),
        ('floor not in [1, "2"]', 17, "'not in' needs number elements"),
        ('"a" in ["a", 1]', 13, "list element is a number"),
        ("null in [1, 'a']", 12, "list element is a string"),
        ("daylight in [1]", 13, "list element is a number"),
        ("floor in 3", 9, "needs a list literal like [1, 2] on its right, got a number"),
        ("floor in floor", 9, "got number field 'floor'"),
        ("floor not in null", 13, "got null"),
        (
            "(floor > 1) in [true]",
            1,
            "'in' needs a field or a literal on its left, got a condition",
        ),
        ("[1] in [1]", 0, "got a list"),
        # lists anywhere else
        ("[1, 2] == floor", 0, "a list can only appear on the right of 'in'"),
        ("floor == [1]", 9, "a list can only appear on the right"),
        ("[true]", 0, "a list is not a condition"),
        # operands used as conditions
        ("confidence", 0, "number field 'confidence' is not a condition"),
        ("confidence", 0, "e.g. confidence > 0"),
        ("object_class", 0, "string field 'object_class' is not a condition"),
        ("null", 0, "null is not a condition"),
        ("1", 0, "a number is not a condition"),
        ('"ebike"', 0, "a string is not a condition"),
        ("(floor)", 1, "not a condition"),
        ("not floor", 4, "not a condition"),
        ("floor == 1 and confidence", 15, "not a condition"),
        ("confidence or daylight", 0, "not a condition"),
        ("daylight and not code", 17, "not a condition"),
    ],
)
def test_type_errors(text: str, column: int, fragment: str) -> None:
    err = error(text)
    assert fragment in err.message
    assert err.column == column, err


# -- limits ---------------------------------------------------------------------------------------


def test_text_length_limit() -> None:
    longest = "floor == 1" + " " * 990
    assert len(longest) == 1000
    assert compile_expr(longest, FIELDS)({"floor": 1}) is True
    err = error(longest + " ")
    assert (err.column, err.message) == (1000, "filter longer than 1000 characters")


def test_nesting_limit_for_parentheses() -> None:
    assert run("(" * 32 + "daylight" + ")" * 32) is True
    err = error("(" * 33 + "daylight" + ")" * 33)
    assert (err.column, err.message) == (32, "expression nested deeper than 32 levels")


def test_nesting_limit_for_not_and_mixed() -> None:
    assert run("not " * 32 + "daylight") is True  # an even number of nots
    err = error("not " * 33 + "daylight")
    assert err.column == 4 * 32
    assert "nested deeper than 32" in err.message
    mixed = "not (" * 16 + "daylight" + ")" * 16
    assert run(mixed) is True
    err = error("(" + mixed + ")")
    assert err.column == 1 + 5 * 16 - 1  # the 33rd level is the last '('


def test_long_flat_chains_are_not_nesting() -> None:
    text = " and ".join(["daylight"] * 70)
    assert len(text) <= 1000
    assert run(text) is True
    assert run(" or ".join(["floor == 9"] * 60) + " or floor == 2") is True


def test_list_length_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    # 1000 characters hold at most ~500 list elements, so the list limit needs a longer text.
    monkeypatch.setattr(expr_module, "MAX_TEXT_LENGTH", 10_000)
    ok = "floor in [" + ",".join(["1"] * 999 + ["2"]) + "]"
    assert run(ok) is True
    text = "floor in [" + ",".join(["1"] * 1000 + ["2"]) + "]"
    err = error(text)
    assert err.message == "list longer than 1000 elements"
    assert err.column == text.rindex("2")


# -- safety ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "__import__('os').system('x')",
        "().__class__",
        "().__class__.__bases__[0].__subclasses__()",
        "floor.__class__",
        "floor == 1 or __import__('os').system('x')",
        "floor == 1; import os",
        "eval('1') == 1",
        "exec('x')",
        "open('/etc/passwd')",
        "lambda: True",
        "[c for c in ()]",
        "{}",
        "floor + 1 > 2",
        "floor * 2 == 4",
        "f'{floor}' == '2'",
        "'a'.join(['b'])",
        "floor if true else false",
        "code == '\\x41'",
        "globals()",
        "__builtins__",
    ],
)
def test_code_injection_is_a_compile_error(text: str) -> None:
    with pytest.raises(ExprError):
        compile_expr(text, FIELDS)


def test_compiling_and_running_never_touch_eval() -> None:
    calls: list[str] = []

    def forbidden(name: str) -> Callable[..., None]:
        def call(*args: object, **kwargs: object) -> None:
            calls.append(name)
            raise AssertionError(f"{name} called")

        return call

    names = ("eval", "exec", "compile", "__import__")
    saved = [getattr(builtins, name) for name in names] + [ast.literal_eval]
    try:  # patched by hand and restored at once: pytest itself needs these builtins
        for name in names:
            setattr(builtins, name, forbidden(name))
        ast.literal_eval = forbidden("literal_eval")
        expr = compile_expr("floor in [1, 2] and not (code == 'x' or confidence < 0.5)", FIELDS)
        result = expr(EVENT)
    finally:
        for name, original in zip(names, saved, strict=False):
            setattr(builtins, name, original)
        ast.literal_eval = saved[-1]
    assert (result, calls) == (True, [])


@pytest.mark.parametrize("module", [expr_module, exprlex_module, exprnodes_module])
def test_the_module_has_no_eval_like_calls(module: ModuleType) -> None:
    assert module.__file__ is not None
    source = Path(module.__file__).read_text(encoding="utf-8")
    tree = ast.parse(source)
    called = {
        node.func.id
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
    }
    assert called.isdisjoint({"eval", "exec", "compile", "__import__", "getattr"})
    imported = {
        alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in node.names
    }
    assert "ast" not in imported
    attributes = {node.attr for node in ast.walk(tree) if isinstance(node, ast.Attribute)}
    assert attributes.isdisjoint({"literal_eval", "__import__", "__builtins__"})


# -- properties -----------------------------------------------------------------------------------

ODD_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),  # includes nan and infinities
    st.text(max_size=5),
    st.fractions(),
    st.decimals(),
    st.binary(max_size=3),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=2), st.integers(), max_size=2),
)
VALUE_MAPS = st.dictionaries(st.sampled_from(sorted(FIELDS)), ODD_VALUES)
VOCABULARY = [
    *FIELDS,
    *("and", "or", "not", "in", "true", "false", "null"),
    *("==", "!=", "<", "<=", ">", ">=", "(", ")", "[", "]", ","),
    *("0", "-1.5e3", "2", "0.5", "'ebike'", '"lens"', "'a\\'b'", "=", "!", "-", '"', "x"),
]
GRAMMAR_CHARS = "abcdefilnorstu_ ()[],.<>=!\"'\\-+eE0123456789"


@given(
    text=st.one_of(
        st.text(max_size=80),
        st.text(alphabet=GRAMMAR_CHARS, max_size=80),
        st.lists(st.sampled_from(VOCABULARY), max_size=14).map(" ".join),
        st.lists(st.sampled_from(VOCABULARY), max_size=14).map("".join),
    ),
    values=VALUE_MAPS,
)
def test_random_text_only_ever_raises_expr_error(text: str, values: dict[str, Any]) -> None:
    try:
        expr = compile_expr(text, FIELDS)
    except ExprError as err:
        assert 0 <= err.column <= len(text)
        return
    assert expr.fields <= set(FIELDS)
    assert expr(values) in (True, False)


# A generator of well-typed filters with an independent reference of the documented semantics.

Oracle = Callable[[Mapping[str, Any]], Any]


def kind(value: object) -> str | None:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, str):
        return "string"
    if isinstance(value, int | float | Fraction):
        return "number"
    return None


def quote(s: str, q: str) -> str:
    return q + s.replace("\\", "\\\\").replace(q, "\\" + q) + q


NUMBER_LITERALS = st.one_of(
    st.integers(-1000, 1000).map(lambda n: (str(n), n)),
    st.floats(allow_nan=False, allow_infinity=False, width=32).map(lambda x: (repr(x), x)),
    st.sampled_from([("1e3", 1000.0), ("-2.5E-1", -0.25), ("0.5", 0.5)]),
)
STRING_LITERALS = st.tuples(st.text(max_size=6), st.sampled_from(["'", '"'])).map(
    lambda sq: (quote(*sq), sq[0])
)
BOOL_LITERALS = st.sampled_from([("true", True), ("false", False)])


def operand(names: list[str], literals: st.SearchStrategy[tuple[str, Any]]) -> Any:
    fields = st.sampled_from(names).map(lambda n: (n, lambda v, n=n: v.get(n)))
    consts = literals.map(lambda tv: (tv[0], lambda v, c=tv[1]: c))
    return st.one_of(fields, consts)


NUM_OPERAND = operand(["confidence", "floor", "area_share", "held_seconds"], NUMBER_LITERALS)
STR_OPERAND = operand(["object_class", "code"], STRING_LITERALS)
BOOL_OPERAND = operand(["daylight"], BOOL_LITERALS)
ORDERING = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}


def ref_equal(a: object, b: object) -> bool:
    return a is not None and b is not None and kind(a) is not None and kind(a) == kind(b) and a == b


@st.composite
def leaf(draw: st.DrawFn) -> tuple[str, Oracle]:
    shape = draw(st.sampled_from(["order", "eq", "null", "in", "bool"]))
    if shape == "order":
        (lt, lf), op, (rt, rf) = (
            draw(NUM_OPERAND),
            draw(st.sampled_from(sorted(ORDERING))),
            draw(NUM_OPERAND),
        )

        def ordered(v: Mapping[str, Any]) -> bool:
            a, b = lf(v), rf(v)
            return kind(a) == kind(b) == "number" and bool(ORDERING[op](a, b))

        return f"{lt} {op} {rt}", ordered
    if shape == "eq":
        side = draw(st.sampled_from([NUM_OPERAND, STR_OPERAND, BOOL_OPERAND]))
        (lt, lf), (rt, rf), op = draw(side), draw(side), draw(st.sampled_from(["==", "!="]))
        if op == "==":
            return f"{lt} == {rt}", lambda v: ref_equal(lf(v), rf(v))
        return (
            f"{lt} != {rt}",
            lambda v: lf(v) is not None and rf(v) is not None and not ref_equal(lf(v), rf(v)),
        )
    if shape == "null":
        name = draw(st.sampled_from(sorted(FIELDS)))
        if draw(st.booleans()):
            return f"{name} == null", lambda v: v.get(name) is None
        return f"null != {name}", lambda v: v.get(name) is not None
    if shape == "in":
        side, literals = draw(
            st.sampled_from(
                [
                    (NUM_OPERAND, NUMBER_LITERALS),
                    (STR_OPERAND, STRING_LITERALS),
                    (BOOL_OPERAND, BOOL_LITERALS),
                ]
            )
        )
        lt, lf = draw(side)
        items = draw(st.lists(literals | st.just(("null", None)), max_size=5))
        negate = draw(st.booleans())
        text = f"{lt} {'not in' if negate else 'in'} [{', '.join(t for t, _ in items)}]"

        def member(v: Mapping[str, Any]) -> bool:
            x = lf(v)
            if x is None:
                return any(c is None for _, c in items) and not negate
            return any(ref_equal(x, c) for _, c in items) != negate

        return text, member
    text, f = draw(BOOL_OPERAND)
    return text, lambda v: f(v) is True


@st.composite
def condition(draw: st.DrawFn, depth: int = 0) -> tuple[str, Oracle]:
    if depth >= 3 or draw(st.booleans()):
        return draw(leaf())
    shape = draw(st.sampled_from(["not", "and", "or", "mixed"]))
    if shape == "not":
        text, f = draw(condition(depth + 1))
        return f"not ({text})", lambda v: not f(v)
    (at, af), (bt, bf) = draw(condition(depth + 1)), draw(condition(depth + 1))
    if shape == "and":
        return f"({at}) and ({bt})", lambda v: af(v) and bf(v)
    if shape == "or":
        return f"({at}) or ({bt})", lambda v: af(v) or bf(v)
    (ct, cf) = draw(condition(depth + 1))
    # unparenthesised: not > and > or
    return f"not ({at}) or ({bt}) and ({ct})", lambda v: (not af(v)) or (bf(v) and cf(v))


@given(case=condition(), values=VALUE_MAPS)
def test_well_typed_filters_compile_and_match_the_reference(
    case: tuple[str, Oracle], values: dict[str, Any]
) -> None:
    text, reference = case
    assume(len(text) <= 1000)
    expr = compile_expr(text, FIELDS)
    assert expr(values) is bool(reference(values)), text
    assert compile_expr(f"not ({text})", FIELDS)(values) is (not expr(values))
