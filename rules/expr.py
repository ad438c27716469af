"""Safe filter expressions for rules, e.g. ``confidence >= 0.8 and object_class == "ebike"``.

Rule filters are user text (they come from rule files), so they must never reach ``eval``,
``exec``, ``compile`` or ``ast.literal_eval``. This module has its own tokenizer
(:mod:`rules.exprlex`) and a recursive-descent parser for a deliberately tiny language
(comparisons, ``in`` lists, ``and``, ``or``, ``not``: no calls, no attributes, no arithmetic), checks every name and type against the
event fields at compile time, and compiles the filter to plain Python closures. A compiled filter
never raises at run time: a missing field or a ``None`` value makes every comparison on it false,
except ``== null``.
"""

from __future__ import annotations

import dataclasses
import operator
from collections.abc import Callable, Mapping, Sequence
from numbers import Real
from typing import Any, Literal, NoReturn

from rules.exprlex import ExprError, Token, TokKind, tokenize

__all__ = ["Expr", "ExprError", "FieldType", "compile_expr"]

FieldType = Literal["number", "string", "bool"]

#: Longest filter text accepted, in characters.
MAX_TEXT_LENGTH = 1000
#: Deepest nesting of parentheses and ``not`` accepted.
MAX_DEPTH = 32
#: Most elements accepted in one list literal.
MAX_LIST_LENGTH = 1000

_FIELD_TYPES: frozenset[str] = frozenset({"number", "string", "bool"})
_ORDERING: dict[str, Callable[[Any, Any], Any]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}


_Values = Mapping[str, Any]
_Get = Callable[[_Values], object]
_Pred = Callable[[_Values], bool]


@dataclasses.dataclass(frozen=True)
class Expr:
    """A compiled filter: call it with an event's field values to get True or False."""

    text: str
    fields: frozenset[str]  # event fields the expression reads
    _predicate: _Pred = dataclasses.field(repr=False, compare=False)

    def __call__(self, values: Mapping[str, Any]) -> bool:
        return self._predicate(values)


# -- typed nodes ----------------------------------------------------------------------------------

# Static types: the three field types, plus "null" (the null literal) and "list" (a list literal,
# valid only right of `in`). Comparisons and and/or/not are "cond" nodes of type "bool".
_NodeKind = Literal["field", "literal", "list", "cond"]


@dataclasses.dataclass(frozen=True, slots=True)
class _Node:
    kind: _NodeKind
    type: str
    column: int
    get: _Get  # value getter (a list's getter returns None; its elements are in `items`)
    pred: _Pred | None = None  # set for "cond" nodes only; `get` is then the same function
    name: str = ""  # field name, for messages
    items: tuple[tuple[object, str, int], ...] = ()  # list elements: (value, type, column)

    def describe(self) -> str:
        if self.kind == "field":
            return f"{self.type} field '{self.name}'"
        if self.kind == "list":
            return "a list"
        if self.kind == "cond":
            return "a condition"
        if self.type == "null":
            return "null"
        return f"a {self.type}"


def _cond(column: int, pred: _Pred) -> _Node:
    return _Node("cond", "bool", column, pred, pred=pred)


def _kind_of(value: object) -> str | None:
    """Runtime type of a value in the language's terms (bools are not numbers)."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, str):
        return "string"
    if isinstance(value, Real):
        return "number"
    return None


def _is_number(value: object) -> bool:
    return isinstance(value, Real) and not isinstance(value, bool)


def _same(a: object, b: object) -> bool:
    """Strict equality: same language type and equal; never raises on odd values."""
    kind = _kind_of(a)
    return kind is not None and kind == _kind_of(b) and bool(a == b)


def _and(preds: Sequence[_Pred]) -> _Pred:
    if len(preds) == 1:
        return preds[0]
    ps = tuple(preds)

    def run(values: _Values) -> bool:
        return all(p(values) for p in ps)

    return run


def _or(preds: Sequence[_Pred]) -> _Pred:
    if len(preds) == 1:
        return preds[0]
    ps = tuple(preds)

    def run(values: _Values) -> bool:
        return any(p(values) for p in ps)

    return run


def _not(pred: _Pred) -> _Pred:
    return lambda values: not pred(values)


# -- parser ---------------------------------------------------------------------------------------


class _Parser:
    def __init__(self, text: str, fields: Mapping[str, FieldType]) -> None:
        self.stream = tokenize(text)
        self.buffer: list[Token] = []  # tokens read ahead; buffer[0] is the current one
        self.depth = 0
        self.fields = fields
        self.used: set[str] = set()

    # token helpers

    @property
    def tok(self) -> Token:
        return self.peek(0)

    def peek(self, ahead: int = 1) -> Token:
        while len(self.buffer) <= ahead:
            if self.buffer and self.buffer[-1].kind == "end":
                return self.buffer[-1]
            self.buffer.append(next(self.stream))
        return self.buffer[ahead]

    def at(self, kind: TokKind, text: str | None = None) -> bool:
        t = self.tok
        return t.kind == kind and (text is None or t.text == text)

    def advance(self) -> Token:
        t = self.tok
        if t.kind != "end":
            self.buffer.pop(0)
        return t

    def fail(self, message: str, column: int | None = None) -> NoReturn:
        raise ExprError(message, self.tok.column if column is None else column)

    def enter(self, token: Token) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise ExprError(f"expression nested deeper than {MAX_DEPTH} levels", token.column)

    # grammar

    def parse(self) -> _Pred:
        if self.at("end"):
            self.fail("empty expression: expected a condition", 0)
        node = self.or_expr()
        if not self.at("end"):
            t = self.tok
            if t.kind == "punct" and t.text == ")":
                self.fail("unmatched ')'; expected 'and', 'or' or end of expression")
            self.fail(f"expected 'and', 'or' or end of expression, got {t.describe()}")
        return self.condition(node)

    def or_expr(self) -> _Node:
        first = self.and_expr()
        if not self.at("kw", "or"):
            return first
        preds = [self.condition(first)]
        while self.at("kw", "or"):
            self.advance()
            preds.append(self.condition(self.and_expr()))
        return _cond(first.column, _or(preds))

    def and_expr(self) -> _Node:
        first = self.not_expr()
        if not self.at("kw", "and"):
            return first
        preds = [self.condition(first)]
        while self.at("kw", "and"):
            self.advance()
            preds.append(self.condition(self.not_expr()))
        return _cond(first.column, _and(preds))

    def not_expr(self) -> _Node:
        if not self.at("kw", "not"):
            return self.comparison()
        token = self.advance()
        self.enter(token)
        inner = self.condition(self.not_expr())
        self.depth -= 1
        return _cond(token.column, _not(inner))

    def comparison(self) -> _Node:
        left = self.operand()
        t = self.tok
        if t.kind == "op" or (t.kind == "kw" and t.text == "in"):
            op = self.advance().text
        elif t.kind == "kw" and t.text == "not":
            after = self.peek()
            if not (after.kind == "kw" and after.text == "in"):
                self.fail(f"expected 'in' after 'not', got {after.describe()}", after.column)
            self.advance()
            self.advance()
            op = "not in"
        else:
            return left
        right = self.operand()
        node = self.compare(left, op, right)
        nxt = self.tok
        if nxt.kind == "op" or (nxt.kind == "kw" and nxt.text == "in"):
            self.fail("comparisons cannot be chained; combine them with 'and'")
        if nxt.kind == "kw" and nxt.text == "not" and self.peek().text == "in":
            self.fail("comparisons cannot be chained; combine them with 'and'")
        return node

    def operand(self) -> _Node:
        t = self.tok
        if t.kind == "num":
            self.advance()
            return self.literal(t.value, "number", t.column)
        if t.kind == "str":
            self.advance()
            return self.literal(t.value, "string", t.column)
        if t.kind == "kw" and t.text in ("true", "false", "null"):
            self.advance()
            value = {"true": True, "false": False, "null": None}[t.text]
            return self.literal(value, "null" if value is None else "bool", t.column)
        if t.kind == "ident":
            self.advance()
            return self.field(t)
        if t.kind == "punct" and t.text == "[":
            return self.list_literal()
        if t.kind == "punct" and t.text == "(":
            self.advance()
            self.enter(t)
            inner = self.or_expr()
            if not self.at("punct", ")"):
                if self.at("end"):
                    self.fail("unclosed '(': expected ')'", t.column)
                self.fail(f"expected ')' or a comparison, got {self.tok.describe()}")
            self.advance()
            self.depth -= 1
            return inner
        self.fail(
            "expected a value (field, number, string, true, false, null, list or '('), "
            f"got {t.describe()}"
        )

    def list_literal(self) -> _Node:
        open_tok = self.advance()
        items: list[tuple[object, str, int]] = []
        if self.at("punct", "]"):
            self.advance()
            return _Node("list", "list", open_tok.column, lambda values: None)
        while True:
            t = self.tok
            if t.kind == "end":
                self.fail("unclosed '[': expected ']'", open_tok.column)
            if len(items) >= MAX_LIST_LENGTH:
                self.fail(f"list longer than {MAX_LIST_LENGTH} elements")
            if t.kind == "num":
                items.append((t.value, "number", t.column))
            elif t.kind == "str":
                items.append((t.value, "string", t.column))
            elif t.kind == "kw" and t.text in ("true", "false"):
                items.append((t.text == "true", "bool", t.column))
            elif t.kind == "kw" and t.text == "null":
                items.append((None, "null", t.column))
            else:
                self.fail(
                    "expected a list element (number, string, true, false or null), "
                    f"got {t.describe()}"
                )
            self.advance()
            if self.at("punct", ","):
                self.advance()
            elif self.at("punct", "]"):
                self.advance()
                break
            elif self.at("end"):
                self.fail("unclosed '[': expected ']'", open_tok.column)
            else:
                self.fail(f"expected ',' or ']' in list, got {self.tok.describe()}")
        return _Node("list", "list", open_tok.column, lambda values: None, items=tuple(items))

    def literal(self, value: object, type_: str, column: int) -> _Node:
        return _Node("literal", type_, column, lambda values: value)

    def field(self, t: Token) -> _Node:
        name = t.text
        if name not in self.fields:
            known = ", ".join(sorted(self.fields)) or "(none)"
            self.fail(f"unknown event field '{name}'; known: {known}", t.column)
        self.used.add(name)

        def get(values: _Values) -> object:
            return values.get(name)

        return _Node("field", self.fields[name], t.column, get, name=name)

    # typing and compilation

    def condition(self, node: _Node) -> _Pred:
        """The node used as a condition: a comparison, and/or/not, or a bool field or literal."""
        if node.pred is not None:
            return node.pred
        if node.type != "bool":
            hint = f", e.g. {node.name} > 0" if node.type == "number" and node.name else ""
            self.fail(
                f"{node.describe()} is not a condition; compare it with something{hint}",
                node.column,
            )
        get = node.get
        if node.kind == "literal":
            constant = bool(get({}))
            return lambda values: constant

        def is_true(values: _Values) -> bool:
            value = get(values)
            return isinstance(value, bool) and value

        return is_true

    def compare(self, left: _Node, op: str, right: _Node) -> _Node:
        if op in ("in", "not in"):
            return self.membership(left, op, right)
        for side in (left, right):
            if side.kind == "list":
                self.fail("a list can only appear on the right of 'in' or 'not in'", side.column)
        lget, rget = left.get, right.get
        if op in _ORDERING:
            for side in (left, right):
                if side.type != "number":
                    self.fail(f"'{op}' compares numbers only, got {side.describe()}", side.column)
            fn = _ORDERING[op]

            def ordered(values: _Values) -> bool:
                a, b = lget(values), rget(values)
                return _is_number(a) and _is_number(b) and bool(fn(a, b))

            return _cond(left.column, ordered)

        # == and !=
        if "null" not in (left.type, right.type) and left.type != right.type:
            self.fail(
                f"'{op}' needs the same type on both sides: {left.describe()} vs {right.describe()}",
                right.column,
            )
        negate = op == "!="
        if left.type == "null" or right.type == "null":
            other = rget if left.type == "null" else lget

            def null_test(values: _Values) -> bool:
                return (other(values) is None) != negate

            return _cond(left.column, null_test)

        def equality(values: _Values) -> bool:
            a, b = lget(values), rget(values)
            if a is None or b is None:
                return False
            return _same(a, b) != negate

        return _cond(left.column, equality)

    def membership(self, left: _Node, op: str, right: _Node) -> _Node:
        if left.kind not in ("field", "literal"):
            self.fail(
                f"'{op}' needs a field or a literal on its left, got {left.describe()}",
                left.column,
            )
        if right.kind != "list":
            self.fail(
                f"'{op}' needs a list literal like [1, 2] on its right, got {right.describe()}",
                right.column,
            )
        expected = left.type  # null on the left: the first non-null element sets the type
        for _, type_, column in right.items:
            if type_ == "null":
                continue
            if expected == "null":
                expected = type_
            elif type_ != expected:
                self.fail(
                    f"list element is a {type_} but '{op}' needs {expected} elements here "
                    f"(left side: {left.describe()})",
                    column,
                )
        has_null = any(type_ == "null" for _, type_, _ in right.items)
        keys = frozenset((_kind_of(v), v) for v, type_, _ in right.items if type_ != "null")
        negate = op == "not in"
        lget = left.get

        def member(values: _Values) -> bool:
            value = lget(values)
            if value is None:
                return has_null and not negate
            kind = _kind_of(value)
            if kind is None:
                return negate
            try:
                found = (kind, value) in keys
            except TypeError:  # unhashable Real subclass: treat as not in the list
                found = False
            return found != negate

        return _cond(left.column, member)


def compile_expr(text: str, fields: Mapping[str, FieldType]) -> Expr:
    """Parse, type-check and compile a filter over the given event fields.

    ``fields`` maps every field name the filter may use to its type. Raises :class:`ExprError`
    (with the 0-based column of the offending token) for any bad filter.
    """
    for name, type_ in fields.items():
        if type_ not in _FIELD_TYPES:
            raise ValueError(
                f"field {name!r} has type {type_!r}; expected one of number, string, bool"
            )
    if len(text) > MAX_TEXT_LENGTH:
        raise ExprError(f"filter longer than {MAX_TEXT_LENGTH} characters", MAX_TEXT_LENGTH)
    parser = _Parser(text, fields)
    predicate = parser.parse()
    return Expr(text, frozenset(parser.used), predicate)
