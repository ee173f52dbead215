"""Where a credential travels: header, subprotocol, ticket, query; which one wins."""

import base64

import pytest

from {{ cookiecutter.package_name }}.credentials import (
    NOTHING,
    Presented,
    bearer_token,
    offers_bearer,
    presented,
    query_credentials,
    subprotocol_token,
)

from cases import carrier


@pytest.mark.parametrize(
    ("authorization", "expected"),
    [(b"Bearer abc", b"abc"), (b"BEARER  abc ", b"abc"), (b"Token abc", None), (b"Bearer", None)],
)
def test_bearer_token(authorization: bytes, expected: bytes | None) -> None:
    assert bearer_token(authorization) == expected


def test_subprotocol_carries_base64url_without_padding() -> None:
    assert subprotocol_token(["bearer", carrier("t+k/n?")]) == b"t+k/n?"
    assert subprotocol_token(["graphql-ws"]) is None
    assert subprotocol_token(["bearer."]) is None
    # Not base64url at all: handed on as is, to be refused as an invalid token.
    assert subprotocol_token(["bearer.***"]) == b"***"


def test_bearer_is_selected_only_when_offered() -> None:
    assert offers_bearer(["bearer", carrier("x")])
    assert not offers_bearer([carrier("x")])


def test_query_credentials_are_percent_decoded() -> None:
    assert query_credentials(b"a=1&token=t%2Bk%20n") == (None, b"t+k n")
    assert query_credentials(b"ticket=abc&x=y") == (b"abc", None)


def test_channel_priority_header_then_subprotocol_then_ticket_then_query() -> None:
    query = b"ticket=T&token=Q"
    assert presented(b"Bearer H", [carrier("S")], query) == Presented(credential=b"H")
    assert presented(None, ["bearer", carrier("S")], query) == Presented(
        credential=b"S", select_bearer=True
    )
    assert presented(None, [], query) == Presented(ticket="T")
    assert presented(None, [], b"token=Q") == Presented(credential=b"Q")
    assert presented(None, [], b"token=") == NOTHING
    assert presented(b"Basic dXNlcg==", [], b"") == NOTHING


def test_a_non_utf8_query_token_is_still_just_bytes() -> None:
    assert presented(None, [], b"token=%C3%A9%FF%FE") == Presented(credential=b"\xc3\xa9\xff\xfe")


def test_base64url_round_trip_of_a_dotted_credential() -> None:
    credential = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhIn0.sig-_"
    encoded = base64.urlsafe_b64encode(credential.encode()).rstrip(b"=").decode()
    assert subprotocol_token([f"bearer.{encoded}"]) == credential.encode()
