"""What a WebSocket route requires, declared beside the route.

Every WebSocket route is guarded: a client reaches its endpoint only through the
admission pipeline (``guard.py``), and a route that declares nothing needs a valid
credential and no scope. Declare more, or less, with these markers::

    @app.websocket("/ws/rooms/{room}")
    @requires("rooms:write")
    async def room(websocket: WebSocket, room: str) -> None: ...

    @router.websocket("/status")
    @public  # anyone may connect: no credential, websocket.user is unauthenticated
    async def status(websocket: WebSocket) -> None: ...
{%- if cookiecutter.rejection_strategy == "both" %}

    @app.websocket("/ws/chat")
    @refuse_after_accept  # browsers can read why; the default is to refuse before accept
    async def chat(websocket: WebSocket) -> None: ...
{%- endif %}

They only mark the endpoint function (they do not wrap it), so FastAPI sees its
signature unchanged: path parameters and ``Depends`` work as usual, and the
markers can go above or below ``@app.websocket``.
"""

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TypeVar

from starlette.types import Scope

Endpoint = TypeVar("Endpoint", bound=Callable[..., object])
{%- if cookiecutter.rejection_strategy == "both" %}

PRE_ACCEPT = "pre_accept"
ACCEPT_THEN_CLOSE = "accept_then_close"
{%- endif %}


@dataclass(frozen=True, slots=True)
class Requirements:
    scopes: frozenset[str] = frozenset()  # every one of them must be granted
    public: bool = False  # no credential needed: size, Origin and rate are still checked
{%- if cookiecutter.rejection_strategy == "both" %}
    strategy: str = PRE_ACCEPT  # how a refusal reaches the client (guard.py)
{%- endif %}


GUARDED = Requirements()  # what a route that declares nothing gets
_ATTRIBUTE = "websocket_requirements"


def requires(*scopes: str) -> Callable[[Endpoint], Endpoint]:
    """The credential must grant every one of ``scopes`` (as Starlette's ``requires``)."""

    def mark(endpoint: Endpoint) -> Endpoint:
        required = requirements_of_endpoint(endpoint)
        return _declare(endpoint, replace(required, scopes=required.scopes | frozenset(scopes)))

    return mark


def public(endpoint: Endpoint) -> Endpoint:
    """Anyone may connect to this route; say so only where you mean it."""
    return _declare(endpoint, replace(requirements_of_endpoint(endpoint), public=True))
{%- if cookiecutter.rejection_strategy == "both" %}


def refuse_after_accept(endpoint: Endpoint) -> Endpoint:
    """Refuse on this route by accepting, sending the reason as JSON, then closing."""
    required = requirements_of_endpoint(endpoint)
    return _declare(endpoint, replace(required, strategy=ACCEPT_THEN_CLOSE))
{%- endif %}


def requirements_of_endpoint(endpoint: object) -> Requirements:
    return getattr(endpoint, _ATTRIBUTE, GUARDED)


def requirements_of(scope: Scope) -> Requirements:
    """The requirements of the endpoint the router picked for this connection.

    A mounted sub-application, or anything else without markers, is guarded.
    """
    return getattr(scope.get("endpoint"), _ATTRIBUTE, GUARDED)


def _declare(endpoint: Endpoint, requirements: Requirements) -> Endpoint:
    setattr(endpoint, _ATTRIBUTE, requirements)
    return endpoint
