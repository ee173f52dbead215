"""Unit tests of the one admission policy both strategies rely on."""

import hmac

import pytest
from starlette.requests import HTTPConnection
from {{ cookiecutter.package_name }}.policy import (
    HEADERS_TOO_LARGE,
    INVALID_TOKEN,
    MISSING_TOKEN,
    ORIGIN_NOT_ALLOWED,
    AdmissionPolicy,
    Rejected,
    Rejection,
    bearer_token,
    query_token,
)

from cases import ADMITTED, ALLOWED_ORIGIN, REFUSED, SECOND_TOKEN, TOKEN


def handshake(headers: dict[str, str], query: str = "") -> HTTPConnection:
    return HTTPConnection(
        {
            "type": "websocket",
            "path": "/ws/echo",
            "query_string": query.removeprefix("?").encode(),
            "headers": [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()],
            "client": ("203.0.113.7", 50000),
        }
    )


@pytest.fixture
def policy() -> AdmissionPolicy:
    return AdmissionPolicy([TOKEN, SECOND_TOKEN], [ALLOWED_ORIGIN])


@pytest.mark.parametrize(("headers", "query", "expected"), REFUSED)
def test_refuses(
    policy: AdmissionPolicy, headers: dict[str, str], query: str, expected: Rejection
) -> None:
    assert policy.admit(handshake(headers, query)) == expected


@pytest.mark.parametrize(("headers", "query"), ADMITTED)
def test_admits(policy: AdmissionPolicy, headers: dict[str, str], query: str) -> None:
    assert policy.admit(handshake(headers, query)) is None


def test_header_token_wins_over_query_token(policy: AdmissionPolicy) -> None:
    connection = handshake({"authorization": "Bearer wrong-token-000000000000"}, f"?token={TOKEN}")
    assert policy.admit(connection) == INVALID_TOKEN


def test_no_origin_header_is_allowed_for_non_browser_clients(policy: AdmissionPolicy) -> None:
    assert policy.admit(handshake({"authorization": f"Bearer {TOKEN}"})) is None


def test_null_origin_is_allowed_only_when_listed() -> None:
    policy = AdmissionPolicy([TOKEN], ["null"])
    assert policy.admit(handshake({"origin": "null"}, f"?token={TOKEN}")) is None


def test_non_ascii_token_is_refused_not_crashing(policy: AdmissionPolicy) -> None:
    connection = handshake({}, "?token=%C3%A9%FF%FE")  # é, then bytes that are not UTF-8
    assert policy.admit(connection) == INVALID_TOKEN


def test_oversized_handshake_is_refused_before_anything_else(policy: AdmissionPolicy) -> None:
    connection = handshake({"authorization": f"Bearer {TOKEN}", "x-padding": "a" * 17_000})
    assert policy.admit(connection) == HEADERS_TOO_LARGE
    assert HEADERS_TOO_LARGE.close_code == 4431


def test_empty_query_token_counts_as_missing(policy: AdmissionPolicy) -> None:
    assert policy.admit(handshake({}, "?token=")) == MISSING_TOKEN


def test_every_known_token_is_compared(
    policy: AdmissionPolicy, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Constant time: the first token matching must not skip the others.
    calls = []
    compare_digest = hmac.compare_digest

    def counting_compare(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return compare_digest(a, b)

    monkeypatch.setattr(hmac, "compare_digest", counting_compare)
    assert policy.admit(handshake({"authorization": f"Bearer {TOKEN}"})) is None
    assert len(calls) == 2


def test_enforce_raises_rejected(policy: AdmissionPolicy) -> None:
    with pytest.raises(Rejected) as info:
        policy.enforce(handshake({}))
    assert info.value.rejection == MISSING_TOKEN


def test_a_policy_without_tokens_cannot_exist() -> None:
    with pytest.raises(ValueError, match="at least one token"):
        AdmissionPolicy([])


def test_close_code_mirrors_http_status() -> None:
    assert MISSING_TOKEN.close_code == 4401
    assert INVALID_TOKEN.close_code == 4403
    assert MISSING_TOKEN.headers == (("www-authenticate", 'Bearer realm="websocket"'),)


@pytest.mark.parametrize(
    ("authorization", "expected"),
    [(b"Bearer abc", b"abc"), (b"BEARER  abc ", b"abc"), (b"Token abc", None), (b"Bearer", None)],
)
def test_bearer_token(authorization: bytes, expected: bytes | None) -> None:
    assert bearer_token(authorization) == expected


def test_query_token_is_percent_decoded() -> None:
    assert query_token(handshake({}, "?a=1&token=t%2Bk%20n")) == b"t+k n"
    assert query_token(handshake({}, "?a=1")) is None


def test_any_foreign_origin_among_several_refuses(policy: AdmissionPolicy) -> None:
    connection = HTTPConnection(
        {
            "type": "websocket",
            "path": "/ws/echo",
            "query_string": f"token={TOKEN}".encode(),
            "headers": [(b"origin", ALLOWED_ORIGIN.encode()), (b"origin", b"https://evil.example")],
        }
    )
    assert policy.admit(connection) == ORIGIN_NOT_ALLOWED
