"""The MQTT tests' shared broker: one embedded Mosquitto per test module (a module that needs
another kind of broker defines its own ``broker`` fixture, which takes precedence)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from sim.mqtt.broker import EmbeddedBroker


@pytest.fixture(scope="module")
def broker() -> Iterator[EmbeddedBroker]:
    b = EmbeddedBroker("mosquitto").start()
    try:
        yield b
    finally:
        b.stop()
