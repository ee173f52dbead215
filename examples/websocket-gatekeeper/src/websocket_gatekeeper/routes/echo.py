"""The demo conversation both strategies protect: echo every message back."""

from starlette.websockets import WebSocket, WebSocketDisconnect

MESSAGE_TOO_BIG = 1009


async def echo(websocket: WebSocket) -> None:
    """Echo text and binary messages until the client leaves.

    An oversized message closes the socket with 1009. (The server's own
    ``ws_max_size``, set by ``python -m ...``, stops it earlier, before buffering.)
    """
    max_bytes = websocket.app.state.settings.max_message_bytes
    try:
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                return
            text, data = message.get("text"), message.get("bytes")
            size = len(text.encode()) if text is not None else len(data or b"")
            if size > max_bytes:
                await websocket.close(MESSAGE_TOO_BIG, "message too big")
                return
            if text is not None:
                await websocket.send_text(text)
            else:
                await websocket.send_bytes(data or b"")
    except WebSocketDisconnect:
        return  # the client vanished between our receive and our send
