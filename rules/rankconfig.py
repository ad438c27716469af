"""The indicator configuration of the red/black rankings (红黑榜): what counts, which way, how much.

A housing office argues about weights, not code, so the weights, directions, list size, the evidence
needed to name an estate, bands and veto items live in a YAML file (``seeds/rankings/default.yaml``;
``seeds/schema/rankings.schema.json`` is :meth:`RankConfig.model_json_schema`). The indicator
vocabulary is fixed (:data:`INDICATORS`) because the simulation must know how to measure each one.

The models check what one file can say; :func:`check_config` checks a request for one period kind
against a run (is a calendar period of that kind covered enough) and raises
:class:`RankConfigError` with the path of the offending field. Nothing about a run's size is an
error: a small district gets shorter lists (:meth:`RankConfig.list_length`), and the run itself is
always ranked.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from rules.periods import CalendarKind, periods

__all__ = [
    "INDICATORS",
    "INDICATOR_NAMES",
    "LIST_SHARE",
    "Band",
    "Direction",
    "Family",
    "IndicatorConf",
    "IndicatorDef",
    "IndicatorName",
    "RankConfig",
    "RankConfigError",
    "Veto",
    "check_config",
]

Direction = Literal["lower_better", "higher_better"]
Family = Literal["rate", "proportion"]


@dataclass(frozen=True)
class IndicatorDef:
    """One indicator of the vocabulary: a count per exposure (``rate``, Poisson-gamma) or a share of
    trials (``proportion``, beta-binomial). ``scale`` turns a rate per exposure unit into ``unit``."""

    name: str
    family: Family
    better: Direction
    scale: float
    unit: str
    exposure: str
    description: str


_DEFS = (
    # How fast, against the district's orders of the same kind in the period (0.5 = the middle):
    # each order scores the share of those that took longer, so every minute counts, not only
    # which side of the SLA it fell, and an estate is not judged by the kinds of order it gets.
    IndicatorDef("ack_speed", "proportion", "higher_better", 1.0,
                 "share of the district's orders of the same kind answered more slowly",
                 "work orders (each worth three trials)",
                 "how fast staff acknowledged each work order, against the district's orders of "
                 "the same kind (never acknowledged: the slowest)"),
    IndicatorDef("settle_speed", "proportion", "higher_better", 1.0,
                 "share of the district's orders of the same kind settled more slowly",
                 "work orders (each worth three trials)",
                 "how fast staff settled each work order (done, or dismissed as a false alarm), "
                 "against the district's orders of the same kind (never settled by staff: the "
                 "slowest)"),
    IndicatorDef("inspection_pass", "proportion", "higher_better", 1.0,
                 "share of inspected work orders", "inspected work orders",
                 "closed work orders the office's monthly inspection found really fixed"),
    IndicatorDef("site_defects", "proportion", "lower_better", 1.0,
                 "share of inspected corridors", "corridors inspected",
                 "corridors where the office's monthly site inspection found something out of "
                 "order (an emergency light out, a fire door propped open, an extinguisher "
                 "missing)"),
    IndicatorDef("ack_within_sla", "proportion", "higher_better", 1.0, "share of work orders",
                 "work orders", "work orders acknowledged within their SLA"),
    IndicatorDef("closed_on_time", "proportion", "higher_better", 1.0, "share of work orders",
                 "work orders", "work orders staff closed within their SLA"),
    IndicatorDef("falling_objects", "rate", "lower_better", 100.0, "per 100 camera-days",
                 "camera-days", "throws staff confirmed on the camera's clip"),
    IndicatorDef("ebike_entries", "rate", "lower_better", 100.0, "per 100 blocker-days",
                 "blocker-days", "e-bike entries the elevator blockers caught"),
    IndicatorDef("clutter_hours", "rate", "lower_better", 1.0, "hours per corridor-day",
                 "corridor-days", "hours of hallway clutter"),
    IndicatorDef("device_uptime", "proportion", "higher_better", 1.0, "share of device-hours",
                 "device-hours", "device-hours up"),
    IndicatorDef("reopens", "rate", "lower_better", 1.0, "per work order done",
                 "work orders staff reported done", "re-opens after staff reported an order done"),
    # Timeliness and inspections standardised for the kinds of order an estate gets (a 30-minute
    # door alarm and a one-day repeat visit are not equally easy to answer in time): late or
    # failed orders against what the district's rate for each kind would give (1.0 = the district).
    IndicatorDef("late_acks", "rate", "lower_better", 1.0, "x the district's rate",
                 "expected late acknowledgements",
                 "work orders not acknowledged within their SLA, against the district's rate "
                 "for the same kinds of order"),
    IndicatorDef("late_settlements", "rate", "lower_better", 1.0, "x the district's rate",
                 "expected late settlements",
                 "work orders not settled by staff within their SLA, against the district's rate "
                 "for the same kinds of order"),
    IndicatorDef("failed_inspections", "rate", "lower_better", 1.0, "x the district's rate",
                 "expected failed inspections",
                 "inspected work orders found not fixed, against the district's rate for the same "
                 "kinds of order"),
    IndicatorDef("repeat_unhandled", "rate", "lower_better", 1.0, "per estate-month",
                 "estate-periods", "confirmed repeat throws left without a staff visit"),
)  # fmt: skip

INDICATORS: dict[str, IndicatorDef] = {d.name: d for d in _DEFS}
# A list names at most this share of the scored estates (and at most ``list_size``), but one
# estate whenever two or more are scored: small districts get shorter lists, never none.
LIST_SHARE = 0.25
INDICATOR_NAMES: tuple[str, ...] = tuple(INDICATORS)
IndicatorName = Literal[INDICATOR_NAMES]  # type: ignore[valid-type]


class RankConfigError(ValueError):
    """A configuration that cannot work for this run: ``loc`` is the field's path in the file."""

    def __init__(self, loc: Sequence[int | str], message: str) -> None:
        super().__init__(message)
        self.loc = tuple(loc)
        self.message = message


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class IndicatorConf(_Strict):
    """How much one indicator counts; ``direction`` overrides which way is better."""

    weight: Annotated[float, Field(ge=0.0)]
    direction: Direction | None = None


class Band(_Strict):
    """A score band: scores at or above ``min`` (and below the band above) get ``name``."""

    name: Annotated[str, Field(min_length=1, max_length=16)]
    min: Annotated[float, Field(ge=0.0, le=100.0)]


class Veto(_Strict):
    """A veto item (一票否决): when an estate's observed ``count`` (or raw ``rate``, in the
    indicator's unit) is ``above`` or ``below`` a level, its score is capped at ``cap`` and it cannot
    be on the red list. Observed, not shrunk: a veto is about a fact, not an estimate."""

    indicator: IndicatorName
    above: float | None = None
    below: float | None = None
    on: Literal["count", "rate"] = "count"
    cap: Annotated[float, Field(ge=0.0, le=100.0)] = 59.0
    reason: str = ""

    @model_validator(mode="after")
    def _one_side(self) -> Veto:
        if (self.above is None) == (self.below is None):
            raise ValueError("a veto takes exactly one of 'above' or 'below'")
        return self


def _all_periods() -> list[CalendarKind]:
    return ["month", "quarter", "half"]


def _default_bands() -> list[Band]:
    return [Band(name="A", min=90), Band(name="B", min=80), Band(name="C", min=70),
            Band(name="D", min=0)]  # fmt: skip


class RankConfig(_Strict):
    """One indicator configuration file."""

    version: Literal[1] = 1
    indicators: dict[IndicatorName, IndicatorConf] = Field(min_length=1)
    periods: list[CalendarKind] = Field(default_factory=_all_periods, min_length=1)
    min_coverage: Annotated[float, Field(gt=0.0, le=1.0)] = 0.5
    list_size: Annotated[int, Field(ge=1)] = 3
    # Above 0.5 so no estate can be named on both lists (the worst k and the best k are disjoint).
    evidence: Annotated[float, Field(gt=0.5, le=1.0)] = 0.8
    bands: list[Band] = Field(default_factory=_default_bands, min_length=1)
    vetoes: list[Veto] = Field(default_factory=list)
    zero_at: Annotated[float, Field(gt=1.0)] = 5.0
    fallback_strength: Annotated[float, Field(gt=0.0)] = 1.0
    draws: Annotated[int, Field(ge=200, le=100_000)] = 2000
    seed: Annotated[int, Field(ge=0)] = 0

    @field_validator("indicators")
    @classmethod
    def _some_weight(cls, v: dict[str, IndicatorConf]) -> dict[str, IndicatorConf]:
        if not any(c.weight > 0 for c in v.values()):
            raise ValueError("at least one indicator needs a positive weight")
        return v

    @field_validator("periods")
    @classmethod
    def _unique_periods(cls, v: list[CalendarKind]) -> list[CalendarKind]:
        if len(set(v)) != len(v):
            raise ValueError("each period kind at most once")
        return v

    @field_validator("bands")
    @classmethod
    def _ordered_bands(cls, v: list[Band]) -> list[Band]:
        if len({b.name for b in v}) != len(v):
            raise ValueError("band names must be unique")
        if any(a.min <= b.min for a, b in itertools.pairwise(v)):
            raise ValueError("bands go from the highest 'min' down, each strictly lower")
        if v[-1].min != 0:
            raise ValueError("the last band must have min: 0 so every score has a band")
        return v

    @field_validator("vetoes")
    @classmethod
    def _veto_configured(cls, v: list[Veto], info: ValidationInfo) -> list[Veto]:
        configured = info.data.get("indicators") or {}
        for i, veto in enumerate(v):
            if veto.indicator not in configured:
                raise ValueError(
                    f"vetoes[{i}]: {veto.indicator!r} is not among the configured indicators"
                    " (add it, with weight 0 if it should not count in the score)"
                )
        return v

    def direction(self, name: str) -> Direction:
        """Which way is better for ``name``: the override, else the vocabulary's."""
        conf = self.indicators.get(name)
        if conf is not None and conf.direction is not None:
            return conf.direction
        return INDICATORS[name].better

    def list_length(self, scored: int) -> int:
        """How many estates each list may name among ``scored`` estates: at most ``list_size``
        and at most :data:`LIST_SHARE` of them, but at least one when two or more are scored
        (two estates: one on each list). One estate alone has nothing to be compared with: 0."""
        if scored < 2:
            return 0
        return max(1, min(self.list_size, int(scored * LIST_SHARE)))

    def band(self, score: float) -> str:
        """The band of a score (bands run from the highest ``min`` down)."""
        for b in self.bands:
            if score >= b.min:
                return b.name
        return self.bands[-1].name


def check_config(
    cfg: RankConfig,
    run_days: int,
    period: CalendarKind | None = None,
    *,
    start: date | None = None,
) -> None:
    """Check a request for calendar periods of one kind (or, when ``period`` is None, of every kind
    in ``cfg.periods``) against a run of ``run_days`` days: the kind must be configured and, with
    ``start``, at least one calendar period of it covered enough (``min_coverage``) to be ranked
    (the same rule :func:`rules.periods.periods` applies, and no other)."""
    if period is not None and period not in cfg.periods:
        raise RankConfigError(
            ("periods",), f"period {period!r} is not among the configured periods {cfg.periods}"
        )
    if start is None:
        return
    for kind in [period] if period is not None else list(cfg.periods):
        if not periods(start, run_days, [kind], cfg.min_coverage):
            raise RankConfigError(
                ("periods", cfg.periods.index(kind)),
                f"no calendar {kind} has at least {cfg.min_coverage:.0%} of its days inside the"
                f" run ({run_days} days from {start.isoformat()}); see min_coverage",
            )
