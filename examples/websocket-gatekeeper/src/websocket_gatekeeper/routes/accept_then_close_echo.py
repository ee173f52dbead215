"""Echo endpoint that accepts first and refuses from inside (``accept_then_close``)."""

from fastapi import APIRouter, WebSocket

from ..accept_then_close import accept_then_close
from ..dependencies import PolicyDep, SettingsDep
from .echo import echo

router = APIRouter()


@router.websocket("/echo")
async def accept_then_close_echo(
    websocket: WebSocket, policy: PolicyDep, settings: SettingsDep
) -> None:
    async with accept_then_close(websocket):
        policy.enforce(websocket)  # a refusal raises Rejected: JSON error + close 44xx
        await echo(websocket, settings.max_message_bytes)
