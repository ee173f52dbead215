"""Serve the app with the recommended uvicorn options, print a credential, or connect.

Run ``python -m`` on this package with ``--help``, ``token --help`` or ``connect --help``.
"""

import argparse
import asyncio
import gc
import logging
import os
import shutil
import sys
import tempfile
from contextlib import suppress

import uvicorn
from starlette.types import ASGIApp
from websockets.exceptions import ConnectionClosed

from . import server
from .auth import add_token_command{% if cookiecutter.authentication == "jwt" %}, check_discovery{% endif %}
from .client import CHANNELS, Client, Refused, RetryPolicy
from .clients import ForwardedClients
from .settings import load_settings

METRICS_DIR_PREFIX = "websocket-metrics-"  # a folder of this launcher's, removed at exit

# Each open connection holds about 120 objects the garbage collector tracks; at
# CPython's default threshold (700 allocations) a storm of reconnecting clients
# spends much of its CPU in collections (docs/performance.md). A higher threshold
# makes collections rarer, each one longer.
GC_THRESHOLD = 10_000
QUIET_SECONDS = 1.0  # `connect --send` closes once no message came for this long


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m {{ cookiecutter.package_name }}",
        description="Serve the app with uvicorn (the default), or print a credential.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument(
        "--fd", type=int, help="serve on this already-bound socket instead of --host/--port"
    )
    commands = parser.add_subparsers(title="commands")
    add_token_command(commands)
    add_connect_command(commands)
    args = parser.parse_args(argv)
    if hasattr(args, "run"):
        args.run(args)
    else:
        serve(args.host, args.port, args.workers, args.fd)


def serve(host: str, port: int, workers: int, fd: int | None = None) -> None:
    settings = load_settings()  # fail fast, before uvicorn starts, on a bad configuration
    server.configure(settings)  # ... and on a bound the descriptor limit cannot hold
{%- if cookiecutter.authentication == "jwt" %}
    # ... and on an issuer's discovery document that cannot be used: once, with exit
    # status 1 (with --workers, uvicorn's parent exits with 0 when they fail to start).
    check_discovery(settings)
{%- endif %}
    metrics_dir = None
    if workers > 1:
        if settings.limits_storage_url == "memory://":
            print(
                f"WARNING: {workers} workers with WS_LIMITS_STORAGE_URL=memory:// count rates and "
                "connections per worker; share them with WS_LIMITS_STORAGE_URL=redis://...",
                file=sys.stderr,
            )
        if "PROMETHEUS_MULTIPROC_DIR" not in os.environ:
            # Every worker writes its metrics here, so /metrics answers for all of them.
            metrics_dir = tempfile.mkdtemp(prefix=METRICS_DIR_PREFIX)
            os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
    try:
        uvicorn.run(
            "{{ cookiecutter.package_name }}.__main__:served_app",
            factory=True,
            host=host,
            port=port,
            fd=fd,
            workers=workers,
            # h11 refuses request heads over 16 KB with a 400; httptools (uvicorn's
            # default when installed) buffers heads of any size, e.g. a 10 MB header.
            # server.py adds a deadline for heads and a bound on open connections.
            http="{{ cookiecutter.package_name }}.server:GuardedH11Protocol",
            # uvicorn's default ("websockets-sansio") logs a false "ASGI callable returned
            # without completing handshake" ERROR after every denial response (logs.py
            # drops it) and leaves oversized handshakes unanswered; wsproto does neither.
            ws="wsproto",
            # Refuse oversized frames in the protocol layer, before they are buffered.
            ws_max_size=settings.max_message_bytes,
            # served_app reads X-Forwarded-For itself: uvicorn's own reading takes any
            # text as the client's address.
            proxy_headers=False,
        )
    finally:
        if metrics_dir is not None:
            shutil.rmtree(metrics_dir, ignore_errors=True)


def add_connect_command(commands: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    command = commands.add_parser(
        "connect", help="connect to a WebSocket endpoint with the client (docs/clients.md)"
    )
    command.add_argument("url", help="e.g. ws://127.0.0.1:8000/ws/echo")
    command.add_argument("--token", help="the credential to present (none: see the refusal)")
    command.add_argument("--channel", choices=CHANNELS, default="header", help="how to present it")
    command.add_argument(
        "--send", action="append", default=[], metavar="TEXT", help="send this (repeat)"
    )
    command.add_argument("--attempts", type=int, default=5, help="attempts in a row at most")
    command.add_argument("-v", "--verbose", action="store_true", help="log every decision")
    command.set_defaults(run=run_connect)


def run_connect(args: argparse.Namespace) -> None:
    if args.verbose:
        logging.basicConfig(format="%(name)s: %(message)s")
        logging.getLogger(Client.__module__).setLevel(logging.DEBUG)
    policy = RetryPolicy(max_attempts=max(1, args.attempts))
    client = Client(args.url, token=args.token, channel=args.channel, policy=policy)
    try:
        code = asyncio.run(converse(client, args.send))
    except KeyboardInterrupt:
        code = 130
    sys.exit(code)


async def converse(client: Client, texts: list[str]) -> int:
    """Print what arrives, as ``< TEXT``; 0 only after a normal close (1000)."""
    try:
        async for websocket in client.sessions():
            with suppress(ConnectionClosed):  # what arrived before the close still prints
                for text in texts:
                    await websocket.send(text)
            try:
                while True:
                    if texts:
                        message = await asyncio.wait_for(websocket.recv(), QUIET_SECONDS)
                    else:
                        message = await websocket.recv()
                    print(f"< {message}", flush=True)
            except asyncio.TimeoutError:
                await websocket.close()  # ends the loop: closed normally
            except ConnectionClosed:
                pass  # the server closed: the client decides whether to reconnect
            print(f"closed: {websocket.close_code} {websocket.close_reason or ''}".rstrip())
    except Refused as refused:
        if refused.outcome.close_code is None:  # a session's close was printed already
            print(refused.outcome)
        return 1
    return 0


def served_app() -> ASGIApp:
    """What each server process runs; uvicorn calls it once per worker."""
    from .main import app  # imported here: it builds the app from the settings

    gc.set_threshold(GC_THRESHOLD, *gc.get_threshold()[1:])
    server.configure(app.state.settings)
    # Client addresses (rate limits, logs) from X-Forwarded-For, when the peer is
    # in FORWARDED_ALLOW_IPS (default: 127.0.0.1,::1) and the value a valid address.
    return ForwardedClients(app)


if __name__ == "__main__":
    main()
