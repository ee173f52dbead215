"""Pre-accept denial: refuse a WebSocket handshake with a real HTTP response.

A pure ASGI middleware. It sees ``websocket`` scopes before any routing, asks the
admission policy, and answers a refusal with the ASGI "WebSocket Denial
Response" extension, so the client gets e.g. ``401`` with a JSON body instead of
``101 Switching Protocols``. HTTP and lifespan traffic pass through untouched.

(``@app.middleware("http")`` would not work here: it never sees WebSocket scopes.)
"""

import json

from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .policy import AdmissionPolicy, Rejection, log_rejection

DENIAL_EXTENSION = "websocket.http.response"
CACHED_DENIALS = 64  # refusal kinds whose messages are kept; a policy has a handful


class PreAcceptGuard:
    """Refuse WebSocket handshakes under ``path_prefix`` that the policy rejects."""

    def __init__(self, app: ASGIApp, policy: AdmissionPolicy, path_prefix: str = "/") -> None:
        self.app = app
        self.policy = policy
        self.path_prefix = path_prefix  # WebSocket paths this guard protects
        self._denials: dict[Rejection, tuple[Message, Message]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "websocket" or not scope["path"].startswith(self.path_prefix):
            await self.app(scope, receive, send)
            return
        connection = HTTPConnection(scope)
        rejection = self.policy.admit(connection)
        if rejection is None:
            await self.app(scope, receive, send)
            return
        log_rejection(connection, rejection)
        if DENIAL_EXTENSION in (scope.get("extensions") or {}):
            start, body = self._denial(rejection)
            await send(start)
            await send(body)
        else:
            # Without the extension (e.g. daphne) a denial would be ignored and the
            # client would hang; a close before accept becomes a bare 403 at once.
            await send({"type": "websocket.close", "code": rejection.close_code})

    def _denial(self, rejection: Rejection) -> tuple[Message, Message]:
        # Build each refusal's messages once; afterwards a refusal costs two sends.
        # (Bounded, in case a policy makes Rejections with per-request messages.)
        denial = self._denials.get(rejection)
        if denial is None:
            body = json.dumps({"detail": rejection.message, "code": rejection.code}).encode()
            headers = [
                (b"content-type", b"application/json"),
                (b"content-length", b"%d" % len(body)),
            ]
            headers += [(k.encode("latin-1"), v.encode("latin-1")) for k, v in rejection.headers]
            denial = (
                {
                    "type": "websocket.http.response.start",
                    "status": rejection.status,
                    "headers": headers,
                },
                {"type": "websocket.http.response.body", "body": body},
            )
            if len(self._denials) < CACHED_DENIALS:
                self._denials[rejection] = denial
        return denial
