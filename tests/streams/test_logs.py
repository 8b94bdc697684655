"""Structured logs: one JSON object per line, with the run's ids when the code passed them."""

from __future__ import annotations

import json
import logging

from streams.logs import JsonFormatter


def test_a_record_becomes_one_json_line_with_its_context_ids() -> None:
    record = logging.LogRecord("awe.orchestrator", logging.WARNING, __file__, 1, "run %s failed", ("r1",), None)
    record.run_id = "r1"
    record.tenant_id = "acme"
    line = JsonFormatter().format(record)
    assert "\n" not in line
    parsed = json.loads(line)
    assert parsed["level"] == "warning" and parsed["logger"] == "awe.orchestrator"
    assert parsed["message"] == "run r1 failed"
    assert (parsed["run_id"], parsed["tenant_id"]) == ("r1", "acme")
    assert "node_id" not in parsed and parsed["time"].endswith("+00:00")


def test_an_exception_is_kept_in_the_line() -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        record = logging.LogRecord("awe", logging.ERROR, __file__, 1, "failed", (), __import__("sys").exc_info())
    parsed = json.loads(JsonFormatter().format(record))
    assert "ValueError: boom" in parsed["exception"]
