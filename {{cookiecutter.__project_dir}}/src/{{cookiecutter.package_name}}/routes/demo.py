"""``GET /``: a page that opens each guarded endpoint from JavaScript; what a browser sees."""

import json
from importlib.resources import files

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

from ..paths import ECHO_ENDPOINTS

router = APIRouter()

# Read and fill once at import: the page is static apart from the endpoint list.
PAGE = (
    files(__package__)
    .joinpath("demo.html")
    .read_text(encoding="utf-8")
    .replace("__ECHO_ENDPOINTS__", json.dumps(ECHO_ENDPOINTS))
)


@router.get("/", response_class=HTMLResponse, include_in_schema=False)
async def demo_page() -> HTMLResponse:
    return HTMLResponse(PAGE)
