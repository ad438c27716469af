"""How a run's events travel to its rules engine: in-process, or over a broker (embedded or not).

Either way ``events.jsonl`` is written as the simulation publishes, and the engine consumes the
same events in the same order, so a run's alerts do not depend on the carrier. Over MQTT the engine
runs in a process of its own (:mod:`sim.mqtt.enginehost`), consumes what came off the broker
(re-sequenced into publish order, see :mod:`sim.mqtt.sequencer`), and publishes its alerts and
work-order changes back to the broker.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from devices.events import DeviceEvent
from rules.engine import Engine
from rules.ruleset import RuleSet
from sim.errors import BadInput
from sim.files.eventlog import EventLog
from sim.files.records import EngineOutcome, RecordWriter, finish_engine
from sim.mqtt.intake import DEFAULT_MAX_BATCH
from sim.mqtt.outbox import record_topic
from sim.mqtt.transport import DEFAULT_LINGER
from sim.mqtt.url import BrokerURL, TLSFiles, parse_broker_url
from sim.world.transport import InProcessTransport, Transport

__all__ = ["EngineSide", "Link", "carry_events", "record_topic"]

Publish = Callable[[str, str], None]  # (period id, JSON): a retained ranking
BACKLOG_LIMIT = 50_000  # events published but not yet consumed before the simulation waits
# ... on a broker not our own: a stock Mosquitto queues 1,000 messages (plus 20 in flight) for a
# subscriber that falls behind (max_queued_messages) and silently drops the rest. Messages, not
# events (a batch is one); past the limit the simulation waits until the engine is down to half.
# Well under 1,000: what the engine has not yet counted includes what sits in its socket and inbox.
EXTERNAL_BACKLOG_LIMIT = 400


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
    # Authenticity (sim.mqtt.signing): records and staff events signed with this key (in-process,
    # with nothing published, it has nothing to do)
    sign_key: bytes | None = None
    # The embedded broker with a user per gateway, the engine and watchers, and an ACL
    broker_auth: bool = False

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
        if self.broker_auth and self.broker != "embedded":
            raise BadInput("--broker-auth: only for --broker embedded (a broker of our own)")
        if self.broker not in ("none", "embedded"):
            parse_broker_url(self.broker, self.tls)


@dataclass
class EngineSide:
    """The run's rules engine as the carrier needs it: the compiled rules, the folder its records go
    to, the simulation's clock, and how far a device clock may be off (in-process heartbeat runs
    may then stay quiet in the engine)."""

    ruleset: RuleSet
    folder: Path
    now: Callable[[], float | None]
    max_skew: float


Finish = Callable[[float], tuple[dict[str, Any], EngineOutcome]]  # run's end -> (carrier, engine)


@contextmanager
def carry_events(
    link: Link, log: EventLog, side: EngineSide, *, run_id: str, estates: tuple[str, ...] = ()
) -> Iterator[tuple[Transport, Finish, Publish | None]]:
    """Yield ``(transport, finish, publish_ranking)``: publish through ``transport``;
    ``finish(end_s)`` waits until the engine has consumed everything, runs its timers to the run's
    end and returns what the run folder says about the carrier and the engine;
    ``publish_ranking`` (None in-process) puts a ranking on the broker, retained. ``estates``:
    whose gateways get a user of their own with ``link.broker_auth``."""
    link.check()
    if link.broker == "none":
        with _in_process(link, log, side) as trio:
            yield trio
        return
    with _over_mqtt(link, log, side, run_id, estates) as trio:
        yield trio


@contextmanager
def _in_process(
    link: Link, log: EventLog, side: EngineSide
) -> Iterator[tuple[Transport, Finish, Publish | None]]:
    with (
        open(side.folder / "alerts.jsonl", "w", encoding="utf-8", newline="\n") as fa,
        open(side.folder / "workorders.jsonl", "w", encoding="utf-8", newline="\n") as fw,
    ):
        engine = Engine(side.ruleset)
        engine.quiet_beats(side.max_skew)  # heartbeat runs may stay quiet in the engine
        writer = RecordWriter(engine, fa, fw)
        writer.now = side.now
        local = InProcessTransport(link.prefix)
        local.subscribe(log)
        local.subscribe(writer)
        local.subscribe_beats(writer.beat)
        local.subscribe_runs(log.run_closed)
        local.subscribe_runs(writer.run_closed)

        def finish(end_s: float) -> tuple[dict[str, Any], EngineOutcome]:
            return {"kind": "none", "published": local.published}, finish_engine(writer, end_s)

        yield local, finish, None


@contextmanager
def _over_mqtt(
    link: Link, log: EventLog, side: EngineSide, run_id: str, estates: tuple[str, ...]
) -> Iterator[tuple[Transport, Finish, Publish | None]]:
    from sim.mqtt.enginehost import EngineJob, EngineProcess
    from sim.mqtt.signing import Signer
    from sim.mqtt.transport import MqttTransport

    embedded: Any = None
    login: Callable[[str], BrokerURL] | None = None
    if link.broker == "embedded":
        from sim.mqtt.broker import BrokerError, EmbeddedBroker
        from sim.mqtt.brokerauth import ENGINE, BrokerAuth, gateway_user

        auth = BrokerAuth.generate(link.prefix, estates) if link.broker_auth else None
        try:
            embedded = EmbeddedBroker(auth=auth).start()
        except BrokerError as exc:
            raise BadInput(str(exc)) from None
        url = parse_broker_url(embedded.url)
        watch = f"mosquitto_sub -h {url.host} -p {url.port} -t '{link.prefix}/#' -v"
        if auth is not None and auth.folder is not None:
            creds = auth.credentials_file(auth.folder)
            watch = f"pmsim watch --broker URL, the URL of user 'watch' in {creds} (read-only)"
            users, b_host, b_port = auth, url.host, url.port

            def gateway_login(estate: str) -> BrokerURL:  # each gateway as its own user
                return users.url(gateway_user(estate), b_host, b_port)

            login = gateway_login
            url = auth.url(ENGINE, b_host, b_port)
        link.announce(f"embedded broker: {embedded.describe()} - watch with: {watch}")
    else:
        url = parse_broker_url(link.broker, link.tls)
        link.announce(f"broker: {url}")
    host: EngineProcess | None = None
    transport: MqttTransport | None = None
    try:
        # The engine's side runs in a process of its own (sim.mqtt.enginehost). On a broker not
        # our own, its session is persistent: across a broker restart (persistence on) it keeps
        # what was queued for the engine and what gateways publish before the engine is back.
        # Our embedded broker lives exactly as long as the run: no need.
        host = EngineProcess(
            EngineJob(
                spec=side.ruleset.spec,
                url=url,
                prefix=link.prefix,
                client_id=f"pmsim-{run_id}-engine",
                records_client_id=f"pmsim-{run_id}-records",
                clean=embedded is not None,
                folder=side.folder,
                hold_limit=2 * BACKLOG_LIMIT,
                sign_key=link.sign_key,
            )
        ).start()
        signer = Signer(link.sign_key) if link.sign_key is not None else None
        transport = MqttTransport(
            url,
            prefix=link.prefix,
            qos=link.qos,
            run_id=run_id,
            batch=link.batch,
            linger=link.linger,
            signer=signer,
            login=login,
        )
        engine = host
        carrier = transport
        host.sim_time = lambda: carrier.sim_time

        def caught_up() -> bool:  # messages the broker holds for the engine: half the limit
            carrier.check_link()  # a lost broker is said as such, not as a silent engine
            return carrier.messages - engine.received < EXTERNAL_BACKLOG_LIMIT // 2

        def backlog_below() -> bool:
            carrier.check_link()
            return engine.expected - engine.fed < BACKLOG_LIMIT

        def pace() -> None:  # every message, heartbeats too: a stock broker's queue is finite
            behind = carrier.messages - engine.received >= EXTERNAL_BACKLOG_LIMIT
            if behind and not engine.wait_until(caught_up, 60.0):
                raise BadInput(f"broker {url}: the engine received nothing for 60 s")

        if embedded is None:
            transport.pace = pace

        def expect(_topic: str, event: DeviceEvent) -> None:
            # The broker's queue limit counts messages (a batch is one), the memory bound events.
            if (
                embedded is None
                and carrier.messages - engine.received >= EXTERNAL_BACKLOG_LIMIT
                and not engine.wait_until(caught_up, 60.0)
            ) or not engine.wait_until(backlog_below, 60.0):
                raise BadInput(f"broker {url}: the engine received nothing for 60 s")
            engine.expect(event.event_id)

        transport.subscribe_text(log.write_text)  # events.jsonl: the JSON sent
        transport.subscribe_runs(log.run_closed)  # each beat goes out as its own message
        transport.subscribe(expect)

        def finish(end_s: float) -> tuple[dict[str, Any], EngineOutcome]:
            carrier.flush()
            report = engine.finish(end_s, link.idle_timeout)
            info = {
                "kind": embedded.kind if embedded is not None else "external",
                "url": str(url),
                "protocol": carrier.protocol,
                "qos": link.qos,
                "prefix": link.prefix,
                "batch": link.batch,
                "published": carrier.published,
                "messages": carrier.messages,
                "acknowledged": carrier.acked,
                "last_wills": carrier.wills,
                "consumed": report.fed,
                "duplicates": report.duplicates,
                "lost": len(report.lost),
                "lost_ids": report.lost[:100],
                "dead_letters": report.dead_letters,
                "sequence_gaps": report.gaps,
                "sequence_gap_events": report.gap_events,
            }
            if signer is not None:  # said only when on: a run without it is as it always was
                info["signed"] = "hmac-sha256"
            if login is not None:
                info["auth"] = "password+acl"
            return info, report.outcome

        def publish_ranking(period_id: str, payload: str) -> None:
            # A connection of its own: retained, acknowledged before the broker goes away.
            from sim.mqtt.client import connect

            client = connect(url, f"pmsim-{run_id}-rankings")
            try:
                props = signer.properties(payload) if signer is not None else None
                info = client.publish(
                    f"{link.prefix}/rankings/{period_id}",
                    payload,
                    qos=1,
                    retain=True,
                    properties=props,
                )
                info.wait_for_publish(10)
            finally:
                client.disconnect()
                client.loop_stop()

        yield transport, finish, publish_ranking
    finally:
        lost = (transport is not None and transport.lost) or (host is not None and host.lost)
        if transport is not None:
            transport.close()
        if host is not None:
            host.close(quick=lost)  # a lost broker: nothing the engine could still say
        if embedded is not None:
            embedded.stop()
