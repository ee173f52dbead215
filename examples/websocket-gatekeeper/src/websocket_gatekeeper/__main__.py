"""``python -m websocket_gatekeeper``: serve the app with the recommended uvicorn options."""

import argparse

import uvicorn

from .settings import load_settings


def main() -> None:
    parser = argparse.ArgumentParser(description="Serve websocket_gatekeeper with uvicorn.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    settings = load_settings()  # fail fast, before uvicorn starts, on a bad configuration
    uvicorn.run(
        "websocket_gatekeeper.main:app",
        host=args.host,
        port=args.port,
        workers=args.workers,
        # h11 refuses request heads over 16 KB with a 400; httptools (uvicorn's
        # default when installed) buffers heads of any size, e.g. a 10 MB header.
        http="h11",
        # uvicorn's default ("websockets-sansio") logs a false "ASGI callable returned
        # without completing handshake" ERROR after every denial response and leaves
        # oversized handshakes unanswered; wsproto answers both correctly.
        ws="wsproto",
        # Refuse oversized frames in the protocol layer, before they are buffered.
        ws_max_size=settings.max_message_bytes,
        proxy_headers=True,
    )


if __name__ == "__main__":
    main()
