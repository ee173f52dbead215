"""``POST /ws/revocations`` and ``DELETE /ws/revocations/{identity}``: cut a user off now.

Revoking an identity closes every live connection of it, on every worker and host
sharing the store, with ``4403 revoked`` within a second, and refuses its new
handshakes and ticket requests (``403 revoked``) until the revocation ends or is
lifted. Both need ``Authorization: Bearer`` with the ``admin`` scope. Refusals
have the shape of every other HTTP refusal: ``{"detail": ..., "code": ...}``.
"""

import json
import logging

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from ..admission import Admission
from ..clients import client_address
from ..rejections import INVALID_REQUEST, REVOCATION_UNAVAILABLE, Rejection, http_refusal
from ..revocations import StoreUnreachable
from ..settings import MAX_REVOCATION_SECONDS

logger = logging.getLogger(__name__)
router = APIRouter()

ADMIN_SCOPE = "admin"
MAX_IDENTITY_CHARACTERS = 1024
MAX_BODY_BYTES = 4096


@router.post("/ws/revocations", status_code=202, response_model=None)
async def revoke(request: Request) -> Response:
    admission: Admission = request.app.state.admission
    admin = await admission.authorize(request, ADMIN_SCOPE)
    if isinstance(admin, Rejection):
        return refused(request, admin)
    body = await request.body()
    parsed = parse_revocation(body, request.app.state.settings.revocation_seconds)
    if parsed is None:
        return refused(request, INVALID_REQUEST)
    identity, seconds = parsed
    try:
        await admission.revocations.revoke(identity, seconds)
    except StoreUnreachable:
        return refused(request, REVOCATION_UNAVAILABLE)
    logger.info("revoked %s for %d s, by %s", identity, seconds, admin.user.identity)
    return JSONResponse({"identity": identity, "expires_in": seconds}, 202)


@router.delete("/ws/revocations/{identity}", status_code=204, response_model=None)
async def lift(request: Request, identity: str) -> Response:
    admission: Admission = request.app.state.admission
    admin = await admission.authorize(request, ADMIN_SCOPE)
    if isinstance(admin, Rejection):
        return refused(request, admin)
    try:
        await admission.revocations.lift(identity)
    except StoreUnreachable:
        return refused(request, REVOCATION_UNAVAILABLE)
    logger.info("lifted the revocation of %s, by %s", identity, admin.user.identity)
    return Response(status_code=204)


def parse_revocation(body: bytes, default_seconds: int) -> tuple[str, int] | None:
    """``{"identity": "...", "seconds": N}`` (``seconds`` optional), or None."""
    if len(body) > MAX_BODY_BYTES:
        return None
    try:
        request = json.loads(body)
    except ValueError:
        return None
    if not isinstance(request, dict):
        return None
    identity, seconds = request.get("identity"), request.get("seconds", default_seconds)
    if not isinstance(identity, str) or not 0 < len(identity) <= MAX_IDENTITY_CHARACTERS:
        return None
    if type(seconds) is not int or not 0 < seconds <= MAX_REVOCATION_SECONDS:
        return None
    return identity, seconds


def refused(request: Request, rejection: Rejection) -> Response:
    logger.info(
        "refused %s %s from %s: %s",
        request.method,
        request.url.path,
        client_address(request.scope),
        rejection.code,
    )
    return http_refusal(rejection)
