"""Client addresses: the peer, or the client a trusted proxy names, and only ever a
valid IP address.

A proxy in ``FORWARDED_ALLOW_IPS`` (uvicorn's setting, default ``127.0.0.1,::1``)
names the client in ``X-Forwarded-For``. ``ForwardedClients`` takes that name only
when it is a syntactically valid IPv4 or IPv6 address; anything else (junk, a
host name, 8 KB of text) leaves the peer's address, so it shares the peer's rate
budget and never becomes a store key or a long log line. The ``python -m``
launcher serves the app through it, with uvicorn's own proxy-headers handling
(which takes any text) turned off.

Under plain ``uvicorn``/``fastapi run`` uvicorn rewrites the client itself, from
any text, before the app sees the connection, and the peer's address is lost.
``client_host`` then still never returns that text: an invalid address counts as
``unknown``, one shared budget (docs/security.md).
"""

import ipaddress
import os
import socket
from functools import lru_cache

from starlette.types import ASGIApp, Receive, Scope, Send

UNKNOWN = "unknown"  # the client of a connection whose address is not a valid IP
LOGGED_CHARACTERS = 200  # the most of any client-supplied value a log line carries
LONGEST_ADDRESS = 45  # "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255"
DEFAULT_TRUSTED = "127.0.0.1,::1"  # uvicorn's default for FORWARDED_ALLOW_IPS


def is_ip_address(host: str) -> bool:
    """Exactly an IPv4 (dotted quad) or IPv6 address: no zone, port, name or padding."""
    return len(host) <= LONGEST_ADDRESS and _is_address(host)


@lru_cache(maxsize=4096)  # the same few peers (proxies, clients) over and over
def _is_address(host: str) -> bool:
    try:
        socket.inet_pton(socket.AF_INET6 if ":" in host else socket.AF_INET, host)
    except (OSError, ValueError):  # ValueError: NUL or non-ASCII characters
        return False
    return True


def client_host(scope: Scope) -> str:
    """The client's IP address (rate-limit keys, logs), or ``unknown``: never a
    value a client could choose beyond a valid address."""
    client = scope.get("client")
    if client and is_ip_address(client[0]):
        return client[0]
    return UNKNOWN


def client_address(scope: Scope) -> str:
    """``host:port`` for log lines: the validated host, so at most ~51 characters."""
    client = scope.get("client")
    if not client:
        return UNKNOWN
    return f"{client_host(scope)}:{client[1]}"


def loggable(value: str) -> str:
    """A client-supplied value cut to at most 200 characters for a log line."""
    if len(value) <= LOGGED_CHARACTERS:
        return value
    return value[: LOGGED_CHARACTERS - 1] + "…"


class TrustedProxies:
    """``FORWARDED_ALLOW_IPS`` as uvicorn reads it: addresses, networks, or ``*``."""

    def __init__(self, value: str) -> None:
        entries = [entry.strip() for entry in value.split(",") if entry.strip()]
        self.everyone = "*" in entries
        self._addresses: set[str] = set()
        self._networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
        for entry in entries:
            if entry == "*":
                continue
            try:
                if "/" in entry:
                    self._networks.append(ipaddress.ip_network(entry, strict=False))
                else:
                    self._addresses.add(str(ipaddress.ip_address(entry)))
            except ValueError:
                self._addresses.add(entry)  # as uvicorn: compared as it is written
        # Peers are real addresses (a bounded set in practice); cache network lookups.
        self._in_networks = lru_cache(maxsize=4096)(self._in_any_network)

    def __contains__(self, host: str) -> bool:
        if self.everyone or host in self._addresses:
            return True
        return bool(self._networks) and is_ip_address(host) and self._in_networks(host)

    def _in_any_network(self, host: str) -> bool:
        address = ipaddress.ip_address(host)
        return any(address in network for network in self._networks)


def forwarded_client(values: list[bytes], trusted: TrustedProxies) -> str | None:
    """The client a chain of trusted proxies names in ``X-Forwarded-For``: the
    right-most entry that is not a trusted proxy (each proxy appends the address
    it saw). None when that entry is not a valid IP address."""
    entries = [entry.strip() for entry in b",".join(values).decode("latin-1").split(",")]
    if not trusted.everyone:
        for entry in reversed(entries):
            host = without_port(entry)
            if host is None:
                return None
            if host not in trusted:
                return host
    return without_port(entries[0])  # every hop trusted: the first is the client


def without_port(entry: str) -> str | None:
    """``1.2.3.4``, ``1.2.3.4:56``, ``::1`` or ``[::1]:56`` -> the address; else None."""
    if entry.startswith("["):
        host, _, rest = entry[1:].partition("]")
        if rest and not (rest[:1] == ":" and rest[1:].isdigit()):
            return None
    elif entry.count(":") == 1:
        host, _, port = entry.partition(":")
        if not port.isdigit():
            return None
    else:
        host = entry
    return host if is_ip_address(host) else None


class ForwardedClients:
    """uvicorn's proxy-headers middleware, validating: behind a trusted proxy, the
    client is the address ``X-Forwarded-For`` names if it is a valid IP address,
    else the peer; the scheme comes from ``X-Forwarded-Proto``."""

    def __init__(self, app: ASGIApp, trusted: str | None = None) -> None:
        self.app = app
        if trusted is None:
            trusted = os.environ.get("FORWARDED_ALLOW_IPS", DEFAULT_TRUSTED)
        self.trusted = TrustedProxies(trusted)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        client = scope.get("client")
        if scope["type"] != "lifespan" and client and client[0] in self.trusted:
            forwarded_for = []
            for name, value in scope["headers"]:
                if name == b"x-forwarded-for":
                    forwarded_for.append(value)
                elif name == b"x-forwarded-proto":
                    proto = value.decode("latin-1").strip().lower()
                    if proto in {"http", "https", "ws", "wss"}:
                        websocket = scope["type"] == "websocket"
                        scope["scheme"] = proto.replace("http", "ws") if websocket else proto
            host = forwarded_client(forwarded_for, self.trusted) if forwarded_for else None
            if host is not None:
                scope["client"] = (host, 0)
        await self.app(scope, receive, send)
