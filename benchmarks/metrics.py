"""The cost of metrics: the engine benchmark's http chain with metrics off and on, alternated in one run.

"On" is a worker serving ``/metrics`` (``AWE_METRICS_PORT``): every counter and histogram recorded, the
HTTP endpoint up, and the consumer-lag probe running; "off" is the same worker without. A real Prometheus
is not needed to pay the cost, so none scrapes. Target: metrics cost at most 5% of throughput.

    python benchmarks/metrics.py                    # starts its own broker unless AWE_KAFKA_BOOTSTRAP is set
    python benchmarks/metrics.py --rounds 3 --seconds 8 --clients 16
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import uuid
from contextlib import ExitStack
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from confluent_kafka import Producer  # noqa: E402
from engine import LoopbackServer, Waiter, closed_loop, start_worker, workflows  # noqa: E402

from schemas.validation import validate_definition  # noqa: E402
from streams.admin import ensure_topics  # noqa: E402
from streams.producer import producer_config  # noqa: E402
from streams.registry import DefinitionRegistry  # noqa: E402
from streams.settings import Settings  # noqa: E402
from tests.harness import free_port  # noqa: E402


def measure(bootstrap: str, url: str, *, metrics: bool, seconds: float, clients: int, guarantee: str) -> float:
    """Runs/s of the http chain on a fresh worker with metrics on or off."""
    tag = uuid.uuid4().hex[:6]
    settings = Settings(
        kafka_bootstrap=bootstrap,
        topic_prefix=f"benchm{tag}.",
        app_id=f"awe-bench-metrics-{tag}",
        processing_guarantee=guarantee,  # type: ignore[arg-type]
        http_concurrency=128,
        metrics_port=free_port() if metrics else None,
        data_dir=Path(tempfile.mkdtemp(prefix="awe-bench-data-")),
    )
    ensure_topics(settings)
    chain = workflows(url)["http_chain"]
    registry = DefinitionRegistry(settings)
    registry.register(settings.tenant, validate_definition(chain))
    registry.close()
    worker = start_worker(settings, Path(tempfile.mkdtemp(prefix="awe-bench-metrics-")))
    try:
        producer = Producer(producer_config(settings, **{"linger.ms": 1}))
        loop = asyncio.new_event_loop()
        waiter = Waiter(settings, loop)
        loop.run_until_complete(closed_loop(settings, waiter, producer, chain["name"], clients, 2))  # warm up
        tally = loop.run_until_complete(closed_loop(settings, waiter, producer, chain["name"], clients, seconds))
        waiter.stop.set()
        waiter.thread.join(5)
        loop.close()
        return tally.rate
    finally:
        worker.terminate()
        worker.wait(30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3, help="off/on pairs")
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--guarantee", default="at_least_once", choices=["at_least_once", "exactly_once"])
    args = parser.parse_args()
    with ExitStack() as stack:
        bootstrap = os.environ.get("AWE_KAFKA_BOOTSTRAP")
        if not bootstrap:
            from streams import launcher

            port = 39692
            bootstrap = launcher.up(port, ephemeral=True).bootstrap
            stack.callback(launcher.down, port)
        server = LoopbackServer()
        stack.callback(server.close)
        rates: dict[bool, list[float]] = {False: [], True: []}
        print(f"http_chain, {args.clients} clients, {args.guarantee}, {args.seconds:g} s per cell")
        for round_number in range(args.rounds):
            for metrics in (False, True):
                rate = measure(
                    bootstrap,
                    server.url,
                    metrics=metrics,
                    seconds=args.seconds,
                    clients=args.clients,
                    guarantee=args.guarantee,
                )
                rates[metrics].append(rate)
                print(f"round {round_number + 1} metrics {'on ' if metrics else 'off'}: {rate:7.1f} runs/s", flush=True)
        off, on = (sum(rates[m]) / len(rates[m]) for m in (False, True))
        cost = 1 - on / off
        print(
            f"mean off {off:.1f} runs/s, on {on:.1f} runs/s: metrics cost {cost:.1%} of throughput "
            f"(target at most 5%: {'met' if cost <= 0.05 else 'NOT met'})"
        )


if __name__ == "__main__":
    main()
