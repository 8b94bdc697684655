"""The OpenAI loopback, driven through the real ``openai.AsyncOpenAI``."""

from __future__ import annotations

from collections.abc import AsyncIterator

import openai
import pytest
import pytest_asyncio
from openai.types.chat import ChatCompletionChunk, ChatCompletionMessageParam

from tests.loopback import OpenAIServer, Reply

MODEL = "gpt-4o-mini"
HELLO: list[ChatCompletionMessageParam] = [
    {"role": "system", "content": "be brief"},
    {"role": "user", "content": "say hello world"},
]


@pytest_asyncio.fixture
async def client(openai_server: OpenAIServer) -> AsyncIterator[openai.AsyncOpenAI]:
    # max_retries=0: the SDK's default of 2 retries would hide every scripted 429/5xx behind a retry.
    async with openai.AsyncOpenAI(base_url=openai_server.base_url, api_key="sk-test", max_retries=0) as client:
        yield client


async def answer(client: openai.AsyncOpenAI, model: str) -> str | None:
    completion = await client.chat.completions.create(model=model, messages=HELLO)
    return completion.choices[0].message.content


async def read_deltas(stream: openai.AsyncStream[ChatCompletionChunk], into: list[str]) -> None:
    async for chunk in stream:
        into.append(chunk.choices[0].delta.content or "")


@pytest.mark.asyncio
async def test_completion_echoes_the_last_user_message_with_word_count_usage(client: openai.AsyncOpenAI) -> None:
    completion = await client.chat.completions.create(model=MODEL, messages=HELLO)

    assert completion.object == "chat.completion"
    assert completion.model == MODEL
    assert completion.choices[0].message.role == "assistant"
    assert completion.choices[0].message.content == "echo: say hello world"
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (5, 4)
    assert completion.usage.total_tokens == 9
    assert completion._request_id is not None


@pytest.mark.asyncio
async def test_scripted_text_and_usage_are_reported(openai_server: OpenAIServer, client: openai.AsyncOpenAI) -> None:
    openai_server.plan(MODEL, Reply.ok('{"a": 1}', input_tokens=100, output_tokens=7, cached_tokens=64))

    completion = await client.chat.completions.create(model=MODEL, messages=HELLO)

    assert completion.choices[0].message.content == '{"a": 1}'
    assert completion.usage is not None
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens, completion.usage.total_tokens) == (
        100,
        7,
        107,
    )
    assert completion.usage.prompt_tokens_details is not None
    assert completion.usage.prompt_tokens_details.cached_tokens == 64


@pytest.mark.asyncio
async def test_stream_sends_several_deltas_a_finish_and_usage(client: openai.AsyncOpenAI) -> None:
    stream = await client.chat.completions.create(
        model=MODEL, messages=HELLO, stream=True, stream_options={"include_usage": True}
    )
    chunks = [chunk async for chunk in stream]

    deltas = [c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content]
    assert deltas == ["echo: ", "say ", "hello ", "world"]
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == 4
    assert all(c.usage is None for c in chunks[:-1])


@pytest.mark.asyncio
async def test_stream_without_include_usage_has_no_usage_chunk(client: openai.AsyncOpenAI) -> None:
    stream = await client.chat.completions.create(model=MODEL, messages=HELLO, stream=True)
    chunks = [chunk async for chunk in stream]

    assert all(c.choices and c.usage is None for c in chunks)


@pytest.mark.asyncio
async def test_rate_limit_raises_with_retry_after(openai_server: OpenAIServer, client: openai.AsyncOpenAI) -> None:
    openai_server.plan(MODEL, Reply.error(429, "Rate limit reached", retry_after=7))

    with pytest.raises(openai.RateLimitError) as caught:
        await client.chat.completions.create(model=MODEL, messages=HELLO)

    assert caught.value.status_code == 429
    assert caught.value.response.headers["retry-after"] == "7"
    assert caught.value.code == "rate_limit_exceeded"
    assert caught.value.message.startswith("Error code: 429")
    assert openai_server.count(MODEL) == 1


@pytest.mark.asyncio
async def test_default_retries_honour_retry_after(openai_server: OpenAIServer) -> None:
    openai_server.plan(MODEL, Reply.error(429, retry_after=0.01), Reply.error(503, retry_after=0.01))

    async with openai.AsyncOpenAI(base_url=openai_server.base_url, api_key="sk-test") as client:
        completion = await client.chat.completions.create(model=MODEL, messages=HELLO)

    assert completion.choices[0].message.content == "echo: say hello world"
    assert openai_server.count(MODEL) == 3
    assert [r.headers["x-stainless-retry-count"] for r in openai_server.requests] == ["0", "1", "2"]


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("status", "error", "kind"),
    [
        (400, openai.BadRequestError, "invalid_request_error"),
        (401, openai.AuthenticationError, "invalid_request_error"),
        (500, openai.InternalServerError, "server_error"),
        (503, openai.InternalServerError, "server_error"),
    ],
)
async def test_status_maps_to_the_sdk_error(
    openai_server: OpenAIServer, client: openai.AsyncOpenAI, status: int, error: type[openai.APIStatusError], kind: str
) -> None:
    openai_server.plan(MODEL, Reply.error(status, "scripted"))

    with pytest.raises(error) as caught:
        await client.chat.completions.create(model=MODEL, messages=HELLO)

    assert caught.value.status_code == status
    assert caught.value.type == kind
    assert caught.value.body == {"message": "scripted", "type": kind, "param": None, "code": caught.value.code}


@pytest.mark.asyncio
async def test_slow_reply_times_out_the_client(openai_server: OpenAIServer, client: openai.AsyncOpenAI) -> None:
    openai_server.plan(MODEL, Reply.slow(5.0))

    with pytest.raises(openai.APITimeoutError):
        await client.chat.completions.create(model=MODEL, messages=HELLO, timeout=0.2)

    completion = await client.chat.completions.create(model=MODEL, messages=HELLO)
    assert completion.choices[0].message.content == "echo: say hello world"


@pytest.mark.asyncio
async def test_content_filter_finish_reason(openai_server: OpenAIServer, client: openai.AsyncOpenAI) -> None:
    openai_server.plan(MODEL, Reply.refusal(), Reply.refusal("partial"))

    completion = await client.chat.completions.create(model=MODEL, messages=HELLO)
    stream = await client.chat.completions.create(model=MODEL, messages=HELLO, stream=True)
    finishes = [c.choices[0].finish_reason async for c in stream if c.choices[0].finish_reason]

    assert completion.choices[0].finish_reason == "content_filter"
    assert completion.choices[0].message.content == ""
    assert finishes == ["content_filter"]


@pytest.mark.asyncio
async def test_error_after_deltas_breaks_the_stream(openai_server: OpenAIServer, client: openai.AsyncOpenAI) -> None:
    openai_server.plan(MODEL, Reply.error(500, "stream broke", after_deltas=2))
    stream = await client.chat.completions.create(model=MODEL, messages=HELLO, stream=True)
    seen: list[str] = []

    with pytest.raises(openai.APIError, match="stream broke"):
        await read_deltas(stream, seen)

    assert "".join(seen) == "echo: say "


@pytest.mark.asyncio
async def test_plan_is_fifo_per_model_then_default(openai_server: OpenAIServer, client: openai.AsyncOpenAI) -> None:
    openai_server.plan(MODEL, Reply.ok("first"), Reply.ok("second"))
    openai_server.plan("other", Reply.ok("other's"))

    texts = [await answer(client, MODEL) for _ in "123"]

    assert texts == ["first", "second", "echo: say hello world"]
    assert await answer(client, "other") == "other's"


@pytest.mark.asyncio
async def test_requests_are_recorded(openai_server: OpenAIServer, client: openai.AsyncOpenAI) -> None:
    await client.chat.completions.create(model=MODEL, messages=HELLO, temperature=0)
    await (await client.chat.completions.create(model="other", messages=HELLO, stream=True)).close()

    first, second = openai_server.requests
    assert (first.path, first.model, first.stream) == ("/v1/chat/completions", MODEL, False)
    assert first.body["temperature"] == 0
    assert first.body["messages"] == HELLO
    assert first.headers["authorization"] == "Bearer sk-test"
    assert (second.model, second.stream) == ("other", True)
    assert (openai_server.count(MODEL), openai_server.count("other"), openai_server.count()) == (1, 1, 2)
