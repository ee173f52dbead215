"""An identity provider's signing keys (JWKS), fetched off the event loop and cached.

- The keys come from ``WS_JWKS_URL``, or from the ``jwks_uri`` of the issuer's
  OpenID discovery document (``<issuer>/.well-known/openid-configuration``).
- Downloads run in a worker thread, one at a time, under a total deadline
  (connect, headers and body together): at the deadline the socket is shut, so a
  provider that never answers, or drips a byte at a time, cannot hold a thread.
  At most ``MAX_BYTES``; redirects only within the same origin; ``https://``
  except for loopback hosts. Every failed download is one WARNING line.
- Keys are cached for ``cache_seconds``, then refreshed in the background while
  the cached ones keep working. A token that no cached key verifies (a rotation,
  with or without ``kid``) may ask for a refetch: at most one per
  ``refetch_seconds``, shared by every handshake waiting for it, so a flood of
  garbage tokens costs the provider one request per interval.
- If the provider is unreachable, the last good keys stay in use; with none at
  all, a handshake cannot be checked (``KeysUnavailable``: 503, so clients retry).
"""

import asyncio
import contextlib
import http.client
import ipaddress
import json
import logging
import socket
import ssl
import time
import urllib.request
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin, urlsplit

import jwt

logger = logging.getLogger(__name__)

# A handshake (or the start-up) waits at most this long for a download under way;
# the download itself may take up to its deadline, and later handshakes use it.
WAIT_SECONDS = 2.0
MAX_BYTES = 1024 * 1024
MAX_REDIRECTS = 3
DISCOVERY_PATH = "/.well-known/openid-configuration"


class KeysUnavailable(Exception):
    """No keys to check this token with (none fetched yet, or the download is too slow)."""


class DownloadFailed(Exception):
    """Why a document could not be fetched, in words for the WARNING line."""


class DiscoveryInvalid(DownloadFailed):
    """The discovery document arrived but cannot be used: a configuration error."""


def is_loopback(host: str | None) -> bool:
    if host is None:
        return False
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def url_problem(url: str) -> str | None:
    """Why this URL may not be fetched, or None: https, or http to a loopback host only."""
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return None
    if parts.scheme == "http" and is_loopback(parts.hostname):
        return None
    if parts.scheme == "http" and parts.hostname:
        return f"{url!r} must be https:// (http:// only for localhost / 127.0.0.1 / ::1)"
    return f"{url!r} is not an https:// URL"


def discovery_url(issuer: str) -> str:
    return issuer.rstrip("/") + DISCOVERY_PATH


def origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    port = parts.port or {"http": 80, "https": 443}.get(parts.scheme)
    return parts.scheme, (parts.hostname or "").lower(), port


class Download:
    """One GET of a JSON document, run in a worker thread; ``abort()`` ends it from any thread."""

    def __init__(self, url: str, timeout: float) -> None:
        self.url = url
        self._timeout = timeout
        self._connection: http.client.HTTPConnection | None = None
        self._aborted = False

    def run(self) -> Any:
        url = self.url
        for _ in range(MAX_REDIRECTS + 1):
            try:
                response = self._connect(url)
                if response.status in {301, 302, 303, 307, 308}:
                    target = urljoin(url, response.getheader("location") or "")
                    if origin(target) != origin(url):
                        raise DownloadFailed(f"redirected to another origin ({target})")
                    url = target
                    continue
                if response.status != 200:
                    raise DownloadFailed(f"HTTP {response.status}")
                return json.loads(self._read(response))
            finally:
                if self._connection is not None:
                    self._connection.close()
        raise DownloadFailed(f"more than {MAX_REDIRECTS} redirects")

    def abort(self) -> None:
        """Shut the socket: a read blocked in the worker thread returns at once."""
        self._aborted = True
        connection = self._connection
        if connection is not None and connection.sock is not None:
            # The plain socket's shutdown: an SSL socket's own would also
            # tear down its TLS state under the thread still reading it.
            with contextlib.suppress(OSError):
                socket.socket.shutdown(connection.sock, socket.SHUT_RDWR)

    def _connect(self, url: str) -> http.client.HTTPResponse:
        parts = urlsplit(url)
        host, port = parts.hostname or "", parts.port
        connection: http.client.HTTPConnection
        if parts.scheme == "https":
            proxy = urllib.request.getproxies().get("https")
            context = ssl.create_default_context()
            if proxy and not urllib.request.proxy_bypass(host):
                proxied = urlsplit(proxy)
                connection = http.client.HTTPSConnection(
                    proxied.hostname or "", proxied.port, timeout=self._timeout, context=context
                )
                connection.set_tunnel(host, port)
            else:
                connection = http.client.HTTPSConnection(
                    host, port, timeout=self._timeout, context=context
                )
        else:  # http: loopback only (url_problem), never through a proxy
            connection = http.client.HTTPConnection(host, port, timeout=self._timeout)
        self._connection = connection
        connection.connect()
        if self._aborted:
            connection.close()
            raise DownloadFailed("aborted")
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        connection.request("GET", path, headers={"accept": "application/json"})
        return connection.getresponse()

    @staticmethod
    def _read(response: http.client.HTTPResponse) -> bytes:
        length = response.getheader("content-length")
        if length is not None and length.isdigit() and int(length) > MAX_BYTES:
            raise DownloadFailed(f"larger than {MAX_BYTES // 1024} KB ({length} bytes)")
        body = b""
        while chunk := response.read(64 * 1024):
            body += chunk
            if len(body) > MAX_BYTES:
                raise DownloadFailed(f"larger than {MAX_BYTES // 1024} KB")
        return body


async def fetch_json(url: str, timeout: float) -> Any:
    """The JSON document at ``url``, or DownloadFailed within ``timeout`` seconds, all told."""
    download = Download(url, timeout)
    try:
        return await asyncio.wait_for(asyncio.to_thread(download.run), timeout)
    except (TimeoutError, asyncio.TimeoutError):
        raise DownloadFailed(f"no complete answer within {timeout:g} s") from None
    except DownloadFailed:
        raise
    except Exception as exc:  # whatever the network or the provider does: one WARNING
        raise DownloadFailed(f"{type(exc).__name__}: {exc}") from None
    finally:
        download.abort()  # on a timeout or a cancellation, frees the worker thread


def jwks_uri(issuer: str, document: Any) -> str:
    """The ``jwks_uri`` of the issuer's discovery document, or DiscoveryInvalid."""
    if not isinstance(document, dict):
        problem = "is not a JSON object"
    elif document.get("issuer") != issuer:
        problem = f"names the issuer {document.get('issuer')!r}: set exactly that"
    elif not isinstance(document.get("jwks_uri"), str):
        problem = "has no jwks_uri: set WS_JWKS_URL instead"
    else:
        problem = url_problem(document["jwks_uri"])
        if problem is None:
            return str(document["jwks_uri"])
        problem = f"gives the jwks_uri {problem}"
    raise DiscoveryInvalid(f"the discovery document of {issuer} {problem}")


async def discovery_problem(issuer: str, timeout: float) -> str | None:
    """Why the issuer's discovery document cannot be used, if it arrives within ``timeout``.

    None when it can, and when it does not arrive: an unreachable provider is
    not a bad setting (the app starts; GET /ready names the keys until it is back).
    """
    try:
        jwks_uri(issuer, await fetch_json(discovery_url(issuer), timeout))
    except DiscoveryInvalid as invalid:
        return str(invalid)
    except DownloadFailed:
        pass  # the workers' own fetch logs it, and retries
    return None


class PublicKey:
    """One signing key of the provider; ``retired`` once a later JWKS no longer has it."""

    __slots__ = ("algorithm", "jwk", "key", "kid", "retired")

    def __init__(self, jwk: dict[str, Any], parsed: jwt.PyJWK) -> None:
        self.jwk = jwk
        self.kid = parsed.key_id
        self.algorithm = parsed.algorithm_name
        self.key = parsed.key
        self.retired = False


def usable_keys(document: Any, algorithms: frozenset[str]) -> list[PublicKey]:
    """Public signing keys for the pinned algorithms; anything else is ignored."""
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise DownloadFailed('not a JWKS: no "keys" list')
    keys = []
    for data in document["keys"]:
        # Encryption keys, and private key material that has no business in a JWKS.
        if not isinstance(data, dict) or data.get("use", "sig") != "sig" or "d" in data:
            continue
        try:
            parsed = jwt.PyJWK(data)
        except (jwt.PyJWTError, ValueError, TypeError):
            continue  # a key type or algorithm PyJWT does not know, or broken numbers
        if parsed.algorithm_name in algorithms:
            keys.append(PublicKey(data, parsed))
    if not keys:
        raise DownloadFailed(f"no signing key for {', '.join(sorted(algorithms))}")
    return keys


@dataclass(frozen=True)
class Source:
    """Where the keys come from: a JWKS URL, or an issuer to discover it from."""

    jwks_url: str | None = None
    issuer: str | None = None  # discovery: <issuer>/.well-known/openid-configuration

    @property
    def setting(self) -> str:
        return "WS_JWKS_URL" if self.jwks_url else "WS_JWT_ISSUER"


class JWKSCache:
    def __init__(
        self,
        source: Source,
        algorithms: frozenset[str],
        cache_seconds: float,
        refetch_seconds: float,
        timeout_seconds: float,
    ) -> None:
        self.source = source
        self._algorithms = algorithms
        self._cache_seconds = cache_seconds
        self._refetch_seconds = refetch_seconds
        self._timeout = timeout_seconds
        self._jwks_url = source.jwks_url  # with discovery: found by the first fetch
        self._discovered_at = float("-inf")
        self.keys: list[PublicKey] = []
        self._fetched_at = float("-inf")  # monotonic time of the last good download
        self._attempted_at = float("-inf")  # ... of the last attempt, good or not
        self._inflight: asyncio.Task[None] | None = None
        self._closed = False
        self.configuration_error: str | None = None  # a discovery document we cannot use
        self._starting = False  # start-up is waiting: it stops the app on a configuration error

    @property
    def url(self) -> str:
        return self._jwks_url or discovery_url(self.source.issuer or "")

    async def prefetch(self) -> None:
        """At start-up: fetch the keys; a slow provider delays start-up by WAIT_SECONDS at most."""
        self._start_fetch()
        self._starting = True
        try:
            await self.wait()
        finally:
            self._starting = False

    async def close(self) -> None:
        """Stop the download under way, and start no other."""
        self._closed = True
        task, self._inflight = self._inflight, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    def refresh_if_stale(self) -> None:
        """Refresh keys older than ``cache_seconds`` in the background."""
        if time.monotonic() - self._fetched_at > self._cache_seconds:
            self._start_fetch()

    async def refetch(self) -> bool:
        """After a token no cached key verifies: fetch again unless the interval forbids it.

        True when the keys changed meanwhile (worth checking the token again).
        Raises KeysUnavailable when the download under way is not done in time.
        """
        before = self.keys
        self._start_fetch()
        if not await self.wait():
            raise KeysUnavailable
        return self.keys is not before

    async def wait(self) -> bool:
        """Wait for the download under way, at most WAIT_SECONDS; True if it is done.

        ``asyncio.wait`` never cancels it: a handshake that gives up (or leaves)
        does not stop the download that the next handshakes will use.
        """
        if self._inflight is None:
            return True
        done, _ = await asyncio.wait({self._inflight}, timeout=WAIT_SECONDS)
        return bool(done)

    def _start_fetch(self) -> None:
        """Start a download unless one is under way or the last began too recently."""
        now = time.monotonic()
        if self._closed or self._inflight is not None:
            return
        if now - self._attempted_at >= self._refetch_seconds:
            self._attempted_at = now
            self._inflight = asyncio.create_task(self._fetch())

    async def _fetch(self) -> None:
        url = self.url
        try:
            if self.source.issuer is not None and (
                self._jwks_url is None
                or time.monotonic() - self._discovered_at > self._cache_seconds
            ):
                url = discovery_url(self.source.issuer)
                self._jwks_url = jwks_uri(self.source.issuer, await fetch_json(url, self._timeout))
                self._discovered_at = time.monotonic()
                url = self._jwks_url
            keys = usable_keys(await fetch_json(url, self._timeout), self._algorithms)
        except DownloadFailed as failure:
            self._discovered_at = float("-inf")  # with discovery: look jwks_uri up again
            if isinstance(failure, DiscoveryInvalid):
                self.configuration_error = str(failure)
                if self._starting:
                    return  # the start-up stops with this line instead
            logger.warning(
                "could not fetch %s from %s (%s); %s",
                "the JWKS" if url == self._jwks_url else "the OpenID configuration",
                url,
                failure,
                "keeping the last keys"
                if self.keys
                else "handshakes are refused with 503 auth_unavailable until it succeeds",
            )
        else:
            self._replace(keys)
            self._fetched_at = time.monotonic()
            self.configuration_error = None
        finally:
            # The interval counts from the end too: a provider that takes the whole
            # deadline to fail is not asked again the moment it has failed.
            self._attempted_at = time.monotonic()
            self._inflight = None

    def _replace(self, keys: list[PublicKey]) -> None:
        """Take the new keys, keeping the objects of those that did not change.

        A remembered token stays valid only while the key that verified it is
        not ``retired``, so unchanged keys must stay the same objects.
        """
        old = {json.dumps(key.jwk, sort_keys=True): key for key in self.keys}
        kept = [old.pop(json.dumps(key.jwk, sort_keys=True), key) for key in keys]
        if not old and len(kept) == len(self.keys):
            return  # the same keys: nothing changed
        for key in old.values():
            key.retired = True
        logger.info(
            "JWKS from %s: signing keys %s", self._jwks_url, sorted(str(k.kid) for k in kept)
        )
        self.keys = kept
