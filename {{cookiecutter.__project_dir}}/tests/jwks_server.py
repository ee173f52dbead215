"""An identity provider's JWKS endpoint, served over real HTTP on 127.0.0.1 by the tests.

``JWKSServer`` runs ``http.server`` in a thread on a free port and counts the
requests it answers. A test can rotate its keys, make it slow, make it answer
an error status, or take it down (connection refused) and bring it back on the
same port. ``SigningKey`` holds a key pair generated at test time and mints
tokens signed with it.
"""

import functools
import json
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from live_server import free_port


@dataclass(frozen=True)
class SigningKey:
    """A provider's private key; ``jwk`` is what its JWKS publishes."""

    algorithm: str  # "RS256" or "ES256"
    private_key: Any
    kid: str = field(default_factory=lambda: uuid.uuid4().hex)

    @property
    def jwk(self) -> dict[str, Any]:
        public = jwt.get_algorithm_by_name(self.algorithm).to_jwk(
            self.private_key.public_key(), as_dict=True
        )
        return {**public, "kid": self.kid, "alg": self.algorithm, "use": "sig"}

    def token(self, sub: str = "alice", ttl: float = 3600, kid: str = "", **claims: Any) -> str:
        """A token signed with this key, under its ``kid`` unless another is given."""
        payload = {"sub": sub, "exp": int(time.time() + ttl), **claims}
        headers = {"kid": kid or self.kid}
        return jwt.encode(payload, self.private_key, self.algorithm, headers=headers)


def new_key(algorithm: str) -> SigningKey:
    if algorithm == "RS256":
        return SigningKey(algorithm, rsa.generate_private_key(public_exponent=65537, key_size=2048))
    return SigningKey(algorithm, ec.generate_private_key(ec.SECP256R1()))


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
        self.port = free_port()
        self.document: dict[str, Any] = {"keys": [key.jwk for key in keys or []]}
        self.raw: bytes | None = None  # served instead of the document when set
        self.status = 200
        self.delay = 0.0  # seconds the handler sleeps before answering
        self.requests = 0
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/.well-known/jwks.json"

    def publish(self, *keys: SigningKey, extra: tuple[dict[str, Any], ...] = ()) -> None:
        """Serve these keys (a rotation), plus raw JWK entries."""
        self.document = {"keys": [key.jwk for key in keys] + list(extra)}
        self.raw = None

    def start(self) -> None:
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                with provider._lock:
                    provider.requests += 1
                time.sleep(provider.delay)
                body = provider.raw
                if body is None:
                    body = json.dumps(provider.document).encode()
                self.send_response(provider.status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass  # quiet: the tests count requests instead

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        """Go down: the port refuses connections until ``start()``."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def wait_for_requests(self, count: int, timeout: float = 5.0) -> None:
        deadline = time.monotonic() + timeout
        while self.requests < count and time.monotonic() < deadline:
            time.sleep(0.01)

    def __enter__(self) -> "JWKSServer":
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
