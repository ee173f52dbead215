"""An identity provider's key endpoints, served over real HTTP on 127.0.0.1 by the tests.

``JWKSServer`` runs ``http.server`` in a thread. It binds port 0 itself and keeps
that socket for its whole life (no port is ever picked, freed and taken again):
``stop()`` makes it reset every connection, ``start()`` serves again on the same
port. It serves the JWKS at ``url`` and an OpenID discovery document at
``issuer + /.well-known/openid-configuration``, counts the requests for each,
and can turn hostile: answer an error status or any bytes, never answer, drip
its answer a byte at a time, send 50 MB, or redirect elsewhere. ``SigningKey``
holds a key pair generated at test time and mints tokens signed with it.
"""

import contextlib
import functools
import json
import socket
import struct
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa

JWKS_PATH = "/.well-known/jwks.json"
DISCOVERY_PATH = "/.well-known/openid-configuration"
# How a hostile server answers (``JWKSServer.behaviour``).
NORMAL, SILENT, DRIP, HUGE = "normal", "silent", "drip", "huge"


@dataclass(frozen=True)
class SigningKey:
    """A provider's private key; ``jwk`` is what its JWKS publishes."""

    algorithm: str  # "RS256" or "ES256"
    private_key: Any
    kid: str | None = field(default_factory=lambda: uuid.uuid4().hex)  # None: tokens carry none

    @property
    def jwk(self) -> dict[str, Any]:
        public = jwt.get_algorithm_by_name(self.algorithm).to_jwk(
            self.private_key.public_key(), as_dict=True
        )
        named = {"kid": self.kid} if self.kid is not None else {}
        return {**public, **named, "alg": self.algorithm, "use": "sig"}

    def token(
        self,
        sub: str = "alice",
        ttl: float = 3600,
        kid: str = "",
        headers: dict[str, Any] | None = None,
        **claims: Any,
    ) -> str:
        """A token signed with this key, under its ``kid`` unless another is given."""
        payload = {"sub": sub, "exp": int(time.time() + ttl), **claims}
        named = kid or self.kid
        header = {**({"kid": named} if named else {}), **(headers or {})}
        return jwt.encode(payload, self.private_key, self.algorithm, headers=header)


def new_key(algorithm: str, kid: bool = True) -> SigningKey:
    private: Any = (
        rsa.generate_private_key(public_exponent=65537, key_size=2048)
        if algorithm == "RS256"
        else ec.generate_private_key(ec.SECP256R1())
    )
    return SigningKey(algorithm, private) if kid else SigningKey(algorithm, private, None)


@functools.cache
def rsa_key() -> SigningKey:
    """One RSA key for the session: generating them is the slow part."""
    return new_key("RS256")


@functools.cache
def ec_key() -> SigningKey:
    return new_key("ES256")


class JWKSServer:
    """``with JWKSServer([key, ...]) as provider: provider.url``."""

    def __init__(self, keys: list[SigningKey] | None = None) -> None:
        self.document: dict[str, Any] = {"keys": [key.jwk for key in keys or []]}
        self.raw: bytes | None = None  # served instead of the document when set
        self.status = 200
        self.delay = 0.0  # seconds the handler sleeps before answering
        self.behaviour = NORMAL
        self.location = ""  # with status 3xx: where to
        self.discovery: dict[str, Any] | None = None  # None: the one this server would give
        self.requests = 0  # of the JWKS (and connections reset while down)
        self.discovery_requests = 0
        self.down = False
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self._server = self._serve()
        self.port: int = self._server.server_address[1]

    @property
    def issuer(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return self.issuer + JWKS_PATH

    def publish(self, *keys: SigningKey, extra: tuple[dict[str, Any], ...] = ()) -> None:
        """Serve these keys (a rotation), plus raw JWK entries."""
        self.document = {"keys": [key.jwk for key in keys] + list(extra)}
        self.raw = None

    def stop(self) -> None:
        """Go down: every connection is reset until ``start()``; the port stays ours."""
        self.down = True

    def start(self) -> None:
        self.down = False

    def wait_for_requests(self, count: int, timeout: float = 5.0) -> None:
        deadline = time.monotonic() + timeout
        while self.requests < count and time.monotonic() < deadline:
            time.sleep(0.01)

    def _body(self, path: str) -> bytes:
        if path == DISCOVERY_PATH:
            document = self.discovery or {"issuer": self.issuer, "jwks_uri": self.url}
            return json.dumps(document).encode()
        return self.raw if self.raw is not None else json.dumps(self.document).encode()

    def _serve(self) -> ThreadingHTTPServer:
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def handle(self) -> None:
                if provider.down:  # reset, as a refused connection would fail
                    with provider._lock:
                        provider.requests += 1
                    linger = struct.pack("ii", 1, 0)
                    self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger)
                    return
                with contextlib.suppress(OSError):  # the client gave up (deadline, size)
                    super().handle()

            def do_GET(self) -> None:
                path = self.path.split("?")[0]
                hostile = path == JWKS_PATH  # other paths answer plainly (same-origin moves)
                with provider._lock:
                    if path == DISCOVERY_PATH:
                        provider.discovery_requests += 1
                    else:
                        provider.requests += 1
                provider._closing.wait(provider.delay)
                behaviour = provider.behaviour if hostile else NORMAL
                if behaviour == SILENT:
                    provider._closing.wait()
                    return
                if behaviour == DRIP:
                    self._drip(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\r\n")
                    return
                self.send_response(provider.status if hostile else 200)
                self.send_header("content-type", "application/json")
                if hostile and provider.location:
                    self.send_header("location", provider.location)
                if behaviour == HUGE:
                    self.send_header("transfer-encoding", "chunked")  # no length to refuse on
                    self.end_headers()
                    self._flood()
                    return
                body = provider._body(path)
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _drip(self, head: bytes) -> None:
                """A byte every 0.2 s, for ever: each read succeeds, the answer never ends."""
                for byte in head + b'{"keys": [' + b" " * 10**6:
                    if provider._closing.wait(0.2):
                        return
                    self.wfile.write(bytes([byte]))
                    self.wfile.flush()

            def _flood(self) -> None:
                chunk = b"[" * 65536
                for _ in range(50 * 16):  # 50 MB
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                self.wfile.write(b"0\r\n\r\n")

            def log_message(self, format: str, *args: Any) -> None:
                pass  # quiet: the tests count requests instead

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)  # port 0: the kernel picks
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
        return server

    def close(self) -> None:
        self._closing.set()  # ends silent and dripping answers
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> "JWKSServer":
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()
