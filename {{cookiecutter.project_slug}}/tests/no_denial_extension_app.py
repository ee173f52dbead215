"""The app as a server without the WebSocket Denial Response extension would run it."""

from starlette.types import Receive, Scope, Send

from {{ cookiecutter.package_name }}.main import app as real_app


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "websocket":
        extensions = dict(scope.get("extensions") or {})
        extensions.pop("websocket.http.response", None)
        scope = {**scope, "extensions": extensions}
    await real_app(scope, receive, send)
