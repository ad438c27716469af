"""``pmsim bench``, called in-process: every pair measured, printed and recorded; bad input refused."""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path
from typing import Any

import pytest

from sim.commands.bench import carrier_batch
from sim.commands.benchpairs import clear_retained
from sim.commands.benchrun import Group, Member, Pair, Series, measure_all
from sim.commands.cli import main
from sim.mqtt.broker import EmbeddedBroker, free_port
from sim.mqtt.client import connect
from sim.mqtt.url import parse_broker_url

ROOT = Path(__file__).resolve().parents[3]
TINY = ROOT / "seeds" / "tiny.yaml"
SMALL = ["--scenario", str(TINY), "--days", "1", "--sim-days", "1", "--repeat", "1"]


def test_bench_measures_prints_and_records_every_pair(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "bench.json"
    assert main(["bench", *SMALL, "--pipe-messages", "400", "--out", str(out)]) == 0
    doc = json.loads(out.read_text(encoding="utf-8"))
    ids = [p["id"] for p in doc["pairs"]]
    assert {"mqtt-qos1", "mqtt-qos0", "sim", "replay"} <= set(ids)
    assert all(i in ("sim", "replay") or i.startswith("mqtt-qos") for i in ids)
    printed = capsys.readouterr().out
    for p in doc["pairs"]:
        assert p["title"] in printed
        for side in ("pmsim", "bare"):
            s = p[side]
            assert len(s["runs"]) == 1 and s["label"] in printed
            assert 0 < s["min"] <= s["median"] <= s["max"]
        assert p["ratio"] == pytest.approx(p["pmsim"]["median"] / p["bare"]["median"], rel=1e-3)
        assert p["ratio_by_repetition"][0] == pytest.approx(p["ratio"], rel=1e-3)
    assert printed.count("ratio pmsim / bare") == len(ids)

    pairs = {p["id"]: p for p in doc["pairs"]}
    run = pairs["mqtt-qos1"]["pmsim"]["runs"][0]
    assert run["consumed"] == run["events"] == pairs["mqtt-qos1"]["events"] and run["lost"] == 0
    pipe = pairs["mqtt-qos1"]["bare"]["runs"][0]
    assert pipe["messages"] == pipe["delivered"] == 400
    assert pipe["size"] == round(run["payload_bytes"]) > 100  # the size of pmsim's events
    assert pairs["sim"]["processes"] > 0 and pairs["replay"]["events"] > 0
    assert doc["broker"]["kind"] in ("mosquitto", "amqtt") and doc["machine"]["cpus"]
    assert doc["parameters"]["repeat"] == 1 and doc["parameters"]["window"] > 0
    assert not list(tmp_path.glob(".bench.json.*"))  # written atomically, nothing left over


def _retained(url: str, topic: str) -> dict[str, bytes]:
    got: dict[str, bytes] = {}

    def setup(c: Any) -> None:
        c.on_message = lambda _c, _u, m: got.__setitem__(m.topic, m.payload) if m.retain else None

    client = connect(parse_broker_url(url), f"test-bench-{time.monotonic_ns()}", setup=setup)
    client.subscribe(topic, qos=1)
    time.sleep(1.0)
    client.disconnect()
    client.loop_stop()
    return got


def test_on_a_users_broker_it_keeps_to_its_own_topics(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with EmbeddedBroker() as broker:
        mine = connect(parse_broker_url(broker.url), "test-bench-owner")
        mine.publish("pm/gw/e1/status", b"online", qos=1, retain=True).wait_for_publish(5)
        mine.disconnect()
        mine.loop_stop()
        out = tmp_path / "bench.json"
        args = [*SMALL, "--qos", "1", "--pipe-messages", "100", "--out", str(out)]
        assert main(["bench", "--broker", broker.url, *args]) == 0
        assert _retained(broker.url, "pm/#") == {"pm/gw/e1/status": b"online"}
    doc = json.loads(out.read_text(encoding="utf-8"))
    assert doc["broker"]["kind"] == "external" and doc["broker"]["version"] != ""
    assert "broker: external" in capsys.readouterr().out


def test_clear_retained_clears_below_its_root_only() -> None:
    with EmbeddedBroker() as broker:
        url = parse_broker_url(broker.url)
        c = connect(url, "test-bench-retain")
        for topic in ("pm/bench-1/gw/e/status", "pm/bench-1/rankings/m", "pm/bench-10/x"):
            c.publish(topic, b"1", qos=1, retain=True).wait_for_publish(5)
        c.disconnect()
        c.loop_stop()
        assert clear_retained(url, "pm/bench-1") == 2
        assert set(_retained(broker.url, "pm/#")) == {"pm/bench-10/x"}


def test_an_unreachable_broker_is_one_line_and_exit_2_quickly(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "bench.json"
    t0 = time.monotonic()
    url = f"mqtt://127.0.0.1:{free_port()}"
    assert main(["bench", "--broker", url, *SMALL, "--out", str(out)]) == 2
    assert time.monotonic() - t0 < 10
    err = capsys.readouterr().err.strip()
    assert err.startswith("pmsim: error: broker") and "\n" not in err
    assert not out.exists()


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--repeat", "0"], "--repeat 0"),
        (["--days", "0"], "--days 0"),
        (["--scenario", "no/such.yaml"], "no/such.yaml"),
        (["--broker", "none"], "--broker none"),
        (["--broker", "http://x"], "scheme"),
        (["--pipe-messages", "0"], "--pipe-messages"),
    ],
)
def test_bad_input_is_exit_2(
    args: list[str], says: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["bench", *args, "--out", str(tmp_path / "b.json")]) == 2
    err = capsys.readouterr().err
    assert says in err and err.count("\n") == 1


def test_a_batch_size_the_carrier_refuses_is_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    batching, _ = carrier_batch()
    size = "1000000" if batching else "10"  # too big; or any size when the carrier cannot batch
    t0 = time.monotonic()
    assert main(["bench", *SMALL, "--batch", size, "--out", str(tmp_path / "b.json")]) == 2
    assert "--batch" in capsys.readouterr().err and time.monotonic() - t0 < 5


def test_batch_sizes_reach_the_carrier_and_make_pairs_of_their_own(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sim.commands.benchrun
    import sim.mqtt.carrier

    seen: list[int] = []

    @dataclasses.dataclass
    class BatchingLink(sim.mqtt.carrier.Link):
        batch: int = 1

        def check(self) -> None:
            seen.append(self.batch)
            super().check()

    monkeypatch.setattr(sim.mqtt.carrier, "Link", BatchingLink)
    monkeypatch.setattr(sim.commands.benchrun, "Link", BatchingLink)
    out = tmp_path / "bench.json"
    args = [*SMALL, "--qos", "1", "--batch", "5", "--pipe-messages", "100", "--out", str(out)]
    assert main(["bench", *args]) == 0
    doc = json.loads(out.read_text(encoding="utf-8"))
    pairs = {p["id"]: p for p in doc["pairs"]}
    assert set(pairs) == {"mqtt-qos1", "mqtt-qos1-batch5", "sim", "replay"}
    assert pairs["mqtt-qos1-batch5"]["bare"] == pairs["mqtt-qos1"]["bare"]  # one pipe for both
    assert 5 in seen and 1 in seen and doc["parameters"]["batches"] == [5]


def test_repetitions_rotate_who_goes_first_and_pmsim_opens() -> None:
    order: list[str] = []

    def member(name: str, series: Series) -> Member:
        def measure(rep: int) -> dict[str, Any]:
            order.append(name)
            return {"rate": 1.0 + rep}

        return Member(name, series, measure)

    a, b, c = Series("a"), Series("b"), Series("c")
    group = Group(
        [Pair("x", "x", a, c), Pair("y", "y", b, c)],
        [member(n, s) for n, s in zip("abc", (a, b, c), strict=True)],
    )
    pairs = measure_all([group], 3, lambda _: None)
    assert order == ["a", "b", "c", "b", "c", "a", "c", "a", "b"]
    assert [len(s.runs) for s in (a, b, c)] == [3, 3, 3]
    assert pairs[0].ratio == 1.0 and pairs[1].to_json()["bare"]["median"] == 2.0


def test_the_bare_pipe_delivers_every_message_past_paho_s_message_ids() -> None:
    # More messages than paho can number at once (65,535): the bare publisher keeps to its
    # window, as pmsim's transport does, so none is dropped and the rate is a real one.
    from sim.commands.benchpairs import bare_pipe

    with EmbeddedBroker() as broker:
        url = parse_broker_url(broker.url)
        run = bare_pipe(url, topic=f"t/{time.monotonic_ns()}", messages=70_000, size=8, qos=1,
                        window=2000)  # fmt: skip
    assert run.delivered == run.messages == 70_000 and run.rate > 0
