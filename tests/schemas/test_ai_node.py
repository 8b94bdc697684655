"""The ``ai`` node in a definition: what is accepted and how each mistake is reported."""

from __future__ import annotations

from typing import Any

import pytest

from schemas.ai import Usage, UsageTotals
from schemas.definition import AiNode
from schemas.exceptions import DefinitionError
from schemas.validation import validate_definition


def _define(**node: Any) -> Any:
    spec = {"kind": "ai", "provider": "openai", "model": "gpt-4o-mini", **node}
    return validate_definition({"name": "wf", "inputs": {"q": {"type": "string"}}, "nodes": {"a": spec}})


def _problems(**node: Any) -> list[str]:
    with pytest.raises(DefinitionError) as caught:
        _define(**node)
    return [f"{p.path}: {p.message}" for p in caught.value.problems]


def test_a_full_ai_node_validates_and_keeps_the_schema_spelling() -> None:
    definition = _define(
        system="Be brief",
        prompt="Answer {{ inputs.q }}",
        temperature=0.2,
        max_tokens=200,
        stop="END",
        response={"format": "json", "schema": {"type": "object", "required": ["answer"]}},
        fallback=[{"provider": "anthropic", "model": "claude-haiku-4-5"}],
        stream=False,
        retry={"max_attempts": 2},
        timeout="30s",
    )
    node = definition.nodes["a"]
    assert isinstance(node, AiNode)
    assert node.stop == ["END"]
    assert [c.provider for c in node.candidates()] == ["openai", "anthropic"]
    dumped = definition.model_dump(mode="json")["nodes"]["a"]["response"]
    assert dumped == {"format": "json", "schema": {"type": "object", "required": ["answer"]}}
    assert validate_definition(definition.model_dump(mode="json")) == definition


def test_messages_instead_of_a_prompt() -> None:
    definition = _define(
        messages=[{"role": "user", "content": "{{ inputs.q }}"}, {"role": "assistant", "content": "ok"}]
    )
    node = definition.nodes["a"]
    assert isinstance(node, AiNode) and node.messages is not None and len(node.messages) == 2


@pytest.mark.parametrize(
    ("node", "fragment"),
    [
        ({}, "exactly one of prompt or messages"),
        ({"prompt": "a", "messages": [{"role": "user", "content": "b"}]}, "exactly one of prompt or messages"),
        ({"prompt": "a", "provider": "openia"}, "unknown provider 'openia'"),
        ({"prompt": "a", "fallback": [{"provider": "nope", "model": "m"}]}, "unknown provider 'nope'"),
        ({"prompt": "a", "response": {"schema": {"type": "object"}}}, "needs response.format: json"),
        ({"prompt": "a", "response": {"format": "json", "schema": {"type": 12}}}, "not a valid JSON Schema"),
        ({"prompt": "{{ inputs.nope }}"}, "unknown input 'nope'"),
        ({"prompt": "a", "temperature": 3}, "temperature"),
        ({"prompt": "a", "messages": None, "stream": "sometimes"}, "stream"),
    ],
)
def test_mistakes_are_reported_with_their_path(node: dict[str, Any], fragment: str) -> None:
    problems = _problems(**node)
    assert any(fragment in p and p.startswith("nodes.a") for p in problems), problems


def test_usage_totals_count_the_calls_they_could_not_price() -> None:
    totals = UsageTotals().add(Usage(input_tokens=10, output_tokens=2), 0.5).add(Usage(input_tokens=3), None)
    assert (totals.calls, totals.input_tokens, totals.cost_usd, totals.unpriced_calls) == (2, 13, 0.5, 1)
