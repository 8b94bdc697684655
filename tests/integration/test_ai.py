"""AI nodes end to end: a real worker on a real broker calls the providers' official SDKs, which talk to
loopback servers speaking each provider's wire protocol."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from schemas.envelope import Envelope
from streams.admin import ensure_topics
from streams.topics import Catalog, Role
from tests.harness import AiServers, Engine, read_topic, unique_settings, wait_until
from tests.loopback import Reply


def _name() -> str:
    return f"ai-{uuid.uuid4().hex[:8]}"


def _ai(provider: str, model: str, prompt: str, **fields: Any) -> dict[str, Any]:
    return {"kind": "ai", "provider": provider, "model": model, "prompt": prompt, **fields}


def _recorded(events: list[Envelope]) -> list[dict[str, Any]]:
    return [e.payload for e in events if e.type == "AICallRecorded"]


@pytest.fixture(autouse=True)
def _fresh(ai_servers: AiServers) -> None:
    ai_servers.reset()


def test_a_chain_of_three_providers_streams_tokens_and_records_tokens_and_cost(
    ai_engine: Engine, ai_servers: AiServers
) -> None:
    ai_servers.openai.plan("gpt-4o-mini", Reply.ok("Tickets look calm today.", input_tokens=40, output_tokens=5))
    ai_servers.anthropic.plan("claude-haiku-4-5", Reply.ok("Calm tickets, fine.", input_tokens=30, output_tokens=4))
    wf = {
        "name": _name(),
        "inputs": {"topic": {"type": "string", "required": True}},
        "nodes": {
            "draft": _ai("openai", "gpt-4o-mini", "Write about {{ inputs.topic }}", system="Be brief"),
            "edit": _ai(
                "anthropic", "claude-haiku-4-5", "Shorten: {{ nodes.draft.output.text }}", depends_on=["draft"]
            ),
            "check": _ai(
                "bedrock",
                "amazon.nova-lite-v1:0",
                "Rate: {{ nodes.edit.output.text }}",
                stream=False,
                depends_on=["edit"],
            ),
        },
        "outputs": {"final": "{{ nodes.edit.output.text }}", "cost": "{{ nodes.draft.output.cost_usd }}"},
    }
    ai_engine.apply(wf)
    state = ai_engine.run(wf["name"], {"topic": "tickets"})
    assert state.status == "succeeded", state.error
    assert state.outputs is not None and state.outputs["final"] == "Calm tickets, fine."

    # What each provider received is what the templates rendered.
    (draft_request,) = ai_servers.openai.requests
    assert draft_request.stream and "Write about tickets" in str(draft_request.body)
    (edit_request,) = ai_servers.anthropic.requests
    assert "Shorten: Tickets look calm today." in str(edit_request.body)
    (check_request,) = ai_servers.bedrock.requests
    assert not check_request.stream and "converse" in check_request.path

    events = ai_engine.events(state.run_id)
    calls = {c["node_id"]: c for c in _recorded(events)}
    assert set(calls) == {"draft", "edit", "check"}
    draft = calls["draft"]
    assert (draft["provider"], draft["model"], draft["answer"]) == ("openai", "gpt-4o-mini", "Tickets look calm today.")
    assert draft["usage"] == {"input_tokens": 40, "output_tokens": 5, "cached_tokens": 0}
    assert draft["cost_usd"] == pytest.approx((40 * 0.15 + 5 * 0.60) / 1_000_000)
    assert draft["request"]["system"] == "Be brief" and draft["streamed"] and draft["deltas"] == 4
    assert calls["edit"]["cost_usd"] == pytest.approx((30 * 1.0 + 4 * 5.0) / 1_000_000)
    assert calls["check"]["cost_usd"] is not None and not calls["check"]["streamed"]
    # Each answer is recorded before its node succeeds.
    order = [(e.type, e.payload.get("node_id")) for e in events]
    for node in ("draft", "edit", "check"):
        assert order.index(("AICallRecorded", node)) + 1 == order.index(("NodeSucceeded", node))
    assert state.usage.calls == 3

    # Token deltas of the streamed calls are on awe.tokens, keyed by run, in order, joining to the answers.
    topic = Catalog(ai_engine.settings).name(Role.TOKENS)
    deltas = [orjson.loads(v) for k, v in read_topic(ai_engine.settings, topic) if k == state.run_id.encode() and v]
    by_node: dict[str, list[dict[str, Any]]] = {}
    for delta in deltas:
        by_node.setdefault(delta["node_id"], []).append(delta)
    assert set(by_node) == {"draft", "edit"}
    for node, answer in (("draft", "Tickets look calm today."), ("edit", "Calm tickets, fine.")):
        pieces = sorted(by_node[node], key=lambda d: d["index"])
        assert [d["index"] for d in pieces] == list(range(len(pieces)))
        assert "".join(d["text"] for d in pieces) == answer
        assert all(d["attempt"] == 1 and d["run_id"] == state.run_id for d in pieces)


def test_a_rate_limit_is_retried_after_the_providers_retry_after(ai_engine: Engine, ai_servers: AiServers) -> None:
    ai_servers.openai.plan("gpt-4o-mini", Reply.error(429, "Rate limit reached", retry_after=1), Reply.ok("done"))
    wf = {
        "name": _name(),
        "nodes": {"a": _ai("openai", "gpt-4o-mini", "hi", retry={"max_attempts": 3, "initial_delay": "50ms"})},
    }
    ai_engine.apply(wf)
    state = ai_engine.run(wf["name"])
    assert state.status == "succeeded"
    events = ai_engine.events(state.run_id)
    (retrying,) = [e for e in events if e.type == "NodeRetrying"]
    assert retrying.payload["error"]["code"] == "rate_limited"
    assert "Rate limit reached" in retrying.payload["error"]["message"]
    # The envelope's time is rounded to the microsecond; retry_at is not.
    assert retrying.payload["retry_at"] - retrying.time.timestamp() >= 1.0 - 1e-6
    assert ai_servers.openai.count("gpt-4o-mini") == 2
    assert len(_recorded(events)) == 1


def test_a_server_error_falls_back_to_the_next_provider(ai_engine: Engine, ai_servers: AiServers) -> None:
    ai_servers.openai.plan("gpt-4o", Reply.error(500, "The server had an error"))
    ai_servers.anthropic.plan("claude-sonnet-4-5", Reply.ok("from the fallback"))
    wf = {
        "name": _name(),
        "nodes": {
            "a": _ai(
                "openai",
                "gpt-4o",
                "hi",
                retry={"max_attempts": 1},
                fallback=[{"provider": "anthropic", "model": "claude-sonnet-4-5"}],
            )
        },
    }
    ai_engine.apply(wf)
    state = ai_engine.run(wf["name"])
    assert state.status == "succeeded"
    assert state.nodes["a"].output["text"] == "from the fallback"
    assert state.nodes["a"].attempts == 2
    (call,) = _recorded(ai_engine.events(state.run_id))
    assert (call["provider"], call["model"], call["attempt"]) == ("anthropic", "claude-sonnet-4-5", 2)


def test_a_bad_key_fails_at_once_without_retry(ai_engine: Engine, ai_servers: AiServers) -> None:
    ai_servers.anthropic.plan("claude-haiku-4-5", Reply.error(401, "invalid x-api-key"))
    wf = {"name": _name(), "nodes": {"a": _ai("anthropic", "claude-haiku-4-5", "hi")}}
    ai_engine.apply(wf)
    state = ai_engine.run(wf["name"])
    assert state.status == "failed"
    error = state.nodes["a"].error
    assert error is not None and (error.code, error.retryable) == ("authentication", False)
    assert "invalid x-api-key" in error.message
    assert ai_servers.anthropic.count() == 1


def test_an_answer_that_fails_its_schema_is_recorded_and_retried(ai_engine: Engine, ai_servers: AiServers) -> None:
    schema = {"type": "object", "required": ["label"], "properties": {"label": {"enum": ["urgent", "normal"]}}}
    ai_servers.bedrock.plan(
        "amazon.nova-pro-v1:0", Reply.ok('{"label": "maybe"}'), Reply.ok("not json"), Reply.ok('{"label": "urgent"}')
    )
    wf = {
        "name": _name(),
        "nodes": {
            "a": _ai(
                "bedrock",
                "amazon.nova-pro-v1:0",
                "classify",
                response={"format": "json", "schema": schema},
                retry={"max_attempts": 3, "initial_delay": "50ms"},
            )
        },
    }
    ai_engine.apply(wf)
    state = ai_engine.run(wf["name"])
    assert state.status == "succeeded"
    assert state.nodes["a"].output["json"] == {"label": "urgent"}
    events = ai_engine.events(state.run_id)
    codes = [e.payload["error"]["code"] for e in events if e.type == "NodeRetrying"]
    assert codes == ["schema_mismatch", "invalid_json"]
    assert len(_recorded(events)) == 3  # every answer was paid for, so every answer is on the log
    assert state.usage.calls == 3


def test_a_call_that_does_not_answer_in_time_is_retried(ai_engine: Engine, ai_servers: AiServers) -> None:
    ai_servers.openai.plan("gpt-4.1-mini", Reply.slow(4), Reply.ok("in time"))
    wf = {
        "name": _name(),
        "nodes": {
            "a": _ai("openai", "gpt-4.1-mini", "hi", timeout="1s", retry={"max_attempts": 2, "initial_delay": "50ms"})
        },
    }
    ai_engine.apply(wf)
    state = ai_engine.run(wf["name"])
    assert state.status == "succeeded"
    (retrying,) = [e for e in ai_engine.events(state.run_id) if e.type == "NodeRetrying"]
    assert retrying.payload["error"]["code"] == "timeout"


def test_missing_credentials_fail_the_node_at_once_naming_the_variable(
    kafka_bootstrap: str, ai_servers: AiServers, tmp_path: Path
) -> None:
    settings = unique_settings(kafka_bootstrap)
    ensure_topics(settings)
    env = {k: v for k, v in ai_servers.env().items() if k != "OPENAI_API_KEY"}
    engine = Engine(settings, tmp_path, env={**env, "OPENAI_API_KEY": ""})
    try:
        engine.start_worker()
        wf = {"name": _name(), "nodes": {"a": _ai("openai", "gpt-4o-mini", "hi")}}
        engine.apply(wf)
        state = engine.run(wf["name"])
        assert state.status == "failed"
        error = state.nodes["a"].error
        assert error is not None and (error.code, error.retryable) == ("missing_credentials", False)
        assert "OPENAI_API_KEY" in error.message
        assert state.nodes["a"].attempts == 1
        assert ai_servers.openai.count() == 0
    finally:
        engine.close()


def test_budgets_stop_calls_once_spent(kafka_bootstrap: str, ai_servers: AiServers, tmp_path: Path) -> None:
    budgets = tmp_path / "budgets.yaml"
    budgets.write_text(
        "tenants:\n  default: {per_run: {tokens: 50}}\nworkflows:\n  capped: {per_day: {cost_usd: 0.00002}}\n"
    )
    settings = unique_settings(kafka_bootstrap, budgets_file=budgets)
    ensure_topics(settings)
    engine = Engine(settings, tmp_path, env=ai_servers.env())
    try:
        engine.start_worker()
        # Per run: the first call spends 60 tokens, so the second finds the run's 50 spent.
        ai_servers.openai.plan("gpt-4o-mini", Reply.ok("ok", input_tokens=40, output_tokens=20))
        wf = {
            "name": _name(),
            "nodes": {
                "a": _ai("openai", "gpt-4o-mini", "first"),
                "b": _ai("openai", "gpt-4o-mini", "second", depends_on=["a"]),
            },
        }
        engine.apply(wf)
        state = engine.run(wf["name"])
        assert state.status == "failed"
        error = state.nodes["b"].error
        assert error is not None and (error.code, error.retryable) == ("budget_exceeded", False)
        assert "tenant default per run" in error.message
        assert state.nodes["b"].attempts == 1
        assert ai_servers.openai.count() == 1
        failed = [e for e in engine.events(state.run_id) if e.type == "NodeFailed"]
        assert failed[0].payload["error"]["code"] == "budget_exceeded"

        # Per day, across runs: the workflow's daily cost is spent by its first run; the second is refused.
        capped = {"name": "capped", "nodes": {"a": _ai("openai", "gpt-4o", "hi")}}
        ai_servers.openai.plan("gpt-4o", Reply.ok("ok", input_tokens=10, output_tokens=1))
        engine.apply(capped)
        assert engine.run("capped").status == "succeeded"
        refused = engine.run("capped")
        assert refused.status == "failed"
        error = refused.nodes["a"].error
        assert error is not None and error.code == "budget_exceeded" and "workflow capped today" in error.message
        assert ai_servers.openai.count("gpt-4o") == 1
    finally:
        engine.close()


@pytest.fixture
def own_engine(kafka_bootstrap: str, ai_servers: AiServers, tmp_path: Path) -> Iterator[Engine]:
    """An engine on topics of its own, for a test that kills its worker."""
    settings = unique_settings(kafka_bootstrap)
    ensure_topics(settings)
    engine = Engine(settings, tmp_path, env=ai_servers.env())
    try:
        yield engine
    finally:
        engine.close()


def test_a_worker_killed_after_the_answer_is_recorded_never_calls_the_provider_again(
    own_engine: Engine, ai_servers: AiServers
) -> None:
    engine = own_engine
    worker = engine.start_worker()
    wf = {
        "name": _name(),
        "nodes": {
            "ask": _ai("anthropic", "claude-sonnet-4-5", "once only"),
            "review": {"kind": "approval", "depends_on": ["ask"]},
        },
    }
    engine.apply(wf)
    run_id, offset = engine.start(wf["name"])
    seen: list[Envelope] = []

    def recorded() -> bool:
        seen[:] = engine.events(run_id)
        return any(e.type == "AICallRecorded" for e in seen)

    wait_until(recorded, timeout=30)
    worker.kill()
    engine.start_worker()
    engine.client.signal(run_id, "review", {"approve": True})
    state = engine.wait(run_id, offset, timeout=60)
    assert state.status == "succeeded"
    assert ai_servers.anthropic.count("claude-sonnet-4-5") == 1
    events = engine.events(run_id)
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    assert len(_recorded(events)) == 1


def test_an_answer_recorded_ahead_of_an_older_call_still_running_is_not_paid_for_again_after_a_kill(
    own_engine: Engine, ai_servers: AiServers
) -> None:
    # Both tasks sit on one partition, the slow one first: its offset cannot be committed while it runs, so
    # the next owner reads the fast one again too, although its answer is on the log.
    ai_servers.anthropic.plan("claude-haiku-4-5", Reply.slow(30, "late"))
    engine = own_engine
    worker = engine.start_worker()
    wf = {
        "name": _name(),
        "nodes": {
            "a_slow": _ai("anthropic", "claude-haiku-4-5", "take your time", timeout="60s"),
            "b_fast": _ai("anthropic", "claude-sonnet-4-5", "answer now"),
        },
    }
    engine.apply(wf)
    run_id, offset = engine.start(wf["name"])

    def fast_recorded() -> bool:
        return any(call["node_id"] == "b_fast" for call in _recorded(engine.events(run_id)))

    wait_until(fast_recorded, timeout=30)
    assert ai_servers.anthropic.count("claude-haiku-4-5") == 1  # still waiting for its answer
    worker.kill()
    engine.start_worker()
    state = engine.wait(run_id, offset, timeout=60)
    assert state.status == "succeeded"
    assert ai_servers.anthropic.count("claude-sonnet-4-5") == 1
    assert ai_servers.anthropic.count("claude-haiku-4-5") == 2  # unanswered when the worker died: asked again
    calls = _recorded(engine.events(run_id))
    assert sorted(call["node_id"] for call in calls) == ["a_slow", "b_fast"]


def test_the_ai_chain_example_runs_against_servers_that_speak_the_providers_protocols(
    ai_engine: Engine, ai_servers: AiServers
) -> None:
    from schemas.validation import load_definition_text
    from tests.harness import REPO

    example = load_definition_text((REPO / "examples" / "ai-chain.yaml").read_text())
    ai_servers.anthropic.plan("claude-haiku-4-5", Reply.ok('{"verdict": "ok", "reason": "clear"}'))
    ai_engine.apply(example)
    state = ai_engine.run("ai-chain", {"topic": "release notes"})
    assert state.status == "succeeded", state.error
    assert state.outputs is not None
    assert state.outputs["note"] == "echo: Write three sentences about release notes."
    assert state.outputs["verdict"] == "ok"
    calls = _recorded(ai_engine.events(state.run_id))
    assert [(c["provider"], c["model"]) for c in calls] == [
        ("openai", "gpt-4o-mini"),
        ("anthropic", "claude-haiku-4-5"),
    ]
    assert all(c["usage"]["input_tokens"] > 0 and c["cost_usd"] > 0 for c in calls)
    assert state.outputs["cost_usd"] == pytest.approx(sum(c["cost_usd"] for c in calls))


def test_a_fork_reuses_upstream_answers_and_a_diff_shows_what_changed(ai_engine: Engine, ai_servers: AiServers) -> None:
    from tests.harness import settings_env

    name = _name()
    wf = {
        "name": name,
        "nodes": {
            "draft": _ai("openai", "gpt-4o-mini", "draft it"),
            "side": _ai("bedrock", "amazon.nova-lite-v1:0", "unrelated", stream=False),
            "review": _ai(
                "anthropic", "claude-haiku-4-5", "review {{ nodes.draft.output.text }}", depends_on=["draft"]
            ),
        },
    }
    ai_servers.anthropic.plan("claude-haiku-4-5", Reply.ok("looks fine"))
    ai_engine.apply(wf)
    parent = ai_engine.run(name)
    assert parent.status == "succeeded"
    ai_servers.anthropic.plan("claude-sonnet-4-5", Reply.ok("needs work", input_tokens=50, output_tokens=2))

    def awe(*args: str) -> Any:
        import subprocess
        import sys

        from tests.harness import REPO

        done = subprocess.run(
            [sys.executable, "-m", "awe", *args],
            env={**settings_env(ai_engine.settings), **ai_servers.env()},
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=90,
        )
        return done

    done = awe(
        "fork",
        parent.run_id,
        "--from-node",
        "review",
        "--set",
        "nodes.review.model=claude-sonnet-4-5",
        "--wait",
        "--json",
    )
    assert done.returncode == 0, done.stdout + done.stderr
    child = orjson.loads(done.stdout.strip().splitlines()[-1])
    assert child["status"] == "succeeded"
    assert child["nodes"]["review"]["output"]["text"] == "needs work"
    assert child["nodes"]["draft"]["output"] == parent.nodes["draft"].output
    assert child["nodes"]["draft"]["attempts"] == 0  # reused, not run
    # The upstream and unrelated models were not asked again; the forked node was, with the new model.
    assert ai_servers.openai.count() == 1 and ai_servers.bedrock.count() == 1
    assert ai_servers.anthropic.count("claude-sonnet-4-5") == 1

    child_events = ai_engine.events(child["run_id"])
    started = child_events[0].payload
    assert (started["parent_run_id"], started["forked_from_node"]) == (parent.run_id, "review")
    assert started["definition"]["nodes"]["review"]["model"] == "claude-sonnet-4-5"
    reused = [e.payload["node_id"] for e in child_events if e.payload.get("reused_from") == parent.run_id]
    assert sorted(reused) == ["draft", "side"]
    assert [c["node_id"] for c in _recorded(child_events)] == ["review"]  # only the new call is paid for
    parent_events = ai_engine.events(parent.run_id)
    assert parent_events[-1].type == "RunForked" and parent_events[-1].payload["child_run_id"] == child["run_id"]

    for run_id in (parent.run_id, child["run_id"]):
        assert awe("replay", run_id).returncode == 0

    done = awe("diff", parent.run_id, child["run_id"], "--json")
    assert done.returncode == 0, done.stderr
    nodes = orjson.loads(done.stdout.strip().splitlines()[-1])["nodes"]
    assert nodes["draft"]["same_output"] and nodes["draft"]["b"]["reused_from"] == parent.run_id
    assert not nodes["review"]["same_output"]
    assert nodes["review"]["b"]["tokens"] == 52 and nodes["review"]["b"]["cost_usd"] == pytest.approx(
        (50 * 3.0 + 2 * 15.0) / 1_000_000
    )
    human = awe("diff", parent.run_id, child["run_id"])
    assert 'review: succeeded; output {"text":"looks fine"' in human.stdout and "needs work" in human.stdout
    assert f"draft: succeeded (reused from {parent.run_id}); same output" in human.stdout


def test_a_fork_from_a_node_whose_upstream_failed_is_refused(ai_engine: Engine, ai_servers: AiServers) -> None:
    import subprocess
    import sys

    from tests.harness import REPO, settings_env

    ai_servers.openai.plan("gpt-4o-mini", Reply.error(401, "bad key"))
    wf = {
        "name": _name(),
        "nodes": {"a": _ai("openai", "gpt-4o-mini", "x"), "b": _ai("openai", "gpt-4o-mini", "y", depends_on=["a"])},
    }
    ai_engine.apply(wf)
    failed = ai_engine.run(wf["name"])
    assert failed.status == "failed"
    done = subprocess.run(
        [sys.executable, "-m", "awe", "fork", failed.run_id, "--from-node", "b"],
        env=settings_env(ai_engine.settings),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "node a, upstream of b, did not succeed in the parent (failed)" in done.stderr


def test_awe_audit_chains_each_ai_decision_back_to_who_started_the_run(
    ai_engine: Engine, ai_servers: AiServers
) -> None:
    import subprocess
    import sys

    from tests.harness import REPO, settings_env

    wf = {
        "name": _name(),
        "nodes": {
            "a": _ai("openai", "gpt-4o-mini", "first"),
            "b": _ai("anthropic", "claude-haiku-4-5", "then {{ nodes.a.output.text }}", depends_on=["a"]),
        },
    }
    ai_engine.apply(wf)
    env = {**settings_env(ai_engine.settings), "AWE_PRINCIPAL": "alice@example.com"}

    def awe(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "awe", *args], env=env, cwd=REPO, capture_output=True, text=True, timeout=90
        )

    ran = awe("run", wf["name"], "--wait", "--json")
    assert ran.returncode == 0, ran.stderr
    run_id = orjson.loads(ran.stdout.strip().splitlines()[-1])["run_id"]
    assert {e.principal for e in ai_engine.events(run_id)} == {"alice@example.com"}

    done = awe("audit", run_id, "--json")
    assert done.returncode == 0, done.stderr
    found = [orjson.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    assert [(d["node_id"], d["provider"]) for d in found] == [("a", "openai"), ("b", "anthropic")]
    for decision in found:
        assert decision["chain"][0]["type"] == "RunStarted"
        assert decision["chain"][0]["principal"] == "alice@example.com"
        assert decision["chain"][-1]["type"] == "AICallRecorded"
    human = awe("audit", run_id)
    assert "started by alice@example.com" in human.stdout
    assert "AI decision at seq" in human.stdout and "chain: command" in human.stdout
