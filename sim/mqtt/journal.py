"""What ``pmsim rules serve`` keeps on disk so a killed service resumes exactly: a snapshot and a
journal of everything since.

Why a journal: paho acknowledges a QoS 1 message once ``on_message`` returns, and the broker then
forgets it. A service killed (SIGKILL, a crash) after acknowledging events but before its next
snapshot would lose them. So every event the engine is given is first appended to the journal
(``STATE.journal``, one JSON line, written and flushed: a process kill cannot lose it), and so is
every wall-clock advance. A snapshot is written atomically every few seconds, and then the journal
starts again, empty.

Restart: restore the snapshot, feed the journal through the engine again, then take the broker's
queued messages. The engine is deterministic (same state, same inputs, same records), and drops
event ids it already has, so redelivered events change nothing.

No record published twice: every record the engine makes gets a serial number, counted across
restarts. When the broker acknowledges a record its serial goes into the journal. Records the
replay makes again are published only if their serial was never acknowledged; records made but
not acknowledged at snapshot time travel in the snapshot and are published again after a restart.
(A record the broker took just before the kill, whose acknowledgement never reached the journal,
is published again: QoS 1 is at least once.)

Generations: the snapshot names the journal generation that follows it. A journal of an older
generation (killed between writing the snapshot and starting the next journal) is already in the
snapshot and is ignored. The journal belongs to its snapshot: move or delete them together.
One service per state file (``STATE.lock``, held while it runs): two would interleave a journal.

State file: a magic line, a JSON header line (generation, serials, unacknowledged records), then
the engine's own snapshot (:mod:`rules.snapshot`: versioned, checksummed, never pickle). A bare
engine snapshot is read as generation 0; one written with pickle (older pmsim) is refused unread.
"""

from __future__ import annotations

import json
import os
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from devices.events import DeviceEvent, event_from_python, event_json
from rules.engine import Engine, Record
from rules.ruleset import RuleSet
from rules.snapshot import SnapshotError
from sim.errors import BadInput

if sys.platform != "win32":
    import fcntl

__all__ = ["Ledger", "Outgoing", "journal_path"]

MAGIC = b"pmsim-serve-state 1\n"
Outgoing = tuple[int, str, str]  # (serial, topic, payload)
Render = Callable[[Record], tuple[str, str]]  # a record -> (topic, payload)


def journal_path(state: Path) -> Path:
    return state.with_name(state.name + ".journal")


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)  # a crash leaves the old file or the new one, never half of one


class Ledger:
    """The engine, its journal and its record serials. Not thread-safe for the engine (callers
    hold the intake's lock); ``acked`` may come from any thread."""

    def __init__(self, engine: Engine, render: Render, state: Path | None = None) -> None:
        self.engine = engine
        self.render = render
        self.state = state
        self.generation = 0
        self.produced = 0  # serial of the last record made
        self.pending: dict[int, tuple[str, str]] = {}  # made, not yet acknowledged
        self.replayed = 0  # journal inputs fed again at start
        self._lock = threading.Lock()
        self._journal: IO[str] | None = None
        self._held: IO[str] | None = None  # the lock file, while we own the state

    # -- start ------------------------------------------------------------------------------

    @classmethod
    def open(
        cls, rules: RuleSet, render: Render, state: Path | None, workorder_prefix: str = "WO"
    ) -> Ledger:
        """Restore ``state`` and its journal (if any); :meth:`unsent` then lists what to publish.
        With a state file, a fresh snapshot is written and a new journal begun. Work orders are
        numbered after ``workorder_prefix`` (a partition's own), the replayed ones too."""
        ledger = cls(Engine(rules), render, state)
        ledger.engine.s.workorders.prefix = workorder_prefix
        if state is None:
            return ledger
        ledger._hold(state)
        if state.exists():
            ledger._restore(rules, state.read_bytes())
            ledger.engine.s.workorders.prefix = workorder_prefix
        journal = journal_path(state)
        if journal.exists():
            ledger._replay(journal)
        ledger.save()
        return ledger

    def _hold(self, state: Path) -> None:
        try:
            state.parent.mkdir(parents=True, exist_ok=True)
            held = state.with_name(state.name + ".lock").open("a", encoding="utf-8")
        except OSError as exc:
            raise BadInput(f"--state {state}: {exc}") from None
        if sys.platform != "win32":
            try:
                fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                held.close()
                raise BadInput(f"--state {state}: in use by another pmsim rules serve") from None
        self._held = held

    def _restore(self, rules: RuleSet, blob: bytes) -> None:
        header: Any = {}
        if blob.startswith(MAGIC):
            line, _, blob = blob[len(MAGIC) :].partition(b"\n")
            try:
                header = json.loads(line)
            except json.JSONDecodeError as exc:
                raise BadInput(f"--state {self.state}: damaged header: {exc.msg}") from None
        try:
            self.engine = Engine.restore(rules, blob)
        except SnapshotError as exc:  # never code: the format holds values only (rules.snapshot)
            raise BadInput(f"--state {self.state}: {exc}") from None
        try:
            generation = int(header.get("generation", 0))
            produced = int(header.get("produced", 0))
            pending = {int(s): (str(t), str(p)) for s, t, p in header.get("pending", [])}
        except (AttributeError, TypeError, ValueError):
            raise BadInput(f"--state {self.state}: damaged header: not a serve header") from None
        self.generation, self.produced, self.pending = generation, produced, pending

    def _replay(self, journal: Path) -> None:
        lines = journal.read_text(encoding="utf-8", errors="replace").split("\n")
        entries: list[dict[str, Any]] = []
        for n, line in enumerate(lines, 1):
            if not line:
                continue
            try:
                entries.append(json.loads(line))
            except json.JSONDecodeError:
                if n == len(lines):  # the last line, torn by the kill: never acknowledged
                    break
                raise BadInput(f"{journal}:{n}: damaged journal line") from None
        if not entries or "g" not in entries[0]:
            raise BadInput(f"{journal}: not a pmsim journal (no generation line)")
        generation = int(entries[0]["g"])
        if generation < self.generation:
            return  # killed between the snapshot and the new journal: all in the snapshot
        if generation > self.generation:
            raise BadInput(
                f"{journal}: generation {generation} is newer than the snapshot's "
                f"({self.generation}): the state file is not the one this journal follows"
            )
        acked = {int(e["a"]) for e in entries if "a" in e}
        for e in entries[1:]:
            if "e" in e:
                records = self.engine.consume(event_from_python(e["e"]))
            elif "t" in e:
                records = self.engine.advance(float(e["t"]))
            else:
                continue
            self.replayed += 1
            for r in records:
                self.produced += 1
                self.pending[self.produced] = self.render(r)
        for serial in acked:
            self.pending.pop(serial, None)

    def unsent(self) -> list[Outgoing]:
        """Records made but never acknowledged, in the order they were made."""
        with self._lock:
            return [(s, t, p) for s, (t, p) in sorted(self.pending.items())]

    # -- running ----------------------------------------------------------------------------

    def _log(self, line: str) -> None:
        if self._journal is not None:
            self._journal.write(line)
            self._journal.flush()  # to the OS: survives a process kill (not a power cut)

    def _number(self, records: list[Record]) -> list[Outgoing]:
        out: list[Outgoing] = []
        for r in records:
            self.produced += 1
            topic, payload = self.render(r)
            self.pending[self.produced] = (topic, payload)
            out.append((self.produced, topic, payload))
        return out

    def consume(self, event: DeviceEvent) -> list[Outgoing]:
        """Journal the event, then give it to the engine."""
        with self._lock:
            if self._journal is not None:
                self._log('{"e":' + event_json(event) + "}\n")
            return self._number(self.engine.consume(event))

    def advance(self, t: float) -> list[Outgoing]:
        """Journal a wall-clock advance, then make it."""
        with self._lock:
            self._log(json.dumps({"t": t}) + "\n")
            return self._number(self.engine.advance(t))

    def acked(self, serial: int) -> None:
        """The broker has record ``serial`` (any thread)."""
        with self._lock:
            if self.pending.pop(serial, None) is not None:
                self._log(f'{{"a":{serial}}}\n')

    def save(self) -> None:
        """Snapshot atomically, then begin the next journal generation (no-op without state)."""
        if self.state is None:
            return
        with self._lock:
            header = {
                "generation": self.generation + 1,
                "produced": self.produced,
                "pending": [[s, t, p] for s, (t, p) in sorted(self.pending.items())],
            }
            head = json.dumps(header, ensure_ascii=False, separators=(",", ":")).encode()
            _write_atomic(self.state, MAGIC + head + b"\n" + self.engine.snapshot())
            self.generation += 1
            self._close()
            journal = journal_path(self.state)
            _write_atomic(journal, f'{{"g":{self.generation}}}\n'.encode())
            self._journal = journal.open("a", encoding="utf-8", newline="\n")

    def close(self) -> None:
        """Close the journal and let the state go (a kill does the same)."""
        with self._lock:
            self._close()
            if self._held is not None:
                self._held.close()  # releases the lock
                self._held = None

    def _close(self) -> None:
        if self._journal is not None:
            self._journal.close()
            self._journal = None
