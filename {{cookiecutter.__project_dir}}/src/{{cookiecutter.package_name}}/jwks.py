"""An identity provider's signing keys (JWKS), fetched off the event loop and cached.

- Downloads run in a worker thread (``asyncio.to_thread``), one at a time: a slow
  provider never blocks the event loop, and a handshake whose key is cached
  never waits for a download.
- Keys are cached for ``cache_seconds``, then refreshed in the background while
  the cached ones keep working.
- A token with an unknown ``kid`` (the provider rotated its keys) triggers a
  refetch, at most once per ``refetch_seconds``; concurrent handshakes share one
  download and wait for it at most ``WAIT_SECONDS``. A flood of tokens with
  random ``kid``s costs the provider one request per interval.
- Only signing keys for the pinned algorithms are kept. If the provider is
  unreachable, the last good keys stay in use; with no keys at all, a handshake
  cannot be checked (``KeysUnavailable``: 503, not 403, so clients retry).
"""

import asyncio
import json
import logging
import time
import urllib.request
from typing import Any

import jwt

logger = logging.getLogger(__name__)

# A handshake (or the start-up) waits at most this long for a download; the
# download itself may take longer, and the next handshakes use what it brings.
WAIT_SECONDS = 2.0
DOWNLOAD_TIMEOUT = 10.0  # seconds without progress before a download fails
MAX_JWKS_BYTES = 1024 * 1024


class KeysUnavailable(Exception):
    """No keys to check this token with (none fetched yet, or the download is too slow)."""


class JWKSCache:
    def __init__(
        self,
        url: str,
        algorithms: frozenset[str],
        cache_seconds: float,
        refetch_seconds: float,
    ) -> None:
        self.url = url
        self._algorithms = algorithms
        self._cache_seconds = cache_seconds
        self._refetch_seconds = refetch_seconds
        self._keys: dict[str | None, jwt.PyJWK] = {}
        self._fetched_at = float("-inf")  # monotonic time of the last good download
        self._attempted_at = float("-inf")  # ... of the last attempt, good or not
        self._inflight: asyncio.Task[None] | None = None

    async def prefetch(self) -> None:
        """At start-up: fetch the keys; a slow provider delays start-up by WAIT_SECONDS at most."""
        self._start_fetch()
        await self._wait()

    async def key(self, kid: object, algorithm: str) -> Any:
        """The key object for a token's ``kid`` and ``alg``, or None if there is none."""
        found = self._find(kid)
        if found is None or time.monotonic() - self._fetched_at > self._cache_seconds:
            self._start_fetch()  # does nothing within the refetch interval
        if found is None and self._inflight is not None:
            # The key may be in the download under way (a rotation): wait for it.
            if not await self._wait():
                raise KeysUnavailable
            found = self._find(kid)
        if not self._keys:
            raise KeysUnavailable
        if found is None or found.algorithm_name != algorithm:
            return None
        return found.key

    def _find(self, kid: object) -> jwt.PyJWK | None:
        if kid is None and len(self._keys) == 1:
            return next(iter(self._keys.values()))  # a provider with one key may omit kid
        return self._keys.get(kid) if isinstance(kid, str) else None

    def _start_fetch(self) -> None:
        """Start a download unless one is under way or the last began too recently."""
        now = time.monotonic()
        if self._inflight is None and now - self._attempted_at >= self._refetch_seconds:
            self._attempted_at = now
            self._inflight = asyncio.create_task(self._fetch())

    async def _wait(self) -> bool:
        """Wait for the download under way, at most WAIT_SECONDS; True if it is done.

        ``asyncio.wait`` never cancels it: a handshake that gives up (or leaves)
        does not stop the download that the next handshakes will use.
        """
        if self._inflight is None:
            return True
        done, _ = await asyncio.wait({self._inflight}, timeout=WAIT_SECONDS)
        return bool(done)

    async def _fetch(self) -> None:
        try:
            document = await asyncio.to_thread(self._download)
            keys = usable_keys(document, self._algorithms)
        except Exception as exc:  # whatever the network or the provider does
            logger.warning(
                "could not fetch the JWKS from %s (%s: %s); %s",
                self.url,
                type(exc).__name__,
                exc,
                "keeping the last keys"
                if self._keys
                else "handshakes are refused with 503 auth_unavailable until it succeeds",
            )
        else:
            if keys.keys() != self._keys.keys():
                logger.info("JWKS from %s: signing keys %s", self.url, sorted(map(str, keys)))
            self._keys = keys
            self._fetched_at = time.monotonic()
        finally:
            self._inflight = None

    def _download(self) -> dict[str, Any]:
        request = urllib.request.Request(self.url, headers={"accept": "application/json"})  # noqa: S310
        with urllib.request.urlopen(request, timeout=DOWNLOAD_TIMEOUT) as response:  # noqa: S310
            body = response.read(MAX_JWKS_BYTES + 1)
        if len(body) > MAX_JWKS_BYTES:
            raise ValueError("the JWKS is larger than 1 MB")
        document = json.loads(body)
        if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
            raise ValueError('the JWKS is not a JSON object with a "keys" list')
        return document


def usable_keys(
    document: dict[str, Any], algorithms: frozenset[str]
) -> dict[str | None, jwt.PyJWK]:
    """Public signing keys for the pinned algorithms, by ``kid``; anything else is ignored."""
    keys = {}
    for data in document["keys"]:
        # Encryption keys, and private key material that has no business in a JWKS.
        if not isinstance(data, dict) or data.get("use", "sig") != "sig" or "d" in data:
            continue
        try:
            key = jwt.PyJWK(data)
        except jwt.PyJWTError:
            continue  # a key type or algorithm PyJWT does not know
        if key.algorithm_name in algorithms:
            keys[key.key_id] = key
    if not keys:
        raise ValueError(f"the JWKS has no signing key for {sorted(algorithms)}")
    return keys
