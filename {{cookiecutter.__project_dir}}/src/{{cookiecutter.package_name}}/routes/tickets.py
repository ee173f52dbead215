"""``POST /ws/tickets``: a one-time ticket for browsers, which cannot set headers on a WebSocket.

The page calls this with ``Authorization: Bearer <credential>`` (over plain HTTP,
where it can set headers), then opens the WebSocket with ``?ticket=<ticket>``
within 30 seconds. A ticket admits one handshake, as the caller; it is useless
once used, so it may sit in a URL and a log line without harm.
"""

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from ..admission import TICKET_SECONDS
from ..rejections import Rejection

router = APIRouter()


@router.post("/ws/tickets", status_code=201, response_model=None)
async def issue_ticket(request: Request) -> JSONResponse:
    ticket = await request.app.state.admission.issue_ticket(request)
    if isinstance(ticket, Rejection):
        return JSONResponse(
            {"detail": ticket.message, "code": ticket.code},
            ticket.status,
            headers=dict(ticket.headers),
        )
    return JSONResponse(
        {"ticket": ticket, "expires_in": TICKET_SECONDS},
        201,
        headers={"cache-control": "no-store"},
    )
