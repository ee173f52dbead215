"""The guard's shared state in Redis: every worker on every host agrees.

One Redis (``redis://``), a Sentinel-managed master (``redis+sentinel://``) or a
Redis Cluster (``redis+cluster://``). Every script touches the keys of one client
address or of one identity only, and those keys share a hash tag (``{...}``), so
on a Cluster each script runs on the one node that holds them. The scripts are the
``.lua`` files in ``redis_lua/``.

- Handshake rates: ``limits``' sliding-window counters, every limit of a handshake
  in one script (one round trip, where ``limits``' API takes one per limit and
  another to tell a refused client when to retry). A refusal is remembered here
  until its wait is over, so a flood from one address costs no round trip at all.
- Connection leases: one sorted set per identity (member: lease id, score: expiry
  by Redis' clock). Taking a slot is one script (expire old leases, count, add),
  so two handshakes can never both take the last slot. Each worker renews its
  leases every ``lease_seconds / 3``; a worker killed with SIGKILL stops renewing,
  and its slots come back within ``lease_seconds``.
- ``admit``: an admitted handshake's rate and lease in one round trip.
- Releases never hold a closing connection: they are queued and sent in batches
  by one task; if that fails, the lease expires on its own.
- Tickets: ``SET ... EX`` and ``GETDEL``, so two concurrent uses admit one.

When Redis fails (down, slow, failing over), calls raise ``StoreUnavailable``
within the socket timeout; for a second after a failure the store is not asked at
all, so handshakes are not slowed by it, and one WARNING says so, not one per
handshake. redis-py reconnects by itself when Redis is back, and asks the
sentinels (or the cluster) where the master now is.
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
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from importlib.resources import files
from typing import Any, TypeVar
from urllib.parse import unquote, urlsplit

from limits import RateLimitItem
from redis.asyncio import Redis, RedisCluster, Sentinel
from redis.asyncio.cluster import ClusterNode
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
MAX_REMEMBERED_REFUSALS = 10_000  # client addresses refused by the rate limit, per process
RELEASE_BATCH = 512  # lease releases per pipeline
# Releases wait this long to go out together: one pipeline for many closes (a
# slot comes back a few milliseconds later; a reconnect of the same identity
# takes its own pending releases along in its admission script, at once).
RELEASE_DELAY = 0.005
SENTINEL, CLUSTER = "redis+sentinel", "redis+cluster"

T = TypeVar("T")


def lua(*names: str) -> str:
    """A script: the shared functions and its own body, from ``redis_lua/``."""
    folder = files(__package__).joinpath("redis_lua")
    return "\n".join(folder.joinpath(f"{name}.lua").read_text() for name in names)


HIT = lua("rate", "hit")
ACQUIRE = lua("lease", "acquire")
ADMIT = lua("rate", "lease", "admit")
RENEW = lua("lease", "renew")


@dataclass(frozen=True, slots=True)
class RedisTarget:
    """Where ``WS_LIMITS_STORAGE_URL`` points."""

    scheme: str  # redis, rediss, unix, redis+sentinel, redis+cluster
    hosts: tuple[tuple[str, int], ...] = ()  # the sentinels, or the cluster's seed nodes
    service: str = ""  # the sentinels' name for the master
    db: int = 0
    username: str | None = None
    password: str | None = None


def parse_redis_url(url: str) -> RedisTarget:
    """Check a Redis URL; raise ValueError naming what is wrong (never the password)."""
    parts = urlsplit(url)
    if parts.scheme in {"redis", "rediss", "unix"}:
        return RedisTarget(parts.scheme)
    if parts.scheme not in {SENTINEL, CLUSTER}:
        raise ValueError(
            "neither memory:// nor a redis://host:port/db, "
            "redis+sentinel://host:port[,host:port...]/service[/db] or "
            "redis+cluster://host:port[,host:port...] URL"
        )
    default_port = 26379 if parts.scheme == SENTINEL else 6379
    credentials, _, locations = parts.netloc.rpartition("@")
    hosts = tuple(host_and_port(each, default_port) for each in locations.split(","))
    username, _, password = (unquote(part) or None for part in credentials.partition(":"))
    path = [part for part in parts.path.split("/") if part]
    if parts.scheme == CLUSTER:
        if path not in ([], ["0"]):
            raise ValueError("a Redis Cluster URL names no service and only database 0")
        return RedisTarget(CLUSTER, hosts, "", 0, username, password)
    if not path or len(path) > 2 or (len(path) == 2 and not path[1].isdigit()):
        raise ValueError("use redis+sentinel://host:port[,host:port...]/service[/db]")
    db = int(path[1]) if len(path) == 2 else 0
    return RedisTarget(SENTINEL, hosts, unquote(path[0]), db, username, password)


def host_and_port(value: str, default_port: int) -> tuple[str, int]:
    host, colon, port = value.strip().rpartition(":")
    if not colon or host.endswith(":"):  # no port, or a bare IPv6 address
        host, port = value.strip(), str(default_port)
    host = host.removeprefix("[").removesuffix("]")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"{value[:100]!r} is not host:port")
    return host, int(port)


def connect(
    url: str, timeout: float = SOCKET_TIMEOUT, retries: int = 1
) -> tuple[Redis | RedisCluster, list[Sentinel]]:
    """The client for any URL ``parse_redis_url`` accepts, and the Sentinel managers
    to ``aclose()`` after it (none unless ``redis+sentinel://``)."""
    target = parse_redis_url(url)
    timeouts: dict[str, Any] = {"socket_timeout": timeout, "socket_connect_timeout": timeout}
    # By default one immediate retry on a dropped connection (Redis restarted, a
    # new master), none on a timeout: a slow Redis must not hold handshakes for
    # long. (The asyncio Retry: redis.retry.Retry, the sync one, would not retry.)
    retry = Retry(NoBackoff(), retries, supported_errors=(RedisConnectionError,))
    login = {"username": target.username, "password": target.password}
    if target.scheme == CLUSTER:
        nodes = [ClusterNode(host, port) for host, port in target.hosts]
        return RedisCluster(startup_nodes=nodes, retry=retry, **login, **timeouts), []
    if target.scheme == SENTINEL:
        # The URL's credentials are the master's; sentinels are asked without.
        sentinel = Sentinel(list(target.hosts), sentinel_kwargs=timeouts, **timeouts)
        master = sentinel.master_for(target.service, db=target.db, retry=retry, **login)
        return master, [sentinel]
    return Redis.from_url(url, retry=retry, **timeouts), []


async def both(first: Awaitable[T], second: Awaitable[T]) -> list[T]:
    """Two calls at once; the first failure is raised once both have ended."""
    results = await asyncio.gather(first, second, return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException):
            raise result
    return results  # type: ignore[return-value]


class RedisStore:
    def __init__(self, url: str, lease_seconds: float, prefix: str = "ws") -> None:
        self._redis, self._sentinels = connect(url)
        self._cluster = isinstance(self._redis, RedisCluster)
        self._hit = self._redis.register_script(HIT)
        self._acquire = self._redis.register_script(ACQUIRE)
        self._admit = self._redis.register_script(ADMIT)
        self._prefix = prefix
        self._lease_seconds = lease_seconds
        # Lease ids name their worker, for whoever inspects Redis.
        self._lease_id_prefix = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}:"
        self._lease_count = 0
        self._held: dict[str, Lease] = {}  # lease id -> lease, renewed while held
        self._renewing: asyncio.Task[None] | None = None
        # Released leases on their way out, per identity; one task sends them.
        self._to_release: dict[str, list[Lease]] = {}
        self._release_wanted = asyncio.Event()
        self._releasing: asyncio.Task[None] | None = None
        # Releases that found Redis unreachable: lease id -> (lease, when Redis drops it).
        self._orphans: dict[str, tuple[Lease, float]] = {}
        # Client address -> when its rate limit allows a handshake again (monotonic).
        self._refused: OrderedDict[tuple[str, ...], float] = OrderedDict()
        self._down_until = 0.0
        self._down = False
        self._next_ping = 0.0
        self._answering = False

    async def start(self) -> None:
        self._renewing = asyncio.create_task(self._renew_forever(), name="renew-leases")
        self._releasing = asyncio.create_task(self._release_forever(), name="release-leases")

    async def close(self) -> None:
        for task in (self._renewing, self._releasing):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._renewing = self._releasing = None
        # Normally only the last releases (connections end before the lifespan
        # does): give every slot still held back now rather than after lease_seconds.
        orphans = [lease for lease, _ in self._orphans.values()]
        pending = [lease for leases in self._to_release.values() for lease in leases]
        await self._remove([*pending, *orphans, *self._held.values()])
        self._to_release.clear()
        self._orphans.clear()
        self._held.clear()
        await self._redis.aclose()
        for sentinel in self._sentinels:
            await sentinel.aclose()

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

    def known_wait(self, *key: str) -> int:
        """Seconds a refusal of ``key`` by the rate limit still stands, as this process
        last heard from Redis; 0 when it knows of none. Costs no round trip."""
        until = self._refused.get(key)
        if until is None:
            return 0
        left = until - time.monotonic()
        if left <= 0:
            del self._refused[key]
            return 0
        return math.ceil(left)

    async def hit(self, limits: tuple[RateLimitItem, ...], *key: str) -> int:
        if wait := self.known_wait(*key):
            return wait  # refused anyway, and refused events are not counted
        keys, args = self._rate_keys(limits, key)
        return self._learn(key, await self._call(self._hit, keys=keys, args=args))

    async def admit(
        self, limits: tuple[RateLimitItem, ...], key: tuple[str, ...], identity: str, cap: int
    ) -> tuple[int, Lease | None]:
        """Count a handshake against ``limits`` and take one of ``identity``'s ``cap``
        slots: (seconds to wait, None) refused by the rate, (0, None) at the cap,
        (0, lease) admitted. One round trip, which also gives back the identity's
        releases still waiting to go out."""
        lease = self._new_lease(identity)
        rate_keys, args = self._rate_keys(limits, key)
        releasing = self._to_release.pop(identity, [])
        lease_args = (cap, self._lease_seconds, lease.id, *(each.id for each in releasing))
        try:
            return await self._admit_once(identity, lease, key, rate_keys, args, lease_args)
        except StoreUnavailable:
            self._orphan(releasing)
            raise

    async def _admit_once(
        self,
        identity: str,
        lease: Lease,
        key: tuple[str, ...],
        rate_keys: list[str],
        args: list[float],
        lease_args: tuple[object, ...],
    ) -> tuple[int, Lease | None]:
        if self._cluster:
            # The address's keys and the identity's live on different nodes: ask both
            # at once (one round trip of waiting), and give a lease back if the
            # rate refused (the handshake is not counted twice: a refused hit counts nothing).
            wait_ms, granted = await self._call(
                both,
                self._hit(keys=rate_keys, args=args),
                self._acquire(keys=[self._lease_key(identity)], args=lease_args),
            )
            if wait_ms and granted:
                self._queue_release(lease)
        else:
            keys = [*rate_keys, self._lease_key(identity)]
            wait_ms, granted = await self._call(self._admit, keys=keys, args=[*args, *lease_args])
        if wait := self._learn(key, wait_ms):
            return wait, None
        if not granted:
            return 0, None
        self._held[lease.id] = lease
        return 0, lease

    async def acquire_lease(self, identity: str, cap: int) -> Lease | None:
        lease = self._new_lease(identity)
        args = (cap, self._lease_seconds, lease.id)
        if not await self._call(self._acquire, keys=[self._lease_key(identity)], args=args):
            return None
        self._held[lease.id] = lease
        return lease

    async def release_lease(self, lease: Lease) -> None:
        """Give the slot back without a round trip: queued for the releasing task."""
        if lease.released:
            return
        lease.released = True
        self._held.pop(lease.id, None)
        self._queue_release(lease)

    async def put_ticket(self, ticket: str, holder: Ticket, ttl: int) -> None:
        value = json.dumps([holder.identity, holder.display_name, holder.scopes, holder.expires_at])
        await self._call(self._redis.set, self._ticket_key(ticket), value, ex=ttl)

    async def take_ticket(self, ticket: str) -> Ticket | None:
        value = await self._call(self._redis.getdel, self._ticket_key(ticket))
        if value is None:
            return None
        identity, display_name, scopes, expires_at = json.loads(value)
        return Ticket(identity, display_name, tuple(scopes), expires_at)

    async def _call(self, function: Callable[..., Awaitable[T]], *args: Any, **kwargs: Any) -> T:
        """Run one store operation; turn any failure into ``StoreUnavailable``."""
        if self._down and time.monotonic() < self._down_until:
            for arg in args:  # coroutines handed to gather, never to be awaited now
                if asyncio.iscoroutine(arg):
                    arg.close()
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

    def _new_lease(self, identity: str) -> Lease:
        self._lease_count += 1
        return Lease(identity, f"{self._lease_id_prefix}{self._lease_count}")

    def _rate_keys(
        self, limits: tuple[RateLimitItem, ...], key: tuple[str, ...]
    ) -> tuple[list[str], list[float]]:
        # Key parts are validated values only: a client address from
        # clients.client_host, never text a client sent. limits' own key names,
        # behind one hash tag per address, so every limit's keys share a node.
        tag = f"{self._prefix}:rate:" + "{" + "/".join(key) + "}:"
        keys: list[str] = []
        args: list[float] = []
        for item in limits:
            current = tag + item.key_for(*key)
            keys += [f"{current}/-1", current]
            args += [item.amount, item.get_expiry()]
        return keys, args

    def _learn(self, key: tuple[str, ...], wait_ms: int) -> int:
        """Remember a refusal until its wait is over; the wait in whole seconds."""
        if not wait_ms:
            return 0
        refused = self._refused
        refused.pop(key, None)
        if len(refused) >= MAX_REMEMBERED_REFUSALS:
            refused.popitem(last=False)  # the oldest refusal, likely over already
        refused[key] = time.monotonic() + wait_ms / 1000
        return math.ceil(wait_ms / 1000)

    def _queue_release(self, lease: Lease) -> None:
        self._to_release.setdefault(lease.identity, []).append(lease)
        self._release_wanted.set()

    def _orphan(self, leases: list[Lease]) -> None:
        """Releases that found Redis unreachable: kept until Redis expires them anyway."""
        gone = time.monotonic() + self._lease_seconds
        self._orphans.update((lease.id, (lease, gone)) for lease in leases)

    async def renew_leases(self) -> None:
        """Renew (or re-add, after a restart or a failover lost them) every lease held here."""
        leases = list(self._held.values())
        if not leases:
            return
        ids: dict[str, list[str]] = {}  # one script per identity: its keys, its node
        for lease in leases:
            ids.setdefault(lease.identity, []).append(lease.id)
        async with self._redis.pipeline(transaction=False) as pipe:
            for identity, lease_ids in ids.items():
                # EVAL, not EVALSHA: a Redis that restarted or failed over knows
                # no scripts, and a pipeline cannot load them first.
                pipe.eval(RENEW, 1, self._lease_key(identity), self._lease_seconds, *lease_ids)
            await self._call(pipe.execute)
        # A connection that ended while the renewal was on its way may have had
        # its lease re-added after its own ZREM: take it out again.
        for lease in leases:
            if lease.released:
                self._queue_release(lease)

    async def retry_releases(self) -> None:
        """Release again the leases whose release found the store unreachable."""
        now = time.monotonic()
        for lease_id, (_, gone) in list(self._orphans.items()):
            if gone <= now:
                del self._orphans[lease_id]  # expired in Redis by now
        leases = [lease for lease, _ in self._orphans.values()]
        if leases and await self._remove(leases):
            for lease in leases:
                self._orphans.pop(lease.id, None)

    async def _release_forever(self) -> None:
        # Bounded: each lease this process took is queued once per release, and one
        # whose release fails is kept only until Redis expires it anyway.
        while True:
            await self._release_wanted.wait()
            await asyncio.sleep(RELEASE_DELAY)
            self._release_wanted.clear()
            pending, self._to_release = self._to_release, {}
            leases = [lease for each in pending.values() for lease in each]
            for start in range(0, len(leases), RELEASE_BATCH):
                batch = leases[start : start + RELEASE_BATCH]
                try:
                    removed = await self._remove(batch)
                except asyncio.CancelledError:
                    self._orphan(leases[start:])  # shutting down: close() sends them
                    raise
                if not removed:
                    self._orphan(batch)

    async def _remove(self, leases: list[Lease]) -> bool:
        """Take leases out of Redis; whether it answered (if not, they expire)."""
        if not leases:
            return True
        async with self._redis.pipeline(transaction=False) as pipe:
            for lease in leases:
                pipe.zrem(self._lease_key(lease.identity), lease.id)
            try:
                await self._call(pipe.execute)
            except StoreUnavailable:
                return False
        return True

    async def _renew_forever(self) -> None:
        while True:
            await asyncio.sleep(self._lease_seconds / 3)
            with contextlib.suppress(StoreUnavailable):
                await self.renew_leases()
                await self.retry_releases()

    def _lease_key(self, identity: str) -> str:
        return f"{self._prefix}:leases:" + "{" + identity + "}"

    def _ticket_key(self, ticket: str) -> str:
        return f"{self._prefix}:ticket:{ticket}"
