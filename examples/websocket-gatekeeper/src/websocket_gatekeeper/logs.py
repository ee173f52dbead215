"""Logging: this package's lines next to uvicorn's, and no token in any of them."""

import logging
import re

# Browsers can only send a token in the query string, and uvicorn logs every
# WebSocket path with its query string; cut the value out before it is written.
TOKEN_IN_QUERY = re.compile(r"([?&]token=)[^&\s\"]*")


class RedactQueryTokens(logging.Filter):
    """Replace ``token=<value>`` in a record's arguments with ``token=[redacted]``."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(
                TOKEN_IN_QUERY.sub(r"\1[redacted]", arg) if isinstance(arg, str) else arg
                for arg in record.args
            )
        return True


def configure_logging() -> None:
    """Redact tokens from uvicorn's lines; print ours through its handlers and level."""
    for name in ("uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactQueryTokens) for f in logger.filters):
            logger.addFilter(RedactQueryTokens())
    package_logger = logging.getLogger(__package__)
    uvicorn_logger = logging.getLogger("uvicorn")
    if uvicorn_logger.handlers and not package_logger.handlers:
        package_logger.setLevel(logging.getLogger("uvicorn.error").getEffectiveLevel())
        for handler in uvicorn_logger.handlers:
            package_logger.addHandler(handler)
        package_logger.propagate = False
