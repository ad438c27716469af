"""``pmsim watch``: print alerts (or any topic) as they arrive, one readable line each.

Every line is cleaned before it reaches the terminal (:func:`clean_line`): escape sequences,
C0 and C1 control characters and bidirectional overrides are removed, whoever published the
message. With a signing key (:mod:`sim.mqtt.signing`) the messages pmsim signs - anything on
``PREFIX/alerts/``, ``PREFIX/workorders/`` and ``PREFIX/rankings/``, any alert or work-order
record, any staff-app event - are checked, and one that is not signed, or signed with another key,
is still printed but marked at the start of its line (``FORGED`` / ``UNSIGNED``), so an attack
shows rather than hides; a count goes to stderr at the end.
"""

from __future__ import annotations

import json
import re
import sys
import threading
import time
from collections import Counter
from typing import IO, Any

import paho.mqtt.client as mqtt

from sim.errors import BadInput
from sim.mqtt.client import connect, protocol_name
from sim.mqtt.signing import BAD_SIGNATURE, SIGNED_KINDS, Signer
from sim.mqtt.url import BrokerURL

__all__ = ["MARKS", "clean_line", "format_message", "needs_signature", "watch"]

MARKS = {BAD_SIGNATURE: "FORGED", "unsigned": "UNSIGNED"}

# ESC (or 8-bit CSI/OSC/DCS...) sequences whole: CSI with its parameters, strings up to their
# terminator (BEL or ST), and two-character escapes; then any control character left over.
_SEQUENCES = re.compile(
    r"(?:\x1b\[|\x9b)[0-?]*[ -/]*[@-~]?"
    r"|(?:\x1b[\]PX^_]|[\x90\x98\x9d\x9e\x9f])[^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)?"
    r"|\x1b[ -~]?"
)
# C0, DEL, C1; the bidi marks, embeddings, overrides and isolates; line/paragraph separators.
_CONTROLS = re.compile(
    "[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\u2028\u2029]"
)


def clean_line(text: str) -> str:
    """``text`` without anything a terminal would act on rather than show."""
    return _CONTROLS.sub("", _SEQUENCES.sub("", text))


def format_message(topic: str, payload: bytes) -> str:
    """Alerts and work orders as a sentence; anything else as topic and payload."""
    try:
        doc = json.loads(payload)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return f"{topic} {payload[:200]!r}"
    if isinstance(doc, dict) and doc.get("record") == "alert":
        raw = doc.get("labels")
        labels = " ".join(f"{k}={v}" for k, v in (raw.items() if isinstance(raw, dict) else ()))
        wo = f" work order {doc['workorder_id']}" if doc.get("workorder_id") else ""
        return (
            f"{doc.get('time')}  {str(doc.get('change', '')).upper():<12} "
            f"{doc.get('severity', '')!s:<8} {doc.get('rule_id')}  {labels}{wo}"
        )
    if isinstance(doc, dict) and doc.get("record") == "workorder":
        return (
            f"{doc.get('time')}  WORK ORDER {str(doc.get('change', '')).upper():<12} "
            f"{doc.get('workorder_id')} {doc.get('team')} ({doc.get('rule_id')}, {doc.get('estate')})"
        )
    text = payload.decode("utf-8", "replace")
    return f"{topic} {text[:300]}"


def needs_signature(topic: str, payload: bytes, prefix: str) -> bool:
    """Whether pmsim signs what this message claims to be (see the module's doc)."""
    if topic.startswith(
        tuple(f"{prefix}/{kind}/" for kind in ("alerts", "workorders", "rankings"))
    ):
        return True
    try:
        doc = json.loads(payload)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return False
    return isinstance(doc, dict) and (
        doc.get("record") in ("alert", "workorder") or doc.get("device_kind") in SIGNED_KINDS
    )


def watch(
    url: BrokerURL,
    topic: str,
    out: IO[str],
    *,
    count: int | None = None,
    timeout: float | None = None,
    signer: Signer | None = None,
    prefix: str = "pm",
    err: IO[str] | None = None,
) -> int:
    """Print until Ctrl-C, or ``count`` messages, or ``timeout`` seconds."""
    seen = 0
    marked: Counter[str] = Counter()
    done = threading.Event()
    lock = threading.Lock()

    def on_message(_c: mqtt.Client, _u: Any, msg: mqtt.MQTTMessage) -> None:
        nonlocal seen
        payload = bytes(msg.payload)
        line = format_message(msg.topic, payload)
        if signer is not None and needs_signature(msg.topic, payload, prefix):
            reason = signer.check(payload, msg.properties)
            if reason is not None:
                marked[MARKS[reason]] += 1
                line = f"{MARKS[reason]} {line}"
        with lock:
            if done.is_set():
                return
            print(clean_line(line), file=out, flush=True)
            seen += 1
            if count is not None and seen >= count:
                done.set()

    def setup(c: mqtt.Client) -> None:
        c.on_message = on_message

    def on_connect(c: mqtt.Client, _u: Any, _f: Any, rc: Any, _p: Any) -> None:
        if not rc.is_failure:
            c.subscribe(topic, qos=1)

    client = connect(url, f"pmsim-watch-{time.monotonic_ns()}", setup=setup, on_connect=on_connect)
    try:
        if signer is not None and protocol_name(client) != "5":
            raise BadInput(
                f"broker {url}: checking signatures needs MQTT 5 (they are user properties); "
                "this broker speaks 3.1.1 only"
            )
        client.subscribe(topic, qos=1)
        done.wait(timeout)
    except KeyboardInterrupt:
        pass
    finally:
        client.disconnect()
        client.loop_stop()
    if marked:
        found = ", ".join(f"{n} {mark}" for mark, n in sorted(marked.items()))
        print(f"pmsim watch: marked {found} (not signed with the key)", file=err or sys.stderr)
    return 0
