"""``GET /health``: plain HTTP, never touched by the WebSocket guard."""

from fastapi import APIRouter

router = APIRouter()


@router.get("/health")
async def health() -> dict[str, str]:
    return {"status": "ok"}
