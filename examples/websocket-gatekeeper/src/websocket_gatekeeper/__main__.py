"""Serve the app with the recommended uvicorn options, or print a credential.

Run ``python -m`` on this package with ``--help``, or ``token --help``.
"""

import argparse
import os
import shutil
import sys
import tempfile

import uvicorn

from .auth import add_token_command
from .settings import load_settings

METRICS_DIR_PREFIX = "websocket-metrics-"  # a folder of this launcher's, removed at exit


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m websocket_gatekeeper",
        description="Serve the app with uvicorn (the default), or print a credential.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--workers", type=int, default=1)
    add_token_command(parser.add_subparsers(title="commands"))
    args = parser.parse_args(argv)
    if hasattr(args, "run"):
        args.run(args)
    else:
        serve(args.host, args.port, args.workers)


def serve(host: str, port: int, workers: int) -> None:
    settings = load_settings()  # fail fast, before uvicorn starts, on a bad configuration
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
            "websocket_gatekeeper.main:app",
            host=host,
            port=port,
            workers=workers,
            # h11 refuses request heads over 16 KB with a 400; httptools (uvicorn's
            # default when installed) buffers heads of any size, e.g. a 10 MB header.
            http="h11",
            # uvicorn's default ("websockets-sansio") logs a false "ASGI callable returned
            # without completing handshake" ERROR after every denial response (logs.py
            # drops it) and leaves oversized handshakes unanswered; wsproto does neither.
            ws="wsproto",
            # Refuse oversized frames in the protocol layer, before they are buffered.
            ws_max_size=settings.max_message_bytes,
            # Client addresses (rate limits, logs) from X-Forwarded-For, but only
            # when the peer is in FORWARDED_ALLOW_IPS (default: 127.0.0.1).
            proxy_headers=True,
        )
    finally:
        if metrics_dir is not None:
            shutil.rmtree(metrics_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
