"""The engine's state file: a safe, versioned format that reading can never turn into code.

A snapshot is, byte for byte::

    pmsim-engine-snapshot
    {"schema":1,"pmsim":"0.1.0","rules":"<64 hex>","payload":"msgpack","bytes":N}
    <N bytes: the state as msgpack (rules.statecodec)>
    sha256 <64 hex: the digest of everything above, newlines included>

with a newline after each line and between the payload and the checksum. ``rules`` is the SHA-256
of the rule file the engine ran (:func:`rules_fingerprint`): a snapshot resumes only under the same
rules, as its rule numbers, keys and timers mean nothing under others. Reading checks, in order, the
magic line, the header, the schema version, the checksum, the payload's length, the rules, then
decodes the payload against its types; anything wrong is a :class:`SnapshotError` with a one-line
reason. Pickle, which pmsim wrote before, is recognised and refused unread: loading it can run any
code. ``SCHEMA_VERSION`` goes up whenever the payload's layout changes.
"""

from __future__ import annotations

import hashlib
import json
from functools import cache
from importlib import metadata

import msgspec

from rules.ruleset import RuleSet
from rules.statecodec import SnapshotError, StateLike, decode_payload, encode_payload

__all__ = [
    "MAGIC",
    "SCHEMA_VERSION",
    "SnapshotError",
    "dump_state",
    "load_state",
    "rules_fingerprint",
]

MAGIC = b"pmsim-engine-snapshot\n"
SCHEMA_VERSION = 1
_SUM = b"\nsha256 "  # + 64 hex digits + "\n": the file's last line
_SUM_LEN = len(_SUM) + 64 + 1
_PICKLE = (b"\x80\x02", b"\x80\x03", b"\x80\x04", b"\x80\x05")  # protocols 2-5 begin so


class _Header(msgspec.Struct, forbid_unknown_fields=True):
    schema: int
    pmsim: str
    rules: str
    payload: str
    bytes: int


_header_decoder = msgspec.json.Decoder(_Header)


@cache
def _pmsim_version() -> str:
    try:
        return metadata.version("pmsim")
    except metadata.PackageNotFoundError:
        return "unknown"


def rules_fingerprint(rules: RuleSet) -> str:
    """SHA-256 of the rule file as validated (every field, defaults included)."""
    return hashlib.sha256(rules.spec.model_dump_json(by_alias=True).encode("utf-8")).hexdigest()


def dump_state(s: StateLike, rules: RuleSet) -> bytes:
    """The engine's state ``s``, run under ``rules``, as a snapshot file's bytes."""
    body = encode_payload(s)
    header = {
        "schema": SCHEMA_VERSION,
        "pmsim": _pmsim_version(),
        "rules": rules_fingerprint(rules),
        "payload": "msgpack",
        "bytes": len(body),
    }
    head = MAGIC + json.dumps(header, separators=(",", ":")).encode("ascii") + b"\n" + body
    return head + _SUM + hashlib.sha256(head).hexdigest().encode("ascii") + b"\n"


def _refuse(why: str) -> SnapshotError:
    return SnapshotError(f"not an engine snapshot: {why}")


def _payload(blob: bytes, rules: RuleSet) -> bytes:
    """Check everything around the payload; the payload."""
    if not blob.startswith(MAGIC):
        if blob[:2] in _PICKLE:
            raise _refuse(
                "a state file of an older pmsim (pickle), which is unsafe to load: "
                "delete it and its .journal and start afresh"
            )
        raise _refuse("it does not begin with 'pmsim-engine-snapshot'")
    line, newline, rest = blob[len(MAGIC) :].partition(b"\n")
    try:
        header = _header_decoder.decode(line)
    except msgspec.MsgspecError as exc:
        raise _refuse(f"bad header line: {exc}") from None
    if header.schema != SCHEMA_VERSION:
        raise _refuse(
            f"schema version {header.schema} (written by pmsim {header.pmsim}); "
            f"this pmsim reads version {SCHEMA_VERSION}"
        )
    if len(rest) < _SUM_LEN or not rest[-_SUM_LEN:].startswith(_SUM) or not newline:
        raise _refuse("truncated: no checksum at the end")
    head, digest = blob[:-_SUM_LEN], blob[-_SUM_LEN + len(_SUM) : -1]
    if hashlib.sha256(head).hexdigest().encode("ascii") != digest or blob[-1:] != b"\n":
        raise _refuse("checksum mismatch: the file is damaged")
    body = rest[:-_SUM_LEN]
    if header.payload != "msgpack" or header.bytes != len(body):
        raise _refuse(f"the payload is not {header.bytes} bytes of msgpack")
    if header.rules != rules_fingerprint(rules):
        raise SnapshotError(
            "a snapshot made with other rules (another rule-file fingerprint): run with the rule "
            "file it was made with, or delete it and its .journal"
        )
    return body


def load_state(blob: bytes, rules: RuleSet, into: StateLike) -> None:
    """Read a snapshot made with ``rules`` into ``into`` (a fresh state), all or nothing."""
    decode_payload(_payload(blob, rules), rules, into)
