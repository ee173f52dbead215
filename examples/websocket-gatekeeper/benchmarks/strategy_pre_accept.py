"""Pre-accept: the generated guard refuses before accept; its floor is a raw denial."""

from apps import http_or_lifespan
from starlette.types import Receive, Scope, Send

from websocket_gatekeeper.denial import denial_messages
from websocket_gatekeeper.rejections import (
    MISSING_TOKEN,
)

STRATEGY = "pre_accept"  # the key of this strategy's route in paths.ECHO_ENDPOINTS
LABEL = "pre-accept"
REFUSAL = "HTTP 401"  # what a client without a credential receives
REFUSAL_FLOOR = "raw ASGI denial"
REFUSAL_TARGET = 1.10  # the aim: 1.05

_START, _BODY = denial_messages(MISSING_TOKEN)  # the very bytes the guard sends


async def raw_refusal(scope: Scope, receive: Receive, send: Send) -> None:
    """The floor: the same 401 denial, sent at once by a bare ASGI callable."""
    if scope["type"] != "websocket":
        await http_or_lifespan(scope, receive, send)
        return
    await send(_START)
    await send(_BODY)


def answer(status: int) -> str:
    """What a client is told for a refusal with this HTTP status: the status itself."""
    return f"HTTP {status}"
