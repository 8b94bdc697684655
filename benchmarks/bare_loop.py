"""What the Faust agent costs: the engine benchmark's http chain on awe, and on the same ``decide`` in a bare loop.

The bare loop is an experiment, not a part of awe. One thread reads ``awe.commands`` and ``awe.results``
with confluent-kafka, calls awe's ``decide`` for each record, and writes the events, tasks and run states it
returns: under exactly-once in one Kafka transaction per batch (one producer, offsets sent with the
consumer's group metadata, as Kafka Streams' exactly-once v2), under at-least-once by flushing and then
committing the offsets. The http executor is awe's own, on the main thread's event loop, as in a worker.

It leaves out what the orchestrator does off the happy path: durable timers, rejects and the dead-letter
topic, restoring run states when partitions move, fencing a second owner, metrics. The benchmark's
workflows need none of these, so the figures bound what moving the orchestrator off Faust could give, on
the same machine, in the same run, against the same broker.

    python benchmarks/bare_loop.py --seconds 12 --clients 1 16 64 --rounds 2
    python benchmarks/bare_loop.py --scenarios transform_chain fan_out_10 --clients 64
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import threading
import time
from collections import defaultdict
from contextlib import ExitStack
from pathlib import Path

from confluent_kafka import Consumer, Message, Producer, TopicPartition
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic
from engine import HEADER, LoopbackServer, Session, Tally, broker, raw_produce_rate

from agents.decide import decide
from agents.executors.base import Executor
from agents.executors.http import HttpHandler
from agents.executors.runner import TaskRunner
from agents.inbound import parse_record
from agents.messages import Inbound
from agents.worker import tune_gc
from schemas.commands import StartRun
from schemas.state import RunState
from streams.codec import encode
from streams.consuming import next_batch
from streams.delivery import DeliveryProducer
from streams.registry import DefinitionRegistry
from streams.settings import Settings
from streams.topics import Catalog, Role

#: librdkafka retries a request refused with CONCURRENT_TRANSACTIONS (the last transaction's markers are still
#: being written) after this long; at its default of 100 ms a step's p99 was ~130 ms. awe's Faust producers
#: use 5 ms for the same reason (``streams/tuning.py``).
RETRY_BACKOFF_MS = 5
#: Records produced within a transaction wait this long to be batched; the commit flushes them anyway.
LINGER_MS = 5


class BareLoop:
    """The orchestrator's happy path on confluent-kafka: read, ``decide``, write, commit; one batch at a time."""

    def __init__(self, settings: Settings, registry: DefinitionRegistry) -> None:
        self.settings = settings
        self.registry = registry
        catalog = Catalog(settings)
        self.catalog = catalog
        self.commands = catalog.name(Role.COMMANDS)
        self.events = catalog.name(Role.EVENTS)
        self.changelog = f"{settings.app_id}-bare-runs-changelog"
        self.exactly_once = settings.processing_guarantee == "exactly_once"
        group = f"{settings.app_id}-bare"
        self.consumer = Consumer(
            {
                "bootstrap.servers": settings.kafka_bootstrap,
                "group.id": group,
                "enable.auto.commit": False,
                "auto.offset.reset": "earliest",
                "isolation.level": "read_committed",
            }
        )
        config: dict[str, str | int | float | bool] = {
            "bootstrap.servers": settings.kafka_bootstrap,
            "enable.idempotence": True,
            "acks": "all",
            "partitioner": "murmur2_random",
            "linger.ms": LINGER_MS,
            "retry.backoff.ms": RETRY_BACKOFF_MS,
        }
        if self.exactly_once:
            config["transactional.id"] = group
        self.producer = Producer(config)
        self.states: dict[str, RunState] = {}
        self.assigned = threading.Event()

    def create_changelog(self) -> None:
        """The run states' compacted topic, as Faust's table has one."""
        admin = AdminClient({"bootstrap.servers": self.settings.kafka_bootstrap})
        topic = NewTopic(self.changelog, self.settings.partitions, 1, config={"cleanup.policy": "compact"})
        admin.create_topics([topic])[self.changelog].result()

    def run(self) -> None:
        """Process batches until the process ends."""
        if self.exactly_once:
            self.producer.init_transactions()
        self.consumer.subscribe(
            [self.commands, self.catalog.name(Role.RESULTS)], on_assign=lambda consumer, parts: self.assigned.set()
        )
        while True:
            batch = next_batch(self.consumer, 2000, 0.1)
            if batch:
                self.process(batch)

    def process(self, batch: list[Message]) -> None:
        if self.exactly_once:
            self.producer.begin_transaction()
        offsets: dict[tuple[str, int], int] = {}
        now = time.time()
        for message in batch:
            topic, partition, offset = message.topic(), message.partition(), message.offset()
            assert topic is not None and partition is not None and offset is not None
            offsets[(topic, partition)] = offset + 1
            self.handle(message.value() or b"", topic == self.commands, partition, now)
        positions = [TopicPartition(t, p, o) for (t, p), o in offsets.items()]
        if self.exactly_once:
            self.producer.send_offsets_to_transaction(positions, self.consumer.consumer_group_metadata())
            self.producer.commit_transaction()
        else:
            self.producer.flush()
            self.consumer.commit(offsets=positions, asynchronous=True)

    def handle(self, value: bytes, is_command: bool, partition: int, now: float) -> None:
        parsed = parse_record(value, is_command=is_command)
        state = self.states.get(parsed.run_id) or RunState(run_id=parsed.run_id)
        inbound = Inbound(message=parsed, now=now)
        if isinstance(parsed, StartRun) and state.status == "pending":
            found = self.registry.get(parsed.tenant_id, parsed.workflow, parsed.version) or self.registry.resolve(
                parsed.tenant_id, parsed.workflow, parsed.version
            )
            assert found is not None, f"the benchmark registers {parsed.workflow}"
            inbound = Inbound(message=parsed, now=now, definition=found.definition, version=found.version)
        decision = decide(state, inbound)
        if not decision.events:
            return
        key = parsed.run_id.encode()
        produce = self.producer.produce
        for envelope in decision.events:
            produce(self.events, encode(envelope), key, partition=partition)
        for task in decision.tasks:
            produce(self.catalog.tasks(task.kind), encode(task), key, partition=partition)
        produce(self.changelog, encode(decision.state), key, partition=partition)
        self.states[parsed.run_id] = decision.state


async def serve(settings: Settings) -> None:
    """The bare loop in a thread and awe's http executor on this loop, until the process is stopped."""
    registry = DefinitionRegistry(settings)
    registry.follow()
    loop = BareLoop(settings, registry)
    loop.create_changelog()
    results = DeliveryProducer(settings, on_error=None, **{"linger.ms": settings.producer_linger_ms})
    executor = Executor(settings, "http", HttpHandler(settings.http_concurrency), settings.http_concurrency)
    TaskRunner(settings, executor, results, on_fatal=lambda err: os._exit(1)).start()
    threading.Thread(target=loop.run, name="bare-loop", daemon=True).start()
    await asyncio.to_thread(loop.assigned.wait)
    print("Worker ready", flush=True)
    await asyncio.Event().wait()


def compare(args: argparse.Namespace) -> None:
    """Alternate awe's worker and the bare loop, ``args.rounds`` times; print every cell, then the means."""
    with ExitStack() as stack:
        bootstrap = broker(stack)
        server = LoopbackServer()
        stack.callback(server.close)
        log_dir = Path(tempfile.mkdtemp(prefix="awe-bench-bare-"))
        raw = raw_produce_rate(bootstrap)
        print(f"baseline: raw confluent-kafka produce {raw:,.0f} msg/s; logs in {log_dir}")
        print(f"{args.seconds:.0f} s cells, {args.rounds} rounds; awe and the bare loop alternate")
        print()
        print(f"{'runner':<7}{'guarantee':<14}{'scenario':<17}{'clients':>7}{HEADER}")
        bare = [sys.executable, str(Path(__file__).resolve()), "--serve"]
        cells = [(g, s, c) for g in args.guarantees for s in args.scenarios for c in args.clients]
        rates: dict[tuple[str, str, str, int], list[float]] = defaultdict(list)
        cpu: dict[tuple[str, str, str, int], list[float]] = defaultdict(list)
        for _ in range(args.rounds):
            for guarantee in args.guarantees:
                for runner, command in (("awe", None), ("bare", bare)):
                    runner_dir = log_dir / runner  # each runner's worker logs apart
                    runner_dir.mkdir(exist_ok=True)
                    with Session(bootstrap, guarantee, server.url, runner_dir, args, command) as session:
                        for scenario, clients in [(s, c) for g, s, c in cells if g == guarantee]:
                            t: Tally = session.measure(scenario, clients, args.seconds)
                            print(f"{runner:<7}{guarantee:<14}{scenario:<17}{clients:>7}{t.row(raw)}", flush=True)
                            rates[(runner, guarantee, scenario, clients)].append(t.rate)
                            if t.done:
                                cpu[(runner, guarantee, scenario, clients)].append(t.worker_cpu_s / t.done * 1000)
        print()
        print(
            f"{'guarantee':<14}{'scenario':<17}{'clients':>7}{'awe runs/s':>12}{'bare runs/s':>12}{'bare/awe':>10}"
            "  worker CPU/run"
        )
        for guarantee, scenario, clients in cells:
            awe, fast = (statistics.mean(rates[(r, guarantee, scenario, clients)]) for r in ("awe", "bare"))
            key = (guarantee, scenario, clients)
            awe_cpu, fast_cpu = (statistics.fmean(cpu[(r, *key)] or [0.0]) for r in ("awe", "bare"))
            print(
                f"{guarantee:<14}{scenario:<17}{clients:>7}{awe:>12.1f}{fast:>12.1f}{fast / awe:>10.2f}"
                f"{awe_cpu:>10.2f} / {fast_cpu:.2f} ms"
            )
        print()
        print("Means over the rounds. worker CPU/run: the worker process (awe) against the bare loop's process.")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=12.0, help="measured seconds per cell")
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 16, 64])
    parser.add_argument("--guarantees", nargs="+", default=["exactly_once", "at_least_once"])
    parser.add_argument("--scenarios", nargs="+", default=["http_chain"], help="of benchmarks/engine.py")
    parser.add_argument("--rounds", type=int, default=2, help="awe and the bare loop alternate this many times")
    parser.add_argument("--serve", action="store_true", help="run the bare loop (the benchmark starts it)")
    args = parser.parse_args()
    args.partitions, args.workers, args.commit_interval = 6, 1, Settings().commit_interval_s
    if args.serve:
        tune_gc()
        import uvloop

        uvloop.run(serve(Settings()))
    else:
        compare(args)


if __name__ == "__main__":
    main()
