"""Safe filter expressions for rules, e.g. ``confidence >= 0.8 and object_class == "ebike"``.

Rule filters are user text (they come from rule files), so they must never reach ``eval``,
``exec``, ``compile`` or ``ast.literal_eval``. This module has its own tokenizer
(:mod:`rules.exprlex`) and a recursive-descent parser for a deliberately tiny language
(comparisons, ``in`` lists, ``and``, ``or``, ``not``: no calls, no attributes, no arithmetic),
checks every name and type against the event fields at compile time, and compiles the filter to
plain Python closures (the typed nodes and the closures are in :mod:`rules.exprnodes`). A compiled
filter never raises at run time: a missing field or a ``None`` value makes every comparison on it
false, except ``== null``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Literal, NoReturn

from rules.exprlex import ExprError, Token, TokKind, tokenize
from rules.exprnodes import (
    ORDERING,
    Node,
    Pred,
    Values,
    all_of,
    any_of,
    cond,
    equality,
    is_true,
    kind_of,
    member,
    negation,
    null_test,
    ordered,
)

__all__ = ["Expr", "ExprError", "FieldRange", "FieldType", "compile_expr"]

FieldType = Literal["number", "string", "bool"]
FieldRange = tuple[float, float]  # the least and the greatest value a number field can hold

#: Longest filter text accepted, in characters.
MAX_TEXT_LENGTH = 1000
#: Deepest nesting of parentheses and ``not`` accepted.
MAX_DEPTH = 32
#: Most elements accepted in one list literal.
MAX_LIST_LENGTH = 1000

_FIELD_TYPES: frozenset[str] = frozenset({"number", "string", "bool"})


@dataclasses.dataclass(frozen=True)
class Expr:
    """A compiled filter: call it with an event's field values to get True or False."""

    text: str
    fields: frozenset[str]  # event fields the expression reads
    _predicate: Pred = dataclasses.field(repr=False, compare=False)

    def __call__(self, values: Values) -> bool:
        return self._predicate(values)


# -- parser ---------------------------------------------------------------------------------------


class _Parser:
    def __init__(
        self,
        text: str,
        fields: Mapping[str, FieldType],
        ranges: Mapping[str, FieldRange] | None = None,
    ) -> None:
        self.ranges = ranges or {}
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

    def parse(self) -> Pred:
        if self.at("end"):
            self.fail("empty expression: expected a condition", 0)
        node = self.or_expr()
        if not self.at("end"):
            t = self.tok
            if t.kind == "punct" and t.text == ")":
                self.fail("unmatched ')'; expected 'and', 'or' or end of expression")
            self.fail(f"expected 'and', 'or' or end of expression, got {t.describe()}")
        return self.condition(node)

    def or_expr(self) -> Node:
        first = self.and_expr()
        if not self.at("kw", "or"):
            return first
        preds = [self.condition(first)]
        while self.at("kw", "or"):
            self.advance()
            preds.append(self.condition(self.and_expr()))
        return cond(first.column, any_of(preds))

    def and_expr(self) -> Node:
        first = self.not_expr()
        if not self.at("kw", "and"):
            return first
        preds = [self.condition(first)]
        while self.at("kw", "and"):
            self.advance()
            preds.append(self.condition(self.not_expr()))
        return cond(first.column, all_of(preds))

    def not_expr(self) -> Node:
        if not self.at("kw", "not"):
            return self.comparison()
        token = self.advance()
        self.enter(token)
        inner = self.condition(self.not_expr())
        self.depth -= 1
        return cond(token.column, negation(inner))

    def comparison(self) -> Node:
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

    def operand(self) -> Node:
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

    def list_literal(self) -> Node:
        open_tok = self.advance()
        items: list[tuple[object, str, int]] = []
        if self.at("punct", "]"):
            self.advance()
            return Node("list", "list", open_tok.column, lambda values: None)
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
        return Node("list", "list", open_tok.column, lambda values: None, items=tuple(items))

    def literal(self, value: object, type_: str, column: int) -> Node:
        return Node("literal", type_, column, lambda values: value)

    def field(self, t: Token) -> Node:
        name = t.text
        if name not in self.fields:
            known = ", ".join(sorted(self.fields)) or "(none)"
            self.fail(f"unknown event field '{name}'; known: {known}", t.column)
        self.used.add(name)

        def get(values: Values) -> object:
            return values.get(name)

        return Node("field", self.fields[name], t.column, get, name=name)

    # typing and compilation

    def condition(self, node: Node) -> Pred:
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
        return is_true(get)

    def compare(self, left: Node, op: str, right: Node) -> Node:
        if op in ("in", "not in"):
            return self.membership(left, op, right)
        for side in (left, right):
            if side.kind == "list":
                self.fail("a list can only appear on the right of 'in' or 'not in'", side.column)
        self.in_range(left, right)
        self.in_range(right, left)
        lget, rget = left.get, right.get
        if op in ORDERING:
            for side in (left, right):
                if side.type != "number":
                    self.fail(f"'{op}' compares numbers only, got {side.describe()}", side.column)
            return cond(left.column, ordered(ORDERING[op], lget, rget))

        # == and !=
        if "null" not in (left.type, right.type) and left.type != right.type:
            self.fail(
                f"'{op}' needs the same type on both sides: {left.describe()} vs {right.describe()}",
                right.column,
            )
        negate = op == "!="
        if left.type == "null" or right.type == "null":
            other = rget if left.type == "null" else lget
            return cond(left.column, null_test(other, negate))
        return cond(left.column, equality(lget, rget, negate))

    def in_range(self, field: Node, other: Node) -> None:
        """A number literal compared with a field must lie where the field's values can."""
        if other.kind == "literal" and other.type == "number":
            self.check_range(field, other.get({}), other.column)

    def check_range(self, field: Node, value: object, column: int) -> None:
        if field.kind != "field" or field.name not in self.ranges:
            return
        lo, hi = self.ranges[field.name]
        if isinstance(value, int | float) and not lo <= value <= hi:
            self.fail(
                f"{value} is outside the range of '{field.name}' ({lo:g} to {hi:g}): "
                "the comparison is the same for every event",
                column,
            )

    def membership(self, left: Node, op: str, right: Node) -> Node:
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
        for value, type_, column in right.items:
            if type_ == "number":
                self.check_range(left, value, column)
        has_null = any(type_ == "null" for _, type_, _ in right.items)
        keys = frozenset((kind_of(v), v) for v, type_, _ in right.items if type_ != "null")
        return cond(left.column, member(left.get, keys, has_null, op == "not in"))


def compile_expr(
    text: str,
    fields: Mapping[str, FieldType],
    ranges: Mapping[str, FieldRange] | None = None,
) -> Expr:
    """Parse, type-check and compile a filter over the given event fields.

    ``fields`` maps every field name the filter may use to its type, ``ranges`` a number field to
    the least and greatest value it can hold (a literal outside is refused: ``confidence >= 2``
    can never be true). Raises :class:`ExprError` (with the 0-based column of the offending token)
    for any bad filter.
    """
    for name, type_ in fields.items():
        if type_ not in _FIELD_TYPES:
            raise ValueError(
                f"field {name!r} has type {type_!r}; expected one of number, string, bool"
            )
    if len(text) > MAX_TEXT_LENGTH:
        raise ExprError(f"filter longer than {MAX_TEXT_LENGTH} characters", MAX_TEXT_LENGTH)
    parser = _Parser(text, fields, ranges)
    predicate = parser.parse()
    return Expr(text, frozenset(parser.used), predicate)
