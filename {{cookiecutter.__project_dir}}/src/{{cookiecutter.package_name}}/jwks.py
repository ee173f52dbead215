"""An identity provider's signing keys (JWKS), fetched off the event loop and cached.

- Keys are downloaded in a worker thread (``asyncio.to_thread``): a slow provider
  never blocks other connections.
- They are cached for ``cache_seconds``; a token with an unknown ``kid`` (the
  provider rotated its keys) triggers a refetch, but at most once per
  ``refetch_seconds``, and concurrent handshakes share one download. A flood of
  tokens with random ``kid``s costs the provider one request per interval.
- Only keys for the pinned algorithms are kept; if the provider is unreachable,
  the last good keys stay in use.
"""

import asyncio
import json
import logging
import time
import urllib.request
from typing import Any

import jwt

logger = logging.getLogger(__name__)

FETCH_TIMEOUT = 2.0  # seconds; a handshake waiting for keys waits at most this long
MAX_JWKS_BYTES = 1024 * 1024


class KeysUnavailable(Exception):
    """No keys were ever fetched: a token cannot be checked at all."""


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
        await self._refresh()

    async def key(self, kid: object, algorithm: str) -> Any:
        """The key object for a token's ``kid`` and ``alg``, or None if there is none."""
        if self._inflight is not None:
            await asyncio.shield(self._inflight)  # someone is downloading: share it
        elif (
            self._should_fetch(kid)
            and time.monotonic() - self._attempted_at >= self._refetch_seconds
        ):
            await self._refresh()
        if not self._keys:
            raise KeysUnavailable
        found = self._keys.get(kid) if isinstance(kid, str) or kid is None else None
        if found is None and kid is None and len(self._keys) == 1:
            found = next(iter(self._keys.values()))  # a provider with one key may omit kid
        if found is None or found.algorithm_name != algorithm:
            return None
        return found.key

    def _should_fetch(self, kid: object) -> bool:
        stale = time.monotonic() - self._fetched_at > self._cache_seconds
        return stale or not self._keys or (isinstance(kid, str) and kid not in self._keys)

    async def _refresh(self) -> None:
        self._attempted_at = time.monotonic()
        self._inflight = asyncio.create_task(self._fetch())
        self._inflight.add_done_callback(self._fetched)
        await asyncio.shield(self._inflight)

    def _fetched(self, _task: asyncio.Task[None]) -> None:
        self._inflight = None

    async def _fetch(self) -> None:
        try:
            document = await asyncio.to_thread(self._download)
            keys = usable_keys(document, self._algorithms)
        except (OSError, ValueError, jwt.PyJWTError) as exc:
            # Stale keys beat no keys; one line per failed attempt (at most one per interval).
            logger.warning("could not fetch the JWKS from %s: %s", self.url, exc)
            return
        self._keys = keys
        self._fetched_at = time.monotonic()

    def _download(self) -> dict[str, Any]:
        request = urllib.request.Request(self.url, headers={"accept": "application/json"})  # noqa: S310
        with urllib.request.urlopen(request, timeout=FETCH_TIMEOUT) as response:  # noqa: S310
            body = response.read(MAX_JWKS_BYTES + 1)
        if len(body) > MAX_JWKS_BYTES:
            raise ValueError("the JWKS is larger than 1 MB")
        document = json.loads(body)
        if not isinstance(document, dict):
            raise ValueError("the JWKS is not a JSON object")
        return document


def usable_keys(
    document: dict[str, Any], algorithms: frozenset[str]
) -> dict[str | None, jwt.PyJWK]:
    """Signing keys for the pinned algorithms, by ``kid``; anything else is ignored."""
    keys = {}
    for key in jwt.PyJWKSet.from_dict(document).keys:
        if key.algorithm_name in algorithms and key.public_key_use in (None, "sig"):
            keys[key.key_id] = key
    if not keys:
        raise ValueError(f"the JWKS has no signing key for {sorted(algorithms)}")
    return keys
