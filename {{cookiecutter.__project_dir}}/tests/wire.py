"""A raw HTTP/1.1 WebSocket handshake over a plain socket, to read exactly what arrives."""

import base64
import os
import socket
from dataclasses import dataclass


@dataclass
class RawResponse:
    status_line: str
    headers: dict[str, str]
    body: bytes


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


def exchange(port: int, request: bytes, timeout: float = 5.0) -> RawResponse:
    """Send ``request`` and read the response head, plus the body when one is announced."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(request)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        headers = {}
        for line in header_lines:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        if status_line.split(" ")[1:2] != ["101"]:
            body += read_rest(sock)
    if headers.get("transfer-encoding") == "chunked":
        body = dechunk(body)
    return RawResponse(status_line, headers, body)


def read_rest(sock: socket.socket) -> bytes:
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    return data


def dechunk(data: bytes) -> bytes:
    body = b""
    while data:
        size_line, _, data = data.partition(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            break
        body, data = body + data[:size], data[size + 2 :]
    return body
