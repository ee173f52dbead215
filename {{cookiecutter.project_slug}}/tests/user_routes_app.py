"""The app with WebSocket routes added the way a user adds them (docs/routes.md):
``@app.websocket`` with a path parameter, an ``APIRouter`` with a prefix, a route
that declares nothing, a public one, and one that refuses from inside."""

from fastapi import APIRouter, FastAPI, WebSocket

from {{ cookiecutter.package_name }}.guard import Rejected
from {{ cookiecutter.package_name }}.main import app
from {{ cookiecutter.package_name }}.rejections import Rejection
from {{ cookiecutter.package_name }}.requirements import (
    public,
    requires,
)

ROOM_CLOSED = Rejection(403, "room_closed", "This room is closed.")


def add_user_routes(app: FastAPI) -> None:
    @app.websocket("/ws/rooms/{room}")
    @requires("admin")
    async def room(websocket: WebSocket, room: str) -> None:
        if room == "closed":
            raise Rejected(ROOM_CLOSED)
        await websocket.accept()
        await websocket.send_json({"room": room, "user": websocket.user.identity})
        await websocket.close()

    @app.websocket("/ws/forgotten/{name}")  # declares nothing: a credential is needed
    async def forgotten(websocket: WebSocket, name: str) -> None:
        await websocket.accept()
        await websocket.send_json({"name": name, "user": websocket.user.identity})
        await websocket.close()

    router = APIRouter(prefix="/ws/teams")

    @router.websocket("/{team}/chat")
    async def team_chat(websocket: WebSocket, team: str) -> None:
        await websocket.accept()
        await websocket.send_json({"team": team, "user": websocket.user.identity})
        await websocket.close()

    @router.websocket("/status")
    @public
    async def status(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.send_json({"authenticated": websocket.user.is_authenticated})
        await websocket.close()

    app.include_router(router)


add_user_routes(app)
