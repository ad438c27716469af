"""A validated, compiled rule file: filters compiled, keys and references checked.

Everything a schema cannot say is checked here and reported as a :class:`RuleError` naming the rule
and the field, so a broken rule file is refused before any event is read.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, get_args, get_origin

from devices.events import EVENT_MODELS, DeviceEvent
from rules.expr import Expr, ExprError, FieldRange, FieldType, compile_expr
from rules.model import Match, Rule, RuleFile, ThresholdCond

__all__ = [
    "CompiledMatch",
    "CompiledRule",
    "FieldView",
    "RuleError",
    "RuleSet",
    "event_field_ranges",
    "event_fields",
]


class RuleError(ValueError):
    """A rule that cannot work: ``loc`` is its path inside the rule file."""

    def __init__(self, loc: Sequence[int | str], rule_id: str, message: str) -> None:
        super().__init__(message)
        self.loc = tuple(loc)
        self.rule_id = rule_id
        self.message = message


def _field_type(annotation: Any) -> FieldType | None:
    origin = get_origin(annotation)
    if origin is typing.Annotated:
        return _field_type(get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        kinds = {_field_type(a) for a in get_args(annotation) if a is not type(None)}
        return kinds.pop() if len(kinds) == 1 else None
    if origin is typing.Literal:
        values = get_args(annotation)
        if all(isinstance(v, str) for v in values):
            return "string"
        if all(isinstance(v, bool) for v in values):
            return "bool"
        return "number"
    if annotation is bool:
        return "bool"
    if annotation in (int, float):
        return "number"
    if annotation is str:
        return "string"
    return None  # datetimes and the like: not filterable


def event_fields(event_type: str) -> dict[str, FieldType]:
    """The filterable fields of one event type, with their expression types."""
    model = EVENT_MODELS[event_type]
    out: dict[str, FieldType] = {}
    hints = typing.get_type_hints(model, include_extras=True)
    annotations: dict[str, Any] = {"type": Literal[model.__struct_config__.tag]}
    annotations |= {name: hints[name] for name in model.__struct_fields__}
    for name, annotation in annotations.items():
        kind = _field_type(annotation)
        if kind is not None:
            out[name] = kind
    return out


def _range(annotation: Any) -> FieldRange | None:
    """The bounds a number field's ``msgspec.Meta`` states (ge/gt/le/lt), if any."""
    if get_origin(annotation) in (typing.Union, types.UnionType):
        found = [r for a in get_args(annotation) if (r := _range(a)) is not None]
        return found[0] if len(found) == 1 else None
    if get_origin(annotation) is not typing.Annotated:
        return None
    lo, hi = float("-inf"), float("inf")
    for meta in get_args(annotation)[1:]:
        for name in ("ge", "gt"):
            if isinstance(getattr(meta, name, None), int | float):
                lo = max(lo, float(getattr(meta, name)))
        for name in ("le", "lt"):
            if isinstance(getattr(meta, name, None), int | float):
                hi = min(hi, float(getattr(meta, name)))
    return None if (lo, hi) == (float("-inf"), float("inf")) else (lo, hi)


def event_field_ranges(event_type: str) -> dict[str, FieldRange]:
    """The bounds of one event type's number fields, as its schema states them."""
    model = EVENT_MODELS[event_type]
    hints = typing.get_type_hints(model, include_extras=True)
    out: dict[str, FieldRange] = {}
    for name in model.__struct_fields__:
        if _field_type(hints[name]) == "number" and (bounds := _range(hints[name])) is not None:
            out[name] = bounds
    return out


class FieldView:
    """An event's fields as an expression reads them (``get``), without copying them."""

    __slots__ = ("_event",)

    def __init__(self, event: DeviceEvent) -> None:
        self._event = event

    def get(self, name: str, /) -> Any:
        return getattr(self._event, name, None)


@dataclass(frozen=True)
class CompiledMatch:
    type: str
    device_kind: str | None
    where: Expr | None

    def matches(self, event: DeviceEvent) -> bool:
        if self.device_kind is not None and event.device_kind != self.device_kind:
            return False
        return self.where is None or self.where(FieldView(event))


@dataclass(frozen=True)
class CompiledRule:
    index: int
    rule: Rule
    watch: tuple[CompiledMatch, ...]
    second: tuple[CompiledMatch, ...]  # stop events (duration) or B events (sequence)

    @property
    def id(self) -> str:
        return self.rule.id


def _compile_matches(
    rule_index: int, rule: Rule, matches: list[Match], *field: str
) -> tuple[CompiledMatch, ...]:
    out = []
    for i, m in enumerate(matches):
        where = None
        if m.where is not None:
            try:
                where = compile_expr(m.where, event_fields(m.type), event_field_ranges(m.type))
            except ExprError as exc:
                raise RuleError(
                    ("rules", rule_index, *field, i, "where"), rule.id, str(exc)
                ) from None
        out.append(CompiledMatch(m.type, m.device_kind, where))
    return tuple(out)


class RuleSet:
    """The compiled rules of one file, in file order, with the engine's settings."""

    def __init__(self, spec: RuleFile) -> None:
        self.spec = spec
        self.allowed_lateness = spec.allowed_lateness
        seen: dict[str, int] = {}
        for i, rule in enumerate(spec.rules):
            if rule.id in seen:
                raise RuleError(("rules", i, "id"), rule.id, f"duplicate rule id {rule.id!r}")
            seen[rule.id] = i
        compiled = []
        for i, rule in enumerate(spec.rules):
            compiled.append(self._compile(i, rule, seen, spec.rules))
        self.rules: tuple[CompiledRule, ...] = tuple(compiled)
        self.by_id: Mapping[str, CompiledRule] = {r.id: r for r in compiled}

    @staticmethod
    def _compile(i: int, rule: Rule, ids: Mapping[str, int], rules: Sequence[Rule]) -> CompiledRule:
        cond = rule.condition
        at = ("rules", i)
        if cond.kind == "repeat":
            if rule.watch:
                raise RuleError((*at, "watch"), rule.id, "a repeat rule watches alerts, not events")
            if cond.rule not in ids or cond.rule == rule.id:
                raise RuleError(
                    (*at, "condition", "rule"), rule.id, f"repeat names unknown rule {cond.rule!r}"
                )
        elif not rule.watch:
            raise RuleError((*at, "watch"), rule.id, "no events to watch")
        watch = _compile_matches(i, rule, rule.watch, "watch")
        second: tuple[CompiledMatch, ...] = ()
        if cond.kind == "duration":
            second = _compile_matches(i, rule, cond.stop, "condition", "stop")
        elif cond.kind == "sequence":
            second = _compile_matches(i, rule, cond.then, "condition", "then")
        types_ = [m.type for m in watch + second]
        if cond.kind != "repeat":
            for k, name in enumerate(rule.key):
                for t in types_:
                    if name not in EVENT_MODELS[t].__struct_fields__:
                        raise RuleError(
                            (*at, "key", k), rule.id, f"key field {name!r} is not on {t} events"
                        )
        if isinstance(cond, ThresholdCond):
            _check_threshold(at, rule, cond, types_)
        if cond.kind == "repeat":
            source = rules[ids[cond.rule]]
            for k, name in enumerate(rule.key):
                if name not in (*source.key, "estate"):
                    raise RuleError(
                        (*at, "key", k),
                        rule.id,
                        f"key {name!r} is not a label of rule {source.id!r}",
                    )
        for k, inh in enumerate(rule.inhibited_by):
            if inh.rule not in ids or inh.rule == rule.id:
                raise RuleError(
                    (*at, "inhibited_by", k, "rule"), rule.id, f"unknown rule {inh.rule!r}"
                )
            source = rules[ids[inh.rule]]
            for name in inh.equal:
                if name not in (*rule.key, "estate") or name not in (*source.key, "estate"):
                    raise RuleError(
                        (*at, "inhibited_by", k, "equal"),
                        rule.id,
                        f"equal label {name!r} is not a label of both {rule.id!r} and {source.id!r}",
                    )
        if rule.active_hours is not None and rule.active_hours[0] == rule.active_hours[1]:
            raise RuleError((*at, "active_hours"), rule.id, "active hours are empty")
        return CompiledRule(i, rule, watch, second)


def _check_threshold(
    at: tuple[Any, ...], rule: Rule, cond: ThresholdCond, types_: list[str]
) -> None:
    for t in types_:
        if event_fields(t).get(cond.field) != "number":
            raise RuleError(
                (*at, "condition", "field"),
                rule.id,
                f"{cond.field!r} is not a number on {t} events",
            )
    if cond.direction == "above" and cond.clear_level > cond.raise_level:
        raise RuleError(
            (*at, "condition", "clear"),
            rule.id,
            f"clear level {cond.clear_level} is above the raise level {cond.raise_level}",
        )
    if cond.direction == "below" and cond.clear_level < cond.raise_level:
        raise RuleError(
            (*at, "condition", "clear"),
            rule.id,
            f"clear level {cond.clear_level} is below the raise level {cond.raise_level}",
        )
