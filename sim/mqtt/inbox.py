"""The hand-off between paho's network thread and the thread that parses and feeds the engine.

paho reads the socket, answers the broker's pings and sends our acknowledgements on one thread;
whatever its ``on_message`` does, that thread does not. Parsing a message there (a 15 MB batch of
zeros took seconds) starves the connection past its keep-alive, the broker drops it, redelivers,
and the service parses the same batch again. So ``on_message`` only puts the raw message into an
:class:`Inbox`: a bounded queue, drained in order by one worker thread.

Back-pressure, in two layers:

- QoS 1 messages are acknowledged (PUBACK) only once the worker has handled them (paho's manual
  acks), so the broker never has more than its in-flight window (Mosquitto: 20) of them out to us,
  and a service killed with messages in its queue gets them again from its session.
- When the queue is full anyway (QoS 0 traffic, or a broker with a wide window), ``put`` waits in
  the network thread for a free place: paho stops reading, TCP fills, the broker queues. The wait
  is short, because each message in the queue is bounded in size (:mod:`sim.mqtt.intake` stubs
  out an oversized one before it is queued) and so is the work it takes.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["QUEUE_MESSAGES", "Inbound", "Inbox"]

QUEUE_MESSAGES = 16  # messages waiting for the worker; each at most the batch limit (1 MiB)
POLL = 0.1  # seconds between the worker's and a blocked put's looks at "closing"


@dataclass(frozen=True, slots=True)
class Inbound:
    """One message as the network thread received it (``payload`` is only its start when
    ``size`` is over the limit: an oversized message is never queued whole)."""

    topic: str
    payload: bytes
    size: int
    mid: int
    qos: int
    generation: int  # which connection it came on: an ack goes only to that one
    properties: Any = None  # its MQTT 5 properties (a signature: sim.mqtt.signing)


class Inbox:
    """A bounded queue of :class:`Inbound` drained in order by one worker thread, which calls
    ``handle`` on each and then ``done`` (the acknowledgement), whatever ``handle`` raised."""

    def __init__(
        self,
        handle: Callable[[Inbound], None],
        done: Callable[[Inbound], None],
        *,
        maxsize: int = QUEUE_MESSAGES,
        name: str = "pmsim-intake",
    ) -> None:
        self._handle = handle
        self._done = done
        self._queue: queue.Queue[Inbound] = queue.Queue(maxsize=maxsize)
        self._closing = threading.Event()
        self._worker = threading.Thread(target=self._work, name=name, daemon=True)
        self.errors = 0  # exceptions ``handle`` let through (the worker goes on)
        self.waits = 0  # times the network thread found the queue full

    def start(self) -> None:
        self._worker.start()

    @property
    def pending(self) -> int:
        return self._queue.qsize()

    def put(self, item: Inbound) -> bool:
        """Queue ``item``, waiting while the queue is full; False once closing (the message is
        then not acknowledged: the broker keeps it for the session)."""
        if self._closing.is_set():
            return False
        try:
            self._queue.put_nowait(item)
            return True
        except queue.Full:
            self.waits += 1
        while not self._closing.is_set():
            try:
                self._queue.put(item, timeout=POLL)
                return True
            except queue.Full:
                continue
        return False

    def _work(self) -> None:
        while True:
            try:
                items = [self._queue.get(timeout=POLL)]
            except queue.Empty:
                if self._closing.is_set():
                    return
                continue
            # what else is waiting too: handled in a row, then acknowledged together, so the
            # network thread is woken (and takes the interpreter lock) once, not per message
            with contextlib.suppress(queue.Empty):
                while len(items) < self._queue.maxsize:
                    items.append(self._queue.get_nowait())
            for item in items:
                try:
                    self._handle(item)
                except Exception:  # never let one message end the worker: it would go deaf
                    self.errors += 1
            for item in items:
                try:
                    self._done(item)
                except Exception:
                    self.errors += 1

    def close(self, timeout: float = 10.0) -> None:
        """Handle what is queued, then stop the worker (new messages are refused meanwhile)."""
        self._closing.set()
        if self._worker.is_alive():
            self._worker.join(timeout)
