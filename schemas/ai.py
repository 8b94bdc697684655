"""The AI side of the wire contract: what an ``ai`` node asks for and what an answered call records.

An answered call is one :class:`AICall`: the executor puts it on its task result, the orchestrator records
it as an ``AICallRecorded`` event before the run moves on, and that event is what replay, audits, usage
projections and budgets read. Pure: no I/O.
"""

from __future__ import annotations

from typing import Any, Literal

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError
from pydantic import BaseModel, ConfigDict, Field, model_validator

#: The providers awe ships; ``echo`` answers from the prompt itself, for demos and tests without keys.
PROVIDERS: tuple[str, ...] = ("openai", "anthropic", "bedrock", "echo")

FinishReason = Literal["stop", "length", "content_filter", "tool_calls", "other"]


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ChatMessage(_Model):
    """One turn of a conversation; ``content`` is a template in a definition, text once rendered."""

    role: Literal["user", "assistant"]
    content: str


class ResponseSpec(_Model):
    """The answer's expected shape: free text, or JSON that must parse and (if given) fit ``schema``."""

    # `schema` would shadow a BaseModel attribute, so the field has another name and keeps the spelling
    # users write on the wire.
    model_config = ConfigDict(frozen=True, extra="forbid", validate_by_name=True, serialize_by_alias=True)

    format: Literal["text", "json"] = "text"
    json_schema: dict[str, Any] | None = Field(default=None, alias="schema")

    @model_validator(mode="after")
    def _check(self) -> ResponseSpec:
        if self.json_schema is not None:
            if self.format != "json":
                raise ValueError("response.schema needs response.format: json")
            try:
                Draft202012Validator.check_schema(self.json_schema)
            except SchemaError as err:
                raise ValueError(f"response.schema is not a valid JSON Schema: {err.message}") from err
        return self


class ModelRef(_Model):
    """A provider and one of its models, as named in ``fallback``."""

    provider: str
    model: str


class Usage(_Model):
    """Tokens as the provider counted them; ``cached_tokens`` are input tokens served from its cache."""

    input_tokens: int = Field(default=0, ge=0)
    output_tokens: int = Field(default=0, ge=0)
    cached_tokens: int = Field(default=0, ge=0)

    @property
    def total_tokens(self) -> int:
        """Input plus output tokens (cached tokens are part of the input)."""
        return self.input_tokens + self.output_tokens


class UsageTotals(_Model):
    """Usage summed over calls: a run's, a tenant's day, a workflow's day."""

    calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0
    cost_usd: float = 0.0
    #: Calls whose cost is unknown (no price for the model): ``cost_usd`` leaves them out, so it is a floor.
    unpriced_calls: int = 0

    @property
    def total_tokens(self) -> int:
        """Input plus output tokens."""
        return self.input_tokens + self.output_tokens

    def add(self, usage: Usage, cost_usd: float | None) -> UsageTotals:
        """These totals with one more call."""
        return UsageTotals(
            calls=self.calls + 1,
            input_tokens=self.input_tokens + usage.input_tokens,
            output_tokens=self.output_tokens + usage.output_tokens,
            cached_tokens=self.cached_tokens + usage.cached_tokens,
            cost_usd=self.cost_usd + (cost_usd or 0.0),
            unpriced_calls=self.unpriced_calls + (cost_usd is None),
        )


class AIRequest(_Model):
    """A call as sent: the rendered system prompt and messages and the sampling parameters."""

    provider: str
    model: str
    system: str | None = None
    messages: list[ChatMessage]
    temperature: float | None = None
    max_tokens: int | None = None
    stop: list[str] | None = None
    response: ResponseSpec = Field(default_factory=ResponseSpec)
    stream: bool = True


class AICall(_Model):
    """One answered call: the request, the answer, the usage and what it cost.

    ``cost_usd`` is null when the pricing table does not know the model (never an invented number);
    ``pricing_version`` names the table that priced it. ``simulated`` marks answers of the echo provider.
    """

    provider: str
    model: str
    request: AIRequest
    answer: str
    response_model: str | None = None
    finish_reason: FinishReason = "stop"
    usage: Usage = Field(default_factory=Usage)
    latency_ms: float = 0.0
    cost_usd: float | None = None
    pricing_version: str | None = None
    simulated: bool = False
    streamed: bool = False
    deltas: int = 0


class TokenDelta(_Model):
    """One piece of an answer as it streams, the value of a record on ``awe.tokens`` (key: the run id).

    ``index`` counts the deltas of one attempt from 0, so a live view can order them and spot a gap. The
    topic is for watching only; the whole answer is recorded once, in ``AICallRecorded``.
    """

    run_id: str
    tenant_id: str
    node_id: str
    attempt: int
    index: int
    text: str
