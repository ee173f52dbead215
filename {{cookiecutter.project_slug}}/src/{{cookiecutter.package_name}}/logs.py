{% if cookiecutter.rejection_strategy != "accept_then_close" -%}
"""Logging: this package's lines next to uvicorn's, no credential in any of them,
no client-supplied value longer than 200 characters, and no false ERROR after a
denial response."""
{%- else -%}
"""Logging: this package's lines next to uvicorn's, no credential in any of them,
and no client-supplied value longer than 200 characters."""
{%- endif %}

import logging
import re

from .clients import LOGGED_CHARACTERS, loggable
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


class CutLongValues(logging.Filter):
    """Cut every text argument of a record to 200 characters: a path, a header or
    an address a client chose never makes a log line longer than that."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if type(args) is tuple:
            for arg in args:  # nothing is copied unless something is too long
                if type(arg) is str and len(arg) > LOGGED_CHARACTERS:
                    record.args = tuple(loggable(a) if isinstance(a, str) else a for a in args)
                    break
        return True
{%- if cookiecutter.rejection_strategy != "accept_then_close" %}


class DropFalseHandshakeError(logging.Filter):
    """Drop uvicorn's "returned without completing handshake" line, but only for a
    connection this app refused with a denial response (``pre_accept.denial_sent`` is
    set in that connection's task). From an endpoint that really returned without
    answering, the same line still appears at ERROR."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.msg == FALSE_HANDSHAKE_ERROR and denial_sent.get())
{%- endif %}


def configure_logging() -> None:
    """Install the filters on uvicorn's loggers; print ours through its handlers and level."""
    for name, filters in (
{%- if cookiecutter.rejection_strategy != "accept_then_close" %}
        ("uvicorn.error", (RedactQueryCredentials, DropFalseHandshakeError, CutLongValues)),
{%- else %}
        ("uvicorn.error", (RedactQueryCredentials, CutLongValues)),
{%- endif %}
        ("uvicorn.access", (RedactQueryCredentials, CutLongValues)),
    ):
        add_filters(logging.getLogger(name), filters)
    package_logger = logging.getLogger(__package__)
    uvicorn_logger = logging.getLogger("uvicorn")
    if uvicorn_logger.handlers and not package_logger.handlers:
        package_logger.setLevel(logging.getLogger("uvicorn.error").getEffectiveLevel())
        for handler in uvicorn_logger.handlers:
            package_logger.addHandler(handler)
        package_logger.propagate = False
    # A logger's filters see only its own records; this package's modules log
    # through their own loggers, whose records reach these handlers.
    for handler in package_logger.handlers:
        add_filters(handler, (CutLongValues,))


def add_filters(target: logging.Filterer, filters: tuple[type[logging.Filter], ...]) -> None:
    for kind in filters:
        if not any(isinstance(existing, kind) for existing in target.filters):
            target.addFilter(kind())
