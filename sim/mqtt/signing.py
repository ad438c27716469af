"""Authenticity of what pmsim publishes: HMAC-SHA256 over the exact payload bytes.

The signature travels as an MQTT 5 user property (:data:`SIG_PROPERTY`, value ``hmac-sha256=HEX``),
not in the payload: every MQTT client still reads the payload it always did, byte for byte, and the
run folder's records are the same whether signing is on or off. pmsim's paho clients speak MQTT 5
to any broker that does (Mosquitto 2 does); on an MQTT 3.1.1-only broker there is nowhere to put a
signature, and asking for one is an error.

Signed: the engine's records (alerts, work orders, rankings) and the property app's staff events
(``device_kind`` ``staff_app``: a forged ``staff_done`` would close a work order). Not signed: the
devices' own events (a camera holds no key), dead letters, gateway statuses.

The key comes from ``--sign-key-file FILE`` (trailing whitespace ignored) or the environment
variable :data:`ENV_KEY`; at least :data:`MIN_KEY_BYTES` bytes. A signature says "made by a holder
of the key"; it does not say "made now": a genuine record published again by someone who captured
it is still genuine (the broker's ACL, ``--broker-auth``, keeps outsiders from publishing at all).
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from devices.events import DeviceEvent
from sim.errors import BadInput

__all__ = [
    "BAD_SIGNATURE",
    "ENV_KEY",
    "MIN_KEY_BYTES",
    "SIGNED_KINDS",
    "SIG_PROPERTY",
    "UNSIGNED",
    "Signer",
    "load_key",
    "staff_check",
]

SIG_PROPERTY = "pmsim-sig"
SCHEME = "hmac-sha256="
ENV_KEY = "PMSIM_SIGN_KEY"
MIN_KEY_BYTES = 16
UNSIGNED = "unsigned"
BAD_SIGNATURE = "bad_signature"
SIGNED_KINDS = frozenset({"staff_app"})  # device kinds whose events must be signed


def load_key(path: Path | None, env: Mapping[str, str] | None = None) -> bytes | None:
    """The signing key: the file's bytes (``--sign-key-file``) or else ``$PMSIM_SIGN_KEY``; None
    when neither is given. A missing, unreadable, empty or short key is :class:`BadInput`."""
    env = os.environ if env is None else env
    if path is not None:
        try:
            key = path.read_bytes().rstrip()
        except OSError as exc:
            raise BadInput(f"--sign-key-file {path}: {exc.strerror or exc}") from None
        where = f"--sign-key-file {path}"
    elif env.get(ENV_KEY):
        key = env[ENV_KEY].encode("utf-8").rstrip()
        where = f"${ENV_KEY}"
    else:
        return None
    if len(key) < MIN_KEY_BYTES:
        raise BadInput(
            f"{where}: the key is {len(key)} bytes; at least {MIN_KEY_BYTES} "
            "(e.g. head -c 32 /dev/urandom | base64 > KEYFILE)"
        )
    return key


class Signer:
    """Signs payloads and checks the signatures of received messages with one key."""

    def __init__(self, key: bytes) -> None:
        self._key = key

    def signature(self, payload: bytes | str) -> str:
        data = payload.encode("utf-8") if isinstance(payload, str) else payload
        return SCHEME + hmac.new(self._key, data, hashlib.sha256).hexdigest()

    def properties(self, payload: bytes | str) -> Properties:
        """The PUBLISH properties that carry the payload's signature."""
        props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
        props.UserProperty = [(SIG_PROPERTY, self.signature(payload))]
        return props

    def check(self, payload: bytes, properties: Any) -> str | None:
        """None if a signature on the message is right for ``payload``; else :data:`UNSIGNED`
        (none at all, or the message came over MQTT 3.1.1) or :data:`BAD_SIGNATURE`."""
        said = [v for k, v in getattr(properties, "UserProperty", None) or [] if k == SIG_PROPERTY]
        if not said:
            return UNSIGNED
        want = self.signature(payload)
        if any(hmac.compare_digest(str(v), want) for v in said):
            return None
        return BAD_SIGNATURE


def staff_check(signer: Signer) -> Callable[[DeviceEvent, bytes, Any], str | None]:
    """The intake's verify hook: staff-app events must be signed (over the message they came in,
    a batch as a whole); other events pass. Returns the dead-letter reason, or None."""

    def verify(event: DeviceEvent, payload: bytes, properties: Any) -> str | None:
        if event.device_kind not in SIGNED_KINDS:
            return None
        return signer.check(payload, properties)

    return verify
