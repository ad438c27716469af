"""Rule files: what a housing office writes to turn device events into alerts and work orders.

A rule watches some events (type, device kind, a filter in the safe expression language of
:mod:`rules.expr`), groups them by a key (estate + building + device, a corridor...), and fires on a
condition: ``event``, ``count``, ``threshold``, ``duration``, ``absence``, ``sequence`` or ``repeat``.
Modifiers shape the alert: ``for``, ``keep_firing_for``, ``cooldown``, ``active_hours``, escalation,
inhibition; an optional work order follows it. ``detects`` names the incident types the rule is
meant to catch, which is how pmsim scores it against the truth.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from devices.events import EVENT_TYPES, DeviceKind

__all__ = [
    "INCIDENT_TYPES",
    "MAX_DURATION",
    "AbsenceCond",
    "Condition",
    "CountCond",
    "DurationCond",
    "Escalation",
    "EventCond",
    "Inhibit",
    "Match",
    "RepeatCond",
    "Rule",
    "RuleFile",
    "SequenceCond",
    "Severity",
    "ThresholdCond",
    "WorkOrderSpec",
    "format_duration",
    "parse_duration",
]

INCIDENT_TYPES: tuple[str, ...] = (
    "ebike_entry",
    "battery_entry",
    "throw",
    "clutter",
    "device_silent",
    "device_fault",
    "gateway_outage",
)

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")
_DURATION = re.compile(r"^(?:\d+(?:\.\d+)?(?:ms|s|m|h|d|w))+$")


def parse_duration(value: Any) -> Any:
    """``"90s"``, ``"10m"``, ``"1h30m"``, ``"7d"`` or a number of seconds -> seconds."""
    if isinstance(value, bool):
        raise ValueError("a duration is a number of seconds or a string like '10m'")
    if isinstance(value, int | float):
        try:
            return float(value)
        except OverflowError:
            raise ValueError(f"duration {value} is too long") from None
    if isinstance(value, str):
        text = value.replace(" ", "")
        if not _DURATION.match(text):
            raise ValueError(
                f"bad duration {value!r}: use numbers with units, e.g. 90s, 10m, 1h30m"
            )
        return sum(float(n) * _UNITS[u] for n, u in _PART.findall(text))
    return value


def format_duration(seconds: float) -> str:
    """The inverse of :func:`parse_duration` for messages: 65100 -> ``18h5m``."""
    if seconds == 0:
        return "0s"
    out = ""
    rest = float(seconds)
    for unit, size in (("d", 86400.0), ("h", 3600.0), ("m", 60.0)):
        n = int(rest // size)
        if n:
            out += f"{n}{unit}"
            rest -= n * size
    if rest or not out:
        out += f"{rest:g}s"
    return out


#: The longest duration a rule may name (a year and a day): windows, timers and SLAs beyond it only
#: hold state for nothing. Every count and list below is bounded too (``pmsim schema rules``).
MAX_DURATION = 366 * 86400.0
Duration = Annotated[float, BeforeValidator(parse_duration), Field(ge=0.0, le=MAX_DURATION)]
PositiveDuration = Annotated[float, BeforeValidator(parse_duration), Field(gt=0.0, le=MAX_DURATION)]
Ident = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")]
Label = Annotated[str, Field(min_length=1, max_length=64)]
Severity = Literal["info", "warning", "critical"]
EventType = Literal[EVENT_TYPES]  # type: ignore[valid-type]
IncidentType = Literal[INCIDENT_TYPES]  # type: ignore[valid-type]


class _Strict(BaseModel):
    model_config = ConfigDict(
        frozen=True, extra="forbid", populate_by_name=True, allow_inf_nan=False
    )


class Match(_Strict):
    """Which events: a type, optionally a device kind, optionally a filter expression."""

    type: EventType
    device_kind: DeviceKind | None = None
    where: Annotated[str, Field(max_length=1000)] | None = None


class EventCond(_Strict):
    """Every matching event triggers."""

    kind: Literal["event"]


class CountCond(_Strict):
    """At least ``n`` matching events within ``window`` (inclusive: an event exactly ``window``
    seconds before the latest still counts)."""

    kind: Literal["count"]
    n: Annotated[int, Field(gt=0, le=1_000_000)]
    window: PositiveDuration


class ThresholdCond(_Strict):
    """A value with hysteresis: raise at ``raise``, clear only past ``clear``."""

    kind: Literal["threshold"]
    field: Label
    direction: Literal["above", "below"] = "above"
    raise_level: float = Field(alias="raise")
    clear_level: float = Field(alias="clear")


class DurationCond(_Strict):
    """A state lasting at least ``at_least``, from paired start/stop events (the rule's watch
    gives the start events)."""

    kind: Literal["duration"]
    stop: list[Match] = Field(min_length=1, max_length=32)
    at_least: PositiveDuration


class AbsenceCond(_Strict):
    """No matching event for ``after``: a device or gateway gone quiet."""

    kind: Literal["absence"]
    after: PositiveDuration


class SequenceCond(_Strict):
    """A (the watch) then B (``then``) within ``within``: fire when B is ``missing`` in time, or
    when it is ``followed`` in time."""

    kind: Literal["sequence"]
    then: list[Match] = Field(min_length=1, max_length=32)
    within: PositiveDuration
    expect: Literal["missing", "followed"] = "missing"


class RepeatCond(_Strict):
    """The same key firing rule ``rule`` at least ``k`` times within ``within``."""

    kind: Literal["repeat"]
    rule: Ident
    k: Annotated[int, Field(ge=2, le=10_000)]
    within: PositiveDuration


Condition = Annotated[
    EventCond | CountCond | ThresholdCond | DurationCond | AbsenceCond | SequenceCond | RepeatCond,
    Field(discriminator="kind"),
]


class Escalation(_Strict):
    after: PositiveDuration
    severity: Severity


class Inhibit(_Strict):
    """While an alert of ``rule`` is firing, no new alert of this rule starts for keys whose
    ``equal`` labels match it."""

    rule: Ident
    equal: list[Label] = Field(min_length=1, max_length=16)


class WorkOrderSpec(_Strict):
    team: Label
    ack_sla: PositiveDuration
    close_sla: PositiveDuration
    reopen_within: Duration = 86400.0


class Rule(_Strict):
    id: Ident
    description: Annotated[str, Field(max_length=2000)] = ""
    watch: list[Match] = Field(default_factory=list, max_length=32)
    key: list[Label] = Field(min_length=1, max_length=16)
    condition: Condition
    severity: Severity = "warning"
    for_: Duration = Field(0.0, alias="for")
    keep_firing_for: Duration = 0.0
    cooldown: Duration = 0.0
    active_hours: (
        tuple[Annotated[float, Field(ge=0, le=24)], Annotated[float, Field(ge=0, le=24)]] | None
    ) = None
    escalate: list[Escalation] = Field(default_factory=list, max_length=8)
    inhibited_by: list[Inhibit] = Field(default_factory=list, max_length=16)
    workorder: WorkOrderSpec | None = None
    detects: list[IncidentType] = Field(default_factory=list, max_length=len(INCIDENT_TYPES))
    grace: Duration = 600.0


class RuleFile(_Strict):
    version: Literal[1] = 1
    allowed_lateness: Duration = 60.0
    # how far one event may be from the engine's clock (rules.eventtime); None: one hour, or 60
    # allowed latenesses if longer
    max_skew: PositiveDuration | None = None
    rules: list[Rule] = Field(min_length=1, max_length=1000)
