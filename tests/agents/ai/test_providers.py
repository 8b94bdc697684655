"""awe's providers through the official SDKs against loopback servers that speak each real wire protocol.

One test body per behaviour, run for OpenAI, Anthropic and Bedrock: the SDK's own parsing, streaming and
error paths run, and what comes out is awe's one answer and one failure shape.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import pytest
import pytest_asyncio

from agents.ai.anthropic import AnthropicProvider
from agents.ai.bedrock import BedrockProvider
from agents.ai.openai import OpenAIProvider
from agents.ai.provider import Answer, Delta, Provider
from agents.exceptions import ProviderError
from schemas.ai import AIRequest, ChatMessage
from tests.loopback import AnthropicServer, BedrockServer, LoopbackServer, OpenAIServer, Reply

MODELS = {"openai": "gpt-4o-mini", "anthropic": "claude-haiku-4-5", "bedrock": "amazon.nova-lite-v1:0"}


@dataclass
class Live:
    """A provider of awe wired to its loopback server."""

    name: str
    server: LoopbackServer
    provider: Provider

    @property
    def model(self) -> str:
        return MODELS[self.name]

    def request(self, prompt: str = "say hello", **fields: object) -> AIRequest:
        return AIRequest.model_validate(
            {
                "provider": self.name,
                "model": self.model,
                "messages": [ChatMessage(role="user", content=prompt)],
                **fields,
            }
        )


@pytest.fixture(scope="module")
def servers() -> Iterator[dict[str, LoopbackServer]]:
    with OpenAIServer() as o, AnthropicServer() as a, BedrockServer() as b:
        yield {"openai": o, "anthropic": a, "bedrock": b}


@pytest_asyncio.fixture(params=list(MODELS))
async def live(
    request: pytest.FixtureRequest, servers: dict[str, LoopbackServer], monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Live]:
    name: str = request.param
    server = servers[name]
    server.reset()
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    monkeypatch.setenv("OPENAI_BASE_URL", f"{server.url}/v1")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test")
    monkeypatch.setenv("ANTHROPIC_BASE_URL", server.url)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDTEST")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    provider: Provider
    if name == "openai":
        provider = OpenAIProvider()
    elif name == "anthropic":
        provider = AnthropicProvider()
    else:
        provider = BedrockProvider(region="us-east-1", endpoint_url=server.url, threads=4)
    yield Live(name, server, provider)
    await provider.aclose()


async def _collect(provider: Provider, request: AIRequest) -> tuple[list[str], Answer]:
    deltas: list[str] = []
    async for item in provider.stream(request, timeout_s=10):
        if isinstance(item, Delta):
            deltas.append(item.text)
        else:
            return deltas, item
    raise AssertionError("the stream ended without an answer")


async def _failure(live: Live, reply: Reply, *, stream: bool = False, timeout_s: float = 10) -> ProviderError:
    live.server.plan(live.model, reply)
    call = (
        _collect(live.provider, live.request())
        if stream
        else live.provider.complete(live.request(), timeout_s=timeout_s)
    )
    with pytest.raises(ProviderError) as caught:
        await call
    return caught.value


@pytest.mark.asyncio
async def test_complete_returns_the_answer_and_the_providers_usage(live: Live) -> None:
    live.server.plan(live.model, Reply.ok("Hello there.", input_tokens=12, output_tokens=3, cached_tokens=4))
    answer = await live.provider.complete(live.request(system="be brief", max_tokens=50), timeout_s=10)
    assert answer.text == "Hello there."
    assert answer.finish_reason == "stop"
    assert answer.usage.output_tokens == 3 and answer.usage.cached_tokens == 4
    # Anthropic and Bedrock count cache reads apart from input tokens; awe counts them in both.
    expected_input = 12 if live.name == "openai" else 16
    assert answer.usage.input_tokens == expected_input
    (seen,) = live.server.requests
    assert not seen.stream
    assert "be brief" in str(seen.body)


@pytest.mark.asyncio
async def test_stream_yields_deltas_that_join_to_the_answer_then_the_usage(live: Live) -> None:
    live.server.plan(live.model, Reply.ok("one two three four five", input_tokens=7, output_tokens=5))
    deltas, answer = await _collect(live.provider, live.request())
    assert len(deltas) == 5
    assert "".join(deltas) == answer.text == "one two three four five"
    assert (answer.usage.input_tokens, answer.usage.output_tokens) == (7, 5)
    assert answer.finish_reason == "stop"
    assert live.server.requests[0].stream


@pytest.mark.asyncio
async def test_a_rate_limit_is_retryable_and_carries_retry_after(live: Live) -> None:
    error = await _failure(live, Reply.error(429, "slow down please", retry_after=2))
    assert (error.code, error.retryable) == ("rate_limited", True)
    assert "slow down please" in error.message and live.name in error.message
    if live.name != "bedrock":  # Bedrock sends no Retry-After
        assert error.retry_after == 2
    assert live.server.count() == 1  # the SDK's own retries are off: awe's durable retries decide


@pytest.mark.asyncio
async def test_a_server_error_is_retryable(live: Live) -> None:
    error = await _failure(live, Reply.error(500, "internal trouble"))
    assert (error.code, error.retryable) == ("server_error", True)
    assert "internal trouble" in error.message


@pytest.mark.asyncio
async def test_overloaded_is_retryable(live: Live) -> None:
    status = 529 if live.name == "anthropic" else 503
    error = await _failure(live, Reply.error(status, "too busy"))
    assert (error.code, error.retryable) == ("overloaded", True)


@pytest.mark.asyncio
async def test_a_bad_key_is_not_retryable(live: Live) -> None:
    status = 403 if live.name == "bedrock" else 401
    error = await _failure(live, Reply.error(status, "invalid key xyz"))
    assert (error.code, error.retryable) == ("authentication", False)
    assert "invalid key xyz" in error.message


@pytest.mark.asyncio
async def test_an_invalid_request_is_not_retryable(live: Live) -> None:
    error = await _failure(live, Reply.error(400, "max_tokens is too large"))
    assert (error.code, error.retryable) == ("invalid_request", False)
    assert "max_tokens is too large" in error.message


@pytest.mark.asyncio
async def test_an_error_in_the_middle_of_a_stream_is_mapped(live: Live) -> None:
    error = await _failure(
        live, Reply.error(429 if live.name != "openai" else 500, "mid-stream", after_deltas=2), stream=True
    )
    assert error.retryable


@pytest.mark.asyncio
async def test_no_answer_within_the_timeout_is_a_retryable_timeout(live: Live) -> None:
    error = await _failure(live, Reply.slow(3), timeout_s=0.5)
    assert (error.code, error.retryable) == ("timeout", True)


@pytest.mark.asyncio
async def test_a_refusal_reads_as_content_filter(live: Live) -> None:
    live.server.plan(live.model, Reply.refusal("I cannot help with that"))
    answer = await live.provider.complete(live.request(), timeout_s=10)
    assert answer.finish_reason == "content_filter"


@pytest.mark.asyncio
async def test_missing_credentials_name_the_variable_to_set(live: Live, monkeypatch: pytest.MonkeyPatch) -> None:
    for var in (
        "OPENAI_API_KEY",
        "ANTHROPIC_API_KEY",
        "ANTHROPIC_AUTH_TOKEN",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
    ):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    provider = (
        BedrockProvider(region="us-east-1", endpoint_url=live.server.url)
        if live.name == "bedrock"
        else type(live.provider)()
    )
    with pytest.raises(ProviderError) as caught:
        provider.check_credentials()
    await provider.aclose()
    assert (caught.value.code, caught.value.retryable) == ("missing_credentials", False)
    wanted = {"openai": "OPENAI_API_KEY", "anthropic": "ANTHROPIC_API_KEY", "bedrock": "AWS_ACCESS_KEY_ID"}[live.name]
    assert wanted in caught.value.message
