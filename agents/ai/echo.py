"""The ``echo`` provider: answers from the prompt itself, with no key and no network.

For demos and orchestration tests: the answer is deterministic (the same request always gets the same
answer, so replays agree), a JSON answer is built to fit the requested schema, and every call is marked
``simulated`` on the log. Tokens are counted as words, which is close enough to watch budgets work.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import orjson

from agents.ai.provider import Answer, Delta, Provider
from schemas.ai import AIRequest, Usage

_WORD = re.compile(r"\S+\s*")


class EchoProvider(Provider):
    """Answers ``echo: <the last user message>``, or JSON that fits the response schema."""

    name = "echo"
    simulated = True

    def check_credentials(self) -> None:
        """Echo needs none."""

    async def complete(self, request: AIRequest, *, timeout_s: float) -> Answer:
        return _answer(request)

    async def stream(self, request: AIRequest, *, timeout_s: float) -> AsyncIterator[Delta | Answer]:
        answer = _answer(request)
        for piece in _WORD.findall(answer.text):
            yield Delta(piece)
        yield answer


def _answer(request: AIRequest) -> Answer:
    prompt = next((m.content for m in reversed(request.messages) if m.role == "user"), "")
    if request.response.format == "json":
        text = orjson.dumps(_example(request.response.json_schema or {}, prompt)).decode()
    else:
        text = f"echo: {prompt}"
    limit = request.max_tokens
    words = _WORD.findall(text)
    finish = "stop"
    if limit is not None and len(words) > limit and request.response.format == "text":
        text, finish = "".join(words[:limit]).rstrip(), "length"
    prompt_words = sum(len(m.content.split()) for m in request.messages) + len((request.system or "").split())
    return Answer(
        text=text,
        model=request.model,
        finish_reason=finish,
        usage=Usage(input_tokens=prompt_words, output_tokens=len(_WORD.findall(text))),
    )


def _example(schema: dict[str, Any], prompt: str) -> Any:
    """A value that fits ``schema`` (the common keywords), built from the prompt where text is wanted."""
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        return schema["enum"][0]
    kind = schema.get("type", "object" if "properties" in schema else "string")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object":
        properties: dict[str, Any] = schema.get("properties", {})
        if not properties:
            return {"echo": prompt}
        return {name: _example(sub, prompt) for name, sub in properties.items()}
    if kind == "array":
        return [_example(schema.get("items", {}), prompt) for _ in range(schema.get("minItems", 1))]
    if kind in ("integer", "number"):
        low = schema.get("minimum", 0)
        return int(low) if kind == "integer" else float(low)
    if kind == "boolean":
        return True
    if kind == "null":
        return None
    return prompt[: schema["maxLength"]] if "maxLength" in schema else prompt
