"""The reference apps the benchmark compares the strategies with (strategy_*.py).

Each is served by its own uvicorn process. All refuse a handshake without a
token and answer ``GET /health``; the policy, settings and echo loop are the
project's own.
"""

import json

from fastapi import FastAPI, WebSocket
from fastapi.responses import JSONResponse
from starlette.types import Receive, Scope, Send
from {{ cookiecutter.package_name }}.policy import MISSING_TOKEN, AdmissionPolicy

from {{ cookiecutter.package_name }}.routes import health
from {{ cookiecutter.package_name }}.routes.echo import echo
from {{ cookiecutter.package_name }}.settings import Settings

BENCH_TOKEN = "benchmark-token-0123456789"
SETTINGS = Settings(auth_tokens=[BENCH_TOKEN], _env_file=None)
POLICY = AdmissionPolicy(SETTINGS.auth_tokens)
PATH = "/ws/echo"

_BODY = json.dumps({"detail": MISSING_TOKEN.message, "code": MISSING_TOKEN.code}).encode()
_DENIAL_START = {
    "type": "websocket.http.response.start",
    "status": 401,
    "headers": [
        (b"content-type", b"application/json"),
        (b"content-length", b"%d" % len(_BODY)),
        (b"www-authenticate", b'Bearer realm="websocket"'),
    ],
}
_DENIAL_BODY = {"type": "websocket.http.response.body", "body": _BODY}
_HEALTH_START = {
    "type": "http.response.start",
    "status": 200,
    "headers": [(b"content-type", b"application/json"), (b"content-length", b"15")],
}
_HEALTH_BODY = {"type": "http.response.body", "body": b'{"status":"ok"}'}


async def raw(scope: Scope, receive: Receive, send: Send) -> None:
    """The limit: no framework, the same denial bytes, sent straight away."""
    if scope["type"] == "websocket":
        await send(_DENIAL_START)
        await send(_DENIAL_BODY)
    elif scope["type"] == "http":
        await send(_HEALTH_START)
        await send(_HEALTH_BODY)
    else:  # lifespan
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})


def fastapi_app() -> FastAPI:
    app = FastAPI()
    app.state.settings = SETTINGS
    app.state.policy = POLICY
    app.include_router(health.router)
    return app


def with_plain_echo(app: FastAPI) -> FastAPI:
    @app.websocket(PATH)
    async def plain_echo(websocket: WebSocket) -> None:
        await websocket.accept()
        await echo(websocket, SETTINGS.max_message_bytes)

    return app


# FastAPI without any guard: the reference for the guard's overhead on allowed traffic.
unguarded = with_plain_echo(fastapi_app())

# FastAPI's own route-level denial: the endpoint asks the policy and calls
# send_denial_response, after routing and dependency resolution.
route_denial = fastapi_app()


@route_denial.websocket(PATH)
async def route_level_denial(websocket: WebSocket) -> None:
    rejection = POLICY.admit(websocket)
    if rejection is not None:
        body = {"detail": rejection.message, "code": rejection.code}
        response = JSONResponse(body, rejection.status, dict(rejection.headers))
        await websocket.send_denial_response(response)
        return
    await websocket.accept()
    await echo(websocket, SETTINGS.max_message_bytes)
