"""The echo provider: deterministic, schema-fitting, marked simulated."""

from __future__ import annotations

import json

import pytest
from jsonschema import validate

from agents.ai.echo import EchoProvider
from agents.ai.provider import Answer, Delta
from schemas.ai import AIRequest, ChatMessage, ResponseSpec


def _request(prompt: str, **fields: object) -> AIRequest:
    return AIRequest.model_validate(
        {"provider": "echo", "model": "echo-1", "messages": [ChatMessage(role="user", content=prompt)], **fields}
    )


@pytest.mark.asyncio
async def test_echo_answers_from_the_prompt_and_streams_the_same_answer() -> None:
    provider = EchoProvider()
    assert provider.simulated
    answer = await provider.complete(_request("hello there world"), timeout_s=1)
    assert answer.text == "echo: hello there world"
    assert answer.usage.input_tokens == 3 and answer.usage.output_tokens == 4
    items = [item async for item in provider.stream(_request("hello there world"), timeout_s=1)]
    deltas = [i.text for i in items if isinstance(i, Delta)]
    assert len(deltas) == 4 and "".join(deltas) == answer.text
    assert items[-1] == answer and isinstance(items[-1], Answer)


@pytest.mark.asyncio
async def test_a_json_answer_fits_its_schema() -> None:
    schema = {
        "type": "object",
        "required": ["label", "score", "tags"],
        "properties": {
            "label": {"enum": ["urgent", "normal"]},
            "score": {"type": "number", "minimum": 0.5},
            "tags": {"type": "array", "items": {"type": "string"}, "minItems": 2},
            "ok": {"type": "boolean"},
        },
    }
    request = _request("classify this", response=ResponseSpec.model_validate({"format": "json", "schema": schema}))
    answer = await EchoProvider().complete(request, timeout_s=1)
    validate(json.loads(answer.text), schema)
