"""The guard's shared state in Redis: every worker on every host agrees.

- Handshake rates: ``limits``' sliding-window counters, every limit of a handshake
  in one Lua script (one round trip, where ``limits``' API takes one per limit and
  another to tell a refused client when to retry). The script is ``limits``' own
  ``acquire_sliding_window.lua`` in a loop, on the keys ``limits`` would use.
- Connection leases: one sorted set per identity (member: lease id, score: expiry
  by Redis' clock). Taking a slot is one Lua script (expire old leases, count,
  add), so two handshakes can never both take the last slot. Each worker renews
  its leases every ``lease_seconds / 3``; a worker killed with SIGKILL stops
  renewing, and its slots come back within ``lease_seconds``.
- Tickets: ``SET ... EX`` and ``GETDEL``, so two concurrent uses admit one.

When Redis fails (down, slow, restarted), calls raise ``StoreUnavailable`` within
the socket timeout; for a second after a failure the store is not asked at all, so
handshakes are not slowed by it, and one WARNING says so, not one per handshake.
redis-py reconnects by itself when Redis is back.
"""

import asyncio
import contextlib
import json
import logging
import math
import os
import secrets
import socket
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from limits import RateLimitItem
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError

from .store import Lease, StoreUnavailable, Ticket

logger = logging.getLogger(__name__)

# Every handshake must be answered within a second even when Redis hangs.
SOCKET_TIMEOUT = 0.25
RETRY_AFTER_FAILURE = 1.0  # seconds during which a failed store is not asked
PING_INTERVAL = 1.0  # seconds for which one answer to GET /ready stands
FAILURES = (RedisError, OSError, asyncio.TimeoutError)

T = TypeVar("T")

# KEYS: two per limit, limits' layout ("{key}/-1": the previous window's count,
# "{key}": the current one's). ARGV: amount and window seconds per limit. Each
# limit in turn, as limits' acquire_sliding_window.lua does it: 0 when every
# limit allows the event (counted in each), else the milliseconds until the
# refusing limit frees a slot (limits' get_window_stats), counting nothing more.
HIT = """
for i = 1, #ARGV / 2 do
  local previous, current = KEYS[2 * i - 1], KEYS[2 * i]
  local limit = tonumber(ARGV[2 * i - 1])
  local expiry = tonumber(ARGV[2 * i]) * 1000
  local current_ttl = tonumber(redis.call('pttl', current))
  if current_ttl > 0 and current_ttl < expiry then
    -- The current window ended: it becomes the previous one.
    redis.call('rename', current, previous)
    redis.call('set', current, 0, 'PX', current_ttl + expiry)
  end
  local previous_count = tonumber(redis.call('get', previous)) or 0
  local previous_ttl = math.max(tonumber(redis.call('pttl', previous)) or 0, 0)
  local current_count = tonumber(redis.call('get', current)) or 0
  current_ttl = math.max(tonumber(redis.call('pttl', current)) or 0, 0)
  if math.floor(previous_count * previous_ttl / expiry) + current_count + 1 > limit then
    local wait = math.huge
    if previous_count > 0 then wait = previous_ttl % (expiry / previous_count) end
    if current_count > 0 then wait = math.min(wait, current_ttl % expiry) end
    if wait == math.huge then wait = expiry end
    return math.max(math.ceil(wait), 1)
  end
  if redis.call('exists', current) == 1 then
    redis.call('incrby', current, 1)
  else
    redis.call('set', current, 1, 'PX', expiry * 2)
  end
end
return 0
"""
# KEYS[1]: the identity's leases. ARGV: cap, lease seconds, lease id.
ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[1]) then
  return 0
end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[3])
redis.call('EXPIRE', KEYS[1], math.ceil(tonumber(ARGV[2])) + 1)
return 1
"""
# KEYS: lease sets; ARGV: lease seconds, then one lease id per key. Re-adds a
# lease a restarted Redis lost, so counts recover within one renewal.
RENEW = """
local t = redis.call('TIME')
local expires = tonumber(t[1]) + tonumber(t[2]) / 1000000 + tonumber(ARGV[1])
for i, key in ipairs(KEYS) do
  redis.call('ZADD', key, expires, ARGV[i + 1])
  redis.call('EXPIRE', key, math.ceil(tonumber(ARGV[1])) + 1)
end
return #KEYS
"""


class RedisStore:
    def __init__(self, url: str, lease_seconds: float, prefix: str = "ws") -> None:
        self._redis = Redis.from_url(
            url,
            socket_timeout=SOCKET_TIMEOUT,
            socket_connect_timeout=SOCKET_TIMEOUT,
            # One immediate retry on a dropped connection (Redis restarted), none
            # on a timeout: a slow Redis must not hold handshakes for long. (The
            # asyncio Retry: redis.retry.Retry, the sync one, would not retry at all.)
            retry=Retry(NoBackoff(), 1, supported_errors=(RedisConnectionError,)),
        )
        self._hit = self._redis.register_script(HIT)
        self._acquire = self._redis.register_script(ACQUIRE)
        self._renew = self._redis.register_script(RENEW)
        self._prefix = prefix
        self._lease_seconds = lease_seconds
        # Lease ids name their worker, for whoever inspects Redis.
        self._lease_id_prefix = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}:"
        self._lease_count = 0
        self._held: dict[str, Lease] = {}  # lease id -> lease, renewed while held
        self._renewing: asyncio.Task[None] | None = None
        self._down_until = 0.0
        self._down = False
        self._next_ping = 0.0
        self._answering = False

    async def start(self) -> None:
        self._renewing = asyncio.create_task(self._renew_forever(), name="renew-leases")

    async def close(self) -> None:
        if self._renewing is not None:
            self._renewing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._renewing
            self._renewing = None
        # Normally empty (connections end before the lifespan does): give any
        # slot still held back now rather than after lease_seconds.
        await self._remove(list(self._held.values()))
        self._held.clear()
        await self._redis.aclose()

    async def ping(self) -> bool:
        """Whether Redis answers: asked at most once per ``PING_INTERVAL``, however
        often ``/ready`` is asked, and not at all for a second after a failure."""
        now = time.monotonic()
        if now >= self._next_ping:
            self._next_ping = now + PING_INTERVAL
            try:
                self._answering = bool(await self._call(self._redis.ping))
            except StoreUnavailable:
                self._answering = False
        return self._answering

    async def hit(self, limits: tuple[RateLimitItem, ...], *key: str) -> int:
        # Key parts are validated values only: a client address from
        # clients.client_host, never text a client sent.
        keys, args = [], []
        for item in limits:
            # limits' layout: the braces put both keys of a limit in one Cluster slot.
            current = f"{self._prefix}:rate:" + "{" + item.key_for(*key) + "}"
            keys += [f"{current}/-1", current]
            args += [item.amount, item.get_expiry()]
        wait_ms = await self._call(self._hit, keys=keys, args=args)
        return math.ceil(wait_ms / 1000)

    async def acquire_lease(self, identity: str, cap: int) -> Lease | None:
        self._lease_count += 1
        lease = Lease(identity, f"{self._lease_id_prefix}{self._lease_count}")
        args = (cap, self._lease_seconds, lease.id)
        if not await self._call(self._acquire, keys=[self._lease_key(identity)], args=args):
            return None
        self._held[lease.id] = lease
        return lease

    async def release_lease(self, lease: Lease) -> None:
        if lease.released:
            return
        lease.released = True
        self._held.pop(lease.id, None)
        await self._remove([lease])

    async def put_ticket(self, ticket: str, holder: Ticket, ttl: int) -> None:
        value = json.dumps([holder.identity, holder.display_name, holder.scopes, holder.expires_at])
        await self._call(self._redis.set, self._ticket_key(ticket), value, ex=ttl)

    async def take_ticket(self, ticket: str) -> Ticket | None:
        value = await self._call(self._redis.getdel, self._ticket_key(ticket))
        if value is None:
            return None
        identity, display_name, scopes, expires_at = json.loads(value)
        return Ticket(identity, display_name, tuple(scopes), expires_at)

    async def _call(
        self, function: Callable[..., Awaitable[T]], *args: object, **kwargs: object
    ) -> T:
        """Run one store operation; turn any failure into ``StoreUnavailable``."""
        if self._down and time.monotonic() < self._down_until:
            raise StoreUnavailable
        try:
            result = await function(*args, **kwargs)
        except FAILURES as exc:
            self._down_until = time.monotonic() + RETRY_AFTER_FAILURE
            if not self._down:
                self._down = True
                logger.warning(
                    "Redis store unreachable (%s: %s): handshake rates and connection caps "
                    "are not enforced and tickets are refused (503) until it is back",
                    type(exc).__name__,
                    exc,
                )
            raise StoreUnavailable from None
        if self._down:
            self._down = False
            logger.warning("Redis store reachable again: limits and tickets work again")
        return result

    async def _remove(self, leases: list[Lease]) -> None:
        """Take leases out of Redis; if it is down, they simply expire."""
        if not leases:
            return
        async with self._redis.pipeline(transaction=False) as pipe:
            for lease in leases:
                pipe.zrem(self._lease_key(lease.identity), lease.id)
            with contextlib.suppress(StoreUnavailable):
                await self._call(pipe.execute)

    async def _renew_forever(self) -> None:
        while True:
            await asyncio.sleep(self._lease_seconds / 3)
            leases = list(self._held.values())
            if not leases:
                continue
            keys = [self._lease_key(lease.identity) for lease in leases]
            ids = [lease.id for lease in leases]
            with contextlib.suppress(StoreUnavailable):
                await self._call(self._renew, keys=keys, args=[self._lease_seconds, *ids])
            # A connection that ended while the renewal was on its way may have
            # had its lease re-added after its own ZREM: take it out again.
            await self._remove([lease for lease in leases if lease.released])

    def _lease_key(self, identity: str) -> str:
        return f"{self._prefix}:leases:{identity}"

    def _ticket_key(self, ticket: str) -> str:
        return f"{self._prefix}:ticket:{ticket}"
