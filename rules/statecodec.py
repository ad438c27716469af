"""The engine's state as msgpack: typed structs, decoded against exactly those types.

The payload of a snapshot file (:mod:`rules.snapshot` frames it). It holds plain values (str,
int, float including -inf, bool, None), lists, str-keyed maps and the structs below, which mirror
the engine's own classes (:class:`~rules.alerts.KeyState`, :class:`~rules.alerts.AlertState`,
:class:`~rules.beattrack.Track`, :class:`~rules.workorders.WorkOrder`): the file never names a
class, and msgspec checks every field's type. Tuples are typed fields, tuple-keyed dicts lists of
entries, sets sorted lists, Counters maps, the epoch an ISO 8601 string and its zone's name, each
buffered event its own JSON (read back by :func:`devices.events.parse_event`), a work order's spec
its rule's. Objects the engine shares (an alert held by its key and by the active alerts, a
heartbeat track held by its device and by the keys it feeds) are written once, in a table, and
referred to by index. After the types, what they cannot say is checked: rule numbers, timer kinds
and their data, references. Anything wrong is a :class:`SnapshotError`, one line.

Deterministic: maps keep their order and the tables are numbered as a walk of the state meets their
objects, so decoding a payload and encoding it again gives the same bytes.
"""

from __future__ import annotations

import heapq
from collections import Counter
from datetime import datetime
from typing import Any, Protocol
from zoneinfo import ZoneInfo

import msgspec
from msgspec import Struct
from msgspec.structs import asdict

from devices.events import DeviceEvent, event_bytes, parse_event
from rules.alerts import AlertState, KeyState
from rules.beattrack import Track
from rules.enginetypes import Key
from rules.ruleset import RuleSet
from rules.workorders import WorkOrder, WorkOrderBook

__all__ = ["STATE_FIELDS", "SnapshotError", "StateLike", "decode_payload", "encode_payload"]

# The attributes of the engine's state (rules.engine._State) the payload carries.
# fmt: off
STATE_FIELDS = (
    "watermark", "max_seen", "epoch", "buffer", "seen", "timers", "timer_seq", "keys",
    "active_by_rule", "alert_of_event", "workorders", "stats", "late_ids", "since_purge", "tracks",
)
# fmt: on

_KINDS_NO_DATA = frozenset({"duration", "absence", "sequence", "retry"})
_KINDS_ALERT_ID = frozenset({"for", "hold", "kff", "wo_ack", "wo_close"})  # or a work order's
_PLAIN = (str, int, float, type(None))  # bool is an int


class SnapshotError(ValueError):
    """A state file this pmsim will not load (or a state it cannot write); one line, saying why."""


class StateLike(Protocol):
    """The engine's mutable state (``rules.engine._State``), as the payload reads and writes it."""

    watermark: float
    max_seen: float
    epoch: datetime | None
    buffer: list[tuple[float, str, int, str, DeviceEvent]]
    seen: dict[str, float]
    timers: list[tuple[float, tuple[int, int, str], int, str, int, Key, Any]]
    timer_seq: int
    keys: dict[tuple[int, Key], KeyState]
    active_by_rule: dict[str, dict[str, AlertState]]
    alert_of_event: dict[str, list[tuple[int, Key]]]
    workorders: WorkOrderBook
    stats: Counter[str]
    late_ids: list[str]
    since_purge: int
    tracks: dict[str, Track | None]


Value = str | int | float | bool | None  # a label value (an event field's)
KeyT = tuple[Value, ...]
TimerData = str | tuple[str, int] | None
Num = float | int  # times as the engine holds them (an int stays an int)


class _Alert(Struct, array_like=True, forbid_unknown_fields=True):
    alert_id: str
    rule_id: str
    labels: dict[str, Value]
    severity: str
    started_s: Num
    state: str
    fired_s: Num | None
    last_trigger_s: Num
    cond_false_s: Num | None
    hits: int
    event_ids: list[str]
    workorder_id: str | None


class _Track(Struct, array_like=True, forbid_unknown_fields=True):
    device_id: str
    first_seq: int
    first_k: int
    t0: Num
    period: Num
    skew: Num
    noted: int | None
    late: list[int]
    closed: bool
    count: int | None
    waiters: list[tuple[int, KeyT]]


class _KeyState(Struct, array_like=True, forbid_unknown_fields=True):
    rule: int
    key: KeyT
    alert: int | None  # index into alerts
    incarnations: int
    last_resolved_s: Num | None
    times: list[tuple[Num, str]]
    since: Num | None
    since_ids: list[str]
    timer: bool
    active: bool
    labels: dict[str, Value]
    runs: list[tuple[str, int, int]] | None  # (device, first seq, index into tracks)


class _Timer(Struct, array_like=True, forbid_unknown_fields=True):
    deadline: Num
    order: tuple[int, int, str]
    seq: int
    kind: str
    rule: int
    key: KeyT
    data: TimerData


class _Order(Struct, array_like=True, forbid_unknown_fields=True):
    workorder_id: str
    alert_id: str
    rule_id: str
    identity: str
    estate: str
    team: str
    opened_s: Num
    state: str
    acked_s: Num | None
    closed_s: Num | None
    reopens: int


class _Payload(Struct, forbid_unknown_fields=True):
    watermark: Num
    max_seen: Num
    epoch: tuple[str, str | None] | None  # ISO 8601, and the zone's name if it has one
    buffer: list[bytes]  # each buffered event's JSON, in heap order
    seen: dict[str, Num]
    alerts: list[_Alert]
    tracks: list[_Track]
    timers: list[_Timer]  # in heap order
    timer_seq: int
    keys: list[_KeyState]
    active_by_rule: dict[str, dict[str, int]]  # rule -> alert id -> index into alerts
    alert_of_event: dict[str, list[tuple[int, KeyT]]]
    orders: list[_Order]
    last_by_identity: dict[str, str]
    next_order: int
    stats: dict[str, int]
    late_ids: list[str]
    since_purge: int
    device_tracks: dict[str, int | None]  # device -> index into tracks


_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(_Payload)


# -- writing --------------------------------------------------------------------------------------


def _fields(obj: Any, struct: type[Struct], **instead: Any) -> list[Any]:
    """``obj``'s attributes named as ``struct``'s fields, some given ``instead``."""
    return [instead[n] if n in instead else getattr(obj, n) for n in struct.__struct_fields__]


class _Tables:
    """Shared objects, numbered in the order the walk first meets them."""

    def __init__(self) -> None:
        self.alerts: list[_Alert] = []
        self.tracks: list[_Track] = []
        self._alert_ix: dict[int, int] = {}
        self._track_ix: dict[int, int] = {}

    def alert(self, a: AlertState) -> int:
        ix = self._alert_ix.get(id(a))
        if ix is None:
            ix = self._alert_ix[id(a)] = len(self.alerts)
            self.alerts.append(_Alert(*_fields(a, _Alert)))
        return ix

    def track(self, t: Track) -> int:
        ix = self._track_ix.get(id(t))
        if ix is None:
            ix = self._track_ix[id(t)] = len(self.tracks)
            self.tracks.append(_Track(*_fields(t, _Track, late=sorted(t.late))))
        return ix


def _epoch(epoch: datetime | None) -> tuple[str, str | None] | None:
    if epoch is None:
        return None
    zone = epoch.tzinfo.key if isinstance(epoch.tzinfo, ZoneInfo) else None
    return epoch.isoformat(), zone


def encode_payload(s: StateLike) -> bytes:
    """The state as msgpack."""
    for _, key in s.keys:
        if not all(isinstance(v, _PLAIN) for v in key):  # a datetime: a rule keyed on `time`
            raise SnapshotError(f"cannot write an engine snapshot: a rule key {key!r}")
    tab = _Tables()
    device_tracks = {d: None if t is None else tab.track(t) for d, t in s.tracks.items()}
    keys = [
        _KeyState(
            *_fields(
                ks,
                _KeyState,
                rule=index,
                key=key,
                alert=None if ks.alert is None else tab.alert(ks.alert),
                runs=None if ks.runs is None else [(*n, tab.track(t)) for n, t in ks.runs.items()],
            )
        )
        for (index, key), ks in s.keys.items()
    ]
    active = {r: {i: tab.alert(a) for i, a in g.items()} for r, g in s.active_by_rule.items()}
    book = s.workorders
    payload = _Payload(
        watermark=s.watermark,
        max_seen=s.max_seen,
        epoch=_epoch(s.epoch),
        buffer=[event_bytes(entry[4]) for entry in s.buffer],
        seen=s.seen,
        alerts=tab.alerts,
        tracks=tab.tracks,
        timers=[_Timer(*t) for t in s.timers],
        timer_seq=s.timer_seq,
        keys=keys,
        active_by_rule=active,
        alert_of_event=s.alert_of_event,
        orders=[_Order(*_fields(w, _Order)) for w in book.orders.values()],
        last_by_identity=book.last_by_identity,
        next_order=book._next,
        stats=dict(s.stats),
        late_ids=s.late_ids,
        since_purge=s.since_purge,
        device_tracks=device_tracks,
    )
    try:
        body = _encoder.encode(payload)
    except (TypeError, ValueError, OverflowError) as exc:  # a value the format cannot hold
        raise SnapshotError(f"cannot write an engine snapshot: {exc}") from None
    return body


# -- reading --------------------------------------------------------------------------------------


def _refuse(why: str) -> SnapshotError:
    return SnapshotError(f"not an engine snapshot: {why}")


def _rule(rules: RuleSet, index: int, where: str) -> int:
    if not 0 <= index < len(rules.rules):
        raise _refuse(f"{where}: no rule number {index}")
    return index


def _timer(
    t: _Timer, rules: RuleSet
) -> tuple[float, tuple[int, int, str], int, str, int, Key, Any]:
    cr = rules.rules[_rule(rules, t.rule, "timers")]
    kind, data = t.kind, t.data
    if kind in _KINDS_NO_DATA:
        ok = data is None
    elif kind in _KINDS_ALERT_ID:
        ok = isinstance(data, str)
    elif kind == "escalate":
        ok = isinstance(data, tuple) and 0 <= data[1] < len(cr.rule.escalate)
    else:
        raise _refuse(f"timers: unknown timer kind {kind!r}")
    if not ok:
        raise _refuse(f"timers: wrong data {data!r} for a {kind!r} timer")
    return (t.deadline, t.order, t.seq, kind, t.rule, t.key, data)


def _track(t: _Track, rules: RuleSet) -> Track:
    for index, _ in t.waiters:
        _rule(rules, index, "tracks")
    return Track(**(asdict(t) | {"late": set(t.late)}))


def _pick(table: list[Any], index: int, what: str) -> Any:
    if not 0 <= index < len(table):
        raise _refuse(f"a reference to {what} number {index}, of {len(table)}")
    return table[index]


def _epoch_of(value: tuple[str, str | None] | None) -> datetime | None:
    if value is None:
        return None
    try:
        at = datetime.fromisoformat(value[0])
        if value[1] is not None:
            at = at.replace(tzinfo=ZoneInfo(value[1]))
    except (ValueError, KeyError) as exc:  # ZoneInfoNotFoundError is a KeyError
        raise _refuse(f"epoch: {exc}") from None
    if at.tzinfo is None:
        raise _refuse("epoch: no time zone")
    return at


def _book(p: _Payload, rules: RuleSet) -> WorkOrderBook:
    book = WorkOrderBook()
    for w in p.orders:
        cr = rules.by_id.get(w.rule_id)
        spec = cr.rule.workorder if cr is not None else None
        if spec is None:
            raise _refuse(f"work order {w.workorder_id}: rule {w.rule_id!r} makes no work orders")
        book.orders[w.workorder_id] = WorkOrder(**asdict(w), spec=spec)
    book.last_by_identity = p.last_by_identity
    book._next = p.next_order
    return book


def _buffer(p: _Payload) -> list[tuple[float, str, int, str, DeviceEvent]]:
    buffer = []
    for raw in p.buffer:
        try:
            e = parse_event(raw)
        except ValueError as exc:
            raise _refuse(f"buffer: {exc}") from None
        buffer.append((e.sim_seconds, e.device_id, e.seq, e.event_id, e))
    return buffer


def decode_payload(body: bytes, rules: RuleSet, into: StateLike) -> None:
    """Read a payload written with ``rules`` into ``into`` (a fresh state), all or nothing."""
    try:
        p = _decoder.decode(body)
    except msgspec.MsgspecError as exc:
        raise _refuse(f"payload: {exc}") from None
    alerts = [AlertState(**asdict(a)) for a in p.alerts]
    tracks = [_track(t, rules) for t in p.tracks]
    keys: dict[tuple[int, Key], KeyState] = {}
    for k in p.keys:
        _rule(rules, k.rule, "keys")
        runs = None if k.runs is None else {(d, q): _pick(tracks, i, "track") for d, q, i in k.runs}
        fields = asdict(k)
        del fields["rule"], fields["key"]
        fields["alert"] = None if k.alert is None else _pick(alerts, k.alert, "alert")
        keys[(k.rule, k.key)] = KeyState(**(fields | {"runs": runs}))
    for links in p.alert_of_event.values():
        for index, _ in links:
            _rule(rules, index, "alert_of_event")
    epoch = _epoch_of(p.epoch)
    timers = [_timer(t, rules) for t in p.timers]
    buffer = _buffer(p)
    workorders = _book(p, rules)
    try:  # a heap the engine wrote is one already (heapify keeps it as it is); a forged one is made so
        heapq.heapify(timers)
        heapq.heapify(buffer)
    except TypeError as exc:  # two equal entries compared their last elements
        raise _refuse(f"duplicate timer or buffered event: {exc}") from None
    active = {
        r: {i: _pick(alerts, n, "alert") for i, n in g.items()} for r, g in p.active_by_rule.items()
    }
    devices = {
        d: None if n is None else _pick(tracks, n, "track") for d, n in p.device_tracks.items()
    }
    into.watermark, into.max_seen, into.epoch = p.watermark, p.max_seen, epoch
    into.buffer, into.seen, into.timers, into.timer_seq = buffer, p.seen, timers, p.timer_seq
    into.keys, into.active_by_rule, into.alert_of_event = keys, active, p.alert_of_event
    into.workorders, into.stats = workorders, Counter(p.stats)
    into.late_ids, into.since_purge, into.tracks = p.late_ids, p.since_purge, devices
