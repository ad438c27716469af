"""Users, passwords and an ACL for the embedded Mosquitto (``pmsim run --broker-auth``,
``pmsim broker --auth``), made fresh for each broker and gone with it.

Users: ``engine`` (reads device events, batches and gateway statuses; writes alerts, work
orders, rankings and dead letters), ``watch`` (reads everything under the prefix, writes
nothing) and one ``gw-ESTATE`` per estate gateway (writes only its own estate's device topics,
batch topic and status). Anonymous clients are refused. The password file is in Mosquitto's own
format (PBKDF2-SHA512, ``$7$``, as ``mosquitto_passwd`` writes it); the passwords, with a ready
URL for each user, are in ``credentials.json`` (mode 0600) next to it.
"""

from __future__ import annotations

import base64
import getpass
import hashlib
import json
import os
import re
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from sim.errors import BadInput
from sim.mqtt.url import BrokerURL

__all__ = ["ENGINE", "WATCH", "BrokerAuth", "conf_lines", "gateway_user", "password_line"]

ENGINE = "engine"
WATCH = "watch"
PBKDF2_ITERATIONS = 101  # mosquitto_passwd's own default for $7$
_TOPIC_LEVEL = re.compile(r"^[^/#+\s\x00]+$")


def gateway_user(estate: str) -> str:
    return f"gw-{estate}"


def password_line(user: str, password: str, salt: bytes | None = None) -> str:
    """One line of a Mosquitto 2 password file: ``user:$7$101$SALT$HASH``."""
    salt = salt if salt is not None else secrets.token_bytes(12)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, PBKDF2_ITERATIONS, 64)
    b64 = base64.b64encode
    return f"{user}:$7${PBKDF2_ITERATIONS}${b64(salt).decode()}${b64(digest).decode()}"


def conf_lines(auth: tuple[Path, Path] | None, has_user: bool) -> list[str]:
    """Mosquitto's lines for who may connect: anyone, or (``auth`` = the password file and the
    ACL, from :meth:`BrokerAuth.write`) only the users in the file, as the ACL allows."""
    if auth is None:
        return ["allow_anonymous true"]
    lines = ["allow_anonymous false", f"password_file {auth[0]}", f"acl_file {auth[1]}"]
    if not has_user and hasattr(os, "geteuid") and os.geteuid() == 0:
        lines.append(f"user {getpass.getuser()}")  # else it becomes "mosquitto": cannot read them
    return lines


@dataclass
class BrokerAuth:
    """The run's users (name -> password) and the topic prefix its ACL speaks of."""

    prefix: str
    estates: tuple[str, ...]
    passwords: dict[str, str] = field(default_factory=dict)
    folder: Path | None = None  # where write() put the files

    @classmethod
    def generate(cls, prefix: str, estates: tuple[str, ...] | list[str]) -> BrokerAuth:
        bad = [e for e in estates if not _TOPIC_LEVEL.match(e) or ":" in e]
        if bad:
            raise BadInput(f"broker auth: estate id {bad[0]!r} cannot be a user name and topic")
        users = [ENGINE, WATCH, *(gateway_user(e) for e in estates)]
        return cls(prefix, tuple(estates), {u: secrets.token_urlsafe(18) for u in users})

    def acl(self) -> str:
        p = self.prefix
        lines = [
            "# pmsim: generated for this broker (sim/mqtt/brokerauth.py)",
            f"user {ENGINE}",
            f"topic read {p}/dev/#",
            f"topic read {p}/batch/+",
            f"topic read {p}/gw/+/status",
            f"topic write {p}/alerts/#",
            f"topic write {p}/workorders/#",
            f"topic write {p}/rankings/#",
            f"topic write {p}/deadletter",
            "",
            f"user {WATCH}",
            f"topic read {p}/#",
        ]
        for e in self.estates:
            lines += [
                "",
                f"user {gateway_user(e)}",
                f"topic write {p}/dev/{e}/#",
                f"topic write {p}/batch/{e}",
                f"topic write {p}/gw/{e}/status",
            ]
        return "\n".join(lines) + "\n"

    def url(self, user: str, host: str, port: int) -> BrokerURL:
        return BrokerURL(host=host, port=port, username=user, password=self.passwords[user])

    def write(self, folder: Path, host: str, port: int) -> tuple[Path, Path]:
        """Write the password file, the ACL and ``credentials.json``; returns the first two."""
        self.folder = folder
        pw, acl, creds = folder / "passwords", folder / "acl", self.credentials_file(folder)
        for path, text in (
            (pw, "".join(password_line(u, p) + "\n" for u, p in self.passwords.items())),
            (acl, self.acl()),
            (creds, json.dumps(self._credentials(host, port), indent=2) + "\n"),
        ):
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(text)
        return pw, acl

    @staticmethod
    def credentials_file(folder: Path) -> Path:
        return folder / "credentials.json"

    def _credentials(self, host: str, port: int) -> dict[str, dict[str, str]]:
        out = {}
        for user, password in self.passwords.items():
            url = f"mqtt://{user}:{password}@{host}:{port}"
            out[user] = {"password": password, "url": url}
        return out
