"""Client addresses: only a valid IP address is ever a client's address, and no
client-supplied value reaches a log line longer than 200 characters."""

import logging

import pytest
from starlette.types import Message, Scope

from {{ cookiecutter.package_name }}.clients import (
    ForwardedClients,
    TrustedProxies,
    client_address,
    client_host,
    forwarded_client,
    is_ip_address,
    loggable,
)
from {{ cookiecutter.package_name }}.logs import CutLongValues


@pytest.mark.parametrize(
    "host", ["127.0.0.1", "203.0.113.9", "::1", "2001:db8::7", "::ffff:192.0.2.1"]
)
def test_addresses_are_valid(host: str) -> None:
    assert is_ip_address(host)
    assert client_host({"client": (host, 1)}) == host


@pytest.mark.parametrize(
    "host",
    ["", "unknown", "testclient", "1.2.3", "1.2.3.4.5", "01.2.3.4", " 1.2.3.4", "1.2.3.4\x00",
     "fe80::1%eth0", "[::1]", "::g", "é.1.1.1", "x" * 8000],
)  # fmt: skip
def test_anything_else_is_unknown(host: str) -> None:
    assert not is_ip_address(host)
    assert client_host({"client": (host, 1)}) == "unknown"
    assert client_address({"client": (host, 1)}) == "unknown:1"


def test_no_client_at_all() -> None:
    assert client_host({}) == "unknown"
    assert client_address({"client": None}) == "unknown"


def test_loggable_cuts_to_200_characters() -> None:
    assert loggable("short") == "short"
    assert loggable("x" * 200) == "x" * 200
    assert len(loggable("x" * 10_000)) == 200


TRUSTED = TrustedProxies("127.0.0.1, 10.0.0.0/8, ::1")


@pytest.mark.parametrize(
    ("header", "client"),
    [
        (b"203.0.113.9", "203.0.113.9"),
        (b"203.0.113.9:4711", "203.0.113.9"),
        (b"[2001:db8::7]:4711", "2001:db8::7"),
        (b"2001:db8::7", "2001:db8::7"),
        (b"198.51.100.1, 203.0.113.9, 10.1.2.3", "203.0.113.9"),  # right-most untrusted
        (b"10.0.0.1, 127.0.0.1", "10.0.0.1"),  # every hop trusted: the first
        (b"junk", None),
        (b"junk, 203.0.113.9", "203.0.113.9"),  # what the trusted proxy saw
        (b"203.0.113.9, junk", None),  # a proxy we trust would not write this
        (b"x" * 8000, None),
        (b"", None),
        (b"203.0.113.9:port", None),
    ],
)
def test_forwarded_for(header: bytes, client: str | None) -> None:
    assert forwarded_client([header], TRUSTED) == client


def test_several_forwarded_for_headers_are_one_list() -> None:
    assert forwarded_client([b"203.0.113.9", b"10.0.0.2"], TRUSTED) == "203.0.113.9"


def test_everyone_trusted_takes_the_first_valid_entry() -> None:
    everyone = TrustedProxies("*")
    assert forwarded_client([b"203.0.113.9, 198.51.100.1"], everyone) == "203.0.113.9"
    assert forwarded_client([b"junk, 198.51.100.1"], everyone) is None


async def seen_by_the_app(scope: Scope, trusted: str = "127.0.0.1") -> Scope:
    seen: list[Scope] = []

    async def app(scope: Scope, receive: object, send: object) -> None:
        seen.append(scope)

    async def receive() -> Message:
        return {"type": "websocket.connect"}

    async def send(message: Message) -> None: ...

    await ForwardedClients(app, trusted)(scope, receive, send)
    return seen[0]


def scope_from(peer: str, *headers: tuple[bytes, bytes]) -> Scope:
    return {"type": "websocket", "client": (peer, 5000), "headers": list(headers), "scheme": "ws"}


async def test_a_trusted_proxy_names_a_valid_client() -> None:
    forwarded = (b"x-forwarded-for", b"203.0.113.9"), (b"x-forwarded-proto", b"https")
    scope = await seen_by_the_app(scope_from("127.0.0.1", *forwarded))
    assert scope["client"] == ("203.0.113.9", 0)
    assert scope["scheme"] == "wss"


async def test_junk_from_a_trusted_proxy_leaves_the_peer() -> None:
    scope = await seen_by_the_app(scope_from("127.0.0.1", (b"x-forwarded-for", b"x" * 8000)))
    assert scope["client"] == ("127.0.0.1", 5000)


async def test_an_untrusted_peer_names_nobody() -> None:
    scope = await seen_by_the_app(scope_from("192.0.2.1", (b"x-forwarded-for", b"203.0.113.9")))
    assert scope["client"] == ("192.0.2.1", 5000)


def test_log_records_are_cut() -> None:
    arguments = ("p" * 5000, "ok", 3)
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "%s %s %d", arguments, None)
    assert CutLongValues().filter(record)
    assert len(record.getMessage()) < 210
