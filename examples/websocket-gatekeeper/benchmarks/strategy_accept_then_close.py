"""Accept-then-close: the generated endpoint accepts, then refuses; its floor is a raw
accept + send + close."""

import json

from apps import http_or_lifespan
from starlette.types import Receive, Scope, Send

from websocket_gatekeeper.rejections import (
    MISSING_TOKEN,
)

STRATEGY = "accept_then_close"  # the key of this strategy's route in paths.ECHO_ENDPOINTS
LABEL = "accept-then-close"
REFUSAL = "close 4401"  # what a client without a credential receives
REFUSAL_FLOOR = "raw ASGI accept-send-close"
REFUSAL_TARGET = 1.30

_MESSAGES = (
    {"type": "websocket.accept"},
    {
        "type": "websocket.send",
        "text": json.dumps({"error": MISSING_TOKEN.code, "detail": MISSING_TOKEN.message}),
    },
    {"type": "websocket.close", "code": 4000 + MISSING_TOKEN.status, "reason": MISSING_TOKEN.code},
)


async def raw_refusal(scope: Scope, receive: Receive, send: Send) -> None:
    """The floor: accept, send the same JSON error, close 4401, with no framework."""
    if scope["type"] != "websocket":
        await http_or_lifespan(scope, receive, send)
        return
    await receive()  # websocket.connect
    for message in _MESSAGES:
        await send(message)


def answer(status: int) -> str:
    """What a client is told for a refusal with this HTTP status: a close code."""
    return f"close {4000 + status}"
