"""A raw HTTP/1.1 WebSocket handshake over a plain socket, to read exactly what arrives."""

import base64
import io
import os
import socket
import struct
from dataclasses import dataclass, field


@dataclass
class RawResponse:
    status_line: str
    headers: dict[str, str]
    body: bytes  # the HTTP body of a refusal
    frames: list[tuple[int, bytes]] = field(default_factory=list)  # (opcode, payload) after a 101

    @property
    def status(self) -> int:
        return int(self.status_line.split(" ")[1])


def handshake_request(path: str, headers: dict[str, str] | None = None, port: int = 0) -> bytes:
    key = base64.b64encode(os.urandom(16)).decode()
    lines = [
        f"GET {path} HTTP/1.1",
        f"Host: 127.0.0.1:{port}",
        "Upgrade: websocket",
        "Connection: Upgrade",
        f"Sec-WebSocket-Key: {key}",
        "Sec-WebSocket-Version: 13",
        *(f"{name}: {value}" for name, value in (headers or {}).items()),
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def exchange(port: int, request: bytes, until_close_frame: bool = False) -> RawResponse:
    """Send ``request``, read the response; after a 101, optionally the frames up to a close."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(request)
        stream = sock.makefile("rb")
        status_line = stream.readline().decode("latin-1").rstrip("\r\n")
        headers = {}
        while line := stream.readline().decode("latin-1").rstrip("\r\n"):
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        response = RawResponse(status_line, headers, b"")
        if response.status != 101:
            response.body = read_body(stream, headers)
        elif until_close_frame:
            while not response.frames or response.frames[-1][0] != 0x8:
                response.frames.append(read_frame(stream))
        return response


def read_until_closed(stream: io.BufferedReader) -> bytes:
    data = b""
    try:
        while chunk := stream.read1(65536):
            data += chunk
    except ConnectionResetError:
        pass  # the server answered, then reset the rest of a request it would not read
    return data


def read_frame(stream: io.BufferedReader) -> tuple[int, bytes]:
    """(opcode, payload) of one unmasked server frame."""
    first, second = stream.read(2)
    size = second & 0x7F
    if size == 126:
        (size,) = struct.unpack("!H", stream.read(2))
    elif size == 127:
        (size,) = struct.unpack("!Q", stream.read(8))
    return first & 0x0F, stream.read(size)


def read_body(stream: io.BufferedReader, headers: dict[str, str]) -> bytes:
    if "content-length" in headers:
        return stream.read(int(headers["content-length"]))
    if headers.get("transfer-encoding") != "chunked":
        return read_until_closed(stream)
    body = b""
    while size := int(stream.readline().split(b";")[0], 16):
        body += stream.read(size)
        stream.readline()  # the CRLF after each chunk
    return body
