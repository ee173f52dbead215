"""Pre-accept delivery: a refusal before the handshake is an HTTP response, not ``101``.

Uses the ASGI "WebSocket Denial Response" extension (``websocket.http.response``),
which uvicorn, hypercorn, granian and Starlette's TestClient announce in
``scope["extensions"]``. A server without it (daphne) would ignore a denial and
leave the client hanging, so there a close is sent instead: a bare 403 at once.
A refusal after the endpoint accepted (an expired credential, or ``Rejected``
raised later in the conversation) can only be a close frame: ``4000 + status``,
with the code as reason.
"""

from contextvars import ContextVar

from starlette.types import Message, Scope, Send

from .rejections import Rejection, close_message, refusal_body

DENIAL_EXTENSION = "websocket.http.response"
POLICY_VIOLATION = 1008  # the server turns a close before accept into a bare 403 anyway
CACHED_DENIALS = 256  # kinds of refusal whose messages are kept; there are a handful

# Set in the task that served a connection once a denial was sent on it. logs.py
# reads it to drop uvicorn's false "returned without completing handshake" ERROR
# for exactly that connection, and only that one.
denial_sent: ContextVar[bool] = ContextVar("denial_sent", default=False)

_denials: dict[Rejection, tuple[Message, Message]] = {}


async def deliver_refusal(scope: Scope, send: Send, rejection: Rejection, accepted: bool) -> None:
    """Deliver every refusal of a pre-accept route."""
    if accepted:
        await send(close_message(rejection))
    elif DENIAL_EXTENSION in (scope.get("extensions") or {}):
        start, body = denial_messages(rejection)
        await send(start)
        await send(body)
        denial_sent.set(True)
    else:
        await send({"type": "websocket.close", "code": POLICY_VIOLATION})
        denial_sent.set(True)


def denial_messages(rejection: Rejection) -> tuple[Message, Message]:
    """The two ASGI messages of a refusal, built once per kind of refusal."""
    denial = _denials.get(rejection)
    if denial is None:
        body = refusal_body(rejection)
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", b"%d" % len(body)),
        ]
        headers += [(k.encode("latin-1"), v.encode("latin-1")) for k, v in rejection.headers]
        start = {"type": "websocket.http.response.start", "status": rejection.status}
        denial = (
            {**start, "headers": headers},
            {"type": "websocket.http.response.body", "body": body},
        )
        if len(_denials) < CACHED_DENIALS:  # bounded, should a policy vary its messages
            _denials[rejection] = denial
    return denial
