"""Command-line options for authenticity: ``--sign-key-file`` (with ``$PMSIM_SIGN_KEY``),
``pmsim run --broker-auth``, ``pmsim broker --auth --estates``; and the ``watch`` and ``broker``
commands that use them."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from sim.errors import BadInput
from sim.mqtt.signing import ENV_KEY, Signer, load_key

__all__ = [
    "add_auth_options",
    "add_sign_option",
    "broker_command",
    "sign_key",
    "signer",
    "watch_command",
]


def add_sign_option(p: argparse.ArgumentParser, what: str) -> None:
    p.add_argument(
        "--sign-key-file",
        type=Path,
        metavar="FILE",
        help=f"HMAC-SHA256 key (at least 16 bytes): {what} (default ${ENV_KEY} if set)",
    )


def add_auth_options(run: argparse.ArgumentParser) -> None:
    """``pmsim run``: signing and the embedded broker's passwords and ACL."""
    add_sign_option(run, "sign alerts, work orders, rankings and staff events")
    run.add_argument(
        "--broker-auth",
        action="store_true",
        help="embedded broker with a user per gateway, the engine and watchers, an ACL, and no "
        "anonymous clients (the credentials' file is printed)",
    )


def sign_key(args: argparse.Namespace) -> bytes | None:
    return load_key(getattr(args, "sign_key_file", None))


def signer(args: argparse.Namespace) -> Signer | None:
    key = sign_key(args)
    return Signer(key) if key is not None else None


def watch_command(args: argparse.Namespace, url: Any) -> int:
    from sim.mqtt.watch import watch

    topic = args.topic or f"{args.prefix}/alerts/#"
    check = signer(args)
    return watch(
        url,
        topic,
        sys.stdout,
        count=args.count,
        timeout=args.timeout,
        signer=check,
        prefix=args.prefix,
    )


def add_broker_auth(brk: argparse.ArgumentParser) -> None:
    brk.add_argument(
        "--auth",
        action="store_true",
        help="passwords and an ACL made for this broker (users engine, watch, gw-ESTATE)",
    )
    brk.add_argument("--estates", help="with --auth: comma-separated estate ids (a gateway each)")
    brk.add_argument("--prefix", default="pm", help="with --auth: the ACL's topic prefix")
    brk.add_argument(
        "--persist",
        type=Path,
        metavar="DIR",
        help="keep sessions and queued messages in DIR (Mosquitto; saved every second)",
    )


def broker_command(args: argparse.Namespace) -> int:
    from sim.mqtt.broker import serve_forever
    from sim.mqtt.brokerauth import BrokerAuth

    estates = [e.strip() for e in (args.estates or "").split(",") if e.strip()]
    if estates and not args.auth:
        raise BadInput("--estates: only with --auth")
    auth = BrokerAuth.generate(args.prefix, tuple(estates)) if args.auth else None
    return serve_forever(args.kind, args.port, auth, args.persist)
