"""A minimal asyncio WebSocket client speaking raw bytes: cheap enough to load a server.

A full client library per connection would cost more CPU than the server under
test; this one writes a prepared handshake, reads the answer and, after an
accept, the frames up to the close frame.
"""

import asyncio
import os
import struct
import time
from collections.abc import Iterable
from dataclasses import dataclass

from wire import handshake_request  # tests/wire.py: callers put tests/ on sys.path


@dataclass
class Outcome:
    status: int  # HTTP status of the handshake response: 101 when accepted, 0 on error
    close_code: int | None  # close code that followed an accept
    seconds: float  # from connect to the final byte
    error: str = ""

    @property
    def refusal(self) -> str:
        """What the client was told: "HTTP 401", or "close 4401" after an accept."""
        return f"close {self.close_code}" if self.status == 101 else f"HTTP {self.status}"


def client_frame(opcode: int, payload: bytes) -> bytes:
    """A masked client frame (RFC 6455 requires clients to mask)."""
    mask = os.urandom(4)
    size = len(payload)
    if size < 126:
        header = struct.pack("!BB", 0x80 | opcode, 0x80 | size)
    elif size < 65536:
        header = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, size)
    else:
        header = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, size)
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return header + mask + masked


async def read_frame(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    """(opcode, payload) of the next unmasked server frame."""
    first, second = await reader.readexactly(2)
    size = second & 0x7F
    if size == 126:
        (size,) = struct.unpack("!H", await reader.readexactly(2))
    elif size == 127:
        (size,) = struct.unpack("!Q", await reader.readexactly(8))
    return first & 0x0F, await reader.readexactly(size)


async def read_until_close(reader: asyncio.StreamReader) -> int:
    while True:
        opcode, payload = await read_frame(reader)
        if opcode == 0x8:
            return struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else 1005


async def handshake_once(
    host: str, port: int, path: str, headers: Iterable[tuple[str, str]] = ()
) -> Outcome:
    """Open, handshake, read the refusal (HTTP body or message + close frame), close."""
    started = time.perf_counter()
    writer = None
    try:
        reader, writer = await asyncio.open_connection(host, port)
        writer.write(handshake_request(path, dict(headers), port))
        head = await reader.readuntil(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        close_code = None
        if status == 101:
            close_code = await read_until_close(reader)
            writer.write(client_frame(0x8, struct.pack("!H", close_code)))
        await reader.read()  # until the server closes: the body, or the end of the close handshake
        return Outcome(status, close_code, time.perf_counter() - started)
    except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
        return Outcome(0, None, time.perf_counter() - started, repr(exc))
    finally:
        if writer is not None:
            writer.close()


async def handshake_many(
    host: str,
    port: int,
    path: str,
    headers: Iterable[tuple[str, str]],
    total: int,
    concurrency: int,
) -> list[Outcome]:
    """``total`` handshakes, at most ``concurrency`` at a time."""
    headers = list(headers)
    outcomes: list[Outcome] = []
    remaining = iter(range(total))

    async def worker() -> None:
        for _ in remaining:
            outcomes.append(await handshake_once(host, port, path, headers))

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return outcomes


async def echo_round_trips(
    host: str, port: int, path: str, headers: Iterable[tuple[str, str]], count: int
) -> float:
    """Open one admitted WebSocket, do ``count`` echo round trips; return the seconds taken."""
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(handshake_request(path, dict(headers), port))
        head = await reader.readuntil(b"\r\n\r\n")
        if int(head.split(b" ", 2)[1]) != 101:
            raise RuntimeError(f"echo endpoint refused the client: {head!r}")
        frame = client_frame(0x1, b"ping")
        started = time.perf_counter()
        for _ in range(count):
            writer.write(frame)
            opcode, payload = await read_frame(reader)
            if payload != b"ping":
                raise RuntimeError(f"unexpected frame {opcode}: {payload!r}")
        return time.perf_counter() - started
    finally:
        writer.write(client_frame(0x8, struct.pack("!H", 1000)))
        writer.close()


async def http_get_many(host: str, port: int, path: str, total: int, concurrency: int) -> int:
    """``total`` keep-alive GETs over ``concurrency`` connections; returns how many got 200."""
    request = f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode()
    per_connection = [total // concurrency + (i < total % concurrency) for i in range(concurrency)]

    async def connection(count: int) -> int:
        reader, writer = await asyncio.open_connection(host, port)
        ok = 0
        try:
            for _ in range(count):
                writer.write(request)
                head = await reader.readuntil(b"\r\n\r\n")
                length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
                await reader.readexactly(length)
                ok += head.startswith(b"HTTP/1.1 200")
        finally:
            writer.close()
        return ok

    return sum(await asyncio.gather(*(connection(n) for n in per_connection)))
