"""The heartbeat schedule: beats handed out in time order, ties by join order, no drift."""

from __future__ import annotations

import pytest

from devices.liveness import BeatClock


class Rec:
    def __init__(self, name: str, log: list[tuple[str, float]]) -> None:
        self.name = name
        self.log = log

    def beat(self, t: float, k: int) -> None:
        self.log.append((self.name, t))


def test_beats_come_in_time_order_across_devices_ties_by_join_order() -> None:
    log: list[tuple[str, float]] = []
    clock = BeatClock()
    clock.join(Rec("b", log), 5.0, 10.0)
    clock.join(Rec("a", log), 0.0, 5.0)
    clock.flush(15.0)
    assert log == [("a", 0.0), ("b", 5.0), ("a", 5.0), ("a", 10.0), ("b", 15.0), ("a", 15.0)]
    assert clock.beats == 6


def test_inclusive_and_exclusive_ends() -> None:
    log: list[tuple[str, float]] = []
    clock = BeatClock()
    clock.join(Rec("a", log), 0.0, 900.0)
    clock.flush(1800.0, inclusive=False)
    assert [t for _, t in log] == [0.0, 900.0]
    clock.flush(1800.0)
    assert [t for _, t in log] == [0.0, 900.0, 1800.0]
    clock.flush(1800.0)  # nothing twice
    assert len(log) == 3


def test_a_half_year_of_beats_lands_on_the_grid_without_drift() -> None:
    log: list[tuple[str, float]] = []
    clock = BeatClock()
    clock.join(Rec("a", log), 0.1, 900.0)
    clock.flush(183 * 86400.0)
    assert len(log) == 183 * 96
    assert log[-1][1] == 0.1 + (183 * 96 - 1) * 900.0  # t0 + k * period, not summed


def test_a_beat_that_flushes_again_does_not_reorder_anything() -> None:
    log: list[tuple[str, float]] = []
    clock = BeatClock()

    class Eager(Rec):
        def beat(self, t: float, k: int) -> None:
            clock.flush(t + 100.0)  # e.g. delivery flushing: must not jump ahead
            super().beat(t, k)

    clock.join(Eager("a", log), 0.0, 10.0)
    clock.join(Rec("b", log), 1.0, 10.0)
    clock.flush(12.0)
    assert log == [("a", 0.0), ("b", 1.0), ("a", 10.0), ("b", 11.0)]


def test_a_period_must_be_positive() -> None:
    with pytest.raises(ValueError, match="period"):
        BeatClock().join(Rec("a", []), 0.0, 0.0)


class Quiet(Rec):
    """Parks after its first beat, as a device whose run the engine keeps quiet."""

    def beat(self, t: float, k: int) -> bool:
        super().beat(t, k)
        return True


def test_a_parked_device_is_skipped_and_settle_counts_what_fell_due() -> None:
    log: list[tuple[str, float]] = []
    clock = BeatClock()
    quiet = Quiet("q", log)
    clock.join(quiet, 0.0, 10.0)
    clock.join(Rec("a", log), 5.0, 10.0)
    clock.flush(100.0)
    assert [t for n, t in log if n == "q"] == [0.0]  # parked after its first beat
    assert len([1 for n, _ in log if n == "a"]) == 10  # the others go on
    assert clock.settle(quiet, 100.0) == 10  # 10, 20, ... 100 fell due while parked
    assert clock.settle(quiet, 100.0) == 0  # settled once
    clock.flush(120.0)  # beats one by one again from 110 (and parks again at once)
    assert [t for n, t in log if n == "q"] == [0.0, 110.0]
    assert clock.settle(quiet, 140.0, inclusive=False) == 2  # 120, 130; not 140


def test_settle_lands_on_the_grid_after_a_long_quiet_run() -> None:
    clock = BeatClock()
    quiet = Quiet("q", [])
    clock.join(quiet, 0.3, 900.0)
    clock.flush(0.3)
    end = 183 * 86400.0
    assert clock.settle(quiet, end, inclusive=False) == 183 * 96 - 1
