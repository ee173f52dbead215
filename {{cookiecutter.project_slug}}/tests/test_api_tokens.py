"""API tokens: entries, identities, constant-time comparison, the ``token`` command."""

import hmac
import subprocess
import sys

import pytest
from pydantic import SecretStr

from {{ cookiecutter.package_name }}.auth import (
    AuthSettings,
    CredentialVerifier,
    parse_entry,
)
from {{ cookiecutter.package_name }}.identity import Identity
from {{ cookiecutter.package_name }}.rejections import (
    INVALID_TOKEN,
)

from credentials import SECOND_TOKEN, TOKEN

PACKAGE = "{{ cookiecutter.package_name }}"
BARE = "bare-token-0123456789abcdef"


@pytest.fixture
def verifier() -> CredentialVerifier:
    entries = [f"alice:{TOKEN}:admin read", f"bob:{SECOND_TOKEN}", BARE]
    return CredentialVerifier(AuthSettings(auth_tokens=[SecretStr(e) for e in entries]))


async def test_named_tokens_admit_their_identity_and_scopes(verifier: CredentialVerifier) -> None:
    alice = await verifier.verify(TOKEN.encode())
    assert isinstance(alice, Identity)
    assert alice.user.identity == "alice"
    assert alice.auth.scopes == ["admin", "read"]
    assert alice.expires_at is None  # static tokens do not expire
    bob = await verifier.verify(SECOND_TOKEN.encode())
    assert isinstance(bob, Identity)
    assert (bob.user.identity, bob.auth.scopes) == ("bob", [])


async def test_a_bare_token_keeps_working_under_a_fingerprint(verifier: CredentialVerifier) -> None:
    identity = await verifier.verify(BARE.encode())
    assert isinstance(identity, Identity)
    assert identity.user.identity.startswith("token:")
    assert BARE not in identity.user.identity  # the name never reveals the token


@pytest.mark.parametrize(
    "credential",
    [b"wrong-token-000000000000", TOKEN.encode() + b"x", TOKEN.encode()[:-1], b"", b"\xff\xfe"],
)
async def test_anything_else_is_invalid(verifier: CredentialVerifier, credential: bytes) -> None:
    assert await verifier.verify(credential) == INVALID_TOKEN


async def test_every_known_token_is_compared(
    verifier: CredentialVerifier, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Constant time: the first token matching must not skip the others.
    calls = []
    compare_digest = hmac.compare_digest

    def counting_compare(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return compare_digest(a, b)

    monkeypatch.setattr(hmac, "compare_digest", counting_compare)
    assert isinstance(await verifier.verify(TOKEN.encode()), Identity)
    assert len(calls) == 3


@pytest.mark.parametrize(
    ("entry", "words"),
    [
        ("short", "16+ visible ASCII"),
        ("has space in the token", "16+ visible ASCII"),
        ("tökén-0123456789abcdef", "16+ visible ASCII"),
        ("alice:tok,en-0123456789abcdef", "16+ visible ASCII"),
        ("al ice:token-0123456789abcdef", "is not a token name"),
        ("a:b:c:d", "name:token[:scopes]"),
    ],
)
def test_bad_entries_say_what_is_wrong(entry: str, words: str) -> None:
    with pytest.raises(ValueError, match=words.replace("[", r"\[").replace("+", r"\+")):
        parse_entry(entry)


def test_duplicate_names_or_tokens_are_refused() -> None:
    with pytest.raises(ValueError, match="own name"):
        AuthSettings(auth_tokens=[SecretStr(f"a:{TOKEN}"), SecretStr(f"a:{SECOND_TOKEN}")])
    with pytest.raises(ValueError, match="listed twice"):
        AuthSettings(auth_tokens=[SecretStr(f"a:{TOKEN}"), SecretStr(f"b:{TOKEN}")])


def test_tokens_never_show_in_the_settings_repr() -> None:
    settings = AuthSettings(auth_tokens=[SecretStr(f"alice:{TOKEN}")])
    assert TOKEN not in repr(settings)


def test_token_command_prints_an_entry_the_settings_accept() -> None:
    result = subprocess.run(
        [sys.executable, "-m", PACKAGE, "token", "--name", "ci", "--scope", "admin"],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    entry = result.stdout.strip()
    name, token, scopes = entry.split(":")
    assert (name, scopes) == ("ci", "admin")
    assert len(token) >= 32
    assert parse_entry(entry).name == "ci"


def test_token_command_refuses_a_bad_name() -> None:
    result = subprocess.run(
        [sys.executable, "-m", PACKAGE, "token", "--name", "no spaces please"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode != 0
    assert "is not a token name" in result.stderr
    assert "Traceback" not in result.stderr
