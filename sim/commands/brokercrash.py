"""``pmsim bench --broker-crash N``: what a ``kill -9`` of the embedded Mosquitto costs.

A QoS 1 stream of ``--crash-events`` messages (200,000) goes from a paho publisher through the
embedded Mosquitto (persistence on, the database in a folder of its own) to a subscriber with a
persistent session (clean session off; it subscribes again on every connect, as ``rules serve``
does). At N points evenly spread through the stream the broker is killed with SIGKILL and started
again on the same port and database; both clients reconnect by themselves, and the publisher sends
again what the broker had not acknowledged. At the end:

- ``acknowledged``: messages the broker acknowledged to the publisher (all of them, in the end);
- ``lost``: acknowledged but never delivered to the subscriber - what the broker promised and
  forgot, per kill, with the loss window: the seconds between the earliest lost message's
  acknowledgement and the kill;
- ``redelivered``: delivered more than once (QoS 1 allows that; a consumer drops them by id).

``--crash-rate R`` makes the subscriber a slow consumer (R messages/s), so the broker holds a queue
for it when it is killed - the case that loses most; ``--crash-publish-rate`` paces the publisher
(:data:`PUBLISH_RATE`; 0: as fast as it goes). ``--crash-autosave S`` sets Mosquitto's
``autosave_interval`` (default: the embedded broker's, :data:`~sim.mqtt.broker.AUTOSAVE_SECONDS`;
Mosquitto's own default is 1800).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
from array import array
from pathlib import Path
from typing import IO, Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from sim.errors import BadInput
from sim.mqtt.broker import AUTOSAVE_SECONDS, EmbeddedBroker

__all__ = ["crash_bench", "crash_command", "format_crash"]

WAIT = 30.0  # seconds any one step may take
# events/s published: the kills come ~9 s apart, several autosaves between them (a stream as
# fast as paho goes, ~8,000/s here, puts them ~2.5 s apart: less than Mosquitto's save cadence)
PUBLISH_RATE = 2000.0
QUIET = 3.0  # seconds of silence after which the subscriber has had everything


class _Subscriber:
    def __init__(self, port: int, topic: str, events: int, rate: float | None) -> None:
        self.seen = bytearray(events)  # deliveries of each message (capped at 255)
        self.count = 0
        self.rate = rate  # messages/s it can take (None: as fast as paho reads them)
        self.t0 = self.last = time.monotonic()
        self.c = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"crash-sub-{topic.replace('/', '-')}",
            clean_session=False,
            protocol=mqtt.MQTTv311,
        )
        self.c.reconnect_delay_set(0.05, 0.5)  # type: ignore[arg-type]  # seconds; floats work
        self.c.on_connect = lambda c, *_a: c.subscribe(topic, qos=1)
        self.c.on_message = self._on_message
        self.c.connect("127.0.0.1", port, keepalive=10)
        self.c.loop_start()

    def _on_message(self, _c: Any, _u: Any, msg: mqtt.MQTTMessage) -> None:
        i = int(msg.payload[:10])
        if self.seen[i] < 255:
            self.seen[i] += 1
        self.count += 1
        self.last = time.monotonic()
        if self.rate is not None:  # a slow consumer: the broker's queue for it grows
            ahead = self.count / self.rate - (self.last - self.t0)
            if ahead > 0.001:
                time.sleep(ahead)

    def close(self) -> None:
        self.c.disconnect()
        self.c.loop_stop()


class _Publisher:
    def __init__(self, port: int, events: int) -> None:
        self.acked_at = array("d", bytes(8 * events))  # monotonic time of each PUBACK (0: none)
        self.acked = 0
        self.mids: dict[int, int] = {}
        self.early: set[int] = set()
        self.lock = threading.Lock()
        self.c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="crash-pub")
        self.c.reconnect_delay_set(0.05, 0.5)  # type: ignore[arg-type]  # seconds; floats work
        self.c.max_inflight_messages_set(20)
        self.c.max_queued_messages_set(0)
        self.c.on_publish = self._on_publish
        self.c.connect("127.0.0.1", port, keepalive=10)
        self.c.loop_start()

    def _ack(self, i: int) -> None:
        self.acked_at[i] = time.monotonic()
        self.acked += 1

    def _on_publish(self, _c: Any, _u: Any, mid: int, _rc: Any, _p: Any) -> None:
        # paho calls this holding its own lock: ours is never held while calling paho
        with self.lock:
            i = self.mids.pop(mid, None)
            if i is None:
                self.early.add(mid)  # acknowledged before publish() returned its mid
            else:
                self._ack(i)

    def publish(self, topic: str, i: int, payload: bytes) -> None:
        mid = self.c.publish(topic, payload, qos=1).mid
        with self.lock:
            if mid in self.early:
                self.early.discard(mid)
                self._ack(i)
            else:
                self.mids[mid] = i

    def close(self) -> None:
        self.c.disconnect()
        self.c.loop_stop()


def _until(cond: Any, what: str, timeout: float = WAIT) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise TimeoutError(f"broker crash bench: no {what} within {timeout:g} s")
        time.sleep(0.005)


def crash_bench(
    events: int = 200_000,
    kills: int = 10,
    autosave: int = AUTOSAVE_SECONDS,
    folder: Path | None = None,
    say: IO[str] | None = None,
    rate: float | None = None,
    publish_rate: float | None = PUBLISH_RATE,
) -> dict[str, Any]:
    """Run the stream with ``kills`` SIGKILLs of the broker; the figures as a dict."""
    with tempfile.TemporaryDirectory(prefix="pmsim-crash-") as tmp:
        db = (folder or Path(tmp)) / "mosquitto-db"
        broker = EmbeddedBroker("mosquitto", persist=db, autosave=autosave).start()
        sub = pub = None
        try:
            topic = f"crash/{time.monotonic_ns()}"
            sub = _Subscriber(broker.port, topic, events, rate)
            pub = _Publisher(broker.port, events)
            body = b" " + b"x" * 280  # about a device event's size
            marks = [events * (k + 1) // (kills + 1) for k in range(kills)]
            killed: list[tuple[int, float]] = []  # (messages acknowledged, time) at each kill
            t0 = time.monotonic()
            for i in range(events):
                while pub.acked + 1000 < i:  # a window, so the stream goes on while we kill
                    time.sleep(0.0005)
                if publish_rate is not None:
                    ahead = i / publish_rate - (time.monotonic() - t0)
                    if ahead > 0.001:
                        time.sleep(ahead)
                pub.publish(topic, i, b"%010d" % i + body)
                if marks and pub.acked >= marks[0]:
                    marks.pop(0)
                    broker.kill()
                    killed.append((pub.acked, time.monotonic()))
                    broker.start()
                    if say is not None:
                        print(f"  kill -9 #{len(killed)} at {killed[-1][0]:,}", file=say)
            _until(lambda: pub.acked == events, "PUBACK for every message", 120.0)
            _until(lambda: time.monotonic() - sub.last > QUIET, "quiet subscriber", 300.0)
            took = time.monotonic() - t0
            seen = sub.seen
        finally:
            for c in (pub, sub):
                if c is not None:
                    c.close()
            broker.stop()
    lost = [i for i in range(events) if not seen[i]]
    per_kill = []
    for k, (_n, at) in enumerate(killed):
        before = killed[k - 1][1] if k else t0
        mine = [i for i in lost if before < pub.acked_at[i] <= at]
        window = at - min(pub.acked_at[i] for i in mine) if mine else 0.0
        per_kill.append({"lost": len(mine), "window_s": round(window, 3)})
    # after the last kill: what a restart from a database without the subscriber's session
    # dropped before the subscriber was back (nobody subscribed yet)
    after = sum(1 for i in lost if pub.acked_at[i] > killed[-1][1]) if killed else len(lost)
    return {
        "events": events,
        "kills": len(killed),
        "autosave_interval": autosave,
        "subscriber_rate": rate,
        "publish_rate": publish_rate,
        "acknowledged": pub.acked,
        "delivered": sum(1 for x in seen if x),
        "lost": len(lost),
        "redelivered": sum(x - 1 for x in seen if x > 1),
        "seconds": round(took, 1),
        "per_kill": per_kill,
        "lost_after_last_kill": after,
        "worst_window_s": max((k["window_s"] for k in per_kill), default=0.0),
    }


def format_crash(doc: dict[str, Any]) -> str:
    lost = ", ".join(f"{k['lost']} ({k['window_s']:.2f} s)" for k in doc["per_kill"])
    return (
        f"broker crash: {doc['events']:,} QoS 1 events, {doc['kills']} kill -9 of Mosquitto "
        f"(autosave_interval {doc['autosave_interval']} s), published at "
        f"{format(doc['publish_rate'], ',.0f') + '/s' if doc['publish_rate'] else 'full speed'}"
        ", subscriber "
        f"{'at ' + format(doc['subscriber_rate'], ',.0f') + '/s' if doc['subscriber_rate'] else 'unpaced'}"
        f", {doc['seconds']} s: "
        f"{doc['acknowledged']:,} acknowledged, {doc['delivered']:,} delivered, "
        f"{doc['lost']:,} lost, {doc['redelivered']:,} redelivered; lost per kill (window): "
        f"{lost}; worst window {doc['worst_window_s']:.2f} s"
    )


def crash_command(args: argparse.Namespace) -> int:
    """``pmsim bench --broker-crash N``: prints the figures, writes them to ``--out``."""
    if args.broker != "embedded":
        raise BadInput("--broker-crash kills the embedded Mosquitto: use --broker embedded")
    if args.broker_crash < 1 or args.crash_events < 10 * (args.broker_crash + 1):
        raise BadInput("--broker-crash N: N >= 1, and --crash-events at least 10 x (N + 1)")
    autosave = AUTOSAVE_SECONDS if args.crash_autosave is None else args.crash_autosave
    if autosave < 0:
        raise BadInput(f"--crash-autosave {autosave}: seconds, 0 or more")
    doc = crash_bench(
        args.crash_events,
        args.broker_crash,
        autosave,
        say=sys.stdout,
        rate=args.crash_rate,
        publish_rate=args.crash_publish_rate or None,
    )
    print(format_crash(doc))
    args.out.write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
    return 0
