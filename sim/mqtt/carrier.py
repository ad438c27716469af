"""How a run's events travel to its rules engine: in-process, or over a broker (embedded or not).

Either way ``events.jsonl`` is written as the simulation publishes, and the engine consumes the
same events in the same order, so a run's alerts do not depend on the carrier. Over MQTT the engine
consumes what came off the broker (re-sequenced into publish order, see :mod:`sim.mqtt.sequencer`), and
publishes its alerts and work-order changes back to the broker.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from devices.events import DeviceEvent
from rules.engine import Record
from sim.errors import BadInput
from sim.files.eventlog import EventLog
from sim.files.records import RecordWriter
from sim.mqtt.intake import DEFAULT_MAX_BATCH
from sim.mqtt.transport import DEFAULT_LINGER
from sim.mqtt.url import TLSFiles, parse_broker_url
from sim.world.transport import InProcessTransport, Transport

__all__ = ["Link", "carry_events", "record_topic"]

Publish = Callable[[str, str], None]  # (period id, JSON): a retained ranking
BACKLOG_LIMIT = 50_000  # events published but not yet consumed before the simulation waits
# ... on a broker not our own: a stock Mosquitto queues 1,000 messages (plus 20 in flight) for a
# subscriber that falls behind (max_queued_messages) and silently drops the rest. Messages, not
# events (a batch is one); past the limit the simulation waits until the engine is down to half.
EXTERNAL_BACKLOG_LIMIT = 800


def _quiet(_: str) -> None:
    return None


@dataclass
class Link:
    """The ``--broker`` choice and its options."""

    broker: str = "none"  # "none", "embedded", or mqtt[s]://user:pass@host:port
    prefix: str = "pm"
    qos: int = 1
    tls: TLSFiles = field(default_factory=TLSFiles)
    announce: Callable[[str], None] = _quiet
    idle_timeout: float = 15.0
    # Device events per MQTT message: 1 publishes each on its device topic; N > 1 sends a
    # gateway's events as JSON arrays on {prefix}/batch/{estate} (see sim.mqtt.transport).
    batch: int = 1
    linger: float = DEFAULT_LINGER  # wall seconds a part-filled batch may wait

    def check(self) -> None:
        """Refuse a bad link before anything starts."""
        if self.qos not in (0, 1):
            raise BadInput(f"--qos {self.qos}: must be 0 or 1")
        if not 1 <= self.batch <= DEFAULT_MAX_BATCH:
            raise BadInput(
                f"--batch {self.batch}: from 1 (no batching) to {DEFAULT_MAX_BATCH} "
                "(what an engine accepts in one message)"
            )
        if not self.linger > 0:
            raise BadInput(f"linger {self.linger}: must be positive")
        if not self.prefix or any(c in self.prefix for c in "#+") or self.prefix.endswith("/"):
            raise BadInput(
                f"--prefix {self.prefix!r}: a topic level without '#', '+' or a trailing '/'"
            )
        if self.broker not in ("none", "embedded"):
            parse_broker_url(self.broker, self.tls)


def record_topic(prefix: str, record: Record) -> str:
    if record["record"] == "alert":
        return f"{prefix}/alerts/{record['labels'].get('estate', '-')}/{record['rule_id']}"
    return f"{prefix}/workorders/{record.get('estate') or '-'}"


@contextmanager
def carry_events(
    link: Link, log: EventLog, writer: RecordWriter, *, run_id: str
) -> Iterator[tuple[Transport, Callable[[], dict[str, Any]], Publish | None]]:
    """Yield ``(transport, finish, publish_ranking)``: publish through ``transport``; ``finish()``
    waits until the engine has consumed everything and returns what the run folder says about the
    carrier; ``publish_ranking`` (None in-process) puts a ranking on the broker, retained."""
    link.check()
    if link.broker == "none":
        local = InProcessTransport(link.prefix)
        local.subscribe(log)
        local.subscribe(writer)
        local.subscribe_beats(writer.beat)
        local.subscribe_runs(log.run_closed)
        local.subscribe_runs(writer.run_closed)
        yield local, lambda: {"kind": "none", "published": local.published}, None
        return
    with _over_mqtt(link, log, writer, run_id) as pair:
        yield pair


@contextmanager
def _over_mqtt(
    link: Link, log: EventLog, writer: RecordWriter, run_id: str
) -> Iterator[tuple[Transport, Callable[[], dict[str, Any]], Publish | None]]:
    from sim.mqtt.intake import Intake
    from sim.mqtt.outbox import Outbox
    from sim.mqtt.sequencer import Sequencer
    from sim.mqtt.transport import MqttTransport

    embedded: Any = None
    if link.broker == "embedded":
        from sim.mqtt.broker import BrokerError, EmbeddedBroker

        try:
            embedded = EmbeddedBroker().start()
        except BrokerError as exc:
            raise BadInput(str(exc)) from None
        url = parse_broker_url(embedded.url)
        link.announce(
            f"embedded broker: {embedded.describe()} - watch with: "
            f"mosquitto_sub -h {url.host} -p {url.port} -t '{link.prefix}/#' -v"
        )
    else:
        url = parse_broker_url(link.broker, link.tls)
        link.announce(f"broker: {url}")
    intake: Intake | None = None
    transport: MqttTransport | None = None
    outbox: Outbox | None = None
    try:
        seq = Sequencer(lambda e: writer("", e))
        # On a broker not our own, a persistent session: across a broker restart (persistence
        # on) it keeps what was queued for the engine and what gateways publish before the
        # engine is back. Our embedded broker lives exactly as long as the run: no need.
        intake = Intake(
            url,
            prefix=link.prefix,
            client_id=f"pmsim-{run_id}-engine",
            on_event=seq.arrived,
            clean=embedded is not None,
        )
        intake.start()
        outbox = Outbox(url, f"pmsim-{run_id}-records")

        def out(rec: Record) -> None:
            outbox.put(record_topic(link.prefix, rec), json.dumps(rec, ensure_ascii=False))

        writer.publish = out
        transport = MqttTransport(
            url,
            prefix=link.prefix,
            qos=link.qos,
            run_id=run_id,
            batch=link.batch,
            linger=link.linger,
        )

        def caught_up() -> bool:  # messages the broker holds for the engine: half the limit
            assert transport is not None and intake is not None
            return transport.messages - intake.received < EXTERNAL_BACKLOG_LIMIT // 2

        def expect(_topic: str, event: DeviceEvent) -> None:
            # The broker's queue limit counts messages (a batch is one), the memory bound events.
            assert transport is not None and intake is not None
            if (
                embedded is None
                and transport.messages - intake.received >= EXTERNAL_BACKLOG_LIMIT
                and not seq.wait_until(caught_up, 60.0)
            ) or not seq.wait_backlog_below(BACKLOG_LIMIT, 60.0):
                raise BadInput(f"broker {url}: the engine received nothing for 60 s")
            seq.expect(event.event_id)

        transport.subscribe_text(log.write_text)  # events.jsonl: the JSON sent
        transport.subscribe_runs(log.run_closed)  # each beat goes out as its own message
        transport.subscribe(expect)

        def finish() -> dict[str, Any]:
            assert transport is not None and intake is not None
            transport.flush()
            lost = seq.finish(link.idle_timeout)
            return {
                "kind": embedded.kind if embedded is not None else "external",
                "url": str(url),
                "protocol": transport.protocol,
                "qos": link.qos,
                "prefix": link.prefix,
                "batch": link.batch,
                "published": transport.published,
                "messages": transport.messages,
                "acknowledged": transport.acked,
                "last_wills": transport.wills,
                "consumed": seq.fed,
                "duplicates": seq.duplicates,
                "lost": len(lost),
                "lost_ids": lost[:100],
                "dead_letters": dict(sorted(intake.dead.items())),
            }

        def publish_ranking(period_id: str, payload: str) -> None:
            # A connection of its own: retained, acknowledged before the broker goes away.
            from sim.mqtt.client import connect

            client = connect(url, f"pmsim-{run_id}-rankings")
            try:
                info = client.publish(
                    f"{link.prefix}/rankings/{period_id}", payload, qos=1, retain=True
                )
                info.wait_for_publish(10)
            finally:
                client.disconnect()
                client.loop_stop()

        yield transport, finish, publish_ranking
    finally:
        writer.publish = None
        if outbox is not None:
            outbox.close()
        if transport is not None:
            transport.close()
        if intake is not None:
            intake.stop(forget=True)  # the run is over: nobody will resume its session
        if embedded is not None:
            embedded.stop()
