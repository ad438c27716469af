"""Connecting paho clients: MQTT 5 where the broker has it, 3.1.1 otherwise; TLS and passwords.

One place decides how pmsim connects, so the device gateways, the engine and ``pmsim watch`` all
behave alike, and an unreachable broker is one clear line within seconds, never a hang.
"""

from __future__ import annotations

import ssl
import threading
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from sim.errors import BadInput
from sim.mqtt.url import BrokerURL

__all__ = ["WILL_MARK", "Will", "connect", "protocol_name"]

CONNECT_TIMEOUT = 5.0


WILL_MARK = ("pmsim", "last-will")  # an MQTT 5 user property: this message is a last will


@dataclass(frozen=True)
class Will:
    topic: str
    payload: bytes
    qos: int = 1
    retain: bool = True


READ_BURST = 256  # packets one pass of the network loop may read


class BurstClient(mqtt.Client):
    """A paho client whose network loop reads every packet that has arrived, up to
    :data:`READ_BURST`, in one pass.

    paho sizes a pass's reads by the client's own unacknowledged messages, so a client that only
    subscribes reads one packet per pass: a ``select`` (and a wake-up for its PUBACK) per message,
    which caps the engine's intake far below what one core can decode. Reading stops at the first
    "nothing more" from the socket, as paho's own loop does.

    And on the publishing side, paho wakes its network thread (a byte on a socket pair) for every
    message queued; the woken thread then takes the interpreter lock from the publisher, message
    after message. While another QoS 1 message of this client is in flight its PUBACK will wake
    the loop anyway, which then writes everything queued: this client does not wake it again."""

    def _packet_queue(
        self,
        command: int,
        packet: bytes | bytearray,
        mid: int,
        qos: int,
        info: Any = None,
    ) -> MQTTErrorCode:
        out = getattr(self, "_out_packet", None)
        in_flight = getattr(self, "_inflight_messages", 0)
        if out is None or getattr(self, "_thread", None) is None or in_flight < 2 or qos < 1:
            rc: MQTTErrorCode = super()._packet_queue(command, packet, mid, qos, info)
            return rc
        out.append(
            {
                "command": command,
                "mid": mid,
                "qos": qos,
                "pos": 0,
                "to_process": len(packet),
                "packet": packet,
                "info": info,
            }
        )
        return MQTTErrorCode.MQTT_ERR_SUCCESS

    def loop_read(self, max_packets: int = 1) -> MQTTErrorCode:
        sock_of = getattr(self, "_sock", None)
        read = getattr(self, "_packet_read", None)
        handle = getattr(self, "_loop_rc_handle", None)
        if read is None or handle is None or sock_of is None:  # not the paho we know, or closed
            return super().loop_read(max_packets)
        for _ in range(READ_BURST):
            if getattr(self, "_sock", None) is None:
                return MQTTErrorCode.MQTT_ERR_NO_CONN
            rc = read()
            if rc > 0:
                rc_handled: MQTTErrorCode = handle(rc)
                return rc_handled
            if rc == MQTTErrorCode.MQTT_ERR_AGAIN:
                break
        return MQTTErrorCode.MQTT_ERR_SUCCESS


def protocol_name(client: mqtt.Client) -> str:
    return "5" if client.protocol == mqtt.MQTTv5 else "3.1.1"


def _new_client(
    url: BrokerURL, client_id: str, protocol: int, clean: bool, will: Will | None
) -> mqtt.Client:
    kwargs: dict[str, Any] = {"client_id": client_id, "protocol": protocol}
    if protocol != mqtt.MQTTv5:
        kwargs["clean_session"] = clean
    client = BurstClient(CallbackAPIVersion.VERSION2, **kwargs)
    client.connect_timeout = CONNECT_TIMEOUT
    if url.username is not None:
        client.username_pw_set(url.username, url.password)
    if url.tls:
        f = url.tls_files
        client.tls_set(
            ca_certs=str(f.ca) if f.ca else None,
            certfile=str(f.cert) if f.cert else None,
            keyfile=str(f.key) if f.key else None,
            cert_reqs=ssl.CERT_REQUIRED,
        )
    if will is not None:
        props = None
        if protocol == mqtt.MQTTv5:  # so a subscriber can tell the broker sent it, not a client
            props = Properties(PacketTypes.WILLMESSAGE)  # type: ignore[no-untyped-call]
            props.UserProperty = [WILL_MARK]
        client.will_set(
            will.topic, will.payload, qos=will.qos, retain=will.retain, properties=props
        )
    return client


def connect(
    url: BrokerURL,
    client_id: str,
    *,
    will: Will | None = None,
    clean: bool = True,
    protocols: tuple[int, ...] = (mqtt.MQTTv5, mqtt.MQTTv311),
    setup: Any = None,
    on_connect: Any = None,
    on_disconnect: Any = None,
    max_packet: int | None = None,
) -> mqtt.Client:
    """A connected client with its network loop running (``loop_start``).

    ``setup(client)`` configures the client and installs message callbacks before connecting, so
    nothing is missed; ``on_connect``/``on_disconnect`` take over once the handshake is done.
    MQTT 5 is tried first, then 3.1.1. Raises :class:`BadInput` when the broker cannot be reached
    or refuses us. ``max_packet`` (MQTT 5) tells the broker the largest packet we take: it
    drops a larger message for us rather than send it.
    """
    last = "no answer"
    for protocol in protocols:
        client, rc, answered, closed = _attempt(
            url, client_id, protocol, clean, will, setup, max_packet
        )
        if answered and rc is not None and not rc.is_failure:
            client.on_connect = on_connect
            client.on_disconnect = on_disconnect
            return client
        client.loop_stop()
        client.disconnect()
        last = str(rc) if answered else f"no CONNACK within {CONNECT_TIMEOUT:.0f} s"
        if closed:  # no CONNACK at all: typically plain MQTT sent to a TLS listener
            last = "the broker closed the connection without answering"
            if not url.tls:
                last += " (a TLS port? then mqtts://)"
        if rc is not None and rc.value in (4, 5, 134, 135):  # bad credentials / not authorised
            break
    raise BadInput(f"broker {url}: connection refused: {last}")


def _attempt(
    url: BrokerURL,
    client_id: str,
    protocol: int,
    clean: bool,
    will: Will | None,
    setup: Any,
    max_packet: int | None = None,
) -> tuple[mqtt.Client, ReasonCode | None, bool, bool]:
    """The client, the CONNACK's reason code, whether anything answered in time, and whether
    the connection closed before a CONNACK."""
    client = _new_client(url, client_id, protocol, clean, will)
    done = threading.Event()
    result: dict[str, ReasonCode] = {}
    closed: list[bool] = []

    def on_connect(c: mqtt.Client, _u: Any, _f: Any, rc: ReasonCode, _p: Any) -> None:
        result["rc"] = rc
        done.set()

    def on_disconnect(c: mqtt.Client, _u: Any, _f: Any, rc: ReasonCode, _p: Any) -> None:
        if "rc" not in result:
            closed.append(True)
        result.setdefault("rc", rc)
        done.set()

    if setup is not None:
        setup(client)  # first, so that its message callbacks are there from the start
    client.on_connect = on_connect  # the handshake's own, until it is answered
    client.on_disconnect = on_disconnect
    try:
        if protocol == mqtt.MQTTv5:
            props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
            if not clean:
                props.SessionExpiryInterval = 86400  # keep the session (and its queue) a day
            if max_packet is not None:
                props.MaximumPacketSize = max_packet
            client.connect(url.host, url.port, keepalive=30, clean_start=clean, properties=props)
        else:
            client.connect(url.host, url.port, keepalive=30)
    except (OSError, ssl.SSLError) as exc:
        raise BadInput(f"broker {url}: cannot connect: {exc}") from None
    client.loop_start()
    answered = done.wait(CONNECT_TIMEOUT)
    return client, result.get("rc"), answered, bool(closed)
