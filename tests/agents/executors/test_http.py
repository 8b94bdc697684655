"""The http executor's error for a connection that fails: what happened, in words, and retryable."""

from __future__ import annotations

import pytest

from agents.exceptions import ExecutionError
from agents.executors.http import HttpHandler
from schemas.tasks import Task
from tests.harness import free_port


@pytest.mark.asyncio
async def test_a_refused_connection_says_so_in_words() -> None:
    url = f"http://127.0.0.1:{free_port()}/hook"
    handler = HttpHandler(concurrency=1)
    task = Task(
        task_id="t1",
        run_id="r1",
        tenant_id="acme",
        node_id="notify",
        kind="http",
        attempt=1,
        params={"method": "POST", "url": url, "body": {"x": 1}},
    )
    try:
        with pytest.raises(ExecutionError) as raised:
            await handler(task)
    finally:
        await handler.aclose()
    assert raised.value.message == f"POST {url} failed: connection refused"
    assert raised.value.code == "connection_error" and raised.value.retryable
