"""Echo endpoint behind ``PreAcceptGuard``: a refused client never gets this far."""

from fastapi import APIRouter, WebSocket

from ..dependencies import SettingsDep
from .echo import echo

router = APIRouter()


@router.websocket("/echo")
async def pre_accept_echo(websocket: WebSocket, settings: SettingsDep) -> None:
    await websocket.accept()
    await echo(websocket, settings.max_message_bytes)
