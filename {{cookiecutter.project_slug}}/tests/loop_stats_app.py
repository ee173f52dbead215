"""The project's app plus ``GET /test/loop``: what the server's event loop holds (tests only).

Served by a real uvicorn (``LiveServer(app="loop_stats_app:app")``) so tests can
count the tasks, pending timer handles and connection deadlines left after
connections end.
"""

import asyncio
import json

from starlette.types import Receive, Scope, Send

from {{ cookiecutter.package_name }}.governance import Governance
from {{ cookiecutter.package_name }}.guard import UNGOVERNED
from {{ cookiecutter.package_name }}.main import app as project_app


def loop_load(*governed: Governance) -> dict[str, int]:
    """Tasks and pending (not cancelled) timer handles of the running loop, and the
    connections waiting for a deadline there (of this app, the guard's default, and
    any ``governed`` given)."""
    loop = asyncio.get_running_loop()
    # `_scheduled` is asyncio's timer heap (private, but the only place timers are
    # visible); a cancelled handle stays in it until the loop sweeps it out.
    timers = [handle for handle in loop._scheduled if not handle.cancelled()]  # type: ignore[attr-defined]
    governances = {project_app.state.governance, UNGOVERNED, *governed}
    deadlines = sum(len(governance.deadlines_on(loop)) for governance in governances)
    return {"tasks": len(asyncio.all_tasks()), "timers": len(timers), "deadlines": deadlines}


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "http" and scope["path"] == "/test/loop":
        body = json.dumps(loop_load()).encode()
        headers = [(b"content-type", b"application/json"), (b"connection", b"close")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})
        return
    await project_app(scope, receive, send)
