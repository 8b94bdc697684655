"""The ``ai`` node kind: one model call per attempt, streamed to ``awe.tokens`` as it is written.

Before calling, the executor checks the provider's credentials (missing ones fail at once, naming what to
set) and the budgets. The answer comes back as the node's output and as an :class:`AICall` that the
orchestrator records before the run moves on. A JSON answer that does not parse or fit its schema, or an
answer stopped by a content filter, fails the attempt but is recorded all the same: it was paid for.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import orjson
from jsonschema import Draft202012Validator

from agents import metrics
from agents.ai.budgets import Budgets
from agents.ai.pricing import PricingTable
from agents.ai.provider import Answer, Delta, Provider
from agents.ai.registry import Providers
from agents.exceptions import ProviderError
from agents.executors.base import Outcome
from agents.metrics import AI_CALLS, AI_COST, AI_DURATION, AI_TOKENS, BUDGET_REJECTIONS
from schemas.ai import AICall, AIRequest, ChatMessage, ResponseSpec, TokenDelta, UsageTotals
from schemas.tasks import Task
from streams.codec import encode
from streams.producer import RecordProducer
from streams.usage import UsageLedger, utc_day

log = logging.getLogger("awe.executor.ai")


class AiHandler:
    """Carries out ``ai`` tasks: budget check, the call (streamed or not), pricing, answer checks."""

    def __init__(
        self,
        providers: Providers,
        *,
        pricing: PricingTable,
        budgets: Budgets,
        default_timeout_s: float,
        tokens: RecordProducer | None = None,
        tokens_topic: str | None = None,
        ledger: UsageLedger | None = None,
    ) -> None:
        self.providers = providers
        self.pricing = pricing
        self.budgets = budgets
        self.default_timeout_s = default_timeout_s
        self.tokens = tokens
        self.tokens_topic = tokens_topic
        self.ledger = ledger

    async def __call__(self, task: Task) -> Outcome:
        request = _request(task.params)
        try:
            outcome = await self._call(task, request)
        except ProviderError as err:
            if not metrics.ENABLED:
                raise
            AI_CALLS.labels(request.provider, request.model, task.tenant_id, err.code).inc()
            if err.code == "budget_exceeded":
                BUDGET_REJECTIONS.labels(task.tenant_id).inc()
            if err.call is not None:
                _count_usage(task, err.call)
            raise
        assert outcome.call is not None
        if not metrics.ENABLED:
            return outcome
        AI_CALLS.labels(request.provider, request.model, task.tenant_id, "ok").inc()
        _count_usage(task, outcome.call)
        return outcome

    async def _call(self, task: Task, request: AIRequest) -> Outcome:
        params = task.params
        provider = self.providers.get(request.provider)
        provider.check_credentials()
        workflow = params.get("workflow")
        now = time.time()
        self._check_budget(task, workflow, UsageTotals.model_validate(params.get("run_usage") or {}), now)
        timeout_s = task.timeout or self.default_timeout_s
        started = time.perf_counter()
        if request.stream:
            answer, deltas = await self._streamed(task, provider, request, timeout_s)
        else:
            answer, deltas = await provider.complete(request, timeout_s=timeout_s), 0
        latency_ms = (time.perf_counter() - started) * 1000
        cost = self.pricing.cost(request.provider, answer.model or request.model, answer.usage)
        if cost is None and not provider.simulated:
            log.warning("no price for %s model %s: its cost is recorded as null", request.provider, request.model)
        call = AICall(
            provider=request.provider,
            model=request.model,
            request=request,
            answer=answer.text,
            response_model=answer.model,
            finish_reason=answer.finish_reason,
            usage=answer.usage,
            latency_ms=latency_ms,
            cost_usd=cost,
            pricing_version=self.pricing.version if cost is not None else None,
            simulated=provider.simulated,
            streamed=request.stream,
            deltas=deltas,
        )
        if self.ledger is not None:
            key = f"{task.run_id}:{task.node_id}:{task.attempt}"
            self.ledger.note(
                key, tenant=task.tenant_id, workflow=workflow, day=utc_day(now), usage=answer.usage, cost_usd=cost
            )
        return Outcome(output=_output(request, answer, call), call=call)

    def _check_budget(self, task: Task, workflow: str | None, run: UsageTotals, now: float) -> None:
        tenant_day = workflow_day = UsageTotals()
        if self.ledger is not None:
            tenant_day, workflow_day = self.ledger.totals(task.tenant_id, workflow, utc_day(now))
        self.budgets.check(
            tenant=task.tenant_id, workflow=workflow, run=run, tenant_day=tenant_day, workflow_day=workflow_day
        )

    async def _streamed(
        self, task: Task, provider: Provider, request: AIRequest, timeout_s: float
    ) -> tuple[Answer, int]:
        index = 0
        async for item in provider.stream(request, timeout_s=timeout_s):
            if isinstance(item, Delta):
                self._publish(task, index, item.text)
                index += 1
            else:
                return item, index
        raise ProviderError(  # pragma: no cover - every provider ends its stream with the answer
            f"{request.provider} {request.model}: the stream ended without an answer",
            code="provider_error",
            retryable=True,
        )

    def _publish(self, task: Task, index: int, text: str) -> None:
        if self.tokens is None or self.tokens_topic is None:
            return
        delta = TokenDelta(
            run_id=task.run_id,
            tenant_id=task.tenant_id,
            node_id=task.node_id,
            attempt=task.attempt,
            index=index,
            text=text,
        )
        self.tokens.produce(self.tokens_topic, task.run_id, encode(delta))


def _count_usage(task: Task, call: AICall) -> None:
    labels = (call.provider, call.model)
    AI_DURATION.labels(*labels).observe(call.latency_ms / 1000)
    for direction, tokens in (
        ("input", call.usage.input_tokens),
        ("output", call.usage.output_tokens),
        ("cached", call.usage.cached_tokens),
    ):
        AI_TOKENS.labels(*labels, task.tenant_id, direction).inc(tokens)
    if call.cost_usd is not None:
        AI_COST.labels(*labels, task.tenant_id).inc(call.cost_usd)


def _request(params: dict[str, Any]) -> AIRequest:
    messages = params.get("messages")
    if messages is None:
        messages = [ChatMessage(role="user", content=_text(params.get("prompt")))]
    else:
        messages = [ChatMessage(role=m["role"], content=_text(m["content"])) for m in messages]
    system = params.get("system")
    return AIRequest(
        provider=str(params["provider"]),
        model=str(params["model"]),
        system=_text(system) if system is not None else None,
        messages=messages,
        temperature=params.get("temperature"),
        max_tokens=params.get("max_tokens"),
        stop=params.get("stop"),
        response=ResponseSpec.model_validate(params.get("response") or {}),
        stream=bool(params.get("stream", True)),
    )


def _text(value: Any) -> str:
    # A template that is one expression renders to its native value; a model is sent text.
    return value if isinstance(value, str) else orjson.dumps(value).decode()


def _output(request: AIRequest, answer: Answer, call: AICall) -> dict[str, Any]:
    failure = {"provider": request.provider, "model": request.model}
    if answer.finish_reason == "content_filter":
        raise ProviderError(
            f"{request.provider} {request.model}: the answer was stopped by a content filter",
            code="content_filter",
            retryable=False,
            detail=failure,
            call=call,
        )
    output: dict[str, Any] = {
        "text": answer.text,
        "model": answer.model or request.model,
        "finish_reason": answer.finish_reason,
        "usage": answer.usage.model_dump(),
        "cost_usd": call.cost_usd,
    }
    if call.simulated:
        output["simulated"] = True
    if request.response.format == "json":
        try:
            value = orjson.loads(answer.text)
        except orjson.JSONDecodeError as err:
            raise ProviderError(
                f"{request.provider} {request.model}: the answer is not JSON: {err}",
                code="invalid_json",
                retryable=True,
                detail={**failure, "answer": answer.text[:2000]},
                call=call,
            ) from err
        schema = request.response.json_schema
        if schema is not None:
            problems = sorted(Draft202012Validator(schema).iter_errors(value), key=lambda e: list(e.path))
            if problems:
                where = "/".join(str(p) for p in problems[0].path) or "(root)"
                raise ProviderError(
                    f"{request.provider} {request.model}: the answer does not fit its schema at {where}: "
                    f"{problems[0].message}",
                    code="schema_mismatch",
                    retryable=True,
                    detail={**failure, "problems": [p.message for p in problems[:10]]},
                    call=call,
                )
        output["json"] = value
    return output
