"""WebSocket handshakes to a path no route matches: a 404, not Starlette's bare 403.

A bare 403 tells a client it is not allowed when in fact it has a typo in the
path; the 404 says what is wrong (or, in opaque mode, looks like any other 404).
"""

from fastapi import FastAPI
from starlette.types import ASGIApp, Receive, Scope, Send

from .admission import Admission
from .denial import send_denial


class WebSocketNotFound:
    """The router's fallback: WebSocket scopes get a 404 denial, HTTP goes on as before."""

    def __init__(self, http_not_found: ASGIApp, admission: Admission) -> None:
        self.http_not_found = http_not_found
        self.admission = admission

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            await send_denial(scope, send, self.admission.refuse_unknown_path(scope))
        else:
            await self.http_not_found(scope, receive, send)


def refuse_unknown_websocket_paths(app: FastAPI, admission: Admission) -> None:
    app.router.default = WebSocketNotFound(app.router.default, admission)
