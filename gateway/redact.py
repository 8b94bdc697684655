"""Credentials out of the server's logs.

A browser can not set a header on a WebSocket, so it authenticates with ``/v1/stream?token=...`` (the web
page does), and uvicorn logs every connection and request with its query string: the API key or JWT would
be written in clear to the gateway's log. This filter masks a ``token`` query parameter in those lines.
"""

from __future__ import annotations

import logging
import re

_TOKEN = re.compile(r"([?&]token=)[^&\s\"']*")
_LOGGERS = ("uvicorn.access", "uvicorn.error")


class RedactTokens(logging.Filter):
    """Replaces the value of a ``token`` query parameter with ``***`` in a record's message and arguments."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = _TOKEN.sub(r"\1***", record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(_TOKEN.sub(r"\1***", arg) if isinstance(arg, str) else arg for arg in record.args)
        return True


def redact_tokens_in_server_logs() -> None:
    """Install the filter on uvicorn's loggers, once per process."""
    for name in _LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactTokens) for f in logger.filters):
            logger.addFilter(RedactTokens())
