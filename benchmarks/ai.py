"""AI overhead benchmark: the time awe adds to one model call, against the same call made with the SDK.

A loopback server speaking OpenAI's Chat Completions protocol runs in its own process. In the same run the
benchmark measures:
- ``direct``: ``openai.AsyncOpenAI`` calling it, one call at a time (the baseline);
- ``awe step``: the same call as an ``ai`` node of a one-node workflow run by a real worker, from
  ``NodeScheduled`` to ``NodeSucceeded`` on the orchestrator's clock: the task and result hops through
  Kafka, the executor, the SDK call, pricing, token publishing, and the answer recorded on the log;
- ``awe run``: StartRun produced to RunSucceeded read back, as a client sees it.
Each is shown non-streamed and streamed, under each delivery guarantee, with the difference from the
direct call and the ratio to it.

    python benchmarks/ai.py                 # starts its own broker unless AWE_KAFKA_BOOTSTRAP is set
    python benchmarks/ai.py --calls 100 --guarantees at_least_once
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
import uuid
from contextlib import ExitStack
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import openai  # noqa: E402
from confluent_kafka import Producer  # noqa: E402
from engine import Waiter, pct, start_worker, step_latencies  # noqa: E402

from schemas.commands import StartRun  # noqa: E402
from schemas.validation import validate_definition  # noqa: E402
from streams.admin import ensure_topics  # noqa: E402
from streams.codec import encode  # noqa: E402
from streams.producer import producer_config  # noqa: E402
from streams.registry import DefinitionRegistry  # noqa: E402
from streams.settings import Settings  # noqa: E402
from streams.topics import Catalog, Role  # noqa: E402

MODEL = "gpt-4o-mini"
PROMPT = "Summarise: the quick brown fox jumps over the lazy dog, twice, for the benchmark."


class ProviderProcess:
    """``python -m tests.loopback openai`` in its own process, as a remote service would be."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.loopback", "openai"], stdout=subprocess.PIPE, text=True, cwd=REPO
        )
        assert self.proc.stdout is not None
        self.port = int(self.proc.stdout.readline().split()[1])

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


async def direct(base_url: str, calls: int, stream: bool) -> list[float]:
    """Seconds per call of the SDK alone, one call at a time."""
    client = openai.AsyncOpenAI(api_key="sk-bench", base_url=base_url, max_retries=0)
    messages: list[dict[str, str]] = [{"role": "user", "content": PROMPT}]
    out: list[float] = []
    try:
        for i in range(calls + 5):
            started = time.perf_counter()
            if stream:
                chunks = await client.chat.completions.create(
                    model=MODEL,
                    messages=messages,
                    stream=True,
                    stream_options={"include_usage": True},  # type: ignore[arg-type]
                )
                async with chunks:
                    async for _ in chunks:
                        pass
            else:
                await client.chat.completions.create(model=MODEL, messages=messages)  # type: ignore[arg-type]
            if i >= 5:  # the first calls warm the connection pool
                out.append(time.perf_counter() - started)
    finally:
        await client.close()
    return out


async def through_awe(settings: Settings, workflow: str, calls: int) -> tuple[list[float], list[float], list[float]]:
    """Step seconds, SDK call milliseconds as measured inside the worker, and run seconds, one run at a time."""
    loop = asyncio.get_running_loop()
    waiter = Waiter(settings, loop)
    producer = Producer(producer_config(settings, **{"linger.ms": 0}))
    topic = Catalog(settings).name(Role.COMMANDS)
    steps: list[float] = []
    inner: list[float] = []
    runs: list[float] = []
    try:
        for i in range(calls + 5):
            run_id = uuid.uuid4().hex
            future = waiter.expect(run_id)
            started = time.perf_counter()
            producer.produce(topic, key=run_id, value=encode(StartRun(run_id=run_id, workflow=workflow)))
            producer.poll(0)
            events = await asyncio.wait_for(future, 60)
            elapsed = time.perf_counter() - started
            if not events or events[-1]["type"] != "RunSucceeded":
                raise RuntimeError(f"run {run_id} ended {events[-1]['type'] if events else 'without events'}")
            if i >= 5:
                runs.append(elapsed)
                steps.extend(step_latencies(events))
                inner.extend(e["payload"]["latency_ms"] / 1000 for e in events if e["type"] == "AICallRecorded")
    finally:
        waiter.stop.set()
        waiter.thread.join(5)
        producer.flush(5)
    return steps, inner, runs


def ms(value: float) -> str:
    return f"{value * 1000:>8.2f}ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=200, help="measured calls per cell")
    parser.add_argument("--guarantees", nargs="+", default=["exactly_once", "at_least_once"])
    parser.add_argument("--commit-interval", type=float, default=Settings().commit_interval_s, help="seconds")
    args = parser.parse_args()

    with ExitStack() as stack:
        bootstrap = os.environ.get("AWE_KAFKA_BOOTSTRAP")
        if not bootstrap:
            from streams import launcher

            port = 39492
            cluster = launcher.up(port, ephemeral=True)
            stack.callback(launcher.down, port)
            bootstrap = cluster.bootstrap
        server = ProviderProcess()
        stack.callback(server.close)
        os.environ.update({"OPENAI_API_KEY": "sk-bench", "OPENAI_BASE_URL": server.base_url})
        log_dir = Path(tempfile.mkdtemp(prefix="awe-bench-ai-"))

        baseline = {s: asyncio.run(direct(server.base_url, args.calls, s)) for s in (False, True)}
        print(f"loopback OpenAI server in its own process; {args.calls} sequential calls per cell; model {MODEL}")
        print(f"machine: {os.cpu_count()} cores shared by broker, worker, server and benchmark")
        print()
        print(
            f"{'guarantee':<14}{'stream':<8}{'direct p50':>11}{'in-worker p50':>15}{'awe step p50':>14}"
            f"{'step p99':>10}{'added p50':>11}{'ratio':>7}{'awe run p50':>13}"
        )
        for guarantee in args.guarantees:
            tag = uuid.uuid4().hex[:6]
            settings = Settings(
                kafka_bootstrap=bootstrap,
                topic_prefix=f"benchai{tag}.",
                app_id=f"awe-bench-ai-{tag}",
                processing_guarantee=guarantee,
                commit_interval_s=args.commit_interval,
            )
            ensure_topics(settings)
            registry = DefinitionRegistry(settings)
            for stream in (False, True):
                node = {"kind": "ai", "provider": "openai", "model": MODEL, "prompt": PROMPT, "stream": stream}
                definition = {"name": f"bench-ai-{'stream' if stream else 'json'}", "nodes": {"ask": node}}
                registry.register(settings.tenant, validate_definition(definition))
            registry.close()
            worker = start_worker(settings, log_dir)
            try:
                for stream in (False, True):
                    name = f"bench-ai-{'stream' if stream else 'json'}"
                    steps, inner, runs = asyncio.run(through_awe(settings, name, args.calls))
                    base = pct(baseline[stream], 0.5)
                    step = pct(steps, 0.5)
                    print(
                        f"{guarantee:<14}{'yes' if stream else 'no':<8}{ms(base):>11}{ms(pct(inner, 0.5)):>15}"
                        f"{ms(step):>14}{ms(pct(steps, 0.99)):>10}{ms(step - base):>11}{step / base:>7.1f}"
                        f"{ms(pct(runs, 0.5)):>13}",
                        flush=True,
                    )
            finally:
                worker.terminate()
                worker.wait(30)
        print()
        print("direct = the SDK alone; in-worker = the same SDK call timed inside the worker (AICallRecorded);")
        print("awe step = NodeScheduled to NodeSucceeded; added = awe step p50 - direct p50; ratio = step / direct.")


if __name__ == "__main__":
    main()
