"""The app plus an endpoint that fails after accept, to watch the 1011 path on the wire."""

from fastapi import WebSocket

from {{ cookiecutter.package_name }}.main import app
{%- if cookiecutter.rejection_strategy == "both" %}
from {{ cookiecutter.package_name }}.requirements import (
    refuse_after_accept,
)
{%- endif %}

SECRET_DETAIL = "database password is hunter2"


@app.websocket_route("/ws/test/crash")
{%- if cookiecutter.rejection_strategy == "both" %}
@refuse_after_accept
{%- endif %}
async def crash(websocket: WebSocket) -> None:
    await websocket.accept()
    await websocket.receive_text()
    raise RuntimeError(SECRET_DETAIL)
