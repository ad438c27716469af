"""Broker addresses: ``mqtt://user:pass@host:port`` and ``mqtts://...`` with TLS files.

Parsed up front so a typo is one clear line (exit 2) before anything connects.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

from sim.errors import BadInput

__all__ = ["BrokerURL", "TLSFiles", "parse_broker_url"]


@dataclass(frozen=True)
class TLSFiles:
    ca: Path | None = None
    cert: Path | None = None
    key: Path | None = None


@dataclass(frozen=True)
class BrokerURL:
    host: str
    port: int
    tls: bool = False
    username: str | None = None
    password: str | None = None
    tls_files: TLSFiles = TLSFiles()

    def __str__(self) -> str:
        """The address without the password (safe to print)."""
        user = f"{self.username}@" if self.username else ""
        return f"{'mqtts' if self.tls else 'mqtt'}://{user}{self.host}:{self.port}"


def parse_broker_url(text: str, tls_files: TLSFiles | None = None) -> BrokerURL:
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError as exc:
        raise BadInput(f"--broker {text!r}: {exc}") from None
    if parts.scheme not in ("mqtt", "mqtts"):
        raise BadInput(
            f"--broker {text!r}: scheme must be mqtt:// or mqtts://, or 'embedded' or 'none'"
        )
    if not parts.hostname:
        raise BadInput(f"--broker {text!r}: no host")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise BadInput(f"--broker {text!r}: unexpected path or query after host:port")
    tls = parts.scheme == "mqtts"
    files = tls_files or TLSFiles()
    for name in ("ca", "cert", "key"):
        f = getattr(files, name)
        if f is not None and not Path(f).is_file():
            raise BadInput(f"--{name} {f}: file not found")
    if not tls and (files.ca or files.cert or files.key):
        raise BadInput("--ca/--cert/--key need an mqtts:// broker")
    return BrokerURL(
        host=parts.hostname,
        port=port if port is not None else (8883 if tls else 1883),
        tls=tls,
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
        tls_files=files,
    )
