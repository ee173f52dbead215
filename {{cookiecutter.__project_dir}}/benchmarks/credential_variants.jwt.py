"""JWT: the allowed session with every token verified, and with RS256 keys from a JWKS.

The default (the benchmark's "generated" app) verifies a token once and then
remembers it until it expires (``WS_JWT_CACHE_SIZE``), as a client that
reconnects with the token it holds meets it. ``WS_JWT_CACHE_SIZE=0`` shows what
every handshake costs when each brings a token the process has not seen: the
storm after a deploy, or clients that get a new token per connection.
"""

from contextlib import ExitStack

from credentials import TOKEN
from jwks_server import JWKSServer, rsa_key

# (label, settings env over the benchmark's, the credential a client presents)
Variant = tuple[str, dict[str, str], str]
EVERY_HANDSHAKE = {"WS_JWT_CACHE_SIZE": "0"}  # verify, remember nothing


def variants(stack: ExitStack) -> list[Variant]:
    provider = stack.enter_context(JWKSServer([rsa_key()]))  # on 127.0.0.1, for the run
    jwks = {"WS_JWT_SECRET": "", "WS_JWKS_URL": provider.url, "NO_PROXY": "127.0.0.1"}
    rs256 = rsa_key().token("alice", ttl=24 * 3600)
    return [
        ("HS256, every handshake verified", EVERY_HANDSHAKE, TOKEN),
        ("RS256 from a JWKS (keys cached)", jwks, rs256),
        ("RS256 from a JWKS, every handshake verified", {**jwks, **EVERY_HANDSHAKE}, rs256),
    ]
