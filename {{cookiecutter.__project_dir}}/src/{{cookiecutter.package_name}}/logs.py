{% if cookiecutter.rejection_strategy != "accept_then_close" -%}
"""Logging: this package's lines next to uvicorn's, no credential in any of them,
and no false ERROR after a denial response."""
{%- else -%}
"""Logging: this package's lines next to uvicorn's, no credential in any of them."""
{%- endif %}

import logging
import re
{%- if cookiecutter.rejection_strategy != "accept_then_close" %}

from .pre_accept import denial_sent
{%- endif %}

# uvicorn logs every WebSocket path with its query string, where simple clients
# put ?token= and browsers ?ticket=: cut the values out before they are written.
CREDENTIAL_IN_QUERY = re.compile(r"([?&](?:token|ticket)=)[^&\s\"]*")
{%- if cookiecutter.rejection_strategy != "accept_then_close" %}
# uvicorn's default WebSocket implementation (websockets-sansio) logs this after
# every denial response although the client got the right answer (upstream bug).
FALSE_HANDSHAKE_ERROR = "ASGI callable returned without completing handshake."
{%- endif %}


class RedactQueryCredentials(logging.Filter):
    """Replace ``token=<value>`` / ``ticket=<value>`` in a record's arguments."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(
                CREDENTIAL_IN_QUERY.sub(r"\1[redacted]", arg) if isinstance(arg, str) else arg
                for arg in record.args
            )
        return True


{%- if cookiecutter.rejection_strategy != "accept_then_close" %}


class DropFalseHandshakeError(logging.Filter):
    """Drop uvicorn's "returned without completing handshake" line, but only for a
    connection this app refused with a denial response (``denial.denial_sent`` is
    set in that connection's task). From an endpoint that really returned without
    answering, the same line still appears at ERROR."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.msg == FALSE_HANDSHAKE_ERROR and denial_sent.get())
{%- endif %}


def configure_logging() -> None:
    """Install the filters on uvicorn's loggers; print ours through its handlers and level."""
    for name, filters in (
{%- if cookiecutter.rejection_strategy != "accept_then_close" %}
        ("uvicorn.error", (RedactQueryCredentials, DropFalseHandshakeError)),
{%- else %}
        ("uvicorn.error", (RedactQueryCredentials,)),
{%- endif %}
        ("uvicorn.access", (RedactQueryCredentials,)),
    ):
        logger = logging.getLogger(name)
        for kind in filters:
            if not any(isinstance(existing, kind) for existing in logger.filters):
                logger.addFilter(kind())
    package_logger = logging.getLogger(__package__)
    uvicorn_logger = logging.getLogger("uvicorn")
    if uvicorn_logger.handlers and not package_logger.handlers:
        package_logger.setLevel(logging.getLogger("uvicorn.error").getEffectiveLevel())
        for handler in uvicorn_logger.handlers:
            package_logger.addHandler(handler)
        package_logger.propagate = False
