"""Pre-accept denial: refuse a WebSocket handshake with a real HTTP response.

A pure ASGI middleware. It sees ``websocket`` scopes before any routing, asks the
admission pipeline, and answers a refusal with an HTTP status and JSON body
instead of ``101 Switching Protocols`` (``denial.py``). An admitted connection
goes on to the app with ``scope["user"]`` and ``scope["auth"]`` set. HTTP and
lifespan traffic pass through untouched.

(``@app.middleware("http")`` would not work here: it never sees WebSocket scopes.)
"""

from collections.abc import Mapping

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .admission import NO_SCOPES, Admission
from .credentials import BEARER_SUBPROTOCOL
from .denial import send_denial
from .lifetime import ConnectionLifetime
from .rejections import Rejection


class PreAcceptGuard:
    """Refuse WebSocket handshakes under ``path_prefix`` that admission rejects.

    ``scopes`` maps a path to the scopes a credential needs there: the guard runs
    before routing, so a route's requirements are declared here.
    """

    def __init__(
        self,
        app: ASGIApp,
        admission: Admission,
        path_prefix: str = "/",
        scopes: Mapping[str, frozenset[str]] | None = None,
    ) -> None:
        self.app = app
        self.admission = admission
        self.path_prefix = path_prefix
        self.scopes = dict(scopes or {})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "websocket" or not scope["path"].startswith(self.path_prefix):
            await self.app(scope, receive, send)
            return
        required = self.scopes.get(scope["path"], NO_SCOPES)
        outcome = await self.admission.admit(scope, "pre_accept", required)
        if isinstance(outcome, Rejection):
            await send_denial(scope, send, outcome)
            return
        scope["user"] = outcome.identity.user
        scope["auth"] = outcome.identity.auth
        if outcome.select_bearer:
            send = selecting_bearer(send)
        async with ConnectionLifetime(self.admission, outcome, scope, send):
            await self.app(scope, receive, send)


def selecting_bearer(send: Send) -> Send:
    """Accept with the "bearer" subprotocol unless the endpoint picked one.

    A client that sent its credential as ``bearer.<base64url>`` also offered
    ``bearer``; browsers fail a handshake whose offered protocols get no answer.
    Only such connections pay for this wrapper.
    """

    async def send_selecting_bearer(message: Message) -> None:
        if message["type"] == "websocket.accept" and not message.get("subprotocol"):
            message = {**message, "subprotocol": BEARER_SUBPROTOCOL}
        await send(message)

    return send_selecting_bearer
