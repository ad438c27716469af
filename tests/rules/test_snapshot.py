"""The engine's state file (rules.snapshot, rules.statecodec): values only, never code.

A pickle that would run code is refused before anything of it is read; a flipped or missing byte
fails the checksum; a file forged with a correct checksum but an unknown timer kind, a wrong type,
a dangling reference or an unknown event type is refused by the typed decoding; another schema
version or rule file is refused. A snapshot read back and written again gives the same bytes, and
an engine restored from one goes on exactly like the engine it was taken from.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import pickle
import re
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import msgspec
import pytest
from enginekit import ev, rule, ruleset

from devices.events import (
    ClutterCleared,
    ClutterDetected,
    DoorOpenTooLong,
    FallingObject,
    Heartbeat,
    StaffArrived,
    StaffDone,
)
from rules import statecodec
from rules.alerts import AlertState, KeyState
from rules.beattrack import Track
from rules.engine import Engine, _State
from rules.snapshot import MAGIC, SCHEMA_VERSION, SnapshotError, rules_fingerprint
from rules.workorders import WorkOrder

WO = {"team": "security", "ack_sla": "10m", "close_sla": "2h", "reopen_within": "1h"}
RULES = ruleset(
    rule("falls", "falling_object", {"kind": "count", "n": 3, "window": 600}, keep_firing_for=60),
    rule(
        "door",
        "door_open_too_long",
        {"kind": "event"},
        keep_firing_for="1h",
        escalate=[{"after": "10m", "severity": "critical"}],
        workorder=WO,
        **{"for": 30},
    ),
    rule(
        "lasting",
        "clutter_detected",
        {"kind": "duration", "stop": [{"type": "clutter_cleared"}], "at_least": 300},
        workorder={"team": "cleaning", "ack_sla": "1h", "close_sla": "1d"},
    ),
    rule("quiet", "heartbeat", {"kind": "absence", "after": 500}, cooldown=100),
)


def at(cls: type, t: float, device: str = "d1", **fields: Any) -> Any:
    """An event at ``t`` seconds, a float as every real source gives (a buffered event is read
    back by parse_event, which makes an int time a float)."""
    return ev(cls, float(t), device, **fields)


def events() -> list[Any]:
    door = at(DoorOpenTooLong, 50, "door1")
    return [
        at(Heartbeat, 0, "hb"),
        at(FallingObject, 10),
        at(ClutterDetected, 20, "c1"),
        door,
        at(FallingObject, 250),
        at(Heartbeat, 300, "hb"),
        at(FallingObject, 400),
        at(StaffArrived, 420, "app", ref_event_id=door.event_id, action="check"),
        at(ClutterCleared, 700, "c1"),
        at(ClutterDetected, 710, "c1"),
        at(FallingObject, 1500),
        at(StaffDone, 1550, "app", ref_event_id=door.event_id, action="check", outcome="done"),
        at(Heartbeat, 1600, "hb"),
        at(DoorOpenTooLong, 4000, "door1"),  # re-opens the closed work order
        at(FallingObject, 4010),
    ]


def fed(n: int, lateness: float = 45.0) -> Engine:
    engine = Engine(RULES, allowed_lateness=lateness)
    for e in events()[:n]:
        engine.consume(e)
    return engine


def parts(blob: bytes) -> tuple[dict[str, Any], bytes]:
    """A snapshot's header and payload."""
    line, _, rest = blob[len(MAGIC) :].partition(b"\n")
    return json.loads(line), rest[: -len(b"\nsha256 ") - 65]


def forge(blob: bytes, change: Callable[[dict[str, Any]], None], **header: Any) -> bytes:
    """The snapshot with its payload changed and a correct checksum, as an attacker writes it."""
    head, body = parts(blob)
    payload = msgspec.msgpack.decode(body)
    change(payload)
    body = msgspec.msgpack.encode(payload)
    head |= {"bytes": len(body), **header}
    framed = MAGIC + json.dumps(head, separators=(",", ":")).encode() + b"\n" + body
    return framed + b"\nsha256 " + hashlib.sha256(framed).hexdigest().encode() + b"\n"


def refused(blob: bytes, match: str) -> None:
    with pytest.raises(SnapshotError, match=match) as info:
        Engine.restore(RULES, blob)
    assert "\n" not in str(info.value)


# -- round trip -----------------------------------------------------------------------------------


@pytest.mark.parametrize("lateness", [0.0, 45.0])
@pytest.mark.parametrize("split", range(len(events()) + 1))
def test_a_restored_engine_goes_on_exactly_like_the_original(split: int, lateness: float) -> None:
    original = fed(split, lateness)
    blob = original.snapshot()
    restored = Engine.restore(RULES, blob, allowed_lateness=lateness)
    assert restored.snapshot() == blob  # byte for byte
    rest = events()[split:]
    a = [r for e in rest for r in original.consume(e)] + original.finish(9000)
    b = [r for e in rest for r in restored.consume(e)] + restored.finish(9000)
    assert a == b
    assert restored.snapshot() == original.snapshot()  # and the same state at the end


def test_the_state_it_carries_is_rich() -> None:
    """What the round trip above covers: buffered events, timers of every kind of data, an
    alert shared by its key and the active alerts, work orders, the zone of the epoch."""
    s = fed(6).s
    assert {t[3] for t in s.timers} >= {"absence", "duration", "escalate", "hold", "wo_ack"}
    assert s.buffer and s.workorders.orders and s.active_by_rule["door"]
    later = fed(15)
    later.finish(9000)
    assert later.s.workorders.orders["WO000001"].reopens == 1
    restored = Engine.restore(RULES, fed(6).snapshot()).s
    for ks in restored.keys.values():
        if ks.alert is not None and ks.alert.active:  # one object, as in the engine
            assert restored.active_by_rule[ks.alert.rule_id][ks.alert.alert_id] is ks.alert
    assert any(ks.alert is not None and ks.alert.active for ks in restored.keys.values())
    assert restored.epoch == s.epoch and restored.epoch is not None
    assert restored.epoch.tzinfo is s.epoch.tzinfo  # type: ignore[union-attr]


def test_a_fresh_engine_and_a_fixed_offset_epoch_round_trip() -> None:
    fresh = Engine(RULES)
    blob = fresh.snapshot()
    again = Engine.restore(RULES, blob)
    assert again.s.watermark == float("-inf") and again.s.epoch is None
    assert again.snapshot() == blob
    fresh.s.epoch = datetime(2026, 3, 2, tzinfo=timezone(timedelta(hours=8)))
    back = Engine.restore(RULES, fresh.snapshot()).s.epoch
    assert back == fresh.s.epoch and back is not None and back.utcoffset() == timedelta(hours=8)


def test_heartbeat_tracks_shared_by_device_and_key_stay_shared() -> None:
    engine = Engine(RULES)
    track = Track("hb", 1, 0, 0.0, 60.0, 0.0, noted=None, late={5, 2}, waiters=[(3, ("hb",))])
    engine.s.tracks["hb"] = track
    engine.key_state(RULES.rules[3], ("hb",)).runs = {("hb", 1): track}
    blob = engine.snapshot()
    s = Engine.restore(RULES, blob).s
    got = s.tracks["hb"]
    assert got is not None and got.late == {2, 5} and got.waiters == [(3, ("hb",))]
    assert s.keys[(3, ("hb",))].runs == {("hb", 1): got}
    assert s.keys[(3, ("hb",))].runs[("hb", 1)] is got  # type: ignore[index]
    assert Engine.restore(RULES, blob).snapshot() == blob


def test_the_format_carries_every_field_of_the_state() -> None:
    """A field added to the engine's state or to a class it holds must be added to the format
    (rules.statecodec), with SCHEMA_VERSION raised."""
    assert set(vars(_State())) == set(statecodec.STATE_FIELDS)

    def names(cls: Any) -> set[str]:
        return {f.name for f in dataclasses.fields(cls)}

    assert names(AlertState) == set(statecodec._Alert.__struct_fields__)
    assert names(Track) == set(statecodec._Track.__struct_fields__)
    assert names(KeyState) == set(statecodec._KeyState.__struct_fields__) - {"rule", "key"}
    assert names(WorkOrder) - {"spec"} == set(statecodec._Order.__struct_fields__)


def golden_state() -> Engine:
    """A state built by hand, so that only the format decides its bytes."""
    engine = Engine(RULES)
    s = engine.s
    s.watermark, s.max_seen = 100.0, 160.0
    s.epoch = datetime(2026, 3, 2, tzinfo=ZoneInfo("Asia/Shanghai"))
    door = at(DoorOpenTooLong, 150.0, "door1")
    s.buffer = [(150.0, "door1", 1, "door1:1", door)]
    s.seen = {"door1:1": 150.0, "hb:7": -1.5}
    alert = AlertState(
        "door/door1#1", "door", {"estate": "e1", "device_id": "door1"}, "warning", 50.0
    )
    alert.state, alert.fired_s, alert.event_ids = "firing", 80.0, ["door1:0"]
    ks = engine.key_state(RULES.rules[1], ("door1",))
    ks.alert, ks.incarnations, ks.labels, ks.times = alert, 1, dict(alert.labels), [(50.0, "x")]
    s.active_by_rule = {"door": {alert.alert_id: alert}}
    s.alert_of_event = {"door1:0": [(1, ("door1",))]}
    s.timers = [(680.0, (0, 1, ""), 1, "escalate", 1, ("door1",), (alert.alert_id, 0))]
    s.timer_seq = 1
    track = Track("hb", 7, 3, 0.0, 60.0, -1.5, noted=None, late={9}, waiters=[(3, ("hb",))])
    s.tracks = {"hb": track, "gone": None}
    engine.key_state(RULES.rules[3], ("hb",)).runs = {("hb", 7): track}
    wo = WorkOrder(
        "WO000001",
        alert.alert_id,
        "door",
        "door/door1",
        "e1",
        "security",
        RULES.rules[1].rule.workorder,
        80.0,
    )  # type: ignore[arg-type]
    s.workorders.orders = {wo.workorder_id: wo}
    s.workorders.last_by_identity = {"door/door1": wo.workorder_id}
    s.workorders._next = 2
    s.stats.update(consumed=2, late=1)
    s.late_ids, s.since_purge = ["x:1"], 3
    return engine


def test_golden_format_version_1() -> None:
    """The format is pinned. If this fails, the bytes changed: raise SCHEMA_VERSION (so that a
    snapshot of the old layout is refused by its version, not misread) and pin the new digest."""
    blob = golden_state().snapshot()
    assert blob.startswith(b"pmsim-engine-snapshot\n")
    head, body = parts(blob)
    assert SCHEMA_VERSION == 1
    assert list(head) == ["schema", "pmsim", "rules", "payload", "bytes"]
    assert (head["schema"], head["payload"], head["bytes"]) == (1, "msgpack", len(body))
    assert head["rules"] == rules_fingerprint(RULES)
    digest = hashlib.sha256(blob[: -len(b"\nsha256 ") - 65]).hexdigest()
    assert blob.endswith(b"\nsha256 " + digest.encode() + b"\n")
    assert hashlib.sha256(body).hexdigest() == GOLDEN
    assert Engine.restore(RULES, blob).snapshot() == blob


GOLDEN = "4465fd8a4c359cc69c3d806247e27117161d6505802e03f22d1cb2615631cc82"


# -- refusals -------------------------------------------------------------------------------------


class RunsCode:
    """A pickle that, loaded, creates a file (any code could run instead)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (open, (str(self.marker), "w"))


@pytest.mark.parametrize("protocol", [0, 2, 5])
def test_a_pickle_that_would_run_code_is_refused_unread(tmp_path: Path, protocol: int) -> None:
    marker = tmp_path / "pwned"
    blob = pickle.dumps(RunsCode(marker), protocol=protocol)
    match = "older pmsim \\(pickle\\), which is unsafe" if protocol >= 2 else "does not begin"
    refused(blob, match)
    refused(MAGIC + blob, "header")
    assert not marker.exists()


def test_a_flipped_byte_anywhere_is_refused() -> None:
    blob = fed(6).snapshot()
    _, body = parts(blob)
    start = blob.index(body)
    for i in range(0, len(blob), max(1, len(blob) // 400)):
        bad = bytearray(blob)
        bad[i] ^= 0x01
        with pytest.raises(SnapshotError, match="not an engine snapshot"):
            Engine.restore(RULES, bytes(bad))
    bad = bytearray(blob)
    bad[start + len(body) // 2] ^= 0x40
    refused(bytes(bad), "checksum mismatch")


def test_a_truncated_file_is_refused() -> None:
    blob = fed(6).snapshot()
    for n in (0, 5, len(MAGIC), len(MAGIC) + 10, len(blob) // 2, len(blob) - 30, len(blob) - 1):
        with pytest.raises(SnapshotError, match="not an engine snapshot"):
            Engine.restore(RULES, blob[:n])
    refused(blob[:-1], "truncated")
    refused(blob[: len(blob) // 2], "truncated")


def test_forged_payloads_with_a_good_checksum_are_refused() -> None:
    blob = fed(6).snapshot()
    assert Engine.restore(RULES, forge(blob, lambda p: None)).snapshot() == blob

    def kind(p: dict[str, Any]) -> None:
        p["timers"][0][3] = "os.system"

    def wrong_type(p: dict[str, Any]) -> None:
        p["alerts"][0][4] = "yesterday"  # started_s

    def extra_field(p: dict[str, Any]) -> None:
        p["__reduce__"] = ["posix", "system", "touch pwned"]

    def dangling(p: dict[str, Any]) -> None:
        p["keys"][0][2] = 999  # an alert number

    def rule_number(p: dict[str, Any]) -> None:
        p["keys"][0][0] = 99

    def event_type(p: dict[str, Any]) -> None:
        doc = json.loads(p["buffer"][0])
        p["buffer"][0] = json.dumps(doc | {"type": "teleport"}).encode()

    def escalation(p: dict[str, Any]) -> None:
        t = next(t for t in p["timers"] if t[3] == "escalate")
        t[6][1] = 7

    refused(forge(blob, kind), "unknown timer kind 'os.system'")
    refused(
        forge(blob, wrong_type),
        re.escape("Expected `int | float`, got `str` - at `$.alerts[0][4]`"),
    )
    refused(forge(blob, extra_field), "unknown field `__reduce__`")
    refused(forge(blob, dangling), "a reference to alert number 999")
    refused(forge(blob, rule_number), "no rule number 99")
    refused(forge(blob, event_type), "buffer: Invalid value 'teleport'")
    refused(forge(blob, escalation), "wrong data")


def test_another_schema_version_or_rule_file_is_refused() -> None:
    blob = fed(5).snapshot()
    refused(forge(blob, lambda p: None, schema=2, pmsim="9.9"), "schema version 2 .*pmsim 9.9")
    other = ruleset(rule("falls", "falling_object", {"kind": "count", "n": 4, "window": 600}))
    with pytest.raises(SnapshotError, match="made with other rules"):
        Engine.restore(other, blob)
    refused(b"", "does not begin")
    refused(b'{"watermark": 0}', "does not begin")


def test_a_rule_keyed_on_time_cannot_be_snapshotted_unreadably() -> None:
    rs = ruleset({**rule("eb", "door_open_too_long", {"kind": "event"}), "key": ["time"]})
    engine = Engine(rs, allowed_lateness=0)
    engine.consume(at(DoorOpenTooLong, 5))
    with pytest.raises(SnapshotError, match="cannot write an engine snapshot"):
        engine.snapshot()
