"""The credentials the tests present: HS256 JWTs signed with the test secret."""

import jwt

from {{ cookiecutter.package_name }}.auth import mint_token

SECRET = "test-secret-for-hs256-0123456789abcdef-0123456789"
TOKEN = mint_token(SECRET, "alice", 3600, ["admin"])  # identity "alice", scope "admin"
SECOND_TOKEN = mint_token(SECRET, "bob", 3600)  # identity "bob", no scopes
# A well-formed JWT for "alice" whose signature does not match the secret.
WRONG_TOKEN = mint_token("another-secret-for-hs256-0123456789abcdef", "alice", 3600)
IDENTITY = "alice"
SECOND_IDENTITY = "bob"
AUTH_ENV = {"WS_JWT_SECRET": SECRET}


def credential_for(identity: str, scopes: tuple[str, ...] = ()) -> tuple[str, dict[str, str]]:
    """A fresh credential for ``identity``, and the settings env that makes it valid."""
    return mint_token(SECRET, identity, 3600, scopes), {}


def expiring_credential(ttl: int) -> tuple[str, float] | None:
    """A token for "alice" that expires ``ttl`` seconds from now, and its ``exp`` (Unix time)."""
    token = mint_token(SECRET, IDENTITY, ttl)
    return token, float(jwt.decode(token, SECRET, algorithms=["HS256"])["exp"])
