"""API tokens: no variants to compare, every handshake checks its token the same way."""

from contextlib import ExitStack

# (label, settings env over the benchmark's, the credential a client presents)
Variant = tuple[str, dict[str, str], str]
EVERY_HANDSHAKE: dict[str, str] = {}  # nothing is remembered between handshakes anyway


def variants(_stack: ExitStack) -> list[Variant]:
    return []
