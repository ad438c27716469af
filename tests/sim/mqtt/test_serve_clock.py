"""``pmsim rules serve --wall-clock`` on a real broker with hostile clocks: an event dated 1970 or
2001 stalls nothing; what the engine sets aside (``clock_skew``, ``late``) is dead-lettered."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from test_serve import Peer, start_serve, stop

from devices.events import EbikeDetected, Heartbeat, event_bytes, event_json, topic_for
from sim.mqtt.broker import EmbeddedBroker


def dated(cls: type, when: datetime, t: float, seq: int, **kw: Any) -> Any:
    return cls(
        event_id=f"d1:{seq}",
        device_id="d1",
        device_kind="ebike_blocker",
        estate="e1",
        building="b01",
        time=when,
        sim_seconds=t,
        seq=seq,
        **kw,
    )


def test_wall_clock_service_shrugs_off_1970_and_dead_letters_what_it_sets_aside(
    broker: EmbeddedBroker,
) -> None:
    p = f"c{uuid.uuid4().hex[:8]}"
    peer = Peer(broker.port, [f"{p}/deadletter", f"{p}/alerts/#"])
    proc = start_serve(broker, p, "--wall-clock")
    try:
        now = datetime.now(UTC)
        epoch = now - timedelta(seconds=90 + 1000)  # the bike below is 90 s old
        topic = f"{p}/dev/e1/b01/ebike_blocker/d1"
        stale = json.loads(event_json(dated(Heartbeat, now, 5.0, 1)))
        stale["time"] = "1970-01-01T00:00:05Z"
        peer.send(topic, json.dumps(stale).encode())  # dated 1970: refused as it is decoded
        off = dated(Heartbeat, datetime(2001, 1, 1, tzinfo=UTC), 6.0, 2)  # valid, years off
        peer.send(topic, event_bytes(off))
        bike = dated(
            EbikeDetected,
            epoch + timedelta(seconds=1000),
            1000.0,
            3,
            confidence=0.95,
            object_class="ebike",
        )
        peer.send(topic_for(bike, p), event_bytes(bike))
        got = peer.wait(lambda m: any(t.startswith(f"{p}/alerts/") for t, _ in m))
        late = dated(Heartbeat, epoch + timedelta(seconds=500), 500.0, 4)  # behind the wall
        peer.send(topic, event_bytes(late))
        got = peer.wait(lambda m: sum(t.endswith("/deadletter") for t, _ in m) >= 3)
        dead = [(d["reason"], d["head"][:200]) for t, d in got if t.endswith("/deadletter")]
        reasons = [r for r, _ in dead]
        assert reasons == ["invalid", "clock_skew", "late"], dead
        assert '"d1:2"' in dead[1][1] and '"d1:4"' in dead[2][1]
        alerts = [d for t, d in got if t.startswith(f"{p}/alerts/")]
        assert [(a["rule_id"], a["change"]) for a in alerts][:1] == [
            ("ebike-in-elevator", "firing")
        ]
    finally:
        out = stop(proc)
        peer.close()
    assert proc.returncode == 0
    assert "'clock_skew': 1" in out and "'late': 1" in out
