"""``pmsim watch``: print alerts (or any topic) as they arrive, one readable line each."""

from __future__ import annotations

import json
import threading
import time
from typing import IO, Any

import paho.mqtt.client as mqtt

from sim.mqtt.client import connect
from sim.mqtt.url import BrokerURL

__all__ = ["format_message", "watch"]


def format_message(topic: str, payload: bytes) -> str:
    """Alerts and work orders as a sentence; anything else as topic and payload."""
    try:
        doc = json.loads(payload)
    except (ValueError, UnicodeDecodeError):
        return f"{topic} {payload[:200]!r}"
    if isinstance(doc, dict) and doc.get("record") == "alert":
        labels = " ".join(f"{k}={v}" for k, v in doc.get("labels", {}).items())
        wo = f" work order {doc['workorder_id']}" if doc.get("workorder_id") else ""
        return (
            f"{doc.get('time')}  {str(doc.get('change', '')).upper():<12} "
            f"{doc.get('severity', ''):<8} {doc.get('rule_id')}  {labels}{wo}"
        )
    if isinstance(doc, dict) and doc.get("record") == "workorder":
        return (
            f"{doc.get('time')}  WORK ORDER {str(doc.get('change', '')).upper():<12} "
            f"{doc.get('workorder_id')} {doc.get('team')} ({doc.get('rule_id')}, {doc.get('estate')})"
        )
    text = payload.decode("utf-8", "replace")
    return f"{topic} {text[:300]}"


def watch(
    url: BrokerURL,
    topic: str,
    out: IO[str],
    *,
    count: int | None = None,
    timeout: float | None = None,
) -> int:
    """Print until Ctrl-C, or ``count`` messages, or ``timeout`` seconds."""
    seen = 0
    done = threading.Event()
    lock = threading.Lock()

    def on_message(_c: mqtt.Client, _u: Any, msg: mqtt.MQTTMessage) -> None:
        nonlocal seen
        with lock:
            if done.is_set():
                return
            print(format_message(msg.topic, bytes(msg.payload)), file=out, flush=True)
            seen += 1
            if count is not None and seen >= count:
                done.set()

    def setup(c: mqtt.Client) -> None:
        c.on_message = on_message

    def on_connect(c: mqtt.Client, _u: Any, _f: Any, rc: Any, _p: Any) -> None:
        if not rc.is_failure:
            c.subscribe(topic, qos=1)

    client = connect(url, f"pmsim-watch-{time.monotonic_ns()}", setup=setup, on_connect=on_connect)
    client.subscribe(topic, qos=1)
    try:
        done.wait(timeout)
    except KeyboardInterrupt:
        pass
    finally:
        client.disconnect()
        client.loop_stop()
    return 0
