"""A minimal asyncio WebSocket client speaking raw bytes: cheap enough to load a server.

A full client library per connection would cost more CPU than the server under
test; this one writes a prepared handshake, reads the answer and, after an
accept, the frames up to the close frame.
"""

import asyncio
import base64
import os
import random
import struct
import time
from collections.abc import Coroutine, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

try:  # uvicorn[standard] brings uvloop: a cheaper client leaves more CPU to the server
    from uvloop import run as _run
except ImportError:  # pragma: no cover
    _run = asyncio.run

T = TypeVar("T")
Headers = Iterable[tuple[str, str]]
MESSAGE = b"ping"


def run(work: Coroutine[Any, Any, T]) -> T:
    return _run(work)


@dataclass
class Outcome:
    status: int  # HTTP status of the handshake response: 101 when accepted, 0 on error
    close_code: int | None  # close code that followed an accept
    seconds: float  # from connect to the final byte
    echoed: bool = False  # the message came back before the close
    error: str = ""

    @property
    def result(self) -> str:
        """What the client saw: "HTTP <status>", "close <code>" after an accept, or "echoed"."""
        if self.error:
            return f"error {self.error}"
        if self.status != 101:
            return f"HTTP {self.status}"
        return "echoed" if self.echoed and self.close_code == 1000 else f"close {self.close_code}"


def handshake_request(path: str, headers: dict[str, str], port: int) -> bytes:
    """An RFC 6455 opening handshake with a fresh key."""
    key = base64.b64encode(os.urandom(16)).decode()
    lines = [
        f"GET {path} HTTP/1.1",
        f"Host: 127.0.0.1:{port}",
        "Upgrade: websocket",
        "Connection: Upgrade",
        f"Sec-WebSocket-Key: {key}",
        "Sec-WebSocket-Version: 13",
        *(f"{name}: {value}" for name, value in headers.items()),
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


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


def close_frame(code: int) -> bytes:
    return client_frame(0x8, struct.pack("!H", code))


async def read_frame(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    """(opcode, payload) of the next unmasked server frame."""
    first, second = await reader.readexactly(2)
    size = second & 0x7F
    if size == 126:
        (size,) = struct.unpack("!H", await reader.readexactly(2))
    elif size == 127:
        (size,) = struct.unpack("!Q", await reader.readexactly(8))
    return first & 0x0F, await reader.readexactly(size)


async def read_message(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> tuple[int, bytes]:
    """(opcode, payload) of the next data or close frame. A server ping is answered
    (uvicorn pings a connection every 20 s by default): a connection held for a
    long run is neither dropped for a missing pong nor miscounted by one."""
    while True:
        opcode, payload = await read_frame(reader)
        if opcode == 0x9:
            writer.write(client_frame(0xA, payload))
        elif opcode != 0xA:
            return opcode, payload


def close_code_of(payload: bytes) -> int:
    return struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else 1005


async def read_until_close(reader: asyncio.StreamReader) -> int:
    while True:
        opcode, payload = await read_frame(reader)
        if opcode == 0x8:
            return close_code_of(payload)


async def handshake(
    host: str, port: int, path: str, headers: Headers
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, int]:
    """Connect and send a handshake; (reader, writer, HTTP status of the answer)."""
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(handshake_request(path, dict(headers), port))
    head = await reader.readuntil(b"\r\n\r\n")
    return reader, writer, int(head.split(b" ", 2)[1])


async def session(
    host: str, port: int, path: str, headers: Headers = (), message: bytes | None = None
) -> Outcome:
    """One connection from connect to close.

    Refused before accept: read the HTTP answer. Accepted: send ``message`` (if
    any) and read its echo, then close with 1000; or read the server's message
    and close frame (a refusal after accept) and answer the close.
    """
    started = time.perf_counter()
    writer = None
    try:
        reader, writer, status = await handshake(host, port, path, headers)
        close_code, echoed = None, False
        if status == 101:
            if message is not None:
                writer.write(client_frame(0x1, message))
                opcode, payload = await read_frame(reader)
                if opcode == 0x8:  # refused after accept, before our message was read
                    close_code = close_code_of(payload)
                    writer.write(close_frame(close_code))
                else:
                    echoed = (opcode, payload) == (0x1, message)
                    writer.write(close_frame(1000))
                    close_code = await read_until_close(reader)
            else:
                close_code = await read_until_close(reader)
                writer.write(close_frame(close_code))
        await reader.read()  # until the server closes: the body, or the end of the close handshake
        return Outcome(status, close_code, time.perf_counter() - started, echoed)
    except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError) as exc:
        return Outcome(0, None, time.perf_counter() - started, error=type(exc).__name__)
    finally:
        if writer is not None:
            writer.close()


async def sessions(
    host: str,
    port: int,
    path: str,
    headers: Headers,
    total: int,
    concurrency: int,
    message: bytes | None = None,
) -> list[Outcome]:
    """``total`` sessions, at most ``concurrency`` at a time."""
    headers = list(headers)
    outcomes: list[Outcome] = []
    remaining = iter(range(total))

    async def worker() -> None:
        for _ in remaining:
            outcomes.append(await session(host, port, path, headers, message))

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return outcomes


@dataclass
class Held:
    """Connections opened and kept open, as a server sees long-lived clients."""

    connections: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]]
    failed: list[str]  # what the others got instead of 101
    seconds: float  # from the first connect to the last 101


async def open_many(
    host: str, port: int, path: str, headers: Headers, total: int, concurrency: int
) -> Held:
    """Open ``total`` WebSockets, ``concurrency`` handshakes in flight at a time, and keep them."""
    headers = list(headers)
    held = Held([], [], 0.0)
    gate = asyncio.Semaphore(concurrency)

    async def one() -> None:
        async with gate:
            try:
                reader, writer, status = await handshake(host, port, path, headers)
            except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
                held.failed.append(type(exc).__name__)
                return
        if status == 101:
            held.connections.append((reader, writer))
        else:
            held.failed.append(f"HTTP {status}")
            writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(one() for _ in range(total)))
    held.seconds = time.perf_counter() - started
    return held


async def echo_sample(held: Held, sample: int) -> int:
    """Echo one message on ``sample`` random held connections; how many answered it."""
    answered = 0
    for reader, writer in random.sample(held.connections, min(sample, len(held.connections))):
        writer.write(client_frame(0x1, MESSAGE))
        try:
            answer = await asyncio.wait_for(read_message(reader, writer), 5)
        except (OSError, asyncio.IncompleteReadError, asyncio.TimeoutError):
            continue
        answered += answer == (0x1, MESSAGE)
    return answered


async def close_all(held: Held) -> None:
    """Close every held connection cleanly (close 1000, wait for the server's answer)."""
    gate = asyncio.Semaphore(500)

    async def one(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        async with gate:
            try:
                writer.write(close_frame(1000))
                await asyncio.wait_for(reader.read(), 10)
            except (OSError, asyncio.TimeoutError):
                pass
            finally:
                writer.close()

    await asyncio.gather(*(one(reader, writer) for reader, writer in held.connections))


async def echo_round_trips(held: Held, count: int) -> int:
    """``count`` echo round trips spread over the held connections; how many came back right."""
    frame = client_frame(0x1, MESSAGE)
    connections = len(held.connections)
    per_connection = [count // connections + (i < count % connections) for i in range(connections)]

    async def trips(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> int:
        ok = 0
        for _ in range(n):
            writer.write(frame)
            ok += await read_message(reader, writer) == (0x1, MESSAGE)
        return ok

    pairs = zip(held.connections, per_connection, strict=True)
    return sum(await asyncio.gather(*(trips(reader, writer, n) for (reader, writer), n in pairs)))


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
