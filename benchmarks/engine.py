"""Engine benchmark: runs/s and per-step latency, beside the raw confluent-kafka produce rate.

Closed loop: each client starts a run, waits for its RunSucceeded on ``awe.events``, and starts the next.
Scenarios: a 3-node chain of ``http`` nodes against a loopback server (an executor hop per step, each
result recorded before the next step starts), a 3-node ``transform`` chain (evaluated inside ``decide``),
and a 10-way ``http`` fan-out. Every figure is labelled with the delivery guarantee the worker ran under,
and with the orchestrator's runtime (a Faust agent, or the librdkafka loop).

    python benchmarks/engine.py                     # starts its own broker unless AWE_KAFKA_BOOTSTRAP is set
    python benchmarks/engine.py --seconds 5 --clients 1 16 --scenarios http_chain
    python benchmarks/engine.py --orchestrators loop --guarantees exactly_once
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from confluent_kafka import Consumer, Producer, TopicPartition  # noqa: E402
from confluent_kafka.admin import AdminClient  # noqa: E402
from confluent_kafka.cimpl import NewTopic  # noqa: E402

from schemas.commands import StartRun  # noqa: E402
from schemas.validation import validate_definition  # noqa: E402
from streams.admin import ensure_topics  # noqa: E402
from streams.codec import encode, loads  # noqa: E402
from streams.producer import producer_config  # noqa: E402
from streams.registry import DefinitionRegistry  # noqa: E402
from streams.settings import Settings  # noqa: E402
from streams.topics import Catalog, Role  # noqa: E402

TERMINAL = {"RunSucceeded", "RunFailed", "RunCancelled", "RunRejected"}

#: Seconds of load before the first measured cell (``--warmup``).
WARMUP_S = 30.0


def workflows(url: str) -> dict[str, dict[str, Any]]:
    http = {"kind": "http", "method": "POST", "url": url, "body": {"x": 1}}
    return {
        "http_chain": {
            "name": "bench-http-chain",
            "nodes": {
                "a": http,
                "b": {**http, "depends_on": ["a"]},
                "c": {**http, "depends_on": ["b"]},
            },
        },
        "transform_chain": {
            "name": "bench-transform-chain",
            "nodes": {
                "a": {"kind": "transform", "output": "{{ 1 }}"},
                "b": {"kind": "transform", "output": "{{ nodes.a.output + 1 }}", "depends_on": ["a"]},
                "c": {"kind": "transform", "output": "{{ nodes.b.output + 1 }}", "depends_on": ["b"]},
            },
        },
        "fan_out_10": {
            "name": "bench-fan-out",
            "nodes": {
                "root": {"kind": "transform", "output": 1},
                **{f"b{i}": {**http, "depends_on": ["root"]} for i in range(10)},
                "join": {"kind": "transform", "output": 10, "depends_on": [f"b{i}" for i in range(10)]},
            },
        },
    }


class LoopbackServer:
    """``benchmarks/loopback_http.py`` in its own process, as a remote service would be."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(Path(__file__).with_name("loopback_http.py"))], stdout=subprocess.PIPE, text=True
        )
        assert self.proc.stdout is not None
        self.port = int(self.proc.stdout.readline())

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/step"

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


def drop_topics(bootstrap: str, *prefixes: str) -> None:
    """Delete the topics named with any of ``prefixes`` and the consumer groups named with the first.

    Every session makes a dozen topics of its own; left behind, a few series of cells put well over a
    thousand partitions on the broker, which every later cell then shares it with.
    """
    # Warnings and errors only: at its end the client reported, at info level, an event nobody waits for.
    admin = AdminClient({"bootstrap.servers": bootstrap, "log_level": 4})
    topics = [t for t in admin.list_topics(timeout=10).topics if t.startswith(prefixes)]
    if topics:
        for future in admin.delete_topics(topics, operation_timeout=10).values():
            future.result()
    listed = admin.list_consumer_groups(request_timeout=10).result()
    groups = [g.group_id for g in listed.valid if g.group_id.startswith(prefixes[0])]
    if groups:
        for future in admin.delete_consumer_groups(groups, request_timeout=10).values():
            future.exception()  # a group that still has a member is kept: the topics were what weighed


def raw_produce_rate(bootstrap: str, n: int = 200_000) -> float:
    """Messages/s of a bare confluent-kafka producer (200-byte values, acks=all, idempotent)."""
    topic = f"bench-raw-{uuid.uuid4().hex[:6]}"
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(topic, 6, 1)])[topic].result()
    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True, "acks": "all", "linger.ms": 5})
    value = b"x" * 200
    started = time.perf_counter()
    for i in range(n):
        while True:
            try:
                producer.produce(topic, key=str(i).encode(), value=value)
                break
            except BufferError:
                producer.poll(0.01)
    producer.flush()
    rate = n / (time.perf_counter() - started)
    drop_topics(bootstrap, topic)
    return rate


@dataclass
class Tally:
    done: int = 0
    failed: int = 0
    run_latencies: list[float] = field(default_factory=list)
    step_latencies: list[float] = field(default_factory=list)
    rate: float = 0.0
    machine_cpu_s: float = 0.0
    worker_cpu_s: float = 0.0

    def cpu_per_run_ms(self, seconds: float) -> str:
        return f"{seconds / self.done * 1000:.2f}ms" if self.done else "n/a"

    def row(self, raw: float) -> str:
        """The measured columns of the results table (see ``HEADER``), after guarantee, scenario, clients."""
        steps = self.step_latencies
        step50 = f"{pct(steps, 0.5) * 1000:>8.1f}ms" if steps else f"{'n/a':>10}"
        step99 = f"{pct(steps, 0.99) * 1000:>8.1f}ms" if steps else f"{'n/a':>10}"
        return (
            f"{self.rate:>9.1f}{self.rate / raw:>9.5f}"
            f"{pct(self.run_latencies, 0.5) * 1000:>8.1f}ms{pct(self.run_latencies, 0.99) * 1000:>8.1f}ms"
            f"{step50}{step99}{self.failed:>8}"
            f"{self.cpu_per_run_ms(self.machine_cpu_s):>10}{self.cpu_per_run_ms(self.worker_cpu_s):>9}"
        )


HEADER = (
    f"{'runs/s':>9}{'ratio':>9}{'run p50':>10}{'run p99':>10}{'step p50':>10}{'step p99':>10}"
    f"{'failed':>8}{'cpu/run':>10}{'worker':>9}"
)

CLOCK_TICK = os.sysconf("SC_CLK_TCK")


def machine_cpu_seconds() -> float:
    """CPU seconds every process of the machine has used so far (all cores, idle and iowait left out)."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    return (sum(fields[:8]) - fields[3] - fields[4]) / CLOCK_TICK


def process_cpu_seconds(pids: list[int]) -> float:
    """CPU seconds (user and system, all threads) the given processes have used so far."""
    total = 0
    for pid in pids:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])
    return total / CLOCK_TICK


class Waiter:
    """Tails awe.events in a thread and resolves each run's future when its terminal event arrives."""

    def __init__(self, settings: Settings, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.pending: dict[str, asyncio.Future[list[dict[str, Any]]]] = {}
        self.events: dict[str, list[dict[str, Any]]] = {}
        self.stop = threading.Event()
        self.consumer = Consumer(
            {
                "bootstrap.servers": settings.kafka_bootstrap,
                "group.id": f"bench-{uuid.uuid4().hex[:6]}",
                "isolation.level": "read_committed",
                "fetch.wait.max.ms": 5,
                "enable.auto.commit": False,
            }
        )
        # Assign at the current ends explicitly: a subscription resolves "latest" lazily and could skip the
        # first runs' events.
        topic = Catalog(settings).name(Role.EVENTS)
        ends = [
            TopicPartition(topic, p, self.consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1])
            for p in range(settings.partitions)
        ]
        self.consumer.assign(ends)
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.stop.is_set():
            first = self.consumer.poll(0.05)
            batch = [first, *self.consumer.consume(500, 0)] if first is not None else []
            for msg in batch:
                if msg.error():
                    continue
                # Plain JSON, not the Envelope model: this thread shares the two cores with the engine, and a
                # client needs only a few fields of each event.
                env = loads(msg.value() or b"")
                run_id = env["run_id"]
                self.events.setdefault(run_id, []).append(env)
                if env["type"] in TERMINAL:
                    self.loop.call_soon_threadsafe(self._resolve, run_id)
        self.consumer.close()

    def _resolve(self, run_id: str) -> None:
        future = self.pending.pop(run_id, None)
        if future is not None and not future.done():
            future.set_result(self.events.pop(run_id, []))

    def expect(self, run_id: str) -> asyncio.Future[list[dict[str, Any]]]:
        future: asyncio.Future[list[dict[str, Any]]] = self.loop.create_future()
        self.pending[run_id] = future
        return future


def step_latencies(events: list[dict[str, Any]]) -> list[float]:
    """Seconds from a node's scheduling to its NodeSucceeded, per executor step (event times)."""
    scheduled = {e["payload"]["node_id"]: e["time"] for e in events if e["type"] == "NodeScheduled"}
    out = []
    for e in events:
        node_id = e["payload"].get("node_id")
        if e["type"] == "NodeSucceeded" and node_id in scheduled:
            took = datetime.fromisoformat(e["time"]) - datetime.fromisoformat(scheduled[node_id])
            out.append(took.total_seconds())
    return out


async def closed_loop(
    settings: Settings,
    waiter: Waiter,
    producer: Producer,
    workflow: str,
    clients: int,
    seconds: float,
    worker_pids: list[int] | None = None,
) -> Tally:
    """Runs ``clients`` closed-loop clients for ``seconds``; CPU is counted for the machine and the workers."""
    tally = Tally()
    topic = Catalog(settings).name(Role.COMMANDS)
    deadline = time.perf_counter() + seconds

    async def client() -> None:
        while time.perf_counter() < deadline:
            run_id = uuid.uuid4().hex
            future = waiter.expect(run_id)
            started = time.perf_counter()
            producer.produce(topic, key=run_id, value=encode(StartRun(run_id=run_id, workflow=workflow)))
            producer.poll(0)
            try:
                events = await asyncio.wait_for(future, 60)
            except TimeoutError:
                tally.failed += 1
                continue
            if events and events[-1]["type"] == "RunSucceeded":
                tally.done += 1
                tally.run_latencies.append(time.perf_counter() - started)
                tally.step_latencies.extend(step_latencies(events))
            else:
                tally.failed += 1

    async def pump() -> None:
        while time.perf_counter() < deadline + 1:
            producer.poll(0)
            await asyncio.sleep(0.002)

    started = time.perf_counter()
    machine_before, workers_before = machine_cpu_seconds(), process_cpu_seconds(worker_pids or [])
    await asyncio.gather(pump(), *(client() for _ in range(clients)))
    tally.machine_cpu_s = machine_cpu_seconds() - machine_before
    tally.worker_cpu_s = process_cpu_seconds(worker_pids or []) - workers_before
    tally.run_latencies.sort()
    elapsed = time.perf_counter() - started
    tally.rate = tally.done / elapsed
    return tally


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


class Session:
    """Workers of one guarantee on topics of their own, with the workflows registered and the clients' tools.

    ``command`` starts another program than ``awe worker`` (``benchmarks/bare_loop.py`` compares one).
    """

    def __init__(
        self,
        bootstrap: str,
        guarantee: str,
        url: str,
        log_dir: Path,
        args: argparse.Namespace,
        command: list[str] | None = None,
        orchestrator: Literal["faust", "loop"] = "faust",
    ) -> None:
        tag = uuid.uuid4().hex[:6]
        self.settings = Settings(
            kafka_bootstrap=bootstrap,
            topic_prefix=f"bench{tag}.",
            app_id=f"awe-bench-{tag}",
            data_dir=log_dir / "data",
            partitions=args.partitions,
            processing_guarantee=guarantee,
            orchestrator=orchestrator,
            commit_interval_s=args.commit_interval,
            http_concurrency=128,
        )
        ensure_topics(self.settings)
        registry = DefinitionRegistry(self.settings)
        self.defs = workflows(url)
        for wf in self.defs.values():
            registry.register(self.settings.tenant, validate_definition(wf))
        registry.close()
        self.workers: list[subprocess.Popen[bytes]] = []
        try:
            self.workers = [start_worker(self.settings, log_dir, i, command) for i in range(args.workers)]
            self.producer = Producer(producer_config(self.settings, **{"linger.ms": 1}))
            self.loop = asyncio.new_event_loop()
            self.waiter = Waiter(self.settings, self.loop)
            # A few seconds per worker: each one joining the group moves partitions once more.
            self.measure("transform_chain", 4, 2 * args.workers)
        except BaseException:
            self.close()
            raise

    def measure(self, scenario: str, clients: int, seconds: float) -> Tally:
        """Runs of ``scenario`` from ``clients`` closed-loop clients for ``seconds``."""
        name = self.defs[scenario]["name"]
        pids = [w.pid for w in self.workers]
        return self.loop.run_until_complete(
            closed_loop(self.settings, self.waiter, self.producer, name, clients, seconds, pids)
        )

    def close(self) -> None:
        """Stop the event tail, the workers and the clients' producer, then delete the session's topics."""
        if hasattr(self, "waiter"):
            self.waiter.stop.set()
            self.waiter.thread.join(5)
            self.loop.close()
        for worker in self.workers:
            worker.terminate()
        for worker in self.workers:
            worker.wait(30)
        if hasattr(self, "producer"):
            self.producer.close()  # before its topics go, or it logs their partitions vanishing
        drop_topics(self.settings.kafka_bootstrap, self.settings.app_id, self.settings.topic_prefix)

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def start_worker(
    settings: Settings, log_dir: Path, index: int = 0, command: list[str] | None = None
) -> subprocess.Popen[bytes]:
    """One ``awe worker`` process with ``settings``; ``index`` keeps each worker's logs and local data apart.

    ``command`` runs another program in its place, with the same environment; it prints ``Worker ready``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWE_")}
    for name, value in settings.model_dump().items():
        if value is not None:
            env[f"AWE_{name.upper()}"] = str(value)
    env["AWE_DATA_DIR"] = str((settings.data_dir or log_dir / "data") / str(index))
    path = log_dir / f"worker-{settings.processing_guarantee}-{index}.log"
    log = path.open("wb")
    command = command or [sys.executable, "-m", "awe", "worker", "--loglevel", "info"]
    proc = subprocess.Popen(command, env=env, stdout=log, stderr=log, cwd=REPO)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if b"Worker ready" in path.read_bytes():
            return proc
        time.sleep(0.2)
    raise RuntimeError("worker did not become ready")


def broker(stack: ExitStack) -> str:
    """``AWE_KAFKA_BOOTSTRAP``, or a broker of the benchmark's own that ``stack`` stops."""
    bootstrap = os.environ.get("AWE_KAFKA_BOOTSTRAP")
    if bootstrap:
        return bootstrap
    from streams import launcher

    port = 39392
    cluster = launcher.up(port, ephemeral=True)
    stack.callback(launcher.down, port)
    return cluster.bootstrap


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=8.0, help="measured seconds per cell")
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 16, 64])
    parser.add_argument("--scenarios", nargs="+", default=["http_chain", "transform_chain", "fan_out_10"])
    parser.add_argument("--guarantees", nargs="+", default=["exactly_once", "at_least_once"])
    parser.add_argument(
        "--orchestrators",
        nargs="+",
        choices=["faust", "loop"],
        default=["faust", "loop"],
        help="the orchestrator's runtimes to measure (AWE_ORCHESTRATOR)",
    )
    parser.add_argument("--partitions", type=int, default=6)
    parser.add_argument("--workers", type=int, default=1, help="worker processes sharing the partitions")
    parser.add_argument("--commit-interval", type=float, default=Settings().commit_interval_s, help="seconds")
    parser.add_argument(
        "--warmup",
        type=float,
        default=WARMUP_S,
        help="seconds of exactly-once http chain at 64 clients run first and not counted (0: none)",
    )
    args = parser.parse_args()

    with ExitStack() as stack:
        bootstrap = broker(stack)
        server = LoopbackServer()
        stack.callback(server.close)
        log_dir = Path(tempfile.mkdtemp(prefix="awe-bench-"))

        raw = raw_produce_rate(bootstrap)
        print(f"baseline: raw confluent-kafka produce {raw:,.0f} msg/s (200 B, acks=all, idempotent)")
        print(f"machine: {os.cpu_count()} cores; broker, worker and benchmark share them; worker logs in {log_dir}")
        print(
            f"partitions: {args.partitions}; commit interval: {args.commit_interval * 1000:.0f} ms; "
            f"worker processes: {args.workers}"
        )
        if args.warmup > 0:
            # A broker just started is still compiling its transaction paths: the first cells on it ran at
            # about half the speed of later ones, and the runtime measured first would carry that alone.
            first = args.orchestrators[0]
            with Session(bootstrap, "exactly_once", server.url, log_dir, args, orchestrator=first) as warm:
                t = warm.measure("http_chain", 64, args.warmup)
            print(f"warm-up: {args.warmup:.0f} s of exactly-once http chain, 64 clients ({first}): {t.rate:.1f} runs/s")
        print()
        print(f"{'runtime':<8}{'guarantee':<14}{'scenario':<17}{'clients':>7}{HEADER}")
        for orchestrator in args.orchestrators:
            for guarantee in args.guarantees:
                with Session(bootstrap, guarantee, server.url, log_dir, args, orchestrator=orchestrator) as session:
                    for scenario in args.scenarios:
                        for clients in args.clients:
                            t = session.measure(scenario, clients, args.seconds)
                            row = f"{orchestrator:<8}{guarantee:<14}{scenario:<17}{clients:>7}{t.row(raw)}"
                            print(row, flush=True)
        print()
        print("runtime = the orchestrator's: a Faust agent (faust) or a librdkafka loop (loop); AWE_ORCHESTRATOR.")
        print("ratio = runs/s divided by the raw produce rate measured above, in this same run.")
        print("step = NodeScheduled to NodeSucceeded of an executor step (orchestrator clock); transform steps")
        print("are evaluated inside one decide() call and have no executor hop, so no step figure is shown.")
        print(
            f"cpu/run = CPU the whole machine used per completed run ({os.cpu_count()} cores: broker, workers, "
            "clients, HTTP server); worker = the worker processes' share of it."
        )


if __name__ == "__main__":
    main()
