"""Projection rebuild benchmark: events/s folding ``awe.events`` from offset 0, beside the raw
confluent-kafka consume rate of the same topic, in the same run.

The topic is filled with real event logs: a few runs are decided by the engine's own ``decide`` (AI calls,
HTTP steps, retries), then copied under new run ids and spread over tenants, workflows and models, so the
records are exactly what a worker writes. Targets: at least 100,000 events/s and 30% of the raw rate.

    python benchmarks/projections.py                # starts its own broker unless AWE_KAFKA_BOOTSTRAP is set
    python benchmarks/projections.py --events 2000000
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import uuid
from contextlib import ExitStack
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition  # noqa: E402

from agents.decide import decide  # noqa: E402
from agents.messages import Inbound  # noqa: E402
from schemas.ai import AICall, AIRequest, ChatMessage, Usage  # noqa: E402
from schemas.commands import StartRun  # noqa: E402
from schemas.errors import ErrorInfo  # noqa: E402
from schemas.state import RunState  # noqa: E402
from schemas.tasks import TaskResult, TimerFired  # noqa: E402
from schemas.validation import validate_definition  # noqa: E402
from streams.admin import ensure_topics  # noqa: E402
from streams.partitioning import partition_for  # noqa: E402
from streams.producer import producer_config  # noqa: E402
from streams.projections import ProjectionBuilder  # noqa: E402
from streams.settings import Settings  # noqa: E402
from streams.topics import Catalog, Role  # noqa: E402

TEMPLATE = "0" * 32
MODELS = [("openai", "gpt-4o-mini"), ("anthropic", "claude-haiku-4-5"), ("bedrock", "amazon.nova-lite-v1:0")]


def template_run(tenant: str, provider: str, model: str) -> list[bytes]:
    """The events of one run, as the orchestrator would write them, under the placeholder run id."""
    definition = validate_definition(
        {
            "name": f"bench-{provider}",
            "nodes": {
                "fetch": {"kind": "http", "url": "http://x/{{ run.id }}", "retry": {"max_attempts": 3}},
                "ask": {
                    "kind": "ai",
                    "provider": provider,
                    "model": model,
                    "prompt": "{{ nodes.fetch.output }}",
                    "depends_on": ["fetch"],
                },
                "tidy": {"kind": "transform", "output": "{{ nodes.ask.output.text | upper }}", "depends_on": ["ask"]},
            },
        }
    )
    state, events, now = RunState(run_id=TEMPLATE), [], 1_764_000_000.0
    start = StartRun(run_id=TEMPLATE, tenant_id=tenant, workflow=definition.name, command_id="c" * 32)

    def step(message: object) -> None:
        nonlocal state
        decision = decide(state, Inbound(message=message, now=now, definition=definition, version=1))  # type: ignore[arg-type]
        state = decision.state
        events.extend(decision.events)

    step(start)
    error = ErrorInfo(code="http_503", message="busy", retryable=True)
    step(
        TaskResult(
            task_id=f"{TEMPLATE}:fetch:1",
            run_id=TEMPLATE,
            tenant_id=tenant,
            node_id="fetch",
            attempt=1,
            ok=False,
            error=error,
        )
    )
    now += 2
    step(TimerFired(run_id=TEMPLATE, tenant_id=tenant, timer_id="retry:fetch:1", fired_at=now))
    step(
        TaskResult(
            task_id=f"{TEMPLATE}:fetch:2",
            run_id=TEMPLATE,
            tenant_id=tenant,
            node_id="fetch",
            attempt=2,
            ok=True,
            output={"status": 200, "json": {"ticket": "printer on fire"}},
        )
    )
    request = AIRequest(provider=provider, model=model, messages=[ChatMessage(role="user", content="printer on fire")])
    call = AICall(
        provider=provider,
        model=model,
        request=request,
        answer="Call facilities.",
        usage=Usage(input_tokens=120, output_tokens=8),
        latency_ms=350.0,
        cost_usd=0.0000234,
    )
    step(
        TaskResult(
            task_id=f"{TEMPLATE}:ask:1",
            run_id=TEMPLATE,
            tenant_id=tenant,
            node_id="ask",
            attempt=1,
            ok=True,
            output={"text": "Call facilities."},
            call=call,
        )
    )
    assert state.status == "succeeded", state.status
    return [e.model_dump_json().encode() for e in events]


def fill(settings: Settings, events: int) -> int:
    """Produce at least ``events`` events; return how many."""
    templates = [template_run(t, p, m) for t in ("acme", "globex", "initech") for p, m in MODELS]
    topic = Catalog(settings).name(Role.EVENTS)
    producer = Producer(producer_config(settings, **{"linger.ms": 20, "compression.type": "lz4"}))
    written = 0
    i = 0
    while written < events:
        run_id = uuid.uuid4().hex
        partition = partition_for(run_id, settings.partitions)
        for value in templates[i % len(templates)]:
            while True:
                try:
                    producer.produce(
                        topic, key=run_id, value=value.replace(TEMPLATE.encode(), run_id.encode()), partition=partition
                    )
                    break
                except BufferError:
                    producer.poll(0.01)
            written += 1
        i += 1
    producer.flush(120)
    return written


def raw_consume(settings: Settings) -> tuple[int, float]:
    """Records/s of a bare confluent-kafka consumer reading the whole topic (no parsing)."""
    topic = Catalog(settings).name(Role.EVENTS)
    consumer = Consumer(
        {
            "bootstrap.servers": settings.kafka_bootstrap,
            "group.id": uuid.uuid4().hex,
            "enable.auto.commit": False,
            "isolation.level": "read_committed",
            "fetch.max.bytes": 64 * 1024 * 1024,
            "max.partition.fetch.bytes": 16 * 1024 * 1024,
            "queued.max.messages.kbytes": 512 * 1024,
        }
    )
    ends = {
        p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in range(settings.partitions)
    }
    consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in ends])
    total, target, idle = 0, sum(ends.values()), 0
    started = time.perf_counter()
    while total < target and idle < 5:
        batch = consumer.consume(10_000, timeout=0.2)
        idle = 0 if batch else idle + 1
        total += sum(1 for m in batch if m.error() is None)
    seconds = time.perf_counter() - started
    consumer.close()
    return total, total / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--partitions", type=int, default=6)
    args = parser.parse_args()
    with ExitStack() as stack:
        bootstrap = os.environ.get("AWE_KAFKA_BOOTSTRAP")
        if not bootstrap:
            from streams import launcher

            port = 39592
            bootstrap = launcher.up(port, ephemeral=True).bootstrap
            stack.callback(launcher.down, port)
        tag = uuid.uuid4().hex[:6]
        settings = Settings(kafka_bootstrap=bootstrap, topic_prefix=f"benchproj{tag}.", partitions=args.partitions)
        ensure_topics(settings)
        started = time.perf_counter()
        written = fill(settings, args.events)
        print(
            f"filled awe.events with {written:,} events in {time.perf_counter() - started:.1f}s "
            f"({args.partitions} partitions)"
        )
        count, raw = raw_consume(settings)
        print(f"baseline: raw confluent-kafka consume {raw:,.0f} records/s ({count:,} records)")
        builder = ProjectionBuilder(settings)
        first, stats = builder.rebuild()
        _, again = builder.rebuild()
        print(
            f"rebuild: {stats.events:,} events in {stats.seconds:.2f}s = {stats.rate:,.0f} events/s, "
            f"{stats.rate / raw:.0%} of raw; second rebuild {again.rate:,.0f} events/s"
        )
        print(
            f"projections: {len(first.runs):,} runs, {len(first.usage):,} usage totals; "
            f"two rebuilds identical: {stats.digest == again.digest}"
        )
        print(
            f"targets: >= 100,000 events/s ({'met' if stats.rate >= 100_000 else 'NOT met'}), "
            f">= 30% of raw ({'met' if stats.rate >= 0.3 * raw else 'NOT met'})"
        )


if __name__ == "__main__":
    main()
