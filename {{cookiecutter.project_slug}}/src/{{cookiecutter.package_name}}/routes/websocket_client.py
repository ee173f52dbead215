"""``GET /ws-client.js``: the JavaScript client for your own pages (docs/clients.md).

An ES module, no build step: ``import { connect } from "/ws-client.js"``. It is
public code with nothing secret in it, so any origin may import it (module
scripts are fetched with CORS); browsers revalidate it on each load and get a
``304`` while it is unchanged.
"""

import hashlib
from importlib.resources import files

from fastapi import APIRouter, Request
from fastapi.responses import Response

router = APIRouter()

SCRIPT = files(__package__).joinpath("websocket_client.js").read_bytes()
ETAG = '"' + hashlib.sha256(SCRIPT).hexdigest()[:16] + '"'
HEADERS = {
    "cache-control": "no-cache",  # revalidate: a new version is picked up at once
    "etag": ETAG,
    "access-control-allow-origin": "*",
    "x-content-type-options": "nosniff",
}


@router.get("/ws-client.js", include_in_schema=False)
async def websocket_client_script(request: Request) -> Response:
    if request.headers.get("if-none-match") == ETAG:
        return Response(status_code=304, headers=HEADERS)
    return Response(SCRIPT, media_type="text/javascript; charset=utf-8", headers=HEADERS)
