"""The Bedrock loopback, driven through boto3's real ``bedrock-runtime`` client."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError, EventStreamError, ReadTimeoutError

from tests.loopback import BedrockServer, Reply

MODEL = "anthropic.claude-3-5-haiku-20241022-v1:0"
HELLO = [{"role": "user", "content": [{"text": "say hello world"}]}]


def make_client(server: BedrockServer, **config: Any) -> Any:
    """A bedrock-runtime client with dummy credentials (signatures are not checked) and no retries."""
    # total_max_attempts=1: botocore's default retry mode would retry throttles and 5xx behind the test's back.
    return boto3.client(
        "bedrock-runtime",
        endpoint_url=server.url,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
        config=Config(retries={"total_max_attempts": 1}, **config),
    )


@pytest.fixture
def client(bedrock_server: BedrockServer) -> Iterator[Any]:
    client = make_client(bedrock_server)
    yield client
    client.close()


def read_deltas(stream: Any, into: list[str]) -> None:
    for event in stream:
        if "contentBlockDelta" in event:
            into.append(event["contentBlockDelta"]["delta"]["text"])


def test_converse_echoes_the_last_user_message_with_word_count_usage(client: Any) -> None:
    response = client.converse(modelId=MODEL, system=[{"text": "be brief"}], messages=HELLO)

    assert response["output"]["message"] == {"role": "assistant", "content": [{"text": "echo: say hello world"}]}
    assert response["stopReason"] == "end_turn"
    assert response["usage"] == {
        "inputTokens": 5,
        "outputTokens": 4,
        "totalTokens": 9,
        "cacheReadInputTokens": 0,
        "cacheWriteInputTokens": 0,
    }
    assert response["metrics"]["latencyMs"] >= 0
    assert response["ResponseMetadata"]["RequestId"]


def test_scripted_text_and_usage_are_reported(bedrock_server: BedrockServer, client: Any) -> None:
    bedrock_server.plan(MODEL, Reply.ok('{"a": 1}', input_tokens=20, output_tokens=7, cached_tokens=80))

    response = client.converse(modelId=MODEL, messages=HELLO)

    assert response["output"]["message"]["content"] == [{"text": '{"a": 1}'}]
    usage = response["usage"]
    assert (usage["inputTokens"], usage["outputTokens"], usage["cacheReadInputTokens"]) == (20, 7, 80)
    assert usage["totalTokens"] == 107


def test_converse_stream_decodes_through_botocore(client: Any) -> None:
    response = client.converse_stream(modelId=MODEL, messages=HELLO)
    events = list(response["stream"])

    assert [next(iter(e)) for e in events] == [
        "messageStart",
        *["contentBlockDelta"] * 4,
        "contentBlockStop",
        "messageStop",
        "metadata",
    ]
    assert events[0]["messageStart"] == {"role": "assistant"}
    deltas = [e["contentBlockDelta"]["delta"]["text"] for e in events if "contentBlockDelta" in e]
    assert deltas == ["echo: ", "say ", "hello ", "world"]
    assert events[-2]["messageStop"] == {"stopReason": "end_turn"}
    assert events[-1]["metadata"]["usage"]["outputTokens"] == 4
    assert "latencyMs" in events[-1]["metadata"]["metrics"]


def test_throttling_carries_retry_after(bedrock_server: BedrockServer, client: Any) -> None:
    bedrock_server.plan(MODEL, Reply.error(429, "Too many requests", retry_after=3))

    with pytest.raises(client.exceptions.ThrottlingException) as caught:
        client.converse(modelId=MODEL, messages=HELLO)

    response = caught.value.response
    assert response["Error"] == {"Code": "ThrottlingException", "Message": "Too many requests"}
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 429
    # botocore never reads retry-after itself; it is only visible among the raw headers.
    assert response["ResponseMetadata"]["HTTPHeaders"]["retry-after"] == "3"
    assert bedrock_server.count(MODEL) == 1


@pytest.mark.parametrize(
    ("status", "code", "sent"),
    [
        (400, "ValidationException", 400),
        (401, "UnrecognizedClientException", 403),
        (403, "AccessDeniedException", 403),
        (408, "ModelTimeoutException", 408),
        (500, "InternalServerException", 500),
        (503, "ServiceUnavailableException", 503),
    ],
)
def test_status_maps_to_the_bedrock_error(
    bedrock_server: BedrockServer, client: Any, status: int, code: str, sent: int
) -> None:
    bedrock_server.plan(MODEL, Reply.error(status, "scripted"))

    with pytest.raises(ClientError) as caught:
        client.converse(modelId=MODEL, messages=HELLO)

    assert caught.value.response["Error"] == {"Code": code, "Message": "scripted"}
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == sent
    # Modelled errors get their own class; UnrecognizedClientException is not in the model, so stays a ClientError.
    modelled = getattr(client.exceptions, code, None)
    assert modelled is None or isinstance(caught.value, modelled)


def test_converse_stream_fails_before_the_stream(bedrock_server: BedrockServer, client: Any) -> None:
    bedrock_server.plan(MODEL, Reply.error(503, "Service unavailable"))

    with pytest.raises(client.exceptions.ServiceUnavailableException):
        client.converse_stream(modelId=MODEL, messages=HELLO)


def test_error_after_deltas_is_an_event_stream_exception(bedrock_server: BedrockServer, client: Any) -> None:
    bedrock_server.plan(MODEL, Reply.error(429, "throttled mid-stream", after_deltas=2))
    deltas: list[str] = []

    stream = client.converse_stream(modelId=MODEL, messages=HELLO)["stream"]
    with pytest.raises(EventStreamError) as caught:
        read_deltas(stream, deltas)
    # botocore neither closes nor releases the connection when a stream raises: the caller must.
    stream.close()

    assert deltas == ["echo: ", "say "]
    assert caught.value.response["Error"] == {"Code": "throttlingException", "Message": "throttled mid-stream"}


def test_slow_reply_times_out_the_client(bedrock_server: BedrockServer) -> None:
    bedrock_server.plan(MODEL, Reply.slow(5.0))
    client = make_client(bedrock_server, read_timeout=0.2)
    try:
        with pytest.raises(ReadTimeoutError):
            client.converse(modelId=MODEL, messages=HELLO)
        assert client.converse(modelId=MODEL, messages=HELLO)["stopReason"] == "end_turn"
    finally:
        client.close()


def test_refusal_is_content_filtered(bedrock_server: BedrockServer, client: Any) -> None:
    bedrock_server.plan(MODEL, Reply.refusal(), Reply.refusal())

    response = client.converse(modelId=MODEL, messages=HELLO)
    events = list(client.converse_stream(modelId=MODEL, messages=HELLO)["stream"])

    assert response["stopReason"] == "content_filtered"
    assert [e["messageStop"]["stopReason"] for e in events if "messageStop" in e] == ["content_filtered"]
    assert not [e for e in events if "contentBlockDelta" in e]


def test_plan_is_fifo_per_model_then_default(bedrock_server: BedrockServer, client: Any) -> None:
    bedrock_server.plan(MODEL, Reply.ok("first"), Reply.ok("second"))

    texts = [client.converse(modelId=MODEL, messages=HELLO)["output"]["message"]["content"][0]["text"] for _ in "123"]

    assert texts == ["first", "second", "echo: say hello world"]


def test_requests_are_recorded_under_the_decoded_model_id(bedrock_server: BedrockServer, client: Any) -> None:
    arn = "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-3-5-haiku-20241022-v1:0"
    client.converse(modelId=MODEL, messages=HELLO, inferenceConfig={"maxTokens": 64})
    list(client.converse_stream(modelId=arn, messages=HELLO)["stream"])

    first, second = bedrock_server.requests
    assert (first.path, first.model, first.stream) == (f"/model/{MODEL}/converse", MODEL, False)
    assert first.body == {"messages": HELLO, "inferenceConfig": {"maxTokens": 64}}
    assert first.headers["authorization"].startswith("AWS4-HMAC-SHA256 Credential=test/")
    assert (second.model, second.stream) == (arn, True)
    assert (bedrock_server.count(MODEL), bedrock_server.count(arn)) == (1, 1)
