"""The pure-Python fallback broker: ``python -m sim.mqtt.amqtt_broker --port N``.

``EmbeddedBroker`` runs this in a child process when Mosquitto is not installed, so a run needs
nothing beyond ``pip install 'pmsim[broker]'``. It is amqtt (MQTT 3.1.1) listening on 127.0.0.1
only, anonymous, without ``$SYS`` topics or packet logging, until SIGTERM or SIGINT. Like
Mosquitto's ``max_packet_size``, a client that sends a packet larger than ``--max-packet-bytes``
is disconnected (amqtt has no such limit of its own).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from typing import Any

__all__ = ["main"]

HOST = "127.0.0.1"
MIN_PACKET_BYTES = 20  # Mosquitto's floor for max_packet_size, kept for the same reason

log = logging.getLogger("pmsim.amqtt_broker")


class PacketTooLarge(Exception):
    """A client sent a packet over the limit: its connection is dropped."""


class PacketSizeMeter:
    """Follows MQTT framing on one connection's byte stream and checks each packet's size.

    The size is known from the fixed header (type byte plus the remaining-length bytes), before
    the body is read, so an oversized packet is refused without buffering it.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._header = bytearray()  # fixed-header bytes of the packet being started
        self._body_left = 0  # body bytes of the current packet still to come

    def feed(self, data: bytes) -> None:
        i = 0
        while i < len(data):
            if self._body_left:
                take = min(self._body_left, len(data) - i)
                self._body_left -= take
                i += take
                continue
            self._header.append(data[i])
            i += 1
            if len(self._header) >= 2 and not self._header[-1] & 0x80:
                remaining = sum((b & 0x7F) << (7 * k) for k, b in enumerate(self._header[1:]))
                size = len(self._header) + remaining
                self._header.clear()
                if size > self.limit:
                    raise PacketTooLarge(f"{size}-byte packet over the {self.limit}-byte limit")
                self._body_left = remaining


def _make_broker(port: int, max_packet_bytes: int) -> Any:
    """An amqtt Broker on 127.0.0.1:PORT that enforces the packet limit (call inside the loop)."""
    from amqtt.adapters import StreamReaderAdapter, StreamWriterAdapter
    from amqtt.broker import Broker

    class LimitedReader(StreamReaderAdapter):  # type: ignore[misc]
        def __init__(self, reader: asyncio.StreamReader) -> None:
            super().__init__(reader)
            self.meter = PacketSizeMeter(max_packet_bytes)

        async def read(self, n: int = -1) -> bytes:
            data: bytes = await super().read(n)
            self.meter.feed(data)
            return data

    class LimitedBroker(Broker):  # type: ignore[misc]
        async def stream_connected(
            self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, listener_name: str
        ) -> None:
            try:
                await self.external_connected(
                    LimitedReader(reader), StreamWriterAdapter(writer), listener_name
                )
            except PacketTooLarge as exc:  # during CONNECT; later ones end the reader loop
                log.warning("disconnecting a client: %s", exc)
                writer.close()

    config = {
        "listeners": {"default": {"type": "tcp", "bind": f"{HOST}:{port}"}},
        # Only anonymous auth: no BrokerSysPlugin ($SYS every 20 s) and no packet/event loggers.
        "plugins": {"amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}},
    }
    return LimitedBroker(config)


async def serve(port: int, max_packet_bytes: int) -> int:
    """Listen until SIGTERM/SIGINT; 0 on a clean stop, 1 if the listener cannot start."""
    from amqtt.errors import BrokerError

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    broker = _make_broker(port, max_packet_bytes)
    try:
        await broker.start()
    except BrokerError as exc:
        print(f"amqtt: cannot listen on {HOST}:{port}: {exc}", file=sys.stderr, flush=True)
        return 1
    await stop.wait()
    try:
        await asyncio.wait_for(broker.shutdown(), timeout=4)
    except TimeoutError:
        log.warning("amqtt did not shut down within 4 s")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m sim.mqtt.amqtt_broker", description="amqtt on 127.0.0.1 for pmsim."
    )
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--max-packet-bytes", type=int, default=1_048_576)
    args = parser.parse_args(argv)
    if not 0 < args.port < 65536:
        parser.error(f"--port {args.port} is not a TCP port")
    if args.max_packet_bytes < MIN_PACKET_BYTES:
        parser.error(f"--max-packet-bytes must be at least {MIN_PACKET_BYTES}")
    try:
        import amqtt  # noqa: F401
    except ImportError:
        print("amqtt is not installed: pip install 'pmsim[broker]'", file=sys.stderr)
        return 1
    # Warnings and errors only, one line each, on stderr (the parent's log file).
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    return asyncio.run(serve(args.port, args.max_packet_bytes))


if __name__ == "__main__":
    raise SystemExit(main())
