"""``POST /ws/tickets``: a one-time ticket for browsers, which cannot set headers on a WebSocket.

The page calls this with ``Authorization: Bearer <credential>`` (over plain HTTP,
where it can set headers), then opens the WebSocket with ``?ticket=<ticket>``
within 30 seconds. A ticket admits one handshake, as the caller; it is useless
once used, so it may sit in a URL and a log line without harm.
"""

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from ..rejections import Rejection, http_refusal

router = APIRouter()


@router.post("/ws/tickets", status_code=201, response_model=None)
async def issue_ticket(request: Request) -> Response:
    issued = await request.app.state.admission.issue_ticket(request)
    if isinstance(issued, Rejection):
        return http_refusal(issued)
    ticket, seconds = issued  # 30, or less when the credential expires sooner
    return JSONResponse(
        {"ticket": ticket, "expires_in": seconds},
        201,
        headers={"cache-control": "no-store"},
    )
