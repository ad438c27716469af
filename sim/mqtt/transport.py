"""Device events onto a real broker: one MQTT connection per estate gateway.

Each gateway connects when its estate's first event goes out, with a retained last will on
``{prefix}/gw/{estate}/status`` that marks it offline if the connection dies. Events are published
at QoS 1 (or 0) with a bounded window of unacknowledged messages (and ``pace`` before each): past
it the simulation waits, so neither paho's queue nor the broker's grows without bound.

With ``batch`` N > 1 a gateway sends its device events as JSON arrays on
``{prefix}/batch/{estate}``: N events a message, or fewer once the oldest has waited ``linger``
seconds of wall time (under ``--speed`` a batch must not wait for the next event). Gateway status
stays a single retained message. Each event is encoded to JSON once, for broker and taps alike.

When a simulated gateway goes off line its connection really dies: the transport reconnects it with
its offline status as last will and drops the socket without a DISCONNECT, so the broker, not
pmsim, announces the outage. The gateway reconnects when it comes back on line. A ``signer`` signs staff events (:mod:`sim.mqtt.signing`; each a message of its own); with
``login`` each gateway connects as its own user (``--broker-auth``: the ACL keeps it to its estate).
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.reasoncodes import ReasonCode

from devices.events import (
    DeviceEvent,
    GatewayStatus,
    batch_topic,
    event_bytes,
    event_json,
    topic_for,
)
from devices.liveness import BeatRun
from sim.errors import LOST_AFTER, BadInput, BrokerLost, lost_message
from sim.mqtt.client import Will, connect, protocol_name
from sim.mqtt.signing import SIGNED_KINDS, Signer
from sim.mqtt.url import BrokerURL

__all__ = ["DEFAULT_LINGER", "MqttTransport"]

DEFAULT_LINGER = 0.2  # wall seconds a batch may wait for more events


class _Batch:
    __slots__ = ("since", "texts")

    def __init__(self, since: float) -> None:
        self.since = since
        self.texts: list[str] = []


class MqttTransport:
    """The :class:`~sim.world.transport.Transport` that publishes to a broker."""

    def __init__(
        self,
        url: BrokerURL,
        *,
        prefix: str = "pm",
        qos: int = 1,
        window: int = 2000,
        run_id: str = "run",
        batch: int = 1,
        linger: float = DEFAULT_LINGER,
        signer: Signer | None = None,
        login: Callable[[str], BrokerURL] | None = None,
    ) -> None:
        self.url = url
        self.signer = signer
        self.login = login  # estate -> the URL (user, password) its gateway connects with
        self.prefix = prefix
        self.qos = qos
        self.window = window
        self.run_id = run_id
        self.batch = batch
        self.linger = linger
        self._clients: dict[str, mqtt.Client] = {}
        self._taps: list[Callable[[str, DeviceEvent], None]] = []
        self._text_taps: list[Callable[[DeviceEvent, str], None]] = []
        self._run_taps: list[Callable[[BeatRun], None]] = []
        self._cond = threading.Condition()
        self._unacked = 0
        # Batching: events per message in flight, by (client, mid); acknowledged before known
        self._carrying: dict[tuple[int, int], int] = {}
        self._acked_first: set[tuple[int, int]] = set()
        self._lock = threading.Lock()  # the batches and the clients' publish calls
        self._pending: dict[str, _Batch] = {}  # by estate, oldest first
        self._error: BaseException | None = None
        self._stop = threading.Event()
        self._flusher: threading.Thread | None = None
        self.published = 0  # events
        self.messages = 0  # MQTT messages (fewer than events when batching)
        self.pace: Callable[[], None] | None = None  # before each message: may wait (carrier)
        self.acked = 0  # events in acknowledged messages
        self.failed = 0
        self.wills = 0  # offline statuses the broker published as last wills
        self.protocol = "?"
        # A lost broker: when each client's connection dropped (monotonic, wall), until paho's
        # reconnect is answered; past LOST_AFTER the run stops (BrokerLost).
        self._down: dict[int, tuple[float, float]] = {}
        self._closing = False
        self._sim_time: str | None = None  # of the last event published, for the message
        if batch > 1:
            self._flusher = threading.Thread(
                target=self._linger_loop, name="pmsim-batch-linger", daemon=True
            )
            self._flusher.start()

    def subscribe(self, fn: Callable[[str, DeviceEvent], None]) -> None:
        """A local tap: called with every event as it is published (sequencing, say)."""
        self._taps.append(fn)

    def subscribe_text(self, fn: Callable[[DeviceEvent, str], None]) -> None:
        """A local tap that also gets the event's JSON, as sent (``events.jsonl``); called first.
        Heartbeats of runs are not given to it (they are written as runs)."""
        self._text_taps.append(fn)

    def subscribe_runs(self, fn: Callable[[BeatRun], None]) -> None:
        """Every heartbeat run as it ends (``heartbeats.jsonl``)."""
        self._run_taps.append(fn)

    # -- connections --------------------------------------------------------------------------

    def _on_publish(self, c: mqtt.Client, _u: Any, mid: int, rc: ReasonCode, _p: Any) -> None:
        with self._cond:
            self._unacked -= 1
            if self.batch > 1:
                n = self._carrying.pop((id(c), mid), None)
                if n is None:  # faster than _send: it adds the count
                    self._acked_first.add((id(c), mid))
                self.acked += n or 0
            else:
                self.acked += 1
            if rc.is_failure:
                self.failed += 1
            self._cond.notify_all()

    def _on_disconnect(self, c: mqtt.Client, *_a: Any) -> None:
        if not self._closing and c in self._clients.values():
            with self._cond:
                self._down.setdefault(id(c), (time.monotonic(), time.time()))
                self._cond.notify_all()

    def _on_connect(self, c: mqtt.Client, _u: Any, _f: Any, rc: ReasonCode, _p: Any) -> None:
        if not rc.is_failure:
            with self._cond:
                self._down.pop(id(c), None)

    def check_link(self) -> None:
        """Raise :class:`BrokerLost` once a connection has been down for :data:`LOST_AFTER`."""
        if not self._down:
            return
        down = list(self._down.values())  # one step under the GIL: paho's thread may change it
        if not down:
            return
        since, wall = min(down)
        if time.monotonic() - since >= LOST_AFTER:
            raise BrokerLost(lost_message(self.url, wall, self._sim_time))

    @property
    def sim_time(self) -> str | None:
        """The simulated time of the last event published (ISO 8601)."""
        return self._sim_time

    @property
    def lost(self) -> bool:
        try:
            self.check_link()
        except BrokerLost:
            return True
        return False

    def _connect(self, estate: str, will: Will) -> mqtt.Client:
        """A gateway's connection; once the run has had one, a broker that does not answer is a
        lost broker, not bad input."""
        try:
            return connect(
                self._url(estate),
                self._client_id(estate),
                will=will,
                setup=self._setup,
                on_connect=self._on_connect,
                on_disconnect=self._on_disconnect,
            )
        except BadInput as exc:
            if self.messages == 0:
                raise
            raise BrokerLost(lost_message(self.url, time.time(), self._sim_time)) from exc

    def _setup(self, c: mqtt.Client) -> None:
        c.on_publish = self._on_publish
        c.max_inflight_messages_set(self.window)
        c.max_queued_messages_set(0)

    def _client_id(self, estate: str) -> str:
        return f"pmsim-{self.run_id}-gw-{estate}"

    def _url(self, estate: str) -> BrokerURL:
        return self.login(estate) if self.login is not None else self.url

    def _client_for(self, event: DeviceEvent) -> mqtt.Client:
        client = self._clients.get(event.estate)
        if client is not None:
            return client
        will = GatewayStatus(
            event_id=f"{event.estate}-gw:will-{self.run_id}",
            device_id=f"{event.estate}-gw",
            device_kind="gateway",
            estate=event.estate,
            building="-",
            time=event.time,
            sim_seconds=event.sim_seconds,
            seq=0,
            status="offline",
        )

        client = self._connect(
            event.estate, Will(topic_for(will, self.prefix), event_bytes(will), 1, True)
        )
        self.protocol = protocol_name(client)
        if self.signer is not None and self.protocol != "5":
            client.disconnect()
            client.loop_stop()
            raise BadInput(
                f"broker {self.url}: signing needs MQTT 5 (the signature is a user property); "
                "this broker speaks 3.1.1 only"
            )
        self._clients[event.estate] = client
        return client

    # -- publishing ---------------------------------------------------------------------------

    def beat(self, run: BeatRun, j: int) -> None:
        """A heartbeat of a run goes out as the message a device stepped beat by beat sends."""
        self._publish(run.event(j), text_taps=False)

    def run_closed(self, run: BeatRun) -> None:
        for fn in self._run_taps:
            fn(run)

    def publish(self, event: DeviceEvent) -> None:
        self._publish(event, text_taps=True)

    def _publish(self, event: DeviceEvent, text_taps: bool) -> None:
        if self._error is not None:
            raise self._error
        self.check_link()
        self._sim_time = event.time.isoformat()
        text = event_json(event)
        topic = topic_for(event, self.prefix)
        if text_taps:
            for text_tap in self._text_taps:
                text_tap(event, text)
        for tap in self._taps:
            tap(topic, event)
        with self._lock:
            client = self._client_for(event)
            self.published += 1
            status = isinstance(event, GatewayStatus)
            signed = self.signer is not None and event.device_kind in SIGNED_KINDS
            if self.batch <= 1 or status or signed:
                if event.estate in self._pending:  # what the gateway sent before goes first
                    self._send_batch(event.estate)
                if isinstance(event, GatewayStatus) and event.status == "offline":
                    self._die_with_will(event.estate, topic, text)
                else:
                    props = self.signer.properties(text) if signed and self.signer else None
                    self._send(client, topic, text, status, 1, props)
                return
            now = time.monotonic()
            pending = self._pending.get(event.estate)
            if pending is None:
                pending = self._pending[event.estate] = _Batch(now)
            pending.texts.append(text)
            if len(pending.texts) >= self.batch:
                self._send_batch(event.estate)
            self._send_stale(now)

    def _send(
        self,
        client: mqtt.Client,
        topic: str,
        payload: str,
        retain: bool,
        n: int,
        properties: Any = None,
    ) -> None:
        if self.pace is not None:
            self.pace()
        with self._cond:
            if self.qos > 0:
                self._wait(lambda: self._unacked < self.window)
            self._unacked += 1
        # Not under _cond: paho holds its own lock when it calls _on_publish.
        info = client.publish(topic, payload, qos=self.qos, retain=retain, properties=properties)
        sent = self.qos > 0 or info.rc == mqtt.MQTT_ERR_SUCCESS  # QoS 0 unsent: no on_publish
        if not sent or self.batch > 1:
            with self._cond:
                if not sent:
                    self._unacked -= 1
                elif (id(client), info.mid) in self._acked_first:
                    self._acked_first.discard((id(client), info.mid))
                    self.acked += n
                else:
                    self._carrying[(id(client), info.mid)] = n
        if info.rc != mqtt.MQTT_ERR_SUCCESS and info.rc != mqtt.MQTT_ERR_NO_CONN:
            raise BadInput(f"broker {self.url}: publish failed: {mqtt.error_string(info.rc)}")
        self.messages += 1

    def _die_with_will(self, estate: str, topic: str, status: str) -> None:
        """The gateway's link dies; the broker publishes ``status`` as its last will."""
        with self._cond:  # what the gateway sent before is acknowledged before the link goes
            self._wait(lambda: self._unacked == 0)
        old = self._clients.pop(estate)
        self._down.pop(id(old), None)
        old.disconnect()  # a clean goodbye: no will for this connection
        old.loop_stop()
        doomed = self._connect(estate, Will(topic, status.encode(), 1, True))
        doomed.on_disconnect = None  # this one dies on purpose
        sock = doomed.socket()
        doomed.loop_stop()  # no reconnecting: this link is gone
        if isinstance(sock, socket.socket):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
        with self._cond:
            self.acked += 1  # the broker took the will with the CONNACK
        self.wills += 1
        self.messages += 1

    def _wait(self, ready: Callable[[], bool]) -> None:
        """Wait (holding ``_cond``) until ``ready()``: 30 s without an acknowledgement is a broker
        that does not answer, a connection down for LOST_AFTER a lost broker."""
        deadline = time.monotonic() + 30.0
        while not ready():
            self.check_link()
            if time.monotonic() > deadline:
                raise BadInput(f"broker {self.url}: no acknowledgement for 30 s")
            self._cond.wait(0.25)

    def _send_batch(self, estate: str) -> None:
        pending = self._pending.pop(estate)
        payload = "[" + ",".join(pending.texts) + "]"
        topic = batch_topic(estate, self.prefix)
        self._send(self._clients[estate], topic, payload, False, len(pending.texts))

    def _send_stale(self, now: float) -> None:
        while self._pending:
            estate, oldest = next(iter(self._pending.items()))
            if now - oldest.since < self.linger:
                return
            self._send_batch(estate)

    def _linger_loop(self) -> None:
        while not self._stop.wait(self.linger / 2):
            try:
                with self._lock:
                    self._send_stale(time.monotonic())
            except BaseException as exc:  # reported by the next publish or flush
                self._error = exc
                return

    def flush(self, timeout: float = 60.0) -> bool:
        """Send what is batched, then wait until the broker acknowledged everything (QoS 1);
        False on timeout."""
        with self._lock:
            while self._pending:
                self._send_batch(next(iter(self._pending)))
        if self._error is not None:
            raise self._error
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._unacked > 0:
                self.check_link()
                left = deadline - time.monotonic()
                if left <= 0 or (
                    not self._cond.wait(min(left, 1.0)) and time.monotonic() >= deadline
                ):
                    return False
        return True

    def close(self) -> None:
        try:
            if not self.lost:  # nobody to flush to
                self.flush()
        finally:
            self._closing = True
            self._stop.set()
            if self._flusher is not None:
                self._flusher.join(5.0)
            for client in self._clients.values():
                client.disconnect()
                client.loop_stop()
            self._clients.clear()
