"""The ai executor's handler on its own: what it sends, what it returns, and when it refuses to call."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio

from agents.ai.budgets import Budgets
from agents.ai.pricing import load_pricing
from agents.ai.registry import Providers
from agents.exceptions import ProviderError
from agents.executors.ai import AiHandler
from schemas.tasks import Task
from streams.settings import Settings
from tests.loopback import OpenAIServer, Reply


def _task(attempt: int = 1, **params: Any) -> Task:
    base: dict[str, Any] = {
        "provider": "openai",
        "model": "gpt-4o-mini",
        "prompt": "hello",
        "stream": False,
        "response": {"format": "text"},
        "workflow": "wf",
        "run_usage": {},
    }
    return Task(
        task_id=f"r:n:{attempt}",
        run_id="r",
        tenant_id="acme",
        node_id="n",
        kind="ai",
        attempt=attempt,
        params={**base, **params},
    )


@pytest_asyncio.fixture
async def handler(openai_server: OpenAIServer, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[AiHandler]:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    monkeypatch.setenv("OPENAI_BASE_URL", openai_server.base_url)
    providers = Providers(Settings())
    yield AiHandler(
        providers,
        pricing=load_pricing(),
        budgets=Budgets.model_validate({"tenants": {"acme": {"per_run": {"tokens": 100}}}}),
        default_timeout_s=10,
    )
    await providers.aclose()


@pytest.mark.asyncio
async def test_an_answer_comes_back_as_output_and_as_the_call_to_record(
    handler: AiHandler, openai_server: OpenAIServer
) -> None:
    openai_server.plan("gpt-4o-mini", Reply.ok("hi there", input_tokens=3, output_tokens=2))
    outcome = await handler(_task(prompt=["a", "list"], system="be nice"))
    assert outcome.output["text"] == "hi there"
    assert outcome.output["usage"] == {"input_tokens": 3, "output_tokens": 2, "cached_tokens": 0}
    call = outcome.call
    assert call is not None and call.cost_usd == pytest.approx((3 * 0.15 + 2 * 0.6) / 1e6)
    assert call.pricing_version == load_pricing().version
    # A prompt that rendered to a native value is sent as its JSON text.
    assert call.request.messages[0].content == '["a","list"]' and call.request.system == "be nice"


@pytest.mark.asyncio
async def test_a_filtered_answer_fails_without_retry_but_keeps_its_call(
    handler: AiHandler, openai_server: OpenAIServer
) -> None:
    openai_server.plan("gpt-4o-mini", Reply.refusal("no"))
    with pytest.raises(ProviderError) as caught:
        await handler(_task())
    assert (caught.value.code, caught.value.retryable) == ("content_filter", False)
    assert caught.value.call is not None and caught.value.call.finish_reason == "content_filter"


@pytest.mark.asyncio
async def test_an_unknown_model_costs_null_with_a_warning(
    handler: AiHandler, openai_server: OpenAIServer, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="awe.executor.ai"):
        outcome = await handler(_task(model="my-local-llama"))
    assert outcome.output["cost_usd"] is None and outcome.call is not None and outcome.call.cost_usd is None
    assert "no price for openai model my-local-llama" in caplog.text


@pytest.mark.asyncio
async def test_a_spent_budget_refuses_before_calling(handler: AiHandler, openai_server: OpenAIServer) -> None:
    with pytest.raises(ProviderError) as caught:
        await handler(_task(run_usage={"calls": 1, "input_tokens": 90, "output_tokens": 10}))
    assert caught.value.code == "budget_exceeded"
    assert openai_server.count() == 0


@pytest.mark.asyncio
async def test_an_unknown_provider_is_not_retryable(handler: AiHandler) -> None:
    with pytest.raises(ProviderError) as caught:
        await handler(_task(provider="openia"))
    assert (caught.value.code, caught.value.retryable) == ("unknown_provider", False)
