"""Who an admitted connection is, in Starlette's convention.

Whichever strategy admits a connection sets ``scope["user"]`` (a ``BaseUser``)
and ``scope["auth"]`` (``AuthCredentials`` with the granted scopes), so an
endpoint reads ``websocket.user.identity`` and ``websocket.auth.scopes`` as it
would behind Starlette's ``AuthenticationMiddleware``.
"""

from dataclasses import dataclass

from starlette.authentication import AuthCredentials, BaseUser


class User(BaseUser):
    """An authenticated client: ``identity`` is the stable name its credential gives."""

    __slots__ = ("_display_name", "_identity")

    def __init__(self, identity: str, display_name: str | None = None) -> None:
        self._identity = identity
        self._display_name = display_name or identity

    @property
    def is_authenticated(self) -> bool:
        return True

    @property
    def identity(self) -> str:
        return self._identity

    @property
    def display_name(self) -> str:
        return self._display_name

    def __repr__(self) -> str:
        return f"User({self._identity!r})"


@dataclass(frozen=True, slots=True)
class Identity:
    """What a verified credential proves: who, with which scopes, until when."""

    user: User
    auth: AuthCredentials
    expires_at: float | None = None  # Unix time; None: the credential never expires
