"""Run records as Parquet (sim/files/columnar.py), on records written here: the schemas match the
event models, every record comes back as it went in, files are cut by day and reproducible."""

from __future__ import annotations

import json
import sys
import typing
from pathlib import Path
from typing import Any

import pytest

from devices.events import DeviceEvent, event_schema
from sim.errors import BadInput
from sim.files.columnar import (
    iter_records,
    read_delivered,
    read_parquet,
    schema,
    write_parquet,
)
from sim.files.columns import COLUMNS, KINDS, find_source, parse_what

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")

T0 = "2026-03-02T00:00:00+08:00"


def _kind_of(prop: dict[str, Any]) -> str:
    """A JSON Schema property of the event schema -> the column kind it needs."""
    options = [p for p in prop.get("anyOf", [prop]) if p.get("type") != "null"]
    assert len(options) == 1, prop
    p = options[0]
    if "enum" in p:  # a Literal: the kind of its values
        (kind,) = {type(v) for v in p["enum"]}
        return {int: "int", str: "str"}[kind]
    if p.get("format") == "date-time":
        return "time"
    return {"integer": "int", "number": "float", "string": "str", "boolean": "bool"}[p["type"]]


def test_the_event_columns_are_every_field_of_every_event_type_with_its_type() -> None:
    columns = dict(COLUMNS["events"])
    seen: set[str] = set()
    models = event_schema()["$defs"]
    assert len(models) == len(typing.get_args(DeviceEvent))
    for model, doc in models.items():
        for name, prop in doc["properties"].items():
            assert name in columns, f"{model}.{name} has no column"
            assert columns[name] == _kind_of(prop), f"{model}.{name}"
            seen.add(name)
    assert seen == set(columns)  # and no column that no event type has


def test_the_schemas_are_explicit_and_typed() -> None:
    ev = schema("events")
    assert ev.field("time").type == pa.timestamp("us", tz="+08:00")
    assert ev.field("floor").type == pa.int64() and ev.field("confidence").type == pa.float64()
    assert schema("truth").field("event_ids").type == pa.list_(pa.string())
    assert schema("alerts").field("labels").metadata == {b"pmsim.encoding": b"json"}
    for kind in KINDS:
        assert schema(kind).names[-2:] == ["_keys", "_extra"]


def _roundtrip(kind: str, records: list[dict[str, Any]], path: Path) -> list[dict[str, Any]]:
    assert write_parquet(kind, records, path) == len(records)
    return list(read_parquet(path))


def _text(records: list[dict[str, Any]]) -> list[str]:
    return [json.dumps(r, ensure_ascii=False, separators=(",", ":")) for r in records]


def test_absent_and_null_keys_unknown_keys_odd_types_and_offsets_come_back(
    tmp_path: Path,
) -> None:
    records: list[dict[str, Any]] = [
        {"id": "T1", "kind": "incident", "start": T0, "start_s": 0.0, "end": None, "end_s": None},
        {"id": "T2", "kind": "response", "household": None, "event_ids": []},  # null vs absent
        {"kind": "fault", "id": "T3", "end_s": 5, "hours": 8},  # ints in float columns, order
        {"id": "T4", "severity": "high", "unit": 2**70, "effective": 1},  # other types
        {"id": "T5", "start": "2026-03-02T00:00:00Z", "end": "2026-03-02T08:00:00.5+08:00"},
        {"id": "T6", "start": "2026-03-02", "end": "yesterday", "event_ids": ["a", 1]},
        {"id": "T7", "new_detail": {"nested": [1, 2.5, None]}, "estate": "示范小区"},
        {"id": "T8", "_keys": "mine", "_extra": None},  # our own column names, as data
    ]
    back = _roundtrip("truth", records, tmp_path / "truth.parquet")
    assert back == records
    assert _text(back) == _text(records)  # same key order, ints stay ints: the same JSON Lines
    table = pq.read_table(tmp_path / "truth.parquet")
    assert table.column("end_s").to_pylist()[2] == 5.0  # the column has the number too
    assert table.column("start").to_pylist()[4] is not None  # and the instant of a UTC time
    assert table.column("_extra").to_pylist()[0] is None  # nothing extra on a plain record


def test_events_and_alerts_round_trip(tmp_path: Path) -> None:
    base = {
        "schema_version": 1,
        "event_id": "d:0",
        "device_id": "d",
        "device_kind": "falling_object_camera",
        "estate": "e",
        "building": "b01",
        "floor": None,
        "time": "2026-03-02T00:00:05.744000+08:00",
        "sim_seconds": 5.744,
        "seq": 0,
    }
    events = [
        {**base, "type": "heartbeat"},
        {**base, "type": "falling_object", "estimated_floor": 9, "estimated_column": 2}
        | {"confidence": 0.8, "floors_spanned": 4, "clip_id": "c1"},
        {**base, "floor": 6, "type": "clutter_detected", "area_share": 0.4, "dwell_seconds": 60.0},
    ]
    assert _roundtrip("events", events, tmp_path / "events.parquet") == events
    alerts = [
        {"record": "alert", "rule_id": "r", "time": None, "sim_seconds": 1.0}
        | {"labels": {"estate": "e", "floor": 3, "unit": None}, "event_ids": ["d:0"]},
        {"record": "alert", "rule_id": "r", "labels": [], "workorder_id": None},
    ]
    assert _roundtrip("alerts", alerts, tmp_path / "alerts.parquet") == alerts


def test_one_row_group_a_day_in_the_original_order_and_the_same_bytes(tmp_path: Path) -> None:
    seconds = [0.0, 10.0, 86399.0, 86400.0, 86000.0, 90000.0, 2 * 86400.0 + 1, 5.0]
    recs = [
        {"record": "workorder", "workorder_id": f"W{i}", "sim_seconds": s}
        for i, s in enumerate(seconds)
    ]
    a, b = tmp_path / "a.parquet", tmp_path / "b.parquet"
    assert _roundtrip("workorders", recs, a) == recs
    write_parquet("workorders", iter(recs), b)
    assert a.read_bytes() == b.read_bytes()
    meta = pq.ParquetFile(a).metadata
    # a late record stays in the day being written: days are never reopened
    assert [meta.row_group(i).num_rows for i in range(meta.num_row_groups)] == [3, 3, 2]
    assert meta.created_by.startswith("parquet-cpp-arrow")
    assert b"pmsim.records" in pq.read_schema(a).metadata


def test_no_records_give_an_empty_file(tmp_path: Path) -> None:
    assert _roundtrip("alerts", [], tmp_path / "alerts.parquet") == []


def test_jsonl_and_parquet_read_the_same(tmp_path: Path) -> None:
    recs = [{"record": "alert", "rule_id": "r", "hits": 1}, {"record": "alert", "hits": 2}]
    src = tmp_path / "alerts.jsonl"
    src.write_text("".join(line + "\n" for line in _text(recs)), encoding="utf-8")
    write_parquet("alerts", iter_records(src), tmp_path / "alerts.parquet")
    assert list(iter_records(tmp_path / "alerts.parquet")) == list(iter_records(src)) == recs


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b'{"a":1}\n{"a":\n', "alerts.jsonl:2: not JSON"),
        (b'{"a":1}\n\n', "alerts.jsonl:2: not JSON"),
        (b'{"a":1}\n[1,2]\n', "alerts.jsonl:2: not a JSON object"),
        (b'{"a":1}\n{"a":1}\n{"a":"\xff"}\n', "alerts.jsonl:3: not UTF-8"),
    ],
)
def test_a_bad_line_names_the_file_and_line(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "alerts.jsonl"
    path.write_bytes(content)
    with pytest.raises(BadInput, match=message):
        write_parquet("alerts", iter_records(path), tmp_path / "alerts.parquet")


def test_bad_parquet_files_are_bad_input(tmp_path: Path) -> None:
    junk = tmp_path / "junk.parquet"
    junk.write_text("not parquet")
    with pytest.raises(BadInput, match="not a Parquet file"):
        list(read_parquet(junk))
    foreign = tmp_path / "foreign.parquet"
    pq.write_table(pa.table({"a": [1]}), foreign)
    with pytest.raises(BadInput, match="no _keys column"):
        list(read_parquet(foreign))
    with pytest.raises(BadInput, match=r"neither \.jsonl nor \.parquet"):
        iter_records(tmp_path / "events.csv")


def test_sources_and_kinds(tmp_path: Path) -> None:
    assert parse_what("truth, events,truth") == ("truth", "events")
    with pytest.raises(BadInput, match="unknown record kind 'event'"):
        parse_what("event")
    with pytest.raises(BadInput, match="no such folder"):
        find_source(tmp_path / "nope", "events")
    (tmp_path / "events.parquet").write_bytes(b"")
    assert find_source(tmp_path, "events").name == "events.parquet"
    (tmp_path / "events.jsonl").write_bytes(b"")
    assert find_source(tmp_path, "events").name == "events.jsonl"  # a run's own first
    with pytest.raises(BadInput, match=r"no truth\.jsonl or truth\.parquet"):
        find_source(tmp_path, "truth")


def test_without_pyarrow_one_line_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    with pytest.raises(BadInput) as err:
        write_parquet("events", [], tmp_path / "events.parquet")
    assert str(err.value) == "Parquet needs pyarrow: pip install 'pmsim[data]'"
    assert not (tmp_path / "events.parquet").exists()


def test_a_string_parquet_cannot_hold_is_bad_input(tmp_path: Path) -> None:
    lone = json.loads('"\\ud800"')  # valid JSON, not UTF-8
    recs = [{"record": "alert"}, {"record": "alert", "rule_id": lone}]
    with pytest.raises(BadInput, match="alerts records 1-2: not storable in Parquet"):
        write_parquet("alerts", recs, tmp_path / "alerts.parquet")


def test_delivery_times_ride_along_with_events_and_are_no_key(tmp_path: Path) -> None:
    recs = [
        {"event_id": f"d:{i}", "sim_seconds": float(i), "delivered_s": "mine"} for i in range(3)
    ]
    path = tmp_path / "events.parquet"
    assert write_parquet("events", recs, path, [0.5, 1.25, 2.0]) == 3
    assert list(read_parquet(path)) == recs  # a key of that name is data, in _extra
    times = read_delivered(path)
    assert times is not None and list(times) == [0.5, 1.25, 2.0]
    write_parquet("events", recs, path)
    assert read_delivered(path) is None  # null throughout: unknown
    with pytest.raises(BadInput, match="no delivery time for record 3"):
        write_parquet("events", recs, path, [0.5, 1.25])
    with pytest.raises(BadInput, match="more delivery times than the 3 records"):
        write_parquet("events", recs, path, [0.5, 1.25, 2.0, 3.0])
