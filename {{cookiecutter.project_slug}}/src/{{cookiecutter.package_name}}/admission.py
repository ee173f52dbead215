"""The admission pipeline: the one place that decides whether a WebSocket client
is admitted, and as whom.

Cheapest check first: handshake size -> Origin allow-list -> handshake rate per
client address -> credential (header, subprotocol, ticket or query) -> scopes
the route requires -> open connections per identity. The result is either a
``Rejection`` or an ``Admitted`` connection carrying its identity.

The guard (``guard.py``) asks this pipeline once per connection, with the
requirements the route declares, and decides only *how* a refusal reaches the
client. To plug in your own rules or user lookup, see docs/identity.md; this runs
for every handshake, including hostile ones, so keep it cheap.
"""

import hashlib
import logging
import math
import secrets
import time
from dataclasses import dataclass
from typing import cast

from limits import RateLimitItem, parse_many
from starlette.authentication import AuthCredentials
from starlette.requests import HTTPConnection
from starlette.types import Scope

from . import metrics
from .auth import CredentialVerifier
from .clients import client_address, client_host
from .credentials import bearer_token, offers_bearer, presented
from .identity import Identity, User
from .rejections import (
    HEADERS_TOO_LARGE,
    INSUFFICIENT_SCOPE,
    INVALID_TICKET,
    MISSING_TOKEN,
    ORIGIN_NOT_ALLOWED,
    REVOKED,
    STORE_UNAVAILABLE,
    TOO_MANY_CONNECTIONS,
    Rejection,
    rate_limited,
    tickets_rate_limited,
)
from .requirements import Requirements
from .revocations import Revocations
from .settings import Settings
from .store import Lease, Store, StoreUnavailable, Ticket
from .store_redis import RedisStore

logger = logging.getLogger(__name__)

# No legitimate handshake comes near this; uvicorn's httptools parser accepts any
# size, so the pipeline sets the limit itself (browsers send about 1-2 KB).
MAX_HEADER_BYTES = 16 * 1024
TICKET_SECONDS = 30


@dataclass(slots=True)
class Admitted:
    """A connection the pipeline let in: who it is, and the slot it holds."""

    identity: Identity | None  # None on a public route
    lease: Lease | None  # None when connections per identity are not capped
    select_bearer: bool  # the credential came as a subprotocol: accept "bearer"
    # Capped, but admitted while the store was down: the guard takes its lease later.
    unleased: bool = False

    @property
    def name(self) -> str:
        """Who, for log lines."""
        return "anonymous" if self.identity is None else self.identity.user.identity


class Admission:
    def __init__(
        self,
        settings: Settings,
        verifier: CredentialVerifier,
        store: Store,
        revocations: Revocations | None = None,
    ) -> None:
        self.verifier = verifier
        self.store = store
        # Consulted locally on every handshake; kept current by its own fan-out.
        self.revocations = Revocations() if revocations is None else revocations
        # Everything that can be prepared once is prepared here, not per handshake.
        self._origins = frozenset(origin.encode("latin-1") for origin in settings.allowed_origins)
        self._rate_limits = parse_rate_limits(settings.handshake_rate_limit)
        self._ticket_limits = parse_rate_limits(settings.ticket_rate_limit)
        self.cap = settings.max_connections_per_identity
        # Redis takes a handshake's rate and lease in one round trip (below).
        self._redis = store if isinstance(store, RedisStore) else None
        # Refuse like a path that does not exist (the guard delivers it so).
        self.opaque = settings.opaque_refusals

    async def admit(
        self, scope: Scope, requirements: Requirements, strategy: str
    ) -> Admitted | Rejection:
        """Decide on one handshake; log and count an admission (the guard, a refusal)."""
        started = time.perf_counter()
        outcome = await self._decide(scope, requirements)
        metrics.observe_handshake(strategy, time.perf_counter() - started)
        if isinstance(outcome, Admitted):
            metrics.count_admission(strategy)
            if logger.isEnabledFor(logging.INFO):
                logger.info(
                    "admitted WebSocket %s from %s as %s",
                    scope["path"],
                    client_address(scope),
                    outcome.name,
                )
        return outcome

    async def release(self, admitted: Admitted) -> None:
        """Give back what admission took; called once when the connection ends."""
        if admitted.lease is not None:
            await self.store.release_lease(admitted.lease)

    async def issue_ticket(self, connection: HTTPConnection) -> tuple[str, int] | Rejection:
        """A one-time ticket for the caller's ``Authorization: Bearer`` credential.

        Browsers cannot set that header on a WebSocket; they fetch a ticket with
        it over HTTP and open the WebSocket with ``?ticket=`` within 30 seconds.
        """
        outcome = await self._ticket_for(connection)
        address = client_address(connection.scope)
        if isinstance(outcome, Rejection):
            logger.info("refused a ticket to %s: %s", address, outcome.code)
            return outcome
        ticket, seconds, identity = outcome
        logger.info("issued a ticket to %s as %s", address, identity)
        return ticket, seconds

    async def authorize(
        self, connection: HTTPConnection, scope: str | None = None
    ) -> Identity | Rejection:
        """The caller of an HTTP endpoint, by ``Authorization: Bearer``, if not revoked
        and granted ``scope`` (when one is named)."""
        authorization = connection.headers.get("authorization")
        token = bearer_token(authorization.encode("latin-1")) if authorization else None
        if token is None:
            return MISSING_TOKEN
        identity = await self.verifier.verify(token)
        if isinstance(identity, Rejection):
            return identity
        if self.revocations.is_revoked(identity.user.identity):
            return REVOKED
        if scope is not None and scope not in identity.auth.scopes:
            return INSUFFICIENT_SCOPE
        return identity

    async def _ticket_for(self, connection: HTTPConnection) -> tuple[str, int, str] | Rejection:
        if self._rate_limits:
            wait = await self._rate_limited(connection.scope)
            if wait:
                return rate_limited(wait)
        identity = await self.authorize(connection)
        if isinstance(identity, Rejection):
            return identity
        if self._ticket_limits:
            try:
                wait = await self.store.hit(
                    self._ticket_limits, "tickets", identity_key(identity.user.identity)
                )
            except StoreUnavailable:
                wait = 0  # fail open, as for handshakes: tickets fail closed below anyway
            if wait:
                return tickets_rate_limited(wait)
        ticket = secrets.token_urlsafe(32)
        holder = Ticket(
            identity.user.identity,
            identity.user.display_name,
            tuple(identity.auth.scopes),
            identity.expires_at,
        )
        seconds = TICKET_SECONDS
        if identity.expires_at is not None:  # a ticket never outlives its credential
            seconds = max(1, min(seconds, math.ceil(identity.expires_at - time.time())))
        try:
            await self.store.put_ticket(ticket_key(ticket), holder, seconds)
        except StoreUnavailable:
            return STORE_UNAVAILABLE  # fail closed: a ticket nobody can redeem is useless
        return ticket, seconds, holder.identity

    async def _decide(self, scope: Scope, requirements: Requirements) -> Admitted | Rejection:
        # One pass over the raw ASGI headers (servers lower-case the names).
        size = 0
        foreign_origin = False
        authorization = None
        for name, value in scope["headers"]:
            size += len(name) + len(value)
            if name == b"origin":
                # Browsers always send Origin on a WebSocket handshake; checking it
                # stops cross-site WebSocket hijacking. Any foreign one refuses.
                foreign_origin |= value not in self._origins
            elif name == b"authorization":
                authorization = value
        if size > MAX_HEADER_BYTES:
            return HEADERS_TOO_LARGE
        if foreign_origin:
            return ORIGIN_NOT_ALLOWED
        if self._redis is not None and self._rate_limits and not requirements.public:
            return await self._decide_in_one_round_trip(scope, requirements, authorization)
        if self._rate_limits:
            wait = await self._rate_limited(scope)
            if wait:
                return rate_limited(wait)
        if requirements.public:
            # A browser that offers "bearer" fails a handshake that does not select it,
            # credential or not.
            return Admitted(None, None, offers_bearer(scope.get("subprotocols") or []))
        found = await self._identify(scope, requirements, authorization)
        if isinstance(found, Rejection):
            return found
        identity, select_bearer = found
        lease = None
        if self.cap is not None:
            try:
                lease = await self.store.acquire_lease(identity.user.identity, self.cap)
            except StoreUnavailable:
                # Fail open: an outage of the store must not lock everyone out. The
                # guard takes the lease once the store answers (governance.py).
                return Admitted(identity, None, select_bearer, unleased=True)
            if lease is None:
                return TOO_MANY_CONNECTIONS
        return Admitted(identity, lease, select_bearer)

    async def _identify(
        self, scope: Scope, requirements: Requirements, authorization: bytes | None
    ) -> tuple[Identity, bool] | Rejection:
        """The credential's identity (and whether it came as a subprotocol), holding
        every scope the route requires."""
        offered = presented(authorization, scope.get("subprotocols") or [], scope["query_string"])
        if offered.ticket is not None:
            identity = await self._redeem(offered.ticket)
        elif offered.credential is not None:
            identity = await self.verifier.verify(offered.credential)
        else:
            return MISSING_TOKEN
        if isinstance(identity, Rejection):
            return identity
        if self.revocations.is_revoked(identity.user.identity):  # local: no round trip
            return REVOKED
        required = requirements.scopes
        if required and not required.issubset(identity.auth.scopes):
            return INSUFFICIENT_SCOPE
        return identity, offered.select_bearer

    async def _decide_in_one_round_trip(
        self, scope: Scope, requirements: Requirements, authorization: bytes | None
    ) -> Admitted | Rejection:
        """Redis: the rate and the lease in one round trip, after the credential.

        The credential is checked in this process, so it goes first, and the rate
        is counted with the lease. A flood still buys no verification the rate
        limit refuses: Redis' refusal of an address is remembered here until its
        wait is over, and refuses at once, before the credential is looked at.
        A refused credential is counted too (one round trip), and a refusal by
        the rate limit wins, as on one process.
        """
        redis = cast("RedisStore", self._redis)
        key = ("handshakes", client_host(scope))
        if wait := redis.known_wait(*key):
            return rate_limited(wait)
        found = await self._identify(scope, requirements, authorization)
        if isinstance(found, Rejection) or self.cap is None:
            wait = await self._rate_limited(scope)
            if wait:
                return rate_limited(wait)
            if isinstance(found, Rejection):
                return found
            return Admitted(found[0], None, found[1])
        identity, select_bearer = found
        try:
            wait, lease = await redis.admit(
                self._rate_limits, key, identity.user.identity, self.cap
            )
        except StoreUnavailable:
            return Admitted(identity, None, select_bearer, unleased=True)  # as above
        if wait:
            return rate_limited(wait)
        if lease is None:
            return TOO_MANY_CONNECTIONS
        return Admitted(identity, lease, select_bearer)

    async def _rate_limited(self, scope: Scope) -> int:
        """Seconds the client address must wait, or 0."""
        try:
            return await self.store.hit(self._rate_limits, "handshakes", client_host(scope))
        except StoreUnavailable:
            return 0  # fail open: the store's outage is logged once by the store

    async def _redeem(self, ticket: str) -> Identity | Rejection:
        try:
            holder = await self.store.take_ticket(ticket_key(ticket))
        except StoreUnavailable:
            return STORE_UNAVAILABLE  # fail closed: a ticket cannot be checked anywhere else
        if holder is None:
            return INVALID_TICKET
        user = User(holder.identity, holder.display_name)
        return Identity(user, AuthCredentials(list(holder.scopes)), holder.expires_at)


def parse_rate_limits(value: str) -> tuple[RateLimitItem, ...]:
    """``"50/second;1200/minute"`` in the ``limits`` notation, or ``"off"``."""
    return () if value == "off" else tuple(parse_many(value))


def identity_key(identity: str) -> str:
    # Identities are whatever a credential names: a digest keeps store keys short and plain.
    return hashlib.sha256(identity.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def ticket_key(ticket: str) -> str:
    # The store keeps a digest, so whoever can read the store cannot use a ticket.
    return hashlib.sha256(ticket.encode("utf-8", "surrogatepass")).hexdigest()
