"""``decide`` for ``ai`` nodes: the task it sends, the call it records, fallbacks and the run's usage."""

from __future__ import annotations

from typing import Any

from schemas.ai import AICall, AIRequest, ChatMessage, Usage
from schemas.errors import ErrorInfo
from schemas.state import fold, run_view
from schemas.tasks import TaskResult
from tests.agents.test_decide import RUN, TENANT, Run, payload, types


def ai(deps: list[str] | None = None, **fields: Any) -> dict[str, Any]:
    node: dict[str, Any] = {"kind": "ai", "provider": "openai", "model": "gpt-4o-mini", "prompt": "hi"}
    if deps:
        node["depends_on"] = deps
    return {**node, **fields}


def call(model: str = "gpt-4o-mini", provider: str = "openai", *, tokens: tuple[int, int] = (10, 5)) -> AICall:
    request = AIRequest(provider=provider, model=model, messages=[ChatMessage(role="user", content="hi")])
    return AICall(
        provider=provider,
        model=model,
        request=request,
        answer="hello",
        usage=Usage(input_tokens=tokens[0], output_tokens=tokens[1]),
        cost_usd=0.001,
        pricing_version="test",
    )


def answer(run: Run, node_id: str, *, ok: bool = True, error: ErrorInfo | None = None, **kw: Any) -> Any:
    n = run.attempt(node_id)
    result = TaskResult(
        task_id=f"{RUN}:{node_id}:{n}",
        run_id=RUN,
        tenant_id=TENANT,
        node_id=node_id,
        attempt=n,
        ok=ok,
        output={"text": "hello"} if ok else None,
        error=error,
        call=call(**kw),
    )
    return run.send(result)


def test_an_ai_task_carries_the_rendered_prompt_the_run_usage_and_the_workflow() -> None:
    run = Run(
        {"ask": ai(prompt="Summarise {{ inputs.text }}", system="You are {{ inputs.role }}", stream=False)},
        inputs={"text": {"type": "string"}, "role": {"type": "string"}},
    )
    decision = run.start({"text": "the ticket", "role": "terse"})
    (task,) = decision.tasks
    assert task.kind == "ai"
    assert task.params["prompt"] == "Summarise the ticket"
    assert task.params["system"] == "You are terse"
    assert task.params["provider"] == "openai" and task.params["model"] == "gpt-4o-mini"
    assert task.params["stream"] is False and task.params["workflow"] == "wf"
    assert task.params["run_usage"]["calls"] == 0
    assert "fallback" not in task.params


def test_the_answer_is_recorded_before_the_node_succeeds_and_the_run_counts_its_usage() -> None:
    run = Run({"a": ai(), "b": ai(["a"], prompt="{{ nodes.a.output.text }}!")})
    run.start()
    decision = answer(run, "a", tokens=(10, 5))
    assert types(decision)[:2] == ["AICallRecorded", "NodeSucceeded"]
    recorded = payload(decision, "AICallRecorded")
    assert recorded["node_id"] == "a" and recorded["attempt"] == 1 and recorded["workflow"] == "wf"
    assert recorded["usage"] == {"input_tokens": 10, "output_tokens": 5, "cached_tokens": 0}
    assert recorded["request"]["messages"] == [{"role": "user", "content": "hi"}]
    (task,) = decision.tasks
    assert task.params["prompt"] == "hello!"
    assert task.params["run_usage"] == {
        "calls": 1,
        "input_tokens": 10,
        "output_tokens": 5,
        "cached_tokens": 0,
        "cost_usd": 0.001,
        "unpriced_calls": 0,
    }
    answer(run, "b", tokens=(1, 2))
    assert run.status() == "succeeded"
    assert run.state.usage.calls == 2 and run.state.usage.total_tokens == 18
    assert run_view(run.state)["usage"]["calls"] == 2
    assert fold(RUN, run.events) == run.state


def test_an_answer_that_failed_its_schema_is_recorded_and_retried() -> None:
    run = Run({"a": ai(response={"format": "json"}, retry={"max_attempts": 2, "initial_delay": "1s"})})
    run.start()
    error = ErrorInfo(code="invalid_json", message="not JSON", retryable=True)
    decision = answer(run, "a", ok=False, error=error)
    assert types(decision) == ["AICallRecorded", "NodeRetrying"]
    assert run.state.usage.calls == 1


def test_fallbacks_are_tried_in_order_once_each_models_attempts_are_spent() -> None:
    run = Run(
        {
            "a": ai(
                retry={"max_attempts": 2, "initial_delay": "1s"},
                fallback=[
                    {"provider": "anthropic", "model": "claude-haiku-4-5"},
                    {"provider": "bedrock", "model": "amazon.nova-lite-v1:0"},
                ],
            )
        }
    )
    tasks = [run.start().tasks[0]]
    for _ in range(5):
        decision = run.fail("a", "server_error", retryable=True)
        retrying = payload(decision, "NodeRetrying")
        tasks.append(run.fire(f"retry:a:{retrying['attempt']}").tasks[0])
    assert [(t.attempt, t.params["provider"], t.params["candidate"]) for t in tasks] == [
        (1, "openai", 0),
        (2, "openai", 0),
        (3, "anthropic", 1),
        (4, "anthropic", 1),
        (5, "bedrock", 2),
        (6, "bedrock", 2),
    ]
    assert tasks[2].params["model"] == "claude-haiku-4-5"
    decision = run.fail("a", "server_error", retryable=True)
    assert types(decision) == ["NodeFailed", "RunFailed"]


def test_switching_to_a_fallback_does_not_wait_for_the_backoff_or_a_retry_after() -> None:
    run = Run(
        {
            "a": ai(
                retry={"max_attempts": 1},
                fallback=[{"provider": "anthropic", "model": "claude-haiku-4-5"}],
            )
        }
    )
    run.start()
    decision = run.fail("a", "rate_limited", retryable=True, retry_after=30)
    assert payload(decision, "NodeRetrying")["retry_at"] == run.now


def test_a_non_retryable_failure_skips_the_fallbacks() -> None:
    run = Run({"a": ai(fallback=[{"provider": "anthropic", "model": "claude-haiku-4-5"}])})
    run.start()
    decision = run.fail("a", "authentication", retryable=False)
    assert types(decision) == ["NodeFailed", "RunFailed"]


def test_provider_and_model_can_be_templates() -> None:
    run = Run(
        {"a": ai(provider="{{ inputs.provider }}", model="{{ inputs.model }}")},
        inputs={"provider": {"type": "string"}, "model": {"type": "string"}},
    )
    (task,) = run.start({"provider": "echo", "model": "demo"}).tasks
    assert (task.params["provider"], task.params["model"]) == ("echo", "demo")
