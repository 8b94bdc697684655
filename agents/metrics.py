"""The worker's Prometheus metrics. Label values are bounded: workflow, kind, status, provider, model,
tenant, error code, topic and partition; never a run id.

Dashboards in ``grafana/`` query exactly these names; a test scrapes a real worker with a real Prometheus
and checks that every dashboard query returns data.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

from agents.messages import Decision

#: Whether this process records metrics: only when it serves them (``AWE_METRICS_PORT``), so a worker
#: without an endpoint pays nothing for them.
ENABLED = False

_SECONDS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)

RUNS_STARTED = Counter("awe_runs_started_total", "Runs started, by workflow", ["workflow"])
RUNS_FINISHED = Counter(
    "awe_runs_finished_total", "Runs that ended, by workflow and status (succeeded, failed ...)", ["workflow", "status"]
)
NODE_DURATION = Histogram(
    "awe_node_duration_seconds",
    "Executor time of one node attempt, by kind and outcome",
    ["kind", "outcome"],
    buckets=_SECONDS,
)
NODE_RETRIES = Counter("awe_node_retries_total", "Attempts that failed and will be retried", ["kind", "code"])
NODE_TIMEOUTS = Counter("awe_node_timeouts_total", "Attempts that ran past their timeout", ["kind"])
NODE_FAILURES = Counter("awe_node_failures_total", "Nodes that failed for good", ["kind", "code"])
DLQ_RECORDS = Counter("awe_dlq_records_total", "Records sent to the dead-letter topic", ["source", "code"])
CONSUMER_LAG = Gauge("awe_consumer_lag", "Records not yet consumed by the workers' group", ["topic", "partition"])
AI_CALLS = Counter(
    "awe_ai_calls_total", "AI calls, by outcome (ok or an error code)", ["provider", "model", "tenant", "outcome"]
)
AI_DURATION = Histogram("awe_ai_call_duration_seconds", "AI call latency", ["provider", "model"], buckets=_SECONDS)
AI_TOKENS = Counter(
    "awe_ai_tokens_total",
    "AI tokens, by direction (input, output, cached)",
    ["provider", "model", "tenant", "direction"],
)
AI_COST = Counter("awe_ai_cost_usd_total", "AI cost in USD (calls with a known price)", ["provider", "model", "tenant"])
BUDGET_REJECTIONS = Counter("awe_ai_budget_rejections_total", "AI calls refused by a budget", ["tenant"])
WASM_DURATION = Histogram("awe_wasm_call_duration_seconds", "WASM plugin calls", ["plugin"], buckets=_SECONDS)
WASM_LIMIT_HITS = Counter("awe_wasm_limit_hits_total", "WASM calls stopped by a limit", ["limit"])
#: The plugin failures that are a limit being hit, as opposed to a bad plugin.
WASM_LIMITS = ("fuel", "deadline", "memory", "output_size", "stack")
PRODUCER_ERRORS = Counter("awe_producer_errors_total", "Records a producer failed to deliver", ["component"])


def observe_decision(decision: Decision) -> None:
    """Count what one step of the orchestrator recorded: starts, ends, retries, timeouts, failures."""
    if not ENABLED:
        return
    state = decision.state
    workflow = state.workflow or "-"
    for event in decision.events:
        kind = event.type
        if kind == "RunStarted":
            RUNS_STARTED.labels(workflow).inc()
        elif kind in ("RunSucceeded", "RunFailed", "RunCancelled", "RunRejected"):
            RUNS_FINISHED.labels(workflow, state.status).inc()
        elif kind in ("NodeRetrying", "NodeFailed"):
            node_kind = _kind(decision, event.payload["node_id"])
            code = event.payload["error"]["code"]
            if code == "timeout":
                NODE_TIMEOUTS.labels(node_kind).inc()
            if kind == "NodeRetrying":
                NODE_RETRIES.labels(node_kind, code).inc()
            else:
                NODE_FAILURES.labels(node_kind, code).inc()


def _kind(decision: Decision, node_id: str) -> str:
    definition = decision.state.definition
    spec = definition.nodes.get(node_id) if definition is not None else None
    return spec.kind if spec is not None else "-"


def enable() -> None:
    """Record metrics from now on, and create the series that must exist before anything happens (so a
    dashboard shows zero, not nothing)."""
    global ENABLED
    ENABLED = True
    for component in ("tokens", "timers"):
        PRODUCER_ERRORS.labels(component)
