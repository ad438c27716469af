"""Bad input, the exception the CLI turns into a single line and exit code 2; a lost broker, the one
it turns into a single line and exit code 3."""

from __future__ import annotations

import time

__all__ = ["LOST_AFTER", "BadInput", "BrokerLost", "lost_message"]


class BadInput(Exception):
    """A user-supplied file or argument is wrong. ``str()`` is the one line shown to the user."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class BrokerLost(Exception):
    """The broker went away in the middle of a run and did not come back within
    :data:`LOST_AFTER` seconds: exit code 3 (not bad input). ``str()`` is the one line shown."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


#: Seconds a connection may stay down (paho reconnecting) before a run gives up on the broker: a
#: restarted broker is back well within it, a dead one is reported within about twice it.
LOST_AFTER = 4.0


def lost_message(url: object, since_wall: float, sim_time: str | None) -> str:
    """``lost the connection to BROKER at <sim time> (wall clock <time>)``."""
    wall = time.strftime("%H:%M:%S", time.localtime(since_wall))
    when = f"simulated {sim_time}, wall clock {wall}" if sim_time else f"wall clock {wall}"
    return (
        f"lost the connection to {url} at {when}; no answer for {LOST_AFTER:g} s "
        "(the run folder is not written)"
    )
