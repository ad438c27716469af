"""A run's records as Parquet: explicit schemas, byte-for-byte reproducible files, and one reader
for Parquet and JSON Lines alike, so that either format feeds the same consumers.

Schemas. :func:`schema` builds each kind's pyarrow schema from the columns declared in
:mod:`sim.files.columns` (never inferred from the data): every field of every event type in
``devices/events.py`` (the envelope typed and non-null in practice, each type's own fields null
on the other types' rows), and every key of truth, alert and work-order records, typed. Nested
values: ``event_ids`` is a Parquet list of strings; an alert's ``labels`` is stored as its compact
JSON text (its values mix strings, integers and null), which DuckDB reads with
``labels->>'estate'``. Times are timestamps (microseconds, ``+08:00``). Columns of our own follow
the typed ones:

``delivered_s`` (events only)
    the simulated second the event was delivered, from the run's ``events.delivered`` (null when
    the events came without one, as with ``--heartbeats``): where the heartbeat runs go between
    the events, so that an export replays like its run (:mod:`sim.files.beatstream`). It is not a
    key of the record; :func:`read_delivered` reads it.

``_keys``
    the record's keys in order, as a JSON array (a handful of distinct values, dictionary-encoded
    to almost nothing). It tells a key that is absent (``confidence`` on a heartbeat) from one
    that is null (an incident's ``miss_reason``), and restores the key order.
``_extra``
    a JSON object, null on nearly every row, of what the typed columns cannot give back exactly:
    keys the schema does not know (a detail key the world adds later), values of another type (a
    string in an integer column; an integer in a float column, which keeps the float too), a time
    written with another offset (the column keeps the instant too).

So a record read back equals the record written, key for key, and JSON Lines written from it is
the same text as the original.

Layout. One file per kind with a fixed name (``events.parquet``, ``truth.parquet``, ...), the rows
in their original order, one row group per simulated day (cut where ``sim_seconds``, or ``start_s``
for truth, first reaches a new day; at most 2**20 rows a group), zstd-compressed. A day's row
group carries min/max statistics on the times, so DuckDB skips the other days of a day's query.
Not hive partitions by estate: those would need an ordinal column and a merge to give back the
delivery order, spread a small run over one small file per estate (each compressing worse), and
turn the partition column into a dictionary-typed directory name; an estate's rows are cheap to
filter in one file. Deterministic: pyarrow stamps no time and names no random file here, so the
same records under the same pyarrow version give the same bytes.

pyarrow is imported only when needed; without it, :class:`~sim.errors.BadInput` says
``pip install 'pmsim[data]'``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from sim.errors import BadInput
from sim.files.columns import COLUMNS, DAY_COLUMN, read_jsonl_records

__all__ = [
    "DELIVERED_COLUMN",
    "NEEDS_PYARROW",
    "ROWS_PER_GROUP",
    "iter_records",
    "read_delivered",
    "read_parquet",
    "require_pyarrow",
    "schema",
    "write_parquet",
]

NEEDS_PYARROW = "Parquet needs pyarrow: pip install 'pmsim[data]'"
DELIVERED_COLUMN = "delivered_s"  # events only: when each was delivered (events.delivered)
_OWN = ("_keys", "_extra", DELIVERED_COLUMN)
ROWS_PER_GROUP = 1 << 20  # at most, within a day
ZSTD_LEVEL = 9
TZ = "+08:00"
_TZINFO = timezone(timedelta(hours=8))
_DAY = 86400.0
_INT64 = (-(2**63), 2**63 - 1)
_JSON_MARK = {b"pmsim.encoding": b"json"}
# Near-monotonic times as deltas, floats split by byte: half the size of dictionary pages.
_ENCODINGS = {"time": "DELTA_BINARY_PACKED", "float": "BYTE_STREAM_SPLIT"}


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _arrow() -> tuple[Any, Any]:
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise BadInput(NEEDS_PYARROW) from None
    return pa, pq


def require_pyarrow() -> None:
    """Bad input (``pip install 'pmsim[data]'``) unless pyarrow imports."""
    _arrow()


def _arrow_type(pa: Any, kind: str) -> Any:
    types = {
        "str": pa.string(),
        "int": pa.int64(),
        "float": pa.float64(),
        "bool": pa.bool_(),
        "time": pa.timestamp("us", tz=TZ),
        "strs": pa.list_(pa.string()),
        "json": pa.string(),
    }
    return types[kind]


def schema(kind: str) -> Any:
    """The pyarrow schema of one kind of record (``events``, ``truth``, ``alerts``,
    ``workorders``): its typed columns, ``delivered_s`` for events, then ``_keys`` and
    ``_extra``."""
    pa, _ = _arrow()
    fields = [
        pa.field(name, _arrow_type(pa, ck), metadata=_JSON_MARK if ck == "json" else None)
        for name, ck in COLUMNS[kind]
    ]
    if kind == "events":
        fields.append(pa.field(DELIVERED_COLUMN, pa.float64()))
    fields.append(pa.field("_keys", pa.string(), nullable=False))
    fields.append(pa.field("_extra", pa.string()))
    return pa.schema(fields, metadata={"pmsim.records": kind})


def _fit(kind: str, v: Any) -> tuple[Any, bool]:
    """``(value for the column, whether the column gives v back exactly)``; ``(None, False)``
    when the column cannot hold v at all."""
    if v is None:
        return None, True
    t = type(v)
    if kind == "str":
        return (v, True) if t is str else (None, False)
    if kind == "float":
        if t is float:
            return v, True
        if t is int and abs(v) <= 2**53:
            return float(v), False  # the column has the number, _extra the integer
        return None, False
    if kind == "int":
        return (v, True) if t is int and _INT64[0] <= v <= _INT64[1] else (None, False)
    if kind == "bool":
        return (v, True) if t is bool else (None, False)
    if kind == "time":
        if t is not str:
            return None, False
        try:
            parsed = datetime.fromisoformat(v)
            if parsed.tzinfo is None:
                return None, False
            local = parsed.astimezone(_TZINFO)
        except (ValueError, OverflowError):
            return None, False
        return local, local.isoformat() == v
    if kind == "strs":
        ok = t is list and all(type(s) is str for s in v)
        return (v, True) if ok else (None, False)
    return _dumps(v), True  # json


def _day(v: Any) -> int | None:
    if type(v) in (int, float) and math.isfinite(v):
        return int(v // _DAY)
    return None


def write_parquet(
    kind: str,
    records: Iterable[dict[str, Any]],
    path: Path,
    delivered: Iterable[float] | None = None,
) -> int:
    """Write the records of one kind to ``path`` as Parquet (see the module); returns how many.
    ``records`` is consumed once, a day at a time: memory holds one row group. ``delivered``,
    for events, gives each record's delivery time (one each, in order; else the column is null).
    """
    pa, pq = _arrow()
    sch = schema(kind)
    columns = COLUMNS[kind]
    kinds = dict(columns)
    day_column = DAY_COLUMN[kind]
    buf: dict[str, list[Any]] = {name: [] for name, _ in columns}
    keys_buf: list[str] = []
    extra_buf: list[str | None] = []
    own: dict[str, list[Any]] = {DELIVERED_COLUMN: []} if kind == "events" else {}
    times = None if delivered is None else iter(delivered)
    if times is not None and kind != "events":
        raise ValueError(f"delivery times are for events, not {kind}")
    keys_text: dict[tuple[str, ...], str] = {}
    n = 0
    day: int | None = None

    def flush(writer: Any) -> None:
        data = {**buf, **own, "_keys": keys_buf, "_extra": extra_buf}
        try:
            table = pa.Table.from_pydict(data, schema=sch)
        except (pa.ArrowException, UnicodeEncodeError) as exc:  # e.g. a lone surrogate
            first = n - len(keys_buf) + 1
            raise BadInput(f"{kind} records {first}-{n}: not storable in Parquet: {exc}") from None
        writer.write_table(table, row_group_size=ROWS_PER_GROUP)
        for values in buf.values():
            values.clear()
        for values in own.values():
            values.clear()
        keys_buf.clear()
        extra_buf.clear()

    encodings = {name: _ENCODINGS[ck] for name, ck in columns if ck in _ENCODINGS}
    encodings.update((name, _ENCODINGS["float"]) for name in own)
    with pq.ParquetWriter(
        path,
        sch,
        compression="zstd",
        compression_level=ZSTD_LEVEL,
        use_dictionary=[name for name in sch.names if name not in encodings],
        column_encoding=encodings,
        write_statistics=True,
    ) as writer:
        for rec in records:
            d = _day(rec.get(day_column))
            if d is not None and (day is None or d > day):
                if keys_buf and day is not None:
                    flush(writer)
                day = d
            elif len(keys_buf) >= ROWS_PER_GROUP:
                flush(writer)
            extra: dict[str, Any] = {}
            for name, ck in columns:
                if name not in rec:
                    buf[name].append(None)
                    continue
                value, exact = _fit(ck, rec[name])
                buf[name].append(value)
                if not exact:
                    extra[name] = rec[name]
            for key in rec:
                if key not in kinds:
                    extra[key] = rec[key]
            order = tuple(rec)
            text = keys_text.get(order)
            if text is None:
                text = keys_text[order] = _dumps(list(order))
            keys_buf.append(text)
            extra_buf.append(_dumps(extra) if extra else None)
            n += 1
            if own:
                own[DELIVERED_COLUMN].append(None if times is None else _next_time(times, n))
        if keys_buf:
            flush(writer)
    if times is not None and next(times, None) is not None:
        raise BadInput(f"{kind}: more delivery times than the {n} records")
    return n


def _next_time(times: Iterator[float], n: int) -> float:
    at = next(times, None)
    if at is None:
        raise BadInput(f"events: no delivery time for record {n} (fewer times than events)")
    return float(at)


def read_parquet(path: Path) -> Iterator[dict[str, Any]]:
    """The records of a Parquet file written by :func:`write_parquet`, in their original order,
    as the dicts that were written."""
    pa, pq = _arrow()
    try:
        pf = pq.ParquetFile(path)
    except FileNotFoundError:
        raise BadInput(f"{path}: no such file") from None
    except (OSError, pa.ArrowException) as exc:
        raise BadInput(f"{path}: not a Parquet file: {exc}") from None
    sch = pf.schema_arrow
    if "_keys" not in sch.names:
        raise BadInput(f"{path}: not a pmsim export (no _keys column)")
    kind = (sch.metadata or {}).get(b"pmsim.records", path.stem.encode()).decode()
    json_columns = {f.name for f in sch if (f.metadata or {}).get(b"pmsim.encoding") == b"json"}
    json_columns |= {name for name, ck in COLUMNS.get(kind, ()) if ck == "json"}
    time_columns = {f.name for f in sch if pa.types.is_timestamp(f.type)}
    keys_of: dict[str, list[str]] = {}
    row = 0
    try:
        for batch in pf.iter_batches(batch_size=65536):
            cols = {name: batch.column(i).to_pylist() for i, name in enumerate(batch.schema.names)}
            for name in time_columns & cols.keys():
                cols[name] = [_iso(v) for v in cols[name]]
            for name in json_columns & cols.keys():
                cols[name] = [None if v is None else json.loads(v) for v in cols[name]]
            extras = cols.get("_extra") or [None] * batch.num_rows
            for i, text in enumerate(cols["_keys"]):
                row += 1
                keys = keys_of.get(text)
                if keys is None:
                    keys = keys_of[text] = json.loads(text)
                extra = None if extras[i] is None else json.loads(extras[i])
                rec: dict[str, Any] = {}
                for key in keys:
                    if extra is not None and key in extra:
                        rec[key] = extra[key]
                    elif key in cols and key not in _OWN:
                        rec[key] = cols[key][i]
                    else:
                        raise BadInput(f"{path}: row {row}: key {key!r} is in no column")
                yield rec
    except pa.ArrowException as exc:
        raise BadInput(f"{path}: after row {row}: {exc}") from None
    except (TypeError, json.JSONDecodeError) as exc:
        raise BadInput(f"{path}: row {row + 1}: bad _keys or _extra: {exc}") from None


def read_delivered(path: Path) -> Iterator[float] | None:
    """The delivery times of an ``events.parquet`` (its ``delivered_s``), one a row in order;
    None when it has none (no such column, or null throughout). A null on some rows only is bad
    input."""
    pa, pq = _arrow()
    try:
        if DELIVERED_COLUMN not in pq.read_schema(path).names:
            return None
        column = pq.read_table(path, columns=[DELIVERED_COLUMN]).column(0)
    except FileNotFoundError:
        raise BadInput(f"{path}: no such file") from None
    except (OSError, pa.ArrowException) as exc:
        raise BadInput(f"{path}: not a Parquet file: {exc}") from None
    if len(column) and column.null_count == len(column):
        return None
    if column.null_count:
        raise BadInput(f"{path}: {DELIVERED_COLUMN} is null on some rows only")
    return (at for chunk in column.chunks for at in chunk.to_pylist())


def _iso(v: datetime | None) -> str | None:
    if v is None:
        return None
    return (v if v.tzinfo is None else v.astimezone(_TZINFO)).isoformat()


def iter_records(path: Path) -> Iterator[dict[str, Any]]:
    """The records of a ``.jsonl`` or ``.parquet`` file, in their original order."""
    if path.suffix == ".parquet":
        return read_parquet(path)
    if path.suffix == ".jsonl":
        return read_jsonl_records(path)
    raise BadInput(f"{path}: neither .jsonl nor .parquet")
