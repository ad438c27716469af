"""The typed nodes of rule filter expressions (:mod:`rules.expr`) and the closures they run as.

The parser in :mod:`rules.expr` reads filter text into :class:`Node` values and checks their
types at compile time; what a compiled filter then does at run time is built here: the language's
view of runtime values, and/or/not, ordering, equality, null tests and list membership, each a
plain closure over the event's field values. None of them ever raises: a missing field or a
``None`` value makes every comparison on it false, except ``== null``. It imports nothing outside
the standard library.
"""

from __future__ import annotations

import dataclasses
import operator
from collections.abc import Callable, Sequence
from numbers import Real
from typing import Any, Literal, Protocol

__all__ = [
    "ORDERING",
    "Get",
    "Node",
    "NodeKind",
    "Pred",
    "Values",
    "all_of",
    "any_of",
    "cond",
    "equality",
    "is_number",
    "is_true",
    "kind_of",
    "member",
    "negation",
    "null_test",
    "ordered",
    "same",
]


class Values(Protocol):
    """What an expression reads an event's fields from: a dict, or a view of an event."""

    def get(self, name: str, /) -> Any: ...


Get = Callable[[Values], object]
Pred = Callable[[Values], bool]

ORDERING: dict[str, Callable[[Any, Any], Any]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}

# Static types: the three field types, plus "null" (the null literal) and "list" (a list literal,
# valid only right of `in`). Comparisons and and/or/not are "cond" nodes of type "bool".
NodeKind = Literal["field", "literal", "list", "cond"]


@dataclasses.dataclass(frozen=True, slots=True)
class Node:
    """A parsed operand or condition with its static type, and the closure that evaluates it."""

    kind: NodeKind
    type: str
    column: int
    get: Get  # value getter (a list's getter returns None; its elements are in `items`)
    pred: Pred | None = None  # set for "cond" nodes only; `get` is then the same function
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


def cond(column: int, pred: Pred) -> Node:
    return Node("cond", "bool", column, pred, pred=pred)


# -- runtime values -------------------------------------------------------------------------------


def kind_of(value: object) -> str | None:
    """Runtime type of a value in the language's terms (bools are not numbers)."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, str):
        return "string"
    if isinstance(value, Real):
        return "number"
    return None


def is_number(value: object) -> bool:
    return isinstance(value, Real) and not isinstance(value, bool)


def same(a: object, b: object) -> bool:
    """Strict equality: same language type and equal; never raises on odd values."""
    kind = kind_of(a)
    return kind is not None and kind == kind_of(b) and bool(a == b)


# -- closures -------------------------------------------------------------------------------------


def all_of(preds: Sequence[Pred]) -> Pred:
    if len(preds) == 1:
        return preds[0]
    ps = tuple(preds)

    def run(values: Values) -> bool:
        return all(p(values) for p in ps)

    return run


def any_of(preds: Sequence[Pred]) -> Pred:
    if len(preds) == 1:
        return preds[0]
    ps = tuple(preds)

    def run(values: Values) -> bool:
        return any(p(values) for p in ps)

    return run


def negation(pred: Pred) -> Pred:
    return lambda values: not pred(values)


def is_true(get: Get) -> Pred:
    """A bool field used as a condition: true only when the value is ``True`` itself."""

    def run(values: Values) -> bool:
        value = get(values)
        return isinstance(value, bool) and value

    return run


def ordered(fn: Callable[[Any, Any], Any], lget: Get, rget: Get) -> Pred:
    """An ordering (``fn`` from :data:`ORDERING`): false unless both sides are numbers."""

    def run(values: Values) -> bool:
        a, b = lget(values), rget(values)
        return is_number(a) and is_number(b) and bool(fn(a, b))

    return run


def null_test(other: Get, negate: bool) -> Pred:
    """``== null`` (or ``!= null`` when ``negate``) on the value ``other`` gets."""

    def run(values: Values) -> bool:
        return (other(values) is None) != negate

    return run


def equality(lget: Get, rget: Get, negate: bool) -> Pred:
    """``==`` (or ``!=`` when ``negate``): false whenever either side is missing."""

    def run(values: Values) -> bool:
        a, b = lget(values), rget(values)
        if a is None or b is None:
            return False
        return same(a, b) != negate

    return run


def member(
    lget: Get, keys: frozenset[tuple[str | None, object]], has_null: bool, negate: bool
) -> Pred:
    """``in`` (or ``not in`` when ``negate``) a list given as ``(kind_of(v), v)`` keys."""

    def run(values: Values) -> bool:
        value = lget(values)
        if value is None:
            return has_null and not negate
        kind = kind_of(value)
        if kind is None:
            return negate
        try:
            found = (kind, value) in keys
        except TypeError:  # unhashable Real subclass: treat as not in the list
            found = False
        return found != negate

    return run
