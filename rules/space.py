"""Search spaces for tuning rule files: which rule parameters vary, how, and what counts as better.

A parameter names a rule and a field path inside it (``condition.at_least``, ``watch[0].where``,
``keep_firing_for``) and gives its values: a list, a range with a step, or a distribution for
random search. A ``template`` puts a number into a filter expression
(``"confidence >= {value}"``). The objective is a weighted cost (misses, false alerts, detection
delay) or a constraint (maximise recall with false alerts per 1,000 household-days at most X).
"""

from __future__ import annotations

import copy
import itertools
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, model_validator

from rules.model import RuleFile, parse_duration
from rules.ruleset import RuleError, RuleSet

__all__ = [
    "METRICS",
    "Constraint",
    "CostWeights",
    "Parameter",
    "SearchSpace",
    "SpaceError",
    "apply_values",
    "focus",
    "grid",
    "random_trials",
    "watched_types",
]

METRICS = (
    "recall",
    "precision",
    "severity_weighted_recall",
    "false_alerts_per_1000_household_days",
    "ttd_median_s",
    "misses",
    "false_alerts",
    "delay_hours",
)


class SpaceError(ValueError):
    def __init__(self, loc: tuple[Any, ...], message: str) -> None:
        super().__init__(message)
        self.loc = loc
        self.message = message


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


Number = Annotated[float, BeforeValidator(parse_duration)]  # "10m" or 600 alike


class Range(_Strict):
    start: Number = Field(alias="from")
    stop: Number = Field(alias="to")
    step: Number

    @model_validator(mode="after")
    def _not_empty(self) -> Range:
        if self.step <= 0:
            raise ValueError("step must be positive")
        if self.stop < self.start:
            raise ValueError(f"empty range: to ({self.stop:g}) is below from ({self.start:g})")
        return self

    def values(self) -> list[float]:
        n = int(np.floor((self.stop - self.start) / self.step + 1e-9)) + 1
        return [round(self.start + i * self.step, 10) for i in range(n)]


class Distribution(_Strict):
    """For random search: ``uniform: [lo, hi]``, ``loguniform: [lo, hi]``, ``int: [lo, hi]``."""

    kind: Literal["uniform", "loguniform", "int"]
    low: Number
    high: Number

    @model_validator(mode="after")
    def _ordered(self) -> Distribution:
        if self.high <= self.low:
            raise ValueError("empty distribution: high must be above low")
        if self.kind == "loguniform" and self.low <= 0:
            raise ValueError("loguniform needs a positive low")
        return self


class Parameter(_Strict):
    name: str | None = None
    rule: str
    path: str
    values: list[Any] | None = Field(None, min_length=1)
    range: Range | None = None
    distribution: Distribution | None = None
    template: str | None = None

    @model_validator(mode="after")
    def _one_source(self) -> Parameter:
        given = [x is not None for x in (self.values, self.range, self.distribution)]
        if sum(given) != 1:
            raise ValueError("give exactly one of values, range or distribution")
        if self.template is not None and "{value}" not in self.template:
            raise ValueError("template must contain {value}")
        return self

    @property
    def label(self) -> str:
        return self.name or f"{self.rule}.{self.path}"

    def choices(self) -> list[Any]:
        if self.values is not None:
            return list(self.values)
        if self.range is not None:
            return list(self.range.values())
        raise ValueError(f"{self.label}: a distribution has no grid; use --search random")


class CostWeights(_Strict):
    miss: float = Field(1.0, ge=0)
    false_alert: float = Field(0.2, ge=0)
    delay_hour: float = Field(0.05, ge=0)


class Constraint(_Strict):
    maximise: Literal["recall", "severity_weighted_recall", "precision"] = "recall"
    metric: Literal["false_alerts_per_1000_household_days", "ttd_median_s", "false_alerts"] = (
        "false_alerts_per_1000_household_days"
    )
    at_most: float = Field(ge=0)


class Objective(_Strict):
    kind: Literal["cost", "constraint"] = "cost"
    cost: CostWeights = CostWeights()
    constraint: Constraint | None = None
    rules: list[str] | None = None  # scored rules; default: the rules the parameters touch

    @model_validator(mode="after")
    def _constraint_given(self) -> Objective:
        if self.kind == "constraint" and self.constraint is None:
            raise ValueError("a constraint objective needs `constraint`")
        return self


class SearchSpace(_Strict):
    version: Literal[1] = 1
    parameters: list[Parameter] = Field(min_length=1)
    objective: Objective = Objective()
    search: Literal["grid", "random", "optuna"] = "grid"
    trials: int | None = Field(None, ge=1)
    seed: int = Field(0, ge=0)


# -- applying values to a rule file ------------------------------------------------------------


def _steps(path: str) -> list[str | int]:
    out: list[str | int] = []
    for part in path.replace("]", "").split("."):
        name, *idx = part.split("[")
        if name:
            out.append(name)
        out.extend(int(i) for i in idx)
    return out


def check_space(space: SearchSpace, rules: RuleFile) -> None:
    """Every parameter names a rule and an existing field; every value makes a valid rule file."""
    doc = rules.model_dump(mode="json", by_alias=True, exclude_none=True)
    ids = [r["id"] for r in doc["rules"]]
    for i, p in enumerate(space.parameters):
        at = ("parameters", i)
        if p.rule not in ids:
            raise SpaceError((*at, "rule"), f"names no rule: {p.rule!r} (rules: {', '.join(ids)})")
        node: Any = doc["rules"][ids.index(p.rule)]
        try:
            for step in _steps(p.path):
                node = node[step]
        except (KeyError, IndexError, TypeError, ValueError):
            raise SpaceError((*at, "path"), f"rule {p.rule!r} has no field {p.path!r}") from None
        samples = (
            p.choices() if p.distribution is None else [p.distribution.low, p.distribution.high]
        )
        for v in samples:
            try:
                apply_values(rules, [(p, v)])
            except (SpaceError, ValueError) as exc:
                raise SpaceError(
                    (*at, "values"), f"value {v!r} gives a broken rule: {exc}"
                ) from None
    scored = space.objective.rules or []
    for j, rid in enumerate(scored):
        if rid not in ids:
            raise SpaceError(("objective", "rules", j), f"names no rule: {rid!r}")


def apply_values(rules: RuleFile, values: list[tuple[Parameter, Any]]) -> RuleSet:
    """The rule file with these parameter values, validated and compiled."""
    doc = rules.model_dump(mode="json", by_alias=True, exclude_none=True)
    doc = copy.deepcopy(doc)
    for p, v in values:
        rule = next(r for r in doc["rules"] if r["id"] == p.rule)
        steps = _steps(p.path)
        node: Any = rule
        for step in steps[:-1]:
            node = node[step]
        node[steps[-1]] = p.template.format(value=v) if p.template else v
    try:
        return RuleSet(RuleFile.model_validate(doc))
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        raise ValueError(f"{'.'.join(str(x) for x in first['loc'])}: {first['msg']}") from None
    except RuleError as exc:
        raise ValueError(f"rule {exc.rule_id!r}: {exc.message}") from None


def grid(space: SearchSpace) -> list[dict[str, Any]]:
    """Every combination, in file order (the last parameter varies fastest)."""
    labels = [p.label for p in space.parameters]
    combos = itertools.product(*(p.choices() for p in space.parameters))
    return [dict(zip(labels, c, strict=True)) for c in combos]


def random_trials(space: SearchSpace, n: int) -> list[dict[str, Any]]:
    """``n`` draws from a Generator seeded by the space's own seed."""
    rng = np.random.default_rng(space.seed)
    out = []
    for _ in range(n):
        trial: dict[str, Any] = {}
        for p in space.parameters:
            d = p.distribution
            if d is None:
                options = p.choices()
                trial[p.label] = options[int(rng.integers(len(options)))]
            elif d.kind == "uniform":
                trial[p.label] = round(float(rng.uniform(d.low, d.high)), 6)
            elif d.kind == "loguniform":
                trial[p.label] = round(float(np.exp(rng.uniform(np.log(d.low), np.log(d.high)))), 6)
            else:
                trial[p.label] = int(rng.integers(int(d.low), int(d.high) + 1))
        out.append(trial)
    return out


def focus(rules: RuleFile, ids: list[str]) -> RuleFile:
    """Only the rules ``ids`` and those they depend on (repeat sources, inhibitors): replaying
    fewer rules gives the same alerts for these, much faster."""
    by_id = {r.id: r for r in rules.rules}
    keep: set[str] = set()
    todo = list(ids)
    while todo:
        rid = todo.pop()
        if rid in keep or rid not in by_id:
            continue
        keep.add(rid)
        rule = by_id[rid]
        if rule.condition.kind == "repeat":
            todo.append(rule.condition.rule)
        todo.extend(i.rule for i in rule.inhibited_by)
    return rules.model_copy(update={"rules": [r for r in rules.rules if r.id in keep]})


def watched_types(rules: RuleFile) -> set[str]:
    """Event types any rule of the file reads (staff events too when work orders are kept)."""
    types = {m.type for r in rules.rules for m in r.watch}
    for r in rules.rules:
        c = r.condition
        if c.kind == "duration":
            types.update(m.type for m in c.stop)
        elif c.kind == "sequence":
            types.update(m.type for m in c.then)
    if any(r.workorder is not None for r in rules.rules):
        types.update({"staff_arrived", "staff_done"})
    return types
