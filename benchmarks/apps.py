"""The reference apps the generated app is measured against.

Each runs in its own uvicorn process, in the baked project's virtualenv
(``measure.py`` starts them), and answers ``GET /health``, so the benchmark knows
when it is up.

- ``raw_echo``: a bare ASGI callable that accepts every WebSocket and echoes: the
  floor for an allowed session, with no framework, no guard and no identity.
- ``fastapi_echo``: the idiomatic FastAPI echo endpoint (``@app.websocket``),
  the reference for memory per held connection.
- ``fastapi_depends_echo`` / ``fastapi_route_echo``: the same endpoint reading
  its settings through ``Depends(...)``, or as a Starlette-style
  ``websocket_route`` reading ``websocket.app.state``.
- ``raw_echo_redis``: ``raw_echo`` after one Redis round trip per connection
  through redis-py (a one-line script by EVALSHA, as the generated store admits):
  the floor of any app that asks Redis once per session.
- ``raw_denial`` / ``raw_accept_close``: the floors of a refusal of a client
  without a credential, per strategy: the generated app's ``MISSING_TOKEN``
  rejection (from the package ``BENCHMARK_PACKAGE`` names), sent by a bare ASGI
  callable as an HTTP denial ``{"detail", "code"}``, or as accept + JSON
  ``{"error", "detail"}`` + close ``4000 + status`` with the code as reason.
"""

import functools
import json
import os
from dataclasses import dataclass
from importlib import import_module
from typing import Annotated, Any

from fastapi import Depends, FastAPI, WebSocket, WebSocketDisconnect
from starlette.types import Message, Receive, Scope, Send

PATH = "/ws/echo"

_ACCEPT: Message = {"type": "websocket.accept"}
_HEALTH_START: Message = {
    "type": "http.response.start",
    "status": 200,
    "headers": [(b"content-type", b"application/json"), (b"content-length", b"15")],
}
_HEALTH_BODY: Message = {"type": "http.response.body", "body": b'{"status":"ok"}'}


async def http_or_lifespan(scope: Scope, receive: Receive, send: Send) -> None:
    """What every raw app does with what is not a WebSocket: ``/health`` and lifespan."""
    if scope["type"] == "http":
        await send(_HEALTH_START)
        await send(_HEALTH_BODY)
    else:
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})


async def raw_echo(scope: Scope, receive: Receive, send: Send) -> None:
    """The floor: accept every WebSocket and echo each message until the client leaves."""
    if scope["type"] != "websocket":
        await http_or_lifespan(scope, receive, send)
        return
    await receive()  # websocket.connect
    await send(_ACCEPT)
    while True:
        message = await receive()
        if message["type"] != "websocket.receive":
            return
        text = message.get("text")
        if text is not None:
            await send({"type": "websocket.send", "text": text})
        else:
            await send({"type": "websocket.send", "bytes": message.get("bytes") or b""})


@functools.cache
def _round_trip() -> Any:
    """A redis-py script on ``BENCHMARK_REDIS_URL``, made on first use (on the server's loop)."""
    from redis.asyncio import Redis

    client = Redis.from_url(os.environ["BENCHMARK_REDIS_URL"])
    return client.register_script("return redis.call('INCR', KEYS[1])")


async def raw_echo_redis(scope: Scope, receive: Receive, send: Send) -> None:
    """``raw_echo`` that first asks Redis once: one round trip per connection."""
    if scope["type"] == "websocket":
        await _round_trip()(keys=["benchmark:round-trips"])
    await raw_echo(scope, receive, send)


@dataclass
class EchoSettings:
    max_message_bytes: int = 64 * 1024


def _fastapi() -> FastAPI:
    app = FastAPI()
    app.state.settings = EchoSettings()

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    return app


async def _echo(websocket: WebSocket, settings: EchoSettings) -> None:
    await websocket.accept()
    try:
        while True:
            text = await websocket.receive_text()
            if len(text) > settings.max_message_bytes:
                await websocket.close(1009)
                return
            await websocket.send_text(text)
    except WebSocketDisconnect:
        pass


def get_settings(websocket: WebSocket) -> EchoSettings:
    return websocket.app.state.settings


fastapi_echo = _fastapi()


@fastapi_echo.websocket(PATH)
async def plain_echo(websocket: WebSocket) -> None:
    """The FastAPI tutorial's endpoint: ``@app.websocket``, only the WebSocket parameter."""
    await _echo(websocket, websocket.app.state.settings)


fastapi_depends_echo = _fastapi()


@fastapi_depends_echo.websocket(PATH)
async def depends_echo(
    websocket: WebSocket, settings: Annotated[EchoSettings, Depends(get_settings)]
) -> None:
    """The same endpoint taking its settings from a dependency."""
    await _echo(websocket, settings)


fastapi_route_echo = _fastapi()


@fastapi_route_echo.router.websocket_route(PATH)
async def route_echo(websocket: WebSocket) -> None:
    """The same endpoint as a Starlette-style route: no dependency solving."""
    await _echo(websocket, websocket.app.state.settings)


def _missing_token() -> Any:
    """The project's own rejection of a client without a credential."""
    return import_module(f"{os.environ['BENCHMARK_PACKAGE']}.rejections").MISSING_TOKEN


def _denial_messages() -> tuple[Message, Message]:
    rejection = _missing_token()
    body = json.dumps({"detail": rejection.message, "code": rejection.code}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
    headers += [(k.encode("latin-1"), v.encode("latin-1")) for k, v in rejection.headers]
    return (
        {"type": "websocket.http.response.start", "status": rejection.status, "headers": headers},
        {"type": "websocket.http.response.body", "body": body},
    )


def _accept_close_messages() -> tuple[Message, Message, Message]:
    rejection = _missing_token()
    return (
        _ACCEPT,
        {
            "type": "websocket.send",
            "text": json.dumps({"error": rejection.code, "detail": rejection.message}),
        },
        {"type": "websocket.close", "code": 4000 + rejection.status, "reason": rejection.code},
    )


async def raw_denial(scope: Scope, receive: Receive, send: Send) -> None:
    """The pre-accept floor: the same 401 denial, sent at once by a bare ASGI callable."""
    if scope["type"] != "websocket":
        await http_or_lifespan(scope, receive, send)
        return
    start, body = _DENIAL
    await send(start)
    await send(body)


async def raw_accept_close(scope: Scope, receive: Receive, send: Send) -> None:
    """The accept-then-close floor: accept, send the same JSON error, close 4401."""
    if scope["type"] != "websocket":
        await http_or_lifespan(scope, receive, send)
        return
    await receive()  # websocket.connect
    for message in _ACCEPT_CLOSE:
        await send(message)


# Built once, at import, as the generated app builds its own.
_DENIAL = _denial_messages()
_ACCEPT_CLOSE = _accept_close_messages()
