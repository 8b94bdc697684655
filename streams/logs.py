"""Structured logs: one JSON object per line, with the run, node, tenant and correlation ids when the
code that logged passed them (``log.info(..., extra={"run_id": ...})``)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import orjson

_CONTEXT = ("run_id", "node_id", "tenant_id", "correlation_id", "task_id")


class JsonFormatter(logging.Formatter):
    """Formats a record as one line of JSON: time, level, logger, message, context ids, exception."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in _CONTEXT:
            value = record.__dict__.get(name)
            if value is not None:
                line[name] = value
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(line, default=str).decode()


def json_log_handler() -> logging.Handler:
    """A stderr handler writing JSON lines."""
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter())
    return handler
