"""``GET /``: a page that connects to every guarded endpoint from JavaScript, through
each channel a browser has (subprotocol, ticket, query), and shows what it sees."""

import json
from importlib.resources import files

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

router = APIRouter()

PAGE = files(__package__).joinpath("demo.html").read_text(encoding="utf-8")


@router.get("/", response_class=HTMLResponse, include_in_schema=False)
async def demo_page(request: Request) -> HTMLResponse:
    # A browser cannot read why a handshake was refused, so the page gets the
    # Origin allow-list (not a secret: any page learns it by trying) and checks
    # its own origin against it, as the guard does with the handshake's Origin.
    config = {
{%- if cookiecutter.rejection_strategy == "both" %}
        "echo": {
            "pre_accept": "/ws/pre-accept/echo",
            "accept_then_close": "/ws/accept-then-close/echo",
        },
        "admin": {
            "pre_accept": "/ws/pre-accept/admin/echo",
            "accept_then_close": "/ws/accept-then-close/admin/echo",
        },
{%- else %}
        "echo": {"{{ cookiecutter.rejection_strategy }}": "/ws/echo"},
        "admin": {"{{ cookiecutter.rejection_strategy }}": "/ws/admin/echo"},
{%- endif %}
        "allowedOrigins": request.app.state.settings.allowed_origins,
    }
    # Escaped "<": nothing in the data can end the page's <script> element.
    data = json.dumps(config).replace("<", "\\u003c")
    return HTMLResponse(
        PAGE.replace("__DEMO_CONFIG__", data),
        headers={"cache-control": "no-store"},  # it shows the current settings
    )
