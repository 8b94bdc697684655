"""The Anthropic loopback, driven through the real ``anthropic.AsyncAnthropic``."""

from __future__ import annotations

from collections.abc import AsyncIterator

import anthropic
import pytest
import pytest_asyncio
from anthropic.types import MessageParam, TextBlock

from tests.loopback import AnthropicServer, Reply

MODEL = "claude-3-5-haiku-20241022"
HELLO: list[MessageParam] = [{"role": "user", "content": "say hello world"}]


@pytest_asyncio.fixture
async def client(anthropic_server: AnthropicServer) -> AsyncIterator[anthropic.AsyncAnthropic]:
    # max_retries=0: the SDK's default of 2 retries would hide every scripted 429/5xx behind a retry.
    async with anthropic.AsyncAnthropic(base_url=anthropic_server.base_url, api_key="sk-ant-test", max_retries=0) as c:
        yield c


def text_of(message: anthropic.types.Message) -> str:
    block = message.content[0]
    assert isinstance(block, TextBlock)
    return block.text


async def read_text(client: anthropic.AsyncAnthropic, into: list[str]) -> None:
    async with client.messages.stream(model=MODEL, max_tokens=64, messages=HELLO) as stream:
        async for text in stream.text_stream:
            into.append(text)


@pytest.mark.asyncio
async def test_message_echoes_the_last_user_message_with_word_count_usage(client: anthropic.AsyncAnthropic) -> None:
    message = await client.messages.create(model=MODEL, max_tokens=64, system="be brief", messages=HELLO)

    assert (message.type, message.role, message.model) == ("message", "assistant", MODEL)
    assert text_of(message) == "echo: say hello world"
    assert (message.stop_reason, message.stop_sequence) == ("end_turn", None)
    assert (message.usage.input_tokens, message.usage.output_tokens) == (5, 4)
    assert message.usage.cache_read_input_tokens == 0
    assert message._request_id is not None


@pytest.mark.asyncio
async def test_scripted_text_and_usage_are_reported(
    anthropic_server: AnthropicServer, client: anthropic.AsyncAnthropic
) -> None:
    anthropic_server.plan(MODEL, Reply.ok('{"a": 1}', input_tokens=20, output_tokens=7, cached_tokens=80))

    message = await client.messages.create(model=MODEL, max_tokens=64, messages=HELLO)

    assert text_of(message) == '{"a": 1}'
    assert (message.usage.input_tokens, message.usage.output_tokens) == (20, 7)
    assert (message.usage.cache_read_input_tokens, message.usage.cache_creation_input_tokens) == (80, 0)


@pytest.mark.asyncio
async def test_raw_stream_has_the_api_event_sequence(client: anthropic.AsyncAnthropic) -> None:
    stream = await client.messages.create(model=MODEL, max_tokens=64, messages=HELLO, stream=True)
    events = [event async for event in stream]

    # The SDK swallows "ping"; everything else arrives in the API's order.
    assert [e.type for e in events] == [
        "message_start",
        "content_block_start",
        *["content_block_delta"] * 4,
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    deltas = [e.delta.text for e in events if e.type == "content_block_delta" and e.delta.type == "text_delta"]
    assert deltas == ["echo: ", "say ", "hello ", "world"]
    final = events[-2]
    assert final.type == "message_delta"
    assert (final.delta.stop_reason, final.usage.output_tokens) == ("end_turn", 4)


@pytest.mark.asyncio
async def test_stream_helper_accumulates_the_final_message(client: anthropic.AsyncAnthropic) -> None:
    async with client.messages.stream(model=MODEL, max_tokens=64, messages=HELLO) as stream:
        pieces = [text async for text in stream.text_stream]
        message = await stream.get_final_message()

    assert len(pieces) == 4
    assert text_of(message) == "echo: say hello world"
    assert (message.usage.input_tokens, message.usage.output_tokens) == (3, 4)


@pytest.mark.asyncio
async def test_rate_limit_raises_with_retry_after(
    anthropic_server: AnthropicServer, client: anthropic.AsyncAnthropic
) -> None:
    anthropic_server.plan(MODEL, Reply.error(429, "Number of requests has exceeded your rate limit", retry_after=12))

    with pytest.raises(anthropic.RateLimitError) as caught:
        await client.messages.create(model=MODEL, max_tokens=64, messages=HELLO)

    assert caught.value.status_code == 429
    assert caught.value.response.headers["retry-after"] == "12"
    assert caught.value.type == "rate_limit_error"
    assert caught.value.request_id is not None
    assert anthropic_server.count(MODEL) == 1


@pytest.mark.asyncio
async def test_default_retries_honour_retry_after(anthropic_server: AnthropicServer) -> None:
    anthropic_server.plan(MODEL, Reply.error(529, "Overloaded", retry_after=0.01), Reply.error(429, retry_after=0.01))

    async with anthropic.AsyncAnthropic(base_url=anthropic_server.base_url, api_key="sk-ant-test") as client:
        message = await client.messages.create(model=MODEL, max_tokens=64, messages=HELLO)

    assert text_of(message) == "echo: say hello world"
    assert anthropic_server.count(MODEL) == 3


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("status", "error", "kind"),
    [
        (400, anthropic.BadRequestError, "invalid_request_error"),
        (401, anthropic.AuthenticationError, "authentication_error"),
        (500, anthropic.InternalServerError, "api_error"),
        (529, anthropic.OverloadedError, "overloaded_error"),
    ],
)
async def test_status_maps_to_the_sdk_error(
    anthropic_server: AnthropicServer,
    client: anthropic.AsyncAnthropic,
    status: int,
    error: type[anthropic.APIStatusError],
    kind: str,
) -> None:
    anthropic_server.plan(MODEL, Reply.error(status, "scripted"))

    with pytest.raises(error) as caught:
        await client.messages.create(model=MODEL, max_tokens=64, messages=HELLO)

    assert caught.value.status_code == status
    assert (caught.value.type, caught.value.api_message) == (kind, "scripted")


@pytest.mark.asyncio
async def test_slow_reply_times_out_the_client(
    anthropic_server: AnthropicServer, client: anthropic.AsyncAnthropic
) -> None:
    anthropic_server.plan(MODEL, Reply.slow(5.0))

    with pytest.raises(anthropic.APITimeoutError):
        await client.messages.create(model=MODEL, max_tokens=64, messages=HELLO, timeout=0.2)

    assert text_of(await client.messages.create(model=MODEL, max_tokens=64, messages=HELLO)) == "echo: say hello world"


@pytest.mark.asyncio
async def test_refusal_stop_reason(anthropic_server: AnthropicServer, client: anthropic.AsyncAnthropic) -> None:
    anthropic_server.plan(MODEL, Reply.refusal("I can't"), Reply.refusal())

    message = await client.messages.create(model=MODEL, max_tokens=64, messages=HELLO)
    async with client.messages.stream(model=MODEL, max_tokens=64, messages=HELLO) as stream:
        streamed = await stream.get_final_message()

    assert (message.stop_reason, text_of(message)) == ("refusal", "I can't")
    assert streamed.stop_reason == "refusal"


@pytest.mark.asyncio
async def test_error_after_deltas_breaks_the_stream(
    anthropic_server: AnthropicServer, client: anthropic.AsyncAnthropic
) -> None:
    anthropic_server.plan(MODEL, Reply.error(529, "Overloaded", after_deltas=1))
    pieces: list[str] = []

    # The status line already said 200, so the SDK can only raise its generic status error for an "error" event.
    with pytest.raises(anthropic.APIStatusError) as caught:
        await read_text(client, pieces)

    assert caught.value.type == "overloaded_error"
    assert pieces == ["echo: "]


@pytest.mark.asyncio
async def test_plan_is_fifo_per_model_then_default(
    anthropic_server: AnthropicServer, client: anthropic.AsyncAnthropic
) -> None:
    anthropic_server.plan(MODEL, Reply.ok("first"), Reply.error(401), Reply.ok("third"))

    first = await client.messages.create(model=MODEL, max_tokens=64, messages=HELLO)
    with pytest.raises(anthropic.AuthenticationError):
        await client.messages.create(model=MODEL, max_tokens=64, messages=HELLO)
    rest = [await client.messages.create(model=MODEL, max_tokens=64, messages=HELLO) for _ in "12"]

    assert [text_of(m) for m in (first, *rest)] == ["first", "third", "echo: say hello world"]


@pytest.mark.asyncio
async def test_requests_are_recorded(anthropic_server: AnthropicServer, client: anthropic.AsyncAnthropic) -> None:
    await client.messages.create(model=MODEL, max_tokens=64, messages=HELLO)
    async with client.messages.stream(model="claude-other", max_tokens=32, messages=HELLO) as stream:
        await stream.until_done()

    first, second = anthropic_server.requests
    assert (first.path, first.model, first.stream) == ("/v1/messages", MODEL, False)
    assert first.body == {"model": MODEL, "max_tokens": 64, "messages": HELLO}
    # SDK 2.x sends the key as a bearer token, no longer as x-api-key.
    assert first.headers["authorization"] == "Bearer sk-ant-test"
    assert "anthropic-version" in first.headers
    assert (second.model, second.stream, second.body["max_tokens"]) == ("claude-other", True, 32)
