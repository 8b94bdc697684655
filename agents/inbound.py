"""Reading the orchestrator's input records: commands and results, or a precise reason they are invalid."""

from __future__ import annotations

from typing import Any

import orjson
from pydantic import ValidationError

from agents.exceptions import InvalidRecordError
from agents.messages import Message
from schemas.commands import COMMAND_ADAPTER
from schemas.exceptions import Problem
from schemas.tasks import RESULT_ADAPTER
from streams.dlq import describe_validation_error


def parse_record(value: bytes | None, *, is_command: bool) -> Message:
    """A command (from ``awe.commands``) or a result (from ``awe.results``), or InvalidRecordError.

    The error's detail carries the run id when the record named one, so a bad start can be rejected on
    the run's own log rather than only in the dead-letter topic.
    """
    if not value:
        raise InvalidRecordError("empty record value", code="not_json")
    try:
        raw: Any = orjson.loads(value)
    except orjson.JSONDecodeError as err:
        raise InvalidRecordError(f"value is not JSON: {err}", code="not_json") from err
    run_id = raw.get("run_id") if isinstance(raw, dict) else None
    detail: dict[str, Any] = {"run_id": run_id if isinstance(run_id, str) and run_id else None}
    if isinstance(raw, dict) and "tenant_id" in raw and isinstance(raw["tenant_id"], str):
        detail["tenant_id"] = raw["tenant_id"]
    try:
        if is_command:
            return COMMAND_ADAPTER.validate_python(raw)
        return RESULT_ADAPTER.validate_python(raw)
    except ValidationError as err:
        kind = "command" if is_command else "result"
        detail["problems"] = [
            Problem(path=".".join(str(part) for part in e["loc"]), message=e["msg"]) for e in err.errors()
        ]
        raise InvalidRecordError(
            f"not a valid {kind}: {describe_validation_error(err.errors())}", code="schema_mismatch", detail=detail
        ) from err
