"""Helpers shared by the engine and work-order tests: events on a fixed clock with per-device
sequence numbers, rule and rule-set builders, and runs reduced to (rule, change, time) records.

A plain module, not a test file: the tests import it by name (pytest puts this folder on
``sys.path``), and ``conftest.py`` resets the sequence counters before every test."""

from __future__ import annotations

import math
from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from devices.events import (
    ClutterCleared,
    ClutterDetected,
    DeviceFault,
    DoorOpenTooLong,
    EbikeDetected,
    FallingObject,
    GatewayStatus,
    StaffArrived,
    StaffDone,
    event_id,
)
from rules.engine import Engine
from rules.model import RuleFile
from rules.ruleset import RuleSet

START = datetime(2026, 3, 2, tzinfo=ZoneInfo("Asia/Shanghai"))
# device_kind by event class; anything not listed comes from an ebike blocker
KIND: dict[type, str] = {
    FallingObject: "falling_object_camera",
    ClutterDetected: "clutter_sensor",
    ClutterCleared: "clutter_sensor",
    GatewayStatus: "gateway",
    StaffArrived: "staff_app",
    StaffDone: "staff_app",
}
# the payload fields an event class needs, unless a test gives them
DEFAULTS: dict[type, dict[str, Any]] = {
    EbikeDetected: {"confidence": 0.9, "object_class": "ebike"},
    DoorOpenTooLong: {"held_seconds": 130.0},
    FallingObject: {
        "estimated_floor": 9,
        "estimated_column": 2,
        "confidence": 0.9,
        "floors_spanned": 4,
        "clip_id": "c1",
    },
    ClutterDetected: {"area_share": 0.5, "dwell_seconds": 60.0},
    ClutterCleared: {"present_seconds": 10.0},
    DeviceFault: {"code": "lens"},
    GatewayStatus: {"status": "offline"},
    StaffArrived: {"action": "check"},
    StaffDone: {"action": "check", "outcome": "done"},
}
_seq: defaultdict[str, int] = defaultdict(int)


def reset_seq() -> None:
    """Start every device's sequence numbers again from 1."""
    _seq.clear()


def ev(cls: type, t: float, device: str = "d1", seq: int | None = None, **fields: Any) -> Any:
    if seq is None:
        _seq[device] += 1
        seq = _seq[device]
    data: dict[str, Any] = {"device_kind": KIND.get(cls, "ebike_blocker"), "estate": "e1"}
    data.update(building="b1", floor=3, **DEFAULTS.get(cls, {}))
    data.update(fields)
    return cls(
        event_id=event_id(device, seq),
        device_id=device,
        time=START + timedelta(seconds=t),
        sim_seconds=t,
        seq=seq,
        **data,
    )


def rule(
    rid: str, watch: str | list[dict[str, Any]], cond: dict[str, Any], **kw: Any
) -> dict[str, Any]:
    w = [{"type": watch}] if isinstance(watch, str) else watch
    return {"id": rid, "watch": w, "key": ["device_id"], "condition": cond, **kw}


def ruleset(*rules: dict[str, Any], **top: Any) -> RuleSet:
    return RuleSet(RuleFile.model_validate({"rules": list(rules), **top}))


def feed(engine: Engine, events: list[Any], end: float | None = None) -> list[dict[str, Any]]:
    out = [r for e in events for r in engine.consume(e)]
    return out + engine.finish(end)


def run_engine(
    rules: RuleSet, events: list[Any], end: float | None = None
) -> tuple[Engine, list[dict[str, Any]]]:
    engine = Engine(rules, allowed_lateness=0, max_skew=math.inf)  # events hours apart
    return engine, feed(engine, events, end)


def run(rules: RuleSet, events: list[Any], end: float | None = None) -> list[dict[str, Any]]:
    return run_engine(rules, events, end)[1]


def changes(records: list[dict[str, Any]]) -> list[tuple[str, str, float]]:
    """Alert records as (rule, change, t); work-order records as ("WO", change, t)."""
    return [
        (r["rule_id"] if r["record"] == "alert" else "WO", r["change"], r["sim_seconds"])
        for r in records
    ]
