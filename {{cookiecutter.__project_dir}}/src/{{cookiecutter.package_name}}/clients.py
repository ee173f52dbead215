"""Who is on the other end: client addresses for rate limits and log lines."""

from starlette.types import Scope


def client_host(scope: Scope) -> str:
    # The peer address, or the client's behind a proxy listed in uvicorn's
    # --forwarded-allow-ips: never a header an arbitrary client could forge.
    client = scope.get("client")
    return client[0] if client else "unknown"


def client_address(scope: Scope) -> str:
    client = scope.get("client")
    return f"{client[0]}:{client[1]}" if client else "unknown"
