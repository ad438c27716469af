"""``pmsim rules serve``: the rules engine as a long-running service on live MQTT.

It subscribes to the device topics with a persistent session (so the broker queues events while it
is down), validates every payload (bad ones go to the dead-letter topic), drops redelivered events
by id, publishes alerts and work-order changes, and can own a subset of estates so several workers
split a district (each partition numbers its work orders apart: ``WO-p0of2-000001``). paho reconnects with backoff and the intake resubscribes on every connect. With
``--state FILE`` the engine's state is saved periodically and on exit, and restored on start, so a
restarted service resumes its windows and timers; a journal next to it (:mod:`sim.mqtt.journal`) covers
the seconds since the last snapshot, so even a killed service loses no event and publishes no
alert twice. For that the broker must keep the session's messages: persistence on, and no limit
on queued messages (Mosquitto: ``max_queued_messages 0``; its default 1000 drops the rest). What
the broker lost anyway shows as gaps in the devices' sequence numbers: counted, published on
``{prefix}/health/gaps`` and summed up in a line at stop (:mod:`sim.mqtt.gaps`).
"""

from __future__ import annotations

import hashlib
import json
import signal
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import IO

from devices.events import DeviceEvent
from rules.engine import Record
from rules.workorders import workorder_prefix
from sim.errors import BadInput
from sim.files.rulefiles import load_rules
from sim.mqtt.intake import DEFAULT_MAX_PAYLOAD, Intake, SetAside
from sim.mqtt.journal import Ledger, Outgoing
from sim.mqtt.outbox import Outbox, record_topic
from sim.mqtt.signing import Signer, staff_check
from sim.mqtt.url import BrokerURL

__all__ = ["ServeOptions", "owns", "parse_partition", "serve"]


def parse_partition(text: str) -> tuple[int, int]:
    try:
        k, n = (int(x) for x in text.split("/"))
    except ValueError:
        raise BadInput(f"--partition {text!r}: expected K/N, e.g. 0/3") from None
    if n < 1 or not 0 <= k < n:
        raise BadInput(f"--partition {text!r}: need 0 <= K < N")
    return k, n


def owns(estate: str, estates: frozenset[str] | None, partition: tuple[int, int] | None) -> bool:
    """Whether this worker handles ``estate``: listed, or in its share of a stable hash."""
    if estates is not None and estate not in estates:
        return False
    if partition is not None:
        k, n = partition
        h = int.from_bytes(hashlib.blake2b(estate.encode("utf-8"), digest_size=8).digest(), "big")
        return h % n == k
    return True


@dataclass
class ServeOptions:
    url: BrokerURL
    rules_path: Path
    prefix: str = "pm"
    estates: frozenset[str] | None = None
    partition: tuple[int, int] | None = None
    state: Path | None = None
    client_id: str | None = None
    max_bytes: int = DEFAULT_MAX_PAYLOAD
    wall_clock: bool = False
    snapshot_every: float = 10.0
    # With a key: records go out signed, and staff-app events must come signed (else dead letters
    # ``unsigned`` / ``bad_signature``), so a forged staff_done cannot close a work order.
    signer: Signer | None = None
    stop: threading.Event = field(default_factory=threading.Event)


def serve(opts: ServeOptions, out: IO[str] | None = None) -> int:
    out = out or sys.stdout
    rules = load_rules(opts.rules_path)

    def render(r: Record) -> tuple[str, str]:
        return record_topic(opts.prefix, r), json.dumps(r, ensure_ascii=False)

    ledger = Ledger.open(rules, render, opts.state, workorder_prefix(opts.partition))
    engine = ledger.engine
    aside: SetAside = []  # what the engine sets aside while taking one event: dead-lettered
    engine.clock.on_aside = lambda e, reason, detail: aside.append((e, reason, detail))
    if opts.wall_clock:  # only now: the journal's events were judged when they came
        engine.clock.wall = lambda: datetime.now(UTC)
    skipped: Counter[str] = Counter()
    intake: Intake

    def publish(records: list[Outgoing]) -> None:
        for serial, topic, payload in records:
            outbox.put(topic, payload, tag=serial)

    failed: list[str] = []

    def fail(exc: OSError) -> None:
        failed.append(f"cannot keep --state {opts.state}: {exc}")
        opts.stop.set()

    def on_event(event: DeviceEvent) -> SetAside:
        if not owns(event.estate, opts.estates, opts.partition):
            skipped["not_mine"] += 1
            return []
        aside.clear()
        try:
            records = ledger.consume(event)
        except OSError as exc:
            # No journal, no promise: stop at once. This event is dead-lettered by the intake,
            # or left unacknowledged (the broker keeps it) if the stop is quicker.
            fail(exc)
            raise
        publish(records)
        return aside

    part = f"-p{opts.partition[0]}of{opts.partition[1]}" if opts.partition else ""
    intake = Intake(
        opts.url,
        prefix=opts.prefix,
        client_id=opts.client_id or f"pmsim-rules{part}",
        on_event=on_event,
        max_bytes=opts.max_bytes,
        clean=False,
        verify=staff_check(opts.signer) if opts.signer is not None else None,
        lateness=rules.allowed_lateness,
    )
    try:
        outbox = Outbox(
            opts.url, f"{intake.client_id}-records", on_ack=ledger.acked, signer=opts.signer
        )
        publish(ledger.unsent())  # made before a restart and never acknowledged: first, in order
        intake.start()
    except BaseException:
        ledger.close()
        raise

    def stop(_sig: int, _frame: FrameType | None) -> None:
        opts.stop.set()

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, stop)
    scope = ", ".join(sorted(opts.estates)) if opts.estates else "all estates"
    if opts.partition:
        scope += f", partition {opts.partition[0]}/{opts.partition[1]}"
    resumed = ""
    if opts.state is not None:
        resumed = (
            f"; state {opts.state} (generation {ledger.generation}, {ledger.replayed} journal "
            f"entries replayed, {len(ledger.pending)} records to publish again)"
        )
    signed = "; records signed, staff events must be signed" if opts.signer is not None else ""
    last_save = time.monotonic()
    try:  # from the banner on, Ctrl-C (which whoever read it may send at once) stops cleanly
        print(
            f"pmsim rules serve: {len(rules.rules)} rules from {opts.rules_path}, broker "
            f"{opts.url}, {scope}; dead letters to {opts.prefix}/deadletter{resumed}{signed} "
            "(Ctrl-C to stop)",
            file=out,
            flush=True,
        )
        while not opts.stop.wait(0.5):
            with intake.lock:
                if opts.wall_clock and engine.s.epoch is not None:
                    now = (datetime.now(UTC) - engine.s.epoch).total_seconds()
                    publish(ledger.advance(now))
                if opts.state is not None and time.monotonic() - last_save >= opts.snapshot_every:
                    ledger.save()
                    last_save = time.monotonic()
    except KeyboardInterrupt:
        pass
    except OSError as exc:  # the snapshot cannot be written
        fail(exc)
    finally:
        intake.stop()
        outbox.close()
        with intake.lock:
            try:
                if not failed:
                    ledger.save()
            except OSError as exc:
                fail(exc)
            ledger.close()
        stats = dict(sorted({**engine.stats, **skipped}.items()))
        dead = dict(sorted(intake.dead.items()))
        print(
            f"pmsim rules serve: sequence gaps: {intake.gaps.summary()}"
            + (f" (see {opts.prefix}/health/gaps)" if intake.gaps.gaps else ""),
            file=out,
            flush=True,
        )
        print(f"pmsim rules serve: stopped; {stats}; dead letters {dead}", file=out, flush=True)
    if failed:
        print(f"pmsim rules serve: error: {failed[0]}", file=sys.stderr, flush=True)
        return 1
    return 0
