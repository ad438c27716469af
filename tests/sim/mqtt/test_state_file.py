"""``pmsim rules serve --state FILE`` never runs what a state file holds (issue 14, finding 4).

A crafted pickle that would create a file when loaded, a state file with one flipped byte and a
damaged serve header are each refused at start: exit 2, one line naming the file, no traceback,
and the pickle's code never ran. And on a real run's traffic (heartbeat runs kept quiet, work
orders, escalations), an engine snapshotted and restored at points along the way writes the same
alerts and work orders as ``pmsim replay``, each snapshot read back and written again byte for
byte.
"""

from __future__ import annotations

import io
import json
import pickle
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from rules.engine import Engine, Record
from sim.files.beatstream import traffic
from sim.files.records import RecordWriter, run_info
from sim.files.rulefiles import load_rules
from sim.mqtt.broker import EmbeddedBroker
from sim.mqtt.journal import MAGIC, Ledger
from sim.replay import replay_file, run_start
from sim.runner import run_to_folder
from sim.world.scenario import load_scenario

ROOT = Path(__file__).resolve().parents[3]
RULES = ROOT / "seeds" / "rules" / "default.yaml"


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("tiny") / "run"
    run_to_folder(load_scenario(ROOT / "seeds" / "tiny.yaml"), out, days=2, seed=3)
    return out


class RunsCode:
    """Loaded by pickle, creates ``marker`` (it could as well run anything)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (open, (str(self.marker), "w"))


def render(r: Record) -> tuple[str, str]:
    return "pm/x", json.dumps(r)


def serve(broker: EmbeddedBroker, state: Path) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "sim", "rules", "serve", "--broker", broker.url]
    argv += ["--rules", str(RULES), "--state", str(state), "--prefix", "statefile"]
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, cwd=ROOT)


def refused(proc: subprocess.CompletedProcess[str], state: Path, why: str) -> None:
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith(f"pmsim: error: --state {state}: ") and why in lines[0], lines[0]


@pytest.mark.parametrize("wrapped", [False, True])
def test_rules_serve_refuses_a_pickle_state_file_and_never_runs_it(
    broker: EmbeddedBroker, tmp_path: Path, wrapped: bool
) -> None:
    marker = tmp_path / "pwned"
    blob = pickle.dumps(RunsCode(marker), protocol=5)
    if wrapped:  # as older pmsim wrote it: the serve header, then the pickled engine
        blob = MAGIC + b'{"generation":3,"produced":0,"pending":[]}\n' + blob
    state = tmp_path / "engine.state"
    state.write_bytes(blob)
    proc = serve(broker, state)
    refused(proc, state, "not an engine snapshot: a state file of an older pmsim (pickle)")
    assert not marker.exists()
    assert state.read_bytes() == blob  # left as it was, for the user to delete


def test_rules_serve_refuses_a_damaged_state_file(broker: EmbeddedBroker, tmp_path: Path) -> None:
    state = tmp_path / "engine.state"
    Ledger.open(load_rules(RULES), render, state).close()  # a good one, then one byte flipped
    blob = bytearray(state.read_bytes())
    blob[len(blob) // 2] ^= 0x04
    state.write_bytes(bytes(blob))
    refused(serve(broker, state), state, "not an engine snapshot: checksum mismatch")
    state.write_bytes(MAGIC + b"[1, 2]\n" + bytes(Engine(load_rules(RULES)).snapshot()))
    refused(serve(broker, state), state, "damaged header")


def test_snapshots_along_a_real_run_resume_exactly(tiny_run: Path, tmp_path: Path) -> None:
    rules = load_rules(tiny_run / "rules.yaml")
    end = float(run_info(tiny_run)["days"]) * 86400.0
    start = run_start(tiny_run)
    events = tiny_run / "events.jsonl"
    replay_file(rules, events, tmp_path, end, start)
    want = (tmp_path / "alerts.jsonl").read_text() + (tmp_path / "workorders.jsonl").read_text()

    alerts, orders = io.StringIO(), io.StringIO()
    writer = RecordWriter(Engine(rules), alerts, orders)
    skew: list[float] = []

    def quiet(s: float, period: float) -> bool:
        skew.append(s)
        return writer.engine.quiet_beats(s) and writer.engine.takes_quiet_runs(period)

    items = list(traffic(events, start, quiet))
    points = set(range(0, len(items), len(items) // 7))
    tracked = 0
    for i, (kind, what, j) in enumerate(items):
        if i in points:
            blob = writer.engine.snapshot()
            writer.engine = Engine.restore(rules, blob)
            writer.engine.quiet_beats(skew[0])  # the feeder's promise, not state
            assert writer.engine.snapshot() == blob
            tracked += sum(t is not None for t in writer.engine.s.tracks.values())
        if kind == "event":
            writer.write(writer.engine.consume_payload(what, j))
        elif kind == "beat":
            writer.beat(what, j)
        else:
            writer.run_closed(what)
    writer.write(writer.engine.finish(end))
    assert alerts.getvalue() + orders.getvalue() == want
    assert tracked and '"escalated"' in want and '"opened"' in want
