"""The embedded Mosquitto's configuration file (:class:`sim.mqtt.broker.EmbeddedBroker`)."""

from __future__ import annotations

import os
from pathlib import Path

from sim.mqtt.brokerauth import conf_lines

__all__ = ["AUTOSAVE_SECONDS", "HOST", "SESSION_EXPIRY", "mosquitto_conf"]

HOST = "127.0.0.1"
# Seconds between saves of Mosquitto's database (with persistence): what it acknowledged in the
# last AUTOSAVE seconds before a kill -9 (or a power cut) can be lost; a clean stop saves all.
AUTOSAVE_SECONDS = 1
SESSION_EXPIRY = "1d"  # a persistent session nobody resumes is dropped after a day (as MQTT 5's)


def mosquitto_conf(
    port: int,
    max_packet_bytes: int,
    persist: Path | None = None,
    auth: tuple[Path, Path] | None = None,
    autosave: int = AUTOSAVE_SECONDS,
) -> str:
    """Mosquitto's configuration: loopback only, anonymous (or ``auth``: password file and ACL),
    nothing dropped; nothing on disk unless ``persist`` names a folder for its database
    (sessions, queued messages, retained), saved every ``autosave`` seconds."""
    if persist is None:
        persistence = ["persistence false"]
    else:
        # Mosquitto writes its database whole on a clean stop and every autosave_interval (1800 s
        # by default), never a message as it acknowledges it: a kill -9 loses what came since.
        persistence = [
            "persistence true",
            f"persistence_location {persist}/",
            f"autosave_interval {autosave}",
            "autosave_on_changes false",  # seconds, not changes: a save costs the whole queue
            f"persistent_client_expiration {SESSION_EXPIRY}",
        ]
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            # Started as root, Mosquitto becomes user "mosquitto", who cannot write our folder.
            persistence.append("user root")
    return "\n".join(
        [
            "# pmsim embedded broker (sim/mqtt/broker.py); lives as long as the broker",
            f"listener {port} {HOST}",
            *conf_lines(auth, any(x.startswith("user ") for x in persistence)),
            *persistence,
            # The default max_queued_messages 1000 silently drops QoS 1 messages for a subscriber
            # that falls behind; a lost event would be scored as a missed incident. 0 = no limit.
            "max_queued_messages 0",
            "max_queued_bytes 0",
            # The default, stated: flow control per client; the queue above absorbs the rest.
            "max_inflight_messages 20",
            f"max_packet_size {max_packet_bytes}",
            "set_tcp_nodelay true",
            "log_dest stderr",
            "log_type error",
            "log_type warning",
            "log_timestamp_format %Y-%m-%dT%H:%M:%S",
            "",
        ]
    )
