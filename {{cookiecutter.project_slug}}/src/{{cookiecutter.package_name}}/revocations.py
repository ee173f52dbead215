"""Revoked identities: refused at the handshake, closed while connected, on every worker.

``POST /ws/revocations`` (``routes/revocations.py``) revokes an identity for a
while; every live connection of it is closed with ``4403 revoked`` and its new
handshakes and ticket requests are refused until the revocation ends or is lifted.

- ``memory://``: the deny-list is a dict in this process (one worker).
- Redis: the deny-list is one sorted set (member: identity, score: when the
  revocation ends, by Redis' clock), so it outlives any worker and expires by
  itself; a message on a pub/sub channel makes each change immediate everywhere.
  Every process holds ONE subscription (with Sentinel, on the current master;
  on a Cluster, on any node: a publication reaches every node). When it loses
  it (Redis restarted, the network dropped, a failover), it subscribes again and
  then reads the whole set, so a revocation issued meanwhile takes effect as
  soon as it is back.

Either way the handshake asks only the local copy (``is_revoked``): never a round
trip per handshake.
"""

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from redis.asyncio import Redis, RedisCluster, Sentinel
from redis.asyncio.client import PubSub
from redis.asyncio.cluster import ClusterNode
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from .store_redis import CLUSTER, SENTINEL, parse_redis_url

logger = logging.getLogger(__name__)

MAX_REVOKED = 100_000  # identities revoked at once; past it the soonest to end goes first
RECONNECT_SECONDS = 0.25  # between attempts to subscribe again after losing Redis
READ_SECONDS = 1.0  # a wait for a pub/sub message; then the loop looks again
FAILURES = (RedisError, OSError, asyncio.TimeoutError)

Listener = Callable[[str], None]


class StoreUnreachable(Exception):
    """The revocation could not be recorded; nothing changed."""


class Revocations:
    """The deny-list of this process; the Redis variant below keeps it current."""

    def __init__(self) -> None:
        self._until: dict[str, float] = {}  # identity -> Unix time the revocation ends
        self._listeners: list[Listener] = []

    def add_listener(self, listener: Listener) -> None:
        """Call ``listener(identity)`` whenever an identity is revoked (closes its connections)."""
        self._listeners.append(listener)

    def is_revoked(self, identity: str) -> bool:
        until = self._until.get(identity)
        if until is None:  # the common case: one dict lookup
            return False
        if until > time.time():
            return True
        del self._until[identity]
        return False

    async def start(self) -> None:
        pass

    async def close(self) -> None:
        pass

    async def revoke(self, identity: str, seconds: int) -> None:
        self._apply(identity, seconds)

    async def lift(self, identity: str) -> None:
        self._until.pop(identity, None)

    def _apply(self, identity: str, seconds: float) -> None:
        until = self._until
        if identity not in until and len(until) >= MAX_REVOKED:
            del until[min(until, key=until.__getitem__)]  # rare: an admin's flood
        until[identity] = time.time() + seconds
        for listener in self._listeners:
            listener(identity)

    def _replace(self, remaining: dict[str, float]) -> None:
        """Take the whole deny-list as Redis has it; close whoever is newly revoked."""
        before = self._until
        self._until = {}
        for identity, seconds in remaining.items():
            if identity in before:
                self._until[identity] = time.time() + seconds
            else:
                self._apply(identity, seconds)


# KEYS[1]: the deny-list. ARGV: identity, seconds, channel, at most this many.
REVOKE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
local excess = redis.call('ZCARD', KEYS[1]) - tonumber(ARGV[4])
if excess > 0 then redis.call('ZPOPMIN', KEYS[1], excess) end
local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
redis.call('EXPIREAT', KEYS[1], math.ceil(tonumber(last[2])) + 1)
redis.call('PUBLISH', ARGV[3], cjson.encode({'revoke', ARGV[1], tonumber(ARGV[2])}))
return 1
"""
# KEYS[1]: the deny-list. ARGV: identity, channel.
LIFT = """
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('PUBLISH', ARGV[2], cjson.encode({'lift', ARGV[1]}))
return 1
"""
# KEYS[1]: the deny-list. Every revocation still running, with its seconds left.
READ = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local found = redis.call('ZRANGEBYSCORE', KEYS[1], now, '+inf', 'WITHSCORES')
for i = 2, #found, 2 do found[i] = tostring(tonumber(found[i]) - now) end
return found
"""


class RedisRevocations(Revocations):
    def __init__(self, url: str, prefix: str = "ws") -> None:
        super().__init__()
        target = parse_redis_url(url)
        timeouts: dict[str, Any] = {
            "socket_timeout": READ_SECONDS,
            "socket_connect_timeout": READ_SECONDS,
        }
        # No automatic retry: a lost subscription must come back through
        # _listen_forever, which reads the deny-list again after subscribing.
        options = {**timeouts, "retry": Retry(NoBackoff(), 0)}
        login = {"username": target.username, "password": target.password}
        self._sentinel: Sentinel | None = None
        self._nodes: list[tuple[str, int]] = []  # Cluster: where a subscription may go
        self._redis: Redis | RedisCluster
        if target.scheme == CLUSTER:
            nodes = [ClusterNode(host, port) for host, port in target.hosts]
            self._redis = RedisCluster(startup_nodes=nodes, **login, **options)
            self._nodes = list(target.hosts)
            self._login = login
            self._options = options
        elif target.scheme == SENTINEL:
            self._sentinel = Sentinel(list(target.hosts), sentinel_kwargs=timeouts, **timeouts)
            self._redis = self._sentinel.master_for(
                target.service, db=target.db, **login, **options
            )
        else:
            self._redis = Redis.from_url(url, **options)
        self._key = f"{prefix}:revocations"
        self._channel = f"{prefix}:revocations"
        self._revoke = self._redis.register_script(REVOKE)
        self._lift = self._redis.register_script(LIFT)
        self._read = self._redis.register_script(READ)
        self._listening: asyncio.Task[None] | None = None
        self.subscribed = asyncio.Event()  # set while the subscription is up (tests wait on it)

    async def start(self) -> None:
        self._listening = asyncio.create_task(self._listen_forever(), name="listen-revocations")

    async def close(self) -> None:
        if self._listening is not None:
            self._listening.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listening
            self._listening = None
        await self._redis.aclose()
        if self._sentinel is not None:
            await self._sentinel.aclose()

    async def revoke(self, identity: str, seconds: int) -> None:
        args = [identity, seconds, self._channel, MAX_REVOKED]
        try:
            await self._revoke(keys=[self._key], args=args)
        except FAILURES as exc:
            raise StoreUnreachable from exc
        # Applied here at once too: the caller's own worker need not wait for the echo.
        self._apply(identity, seconds)

    async def lift(self, identity: str) -> None:
        try:
            await self._lift(keys=[self._key], args=[identity, self._channel])
        except FAILURES as exc:
            raise StoreUnreachable from exc
        await super().lift(identity)

    async def _listen_forever(self) -> None:
        lost = False
        attempt = 0
        while True:
            attempt += 1
            try:
                async with self._subscriber(attempt) as pubsub:
                    await pubsub.subscribe(self._channel)
                    # Subscribed first, read second: nothing published in between is missed.
                    found = await self._read(keys=[self._key])
                    self._replace(
                        {found[i].decode(): float(found[i + 1]) for i in range(0, len(found), 2)}
                    )
                    self.subscribed.set()
                    if lost:
                        lost = False
                        logger.warning("revocations: subscribed to Redis again")
                    while True:
                        message = await pubsub.get_message(
                            ignore_subscribe_messages=True, timeout=READ_SECONDS
                        )
                        if message is not None:
                            self._on_message(message["data"])
            except FAILURES as exc:
                self.subscribed.clear()
                if not lost:
                    lost = True
                    logger.warning(
                        "revocations: lost the Redis subscription (%s: %s); "
                        "retrying every %s s, then reading every revocation again",
                        type(exc).__name__,
                        exc,
                        RECONNECT_SECONDS,
                    )
                await asyncio.sleep(RECONNECT_SECONDS)

    @contextlib.asynccontextmanager
    async def _subscriber(self, attempt: int) -> AsyncIterator[PubSub]:
        """A pub/sub connection: the client's own, or (Cluster) a node's, in turn."""
        if isinstance(self._redis, Redis):
            async with self._redis.pubsub() as pubsub:
                yield pubsub
            return
        host, port = self._nodes[attempt % len(self._nodes)]
        node = Redis(host=host, port=port, **self._login, **self._options)
        try:
            async with node.pubsub() as pubsub:
                yield pubsub
        finally:
            await node.aclose()

    def _on_message(self, data: bytes) -> None:
        try:
            kind, identity, *rest = json.loads(data)
        except (ValueError, TypeError):
            return  # not ours: someone else published on the channel
        if kind == "revoke" and rest:
            self._apply(str(identity), float(rest[0]))
        elif kind == "lift":
            self._until.pop(str(identity), None)
