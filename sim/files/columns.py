"""The columns of a run's four kinds of records, declared once and without pyarrow; the record files
of a folder; a JSON Lines reader that names the file and line of a bad record.

Kinds of record: ``events`` (``devices/events.py``: the envelope, then every event type's own
fields, each null for the other types), ``heartbeats`` (runs of heartbeats,
``devices/liveness.py``), ``truth`` (``sim/world/truth.py``: every key the world
writes today: place, detail, incident outcome), ``alerts`` and ``workorders`` (``rules/alerts.py``,
``rules/workorders.py``). The Parquet schemas of :mod:`sim.files.columnar` and the CSV headers of
``pmsim export`` are both built from :data:`COLUMNS`. A column's kind is one of:

``str``, ``int`` (64-bit), ``float`` (64-bit), ``bool``
    the JSON scalar;
``time``
    an ISO 8601 string with its offset, stored as a timestamp (microseconds, ``+08:00``);
``strs``
    a list of strings (the ``event_ids`` of truth and alerts), stored as a Parquet list;
``json``
    any JSON value (an alert's ``labels``: its values are strings, integers or null), stored as
    its compact JSON text: one string column that DuckDB reads with ``labels->>'estate'``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sim.errors import BadInput

__all__ = [
    "COLUMNS",
    "COLUMN_KINDS",
    "DAY_COLUMN",
    "KINDS",
    "find_source",
    "parse_what",
    "read_jsonl_records",
    "record_file",
]

KINDS: tuple[str, ...] = ("events", "heartbeats", "truth", "alerts", "workorders")
COLUMN_KINDS: tuple[str, ...] = ("str", "int", "float", "bool", "time", "strs", "json")

_EVENTS: tuple[tuple[str, str], ...] = (
    # the envelope (EventBase), in the order events.jsonl writes it
    ("schema_version", "int"),
    ("event_id", "str"),
    ("device_id", "str"),
    ("device_kind", "str"),
    ("estate", "str"),
    ("building", "str"),
    ("floor", "int"),  # clutter sensors; null for the others
    ("time", "time"),
    ("sim_seconds", "float"),
    ("seq", "int"),
    ("type", "str"),
    # each type's own fields
    ("confidence", "float"),  # ebike_detected, falling_object
    ("object_class", "str"),  # ebike_detected
    ("held_seconds", "float"),  # door_released, door_open_too_long
    ("estimated_floor", "int"),  # falling_object ...
    ("estimated_column", "int"),
    ("floors_spanned", "int"),
    ("clip_id", "str"),
    ("area_share", "float"),  # clutter_detected
    ("dwell_seconds", "float"),
    ("present_seconds", "float"),  # clutter_cleared
    ("code", "str"),  # fault
    ("status", "str"),  # gateway_status
    ("ref_event_id", "str"),  # staff_arrived, staff_done
    ("action", "str"),
    ("outcome", "str"),  # staff_done
    ("verdict", "str"),  # staff_review
)

_TRUTH: tuple[tuple[str, str], ...] = (
    ("id", "str"),
    ("kind", "str"),  # incident, false_trigger, response, fault, defect
    ("type", "str"),
    ("estate", "str"),
    # place
    ("building", "str"),
    ("unit", "int"),
    ("floor", "int"),
    ("household", "str"),
    ("elevator", "str"),
    ("device_id", "str"),
    ("start", "time"),
    ("start_s", "float"),
    ("end", "time"),
    ("end_s", "float"),
    # detail: incidents
    ("object", "str"),
    ("column", "int"),
    ("severity", "int"),
    ("outcome", "str"),
    ("removed_by", "str"),
    ("mode", "str"),
    ("code", "str"),
    ("events_lost", "int"),
    # detail: false triggers
    ("cause", "str"),
    # detail: staff responses
    ("company", "str"),
    ("trigger_event", "str"),
    ("arrived_s", "float"),
    ("effective", "bool"),
    # detail: common-area defects (sim/world/upkeep.py)
    ("item", "str"),
    ("fixed_by", "str"),
    # detail: injected faults
    ("probability", "float"),
    ("events", "int"),
    ("heartbeats", "int"),
    ("max_delay_s", "float"),
    ("skew_s", "float"),
    ("hours", "float"),
    # incidents' outcome
    ("covered_by", "str"),
    ("detected", "bool"),
    ("miss_reason", "str"),
    ("event_ids", "strs"),
)

_ALERTS: tuple[tuple[str, str], ...] = (
    ("record", "str"),
    ("alert_id", "str"),
    ("rule_id", "str"),
    ("change", "str"),
    ("state", "str"),
    ("severity", "str"),
    ("time", "time"),
    ("sim_seconds", "float"),
    ("labels", "json"),
    ("started_s", "float"),
    ("hits", "int"),
    ("event_ids", "strs"),
    ("workorder_id", "str"),
)

_WORKORDERS: tuple[tuple[str, str], ...] = (
    ("record", "str"),
    ("workorder_id", "str"),
    ("alert_id", "str"),
    ("rule_id", "str"),
    ("estate", "str"),
    ("team", "str"),
    ("change", "str"),
    ("state", "str"),
    ("time", "time"),
    ("sim_seconds", "float"),
    ("ack_due_s", "float"),
    ("close_due_s", "float"),
    ("reopens", "int"),
    ("within_sla", "bool"),  # acknowledged
    ("reason", "str"),  # closed
    ("on_time", "bool"),  # closed
)

_HEARTBEATS: tuple[tuple[str, str], ...] = (
    # one heartbeat run (devices/liveness.py BeatRun.record): beat j has seq first_seq + j and
    # sim_seconds round(max(0, t0_s + (first_k + j) * period_s + skew_s), 3)
    ("device_id", "str"),
    ("device_kind", "str"),
    ("estate", "str"),
    ("building", "str"),
    ("floor", "int"),
    ("first_seq", "int"),
    ("count", "int"),
    ("start_s", "float"),
    ("period_s", "float"),
    ("t0_s", "float"),
    ("first_k", "int"),
    ("skew_s", "float"),
    ("order", "int"),
)

COLUMNS: dict[str, tuple[tuple[str, str], ...]] = {
    "events": _EVENTS,
    "heartbeats": _HEARTBEATS,
    "truth": _TRUTH,
    "alerts": _ALERTS,
    "workorders": _WORKORDERS,
}

# The simulated seconds that place a record in a day (Parquet row groups are cut by day).
DAY_COLUMN: dict[str, str] = {
    "events": "sim_seconds",
    "heartbeats": "start_s",
    "truth": "start_s",
    "alerts": "sim_seconds",
    "workorders": "sim_seconds",
}


def parse_what(text: str) -> tuple[str, ...]:
    """``events,truth`` -> the kinds, in the order given, each once; unknown names are bad input."""
    kinds: list[str] = []
    for name in (n.strip() for n in text.split(",")):
        if name not in KINDS:
            raise BadInput(f"--what {text}: unknown record kind {name!r} ({', '.join(KINDS)})")
        if name not in kinds:
            kinds.append(name)
    return tuple(kinds)


def find_source(folder: Path, kind: str) -> Path:
    """The folder's ``KIND.jsonl`` (a run's own), else its ``KIND.parquet`` (an export)."""
    if not folder.exists():
        raise BadInput(f"{folder}: no such folder")
    if not folder.is_dir():
        raise BadInput(f"{folder}: not a folder")
    path = record_file(folder, kind)
    if path is not None:
        return path
    raise BadInput(f"{folder}: no {kind}.jsonl or {kind}.parquet (not a run folder or an export)")


def record_file(folder: Path, kind: str, first: str = ".jsonl") -> Path | None:
    """The folder's ``KIND.jsonl`` or ``KIND.parquet``, the one with suffix ``first`` if both are
    there; None if neither is."""
    for suffix in (first, *(s for s in (".jsonl", ".parquet") if s != first)):
        path = folder / f"{kind}{suffix}"
        if path.is_file():
            return path
    return None


def read_jsonl_records(path: Path) -> Iterator[dict[str, Any]]:
    """The JSON objects of a JSON Lines file in file order; a line that is not UTF-8, not JSON or
    not an object is bad input naming ``path:line``."""
    try:
        fh = path.open("rb")
    except OSError as exc:
        raise BadInput(f"{path}: cannot read: {exc.strerror}") from None
    with fh:
        for n, raw in enumerate(fh, 1):
            try:
                doc = json.loads(raw.decode("utf-8"))
            except UnicodeDecodeError:
                raise BadInput(f"{path}:{n}: not UTF-8") from None
            except json.JSONDecodeError as exc:
                raise BadInput(f"{path}:{n}: not JSON: {exc.msg}") from None
            if not isinstance(doc, dict):
                raise BadInput(f"{path}:{n}: not a JSON object")
            yield doc
