"""The credentials the tests present: API tokens (see src/.../auth.py)."""

TOKEN = "alice-token-0123456789abcdef"  # identity "alice", scope "admin"
SECOND_TOKEN = "bob-token-0123456789abcdef"  # identity "bob", no scopes
WRONG_TOKEN = "wrong-token-000000000000"
IDENTITY = "alice"
SECOND_IDENTITY = "bob"
AUTH_ENV = {"WS_AUTH_TOKENS": f"alice:{TOKEN}:admin,bob:{SECOND_TOKEN}"}


def credential_for(identity: str, scopes: tuple[str, ...] = ()) -> tuple[str, dict[str, str]]:
    """A fresh credential for ``identity``, and the settings env that makes it valid."""
    token = f"{identity}-token-0123456789abcdef"
    entry = f"{identity}:{token}" + (f":{' '.join(scopes)}" if scopes else "")
    return token, {"WS_AUTH_TOKENS": f"{AUTH_ENV['WS_AUTH_TOKENS']},{entry}"}


def expiring_credential(ttl: int) -> tuple[str, float] | None:
    """API tokens never expire: there is no credential that ends a connection by expiring."""
    return None
