"""AWS Bedrock through boto3's ``bedrock-runtime`` Converse and ConverseStream.

boto3 blocks, so every call runs in this provider's thread pool and streamed events cross back to the
event loop through a queue; the loop never waits on a socket. Credentials come from the AWS chain
(environment, profile, instance role); region, profile and endpoint from awe's settings or the usual AWS
variables. botocore's own retries are off: awe's durable retries decide.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import boto3
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
    ReadTimeoutError,
)

from agents.ai.provider import (
    Answer,
    Delta,
    Provider,
    connection_error,
    missing_credentials,
    parse_retry_after,
    status_error,
    timeout_error,
)
from agents.exceptions import ProviderError
from schemas.ai import AIRequest, FinishReason, Usage

T = TypeVar("T")

_FINISH: dict[str, FinishReason] = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "content_filtered": "content_filter",
    "guardrail_intervened": "content_filter",
    "tool_use": "tool_calls",
}

#: Bedrock's error codes as HTTP statuses, for errors that arrive inside an event stream without one.
_CODE_STATUS = {
    "ThrottlingException": 429,
    "ServiceUnavailableException": 503,
    "ModelNotReadyException": 503,
    "ModelTimeoutException": 408,
    "InternalServerException": 500,
    "ModelErrorException": 500,
    "ModelStreamErrorException": 500,
    "ValidationException": 400,
    "ResourceNotFoundException": 404,
    "AccessDeniedException": 403,
    "UnrecognizedClientException": 403,
    "ExpiredTokenException": 403,
}

_END = object()


class BedrockProvider(Provider):
    """Converse (JSON) and ConverseStream (AWS event-stream framing), in a thread pool."""

    name = "bedrock"

    def __init__(
        self,
        *,
        region: str | None = None,
        profile: str | None = None,
        endpoint_url: str | None = None,
        threads: int = 16,
    ) -> None:
        self._session = boto3.Session(profile_name=profile, region_name=region)
        self._endpoint_url = endpoint_url
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="awe-bedrock")
        self._clients: dict[float, Any] = {}
        self._lock = threading.Lock()

    def check_credentials(self) -> None:
        if self._session.get_credentials() is None:
            raise missing_credentials(
                self.name, "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE (the AWS credential chain)"
            )
        if self._session.region_name is None:
            raise missing_credentials(self.name, "set AWS_REGION or AWE_BEDROCK_REGION")

    def _client(self, timeout: float) -> Any:
        # One client per timeout: botocore fixes the read timeout when the client is made. Clients are
        # thread-safe once made; making them is not, hence the lock.
        with self._lock:
            client = self._clients.get(timeout)
            if client is None:
                config = Config(
                    read_timeout=timeout,
                    connect_timeout=min(timeout, 10.0),
                    retries={"total_max_attempts": 1},
                    max_pool_connections=self._pool._max_workers,
                )
                client = self._session.client("bedrock-runtime", endpoint_url=self._endpoint_url, config=config)
                self._clients[timeout] = client
            return client

    async def _in_pool(self, call: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._pool, call)

    async def aclose(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    async def complete(self, request: AIRequest, *, timeout_s: float) -> Answer:
        params = _params(request)
        try:
            response = await self._in_pool(lambda: self._client(timeout_s).converse(**params))
        except (BotoCoreError, ClientError) as err:
            raise _mapped(err, request, timeout_s) from err
        content = response.get("output", {}).get("message", {}).get("content", [])
        return Answer(
            text="".join(block.get("text", "") for block in content),
            model=request.model,
            finish_reason=_FINISH.get(response.get("stopReason", ""), "other"),
            usage=_usage(response.get("usage")),
        )

    async def stream(self, request: AIRequest, *, timeout_s: float) -> AsyncIterator[Delta | Answer]:
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[Any] = asyncio.Queue()
        stopped = threading.Event()
        params = _params(request)

        def pump() -> None:
            try:
                events = self._client(timeout_s).converse_stream(**params)["stream"]
                try:
                    for event in events:
                        if stopped.is_set():
                            break
                        loop.call_soon_threadsafe(queue.put_nowait, event)
                finally:
                    events.close()
                loop.call_soon_threadsafe(queue.put_nowait, _END)
            except Exception as err:  # handed to the loop, which maps it
                loop.call_soon_threadsafe(queue.put_nowait, err)

        worker = loop.run_in_executor(self._pool, pump)
        parts: list[str] = []
        finish: FinishReason = "other"
        usage = Usage()
        try:
            while (event := await queue.get()) is not _END:
                if isinstance(event, BotoCoreError | ClientError):
                    raise _mapped(event, request, timeout_s) from event
                if isinstance(event, BaseException):
                    raise event
                if "contentBlockDelta" in event:
                    text = event["contentBlockDelta"].get("delta", {}).get("text")
                    if text:
                        parts.append(text)
                        yield Delta(text)
                elif "messageStop" in event:
                    finish = _FINISH.get(event["messageStop"].get("stopReason", ""), "other")
                elif "metadata" in event:
                    usage = _usage(event["metadata"].get("usage"))
        finally:
            stopped.set()
            await asyncio.wait([worker])
        yield Answer(text="".join(parts), model=request.model, finish_reason=finish, usage=usage)


def _params(request: AIRequest) -> dict[str, Any]:
    params: dict[str, Any] = {
        "modelId": request.model,
        "messages": [{"role": m.role, "content": [{"text": m.content}]} for m in request.messages],
    }
    if request.system:
        params["system"] = [{"text": request.system}]
    inference: dict[str, Any] = {}
    if request.max_tokens is not None:
        inference["maxTokens"] = request.max_tokens
    if request.temperature is not None:
        inference["temperature"] = request.temperature
    if request.stop:
        inference["stopSequences"] = request.stop
    if inference:
        params["inferenceConfig"] = inference
    return params


def _usage(usage: Any) -> Usage:
    if not isinstance(usage, dict):
        return Usage()
    cached = usage.get("cacheReadInputTokens") or 0
    return Usage(
        input_tokens=(usage.get("inputTokens") or 0) + cached + (usage.get("cacheWriteInputTokens") or 0),
        output_tokens=usage.get("outputTokens") or 0,
        cached_tokens=cached,
    )


def _mapped(err: BotoCoreError | ClientError, request: AIRequest, timeout: float) -> ProviderError:
    model = request.model
    if isinstance(err, ReadTimeoutError | ConnectTimeoutError):
        return timeout_error("bedrock", model, timeout)
    if isinstance(err, EndpointConnectionError | ConnectionClosedError):
        return connection_error("bedrock", model, err)
    if isinstance(err, NoCredentialsError):
        return missing_credentials("bedrock", "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE")
    if isinstance(err, NoRegionError):
        return missing_credentials("bedrock", "set AWS_REGION or AWE_BEDROCK_REGION")
    if isinstance(err, ClientError):
        error = err.response.get("Error", {})
        meta = err.response.get("ResponseMetadata", {})
        code = str(error.get("Code", ""))
        status = meta.get("HTTPStatusCode") or _CODE_STATUS.get(code, 500)
        if status == 200:  # an error event inside the stream
            status = _CODE_STATUS.get(code, 500)
        message = f"{code}: {error.get('Message', err)}" if code else str(err)
        return status_error(
            "bedrock", model, int(status), message, retry_after=parse_retry_after(meta.get("HTTPHeaders"))
        )
    return ProviderError(f"bedrock {model}: {err}", code="provider_error", retryable=False)
