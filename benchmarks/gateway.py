"""Gateway benchmark.

(a) Start-run requests/s through ``POST /v1/runs`` beside a bare Starlette JSON endpoint, both under uvicorn
    in processes of their own, loaded by the same client in the same run (target: at least 50% of bare).
    The two are loaded in turn, round after round, and the median of the rounds' ratios is the figure: the
    machine's speed drifts by tens of percent within a minute, and one pair of loads caught it unevenly.
    For reference a bare plain-ASGI endpoint (no framework; what the gateway's start path is built as) is
    loaded too. The client is wrk (one thread) when it is installed: the Python client (httpx) tops out at a
    few hundred requests/s here, below the bare app, so its ratio says more about the client than the gateway.
(b) N concurrent WebSocket subscribers on one gateway process, the load from a separate process, each
    subscribed to one of R live runs, with E events/s in total: gateway RSS and event-to-client latency
    p50/p99 (targets: 10,000 held, RSS at most 1 GiB, p99 at most 200 ms); then the largest broadcast rate
    (one run watched by every subscriber) the process sustains.

Events for (b) are produced straight to ``awe.events`` as envelopes of live runs (the gateway cannot tell
who wrote them), each stamped with its send time, so the client process measures end-to-end latency.
The file-descriptor limit is raised here, for this process and its children, never in the OS.

    python benchmarks/gateway.py                               # the issue's sizes
    python benchmarks/gateway.py --subscribers 2000 --runs 200 --rate 200 --seconds 10
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import gc
import json
import os
import re
import resource
import shutil
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time
import uuid
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import httpx  # noqa: E402
import orjson  # noqa: E402
from confluent_kafka import Producer  # noqa: E402

from schemas.envelope import event_id_for  # noqa: E402
from streams.admin import ensure_topics  # noqa: E402
from streams.producer import producer_config  # noqa: E402
from streams.settings import Settings  # noqa: E402
from streams.topics import Catalog, Role  # noqa: E402

BARE_APP = """
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route
import orjson

async def start(request):
    body = orjson.loads(await request.body())
    return JSONResponse({"run_id": body["workflow"]}, status_code=202)

app = Starlette(routes=[Route("/v1/runs", start, methods=["POST"])])


async def plain(scope, receive, send):
    if scope["type"] != "http":
        return
    if scope["method"] != "POST":
        await send({"type": "http.response.start", "status": 405, "headers": []})
        await send({"type": "http.response.body", "body": b""})
        return
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            break
    body = orjson.dumps({"run_id": orjson.loads(b"".join(chunks))["workflow"]})
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 202, "headers": headers})
    await send({"type": "http.response.body", "body": body})
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def raise_fd_limit() -> int:
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = hard if hard != resource.RLIM_INFINITY else 1_048_576
    resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    return wanted


def wait_http(url: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=5).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise TimeoutError(url)


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


WRK_POST = """wrk.method = "POST"
wrk.headers["content-type"] = "application/json"
wrk.body = [==[{body}]==]
"""


def load(url: str, body: bytes, seconds: float, concurrency: int, work_dir: Path) -> tuple[float, str]:
    """Closed-loop POSTs for ``seconds``; requests/s answered 2xx, and the client that sent them."""
    if shutil.which("wrk") is None:
        return asyncio.run(httpx_load(url, body, seconds, concurrency)), "httpx (install wrk: httpx is the limit)"
    script = work_dir / "post.lua"
    script.write_text(WRK_POST.format(body=body.decode()))
    done = subprocess.run(
        ["wrk", "-t1", f"-c{concurrency}", f"-d{seconds:.0f}s", "-s", str(script), url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    sent = re.search(r"(\d+) requests in ([\d.]+)(m?s)", done)
    assert sent is not None, done
    failed = re.search(r"Non-2xx or 3xx responses: (\d+)", done)
    elapsed = float(sent.group(2)) / (1000 if sent.group(3) == "ms" else 1)
    return (int(sent.group(1)) - (int(failed.group(1)) if failed else 0)) / elapsed, "wrk, one thread"


async def httpx_load(url: str, body: bytes, seconds: float, concurrency: int) -> float:
    """Closed-loop POSTs for ``seconds`` from this process; requests/s answered 202."""
    done = 0
    deadline = time.monotonic() + seconds
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(limits=limits, timeout=30) as client:

        async def worker() -> None:
            nonlocal done
            while time.monotonic() < deadline:
                answer = await client.post(url, content=body, headers={"content-type": "application/json"})
                if answer.status_code == 202:
                    done += 1

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return done / seconds


# --- the subscribers' process ---------------------------------------------------------------------------


def client_frame(opcode: int, payload: bytes) -> bytes:
    """A masked, unfragmented client-to-server frame (RFC 6455, 5.2)."""
    mask = os.urandom(4)
    n = len(payload)
    header = bytes([0x80 | opcode, 0x80 | n]) if n < 126 else struct.pack("!BBH", 0x80 | opcode, 0xFE, n)
    key = int.from_bytes((mask * (n // 4 + 1))[:n], "big")
    return header + mask + (int.from_bytes(payload, "big") ^ key).to_bytes(n, "big")


class Subscriber(asyncio.Protocol):
    """One WebSocket subscriber that speaks the protocol itself over a plain asyncio protocol: the handshake,
    then the server's unmasked frames parsed from the stream. 10,000 clients of a general-purpose library
    (a task, a message queue and a frame parser per connection) cost the load process more CPU than the
    gateway, on the cores the gateway shares; this measures the same thing, each message's latency taken
    when its frame is complete and decoded."""

    def __init__(self, stats: Stats, run_id: str, host: str, path: str) -> None:
        self.stats = stats
        self.subscribe = orjson.dumps({"op": "subscribe", "run_id": run_id})
        self.request = (
            f"GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {base64.b64encode(os.urandom(16)).decode()}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
        self.transport: asyncio.Transport | None = None
        self.upgraded = False
        self.buffer = bytearray()
        self.subscribed = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        transport.write(self.request)

    def connection_lost(self, exc: Exception | None) -> None:
        self.stats.closed += 1
        if not self.subscribed.done():
            self.subscribed.set_exception(ConnectionError("closed before subscribed"))

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if not self.upgraded:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            if not self.buffer.startswith(b"HTTP/1.1 101"):
                raise ConnectionError(bytes(self.buffer[:end]).decode())
            del self.buffer[: end + 4]
            self.upgraded = True
            self.send(0x1, self.subscribe)
        self.frames()

    def frames(self) -> None:
        buffer = self.buffer
        while len(buffer) >= 2:
            opcode, length, at = buffer[0] & 0x0F, buffer[1] & 0x7F, 2
            if length == 126:
                if len(buffer) < 4:
                    return
                length, at = struct.unpack_from("!H", buffer, 2)[0], 4
            elif length == 127:
                if len(buffer) < 10:
                    return
                length, at = struct.unpack_from("!Q", buffer, 2)[0], 10
            if len(buffer) < at + length:
                return
            payload = bytes(buffer[at : at + length])
            del buffer[: at + length]
            if opcode == 0x1:
                self.message(orjson.loads(payload))
            elif opcode == 0x9:
                self.send(0xA, payload)
            elif opcode == 0x8 and self.transport is not None:
                self.transport.close()

    def message(self, message: dict[str, Any]) -> None:
        kind = message["type"]
        if kind == "event":
            self.stats.received += 1
            self.stats.latencies.append(time.time() - message["event"]["payload"]["sent"])
        elif kind == "ping":
            self.send(0x1, b'{"op":"pong"}')
        elif kind == "subscribed" and not self.subscribed.done():
            self.subscribed.set_result(None)

    def send(self, opcode: int, payload: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(client_frame(opcode, payload))


@dataclass
class Stats:
    """What the subscribers saw, from when all of them were subscribed."""

    latencies: list[float] = field(default_factory=list)
    received: int = 0
    closed: int = 0


async def subscribers(url: str, runs: list[str], count: int, seconds: float) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    where = urlsplit(url)
    host, port = where.hostname or "127.0.0.1", where.port or 80
    stats = Stats()
    clients: list[Subscriber] = []
    opening = []
    for i in range(count):
        client = Subscriber(stats, runs[i % len(runs)], f"{host}:{port}", where.path)
        clients.append(client)
        opening.append(loop.create_task(loop.create_connection(lambda c=client: c, host, port)))  # type: ignore[misc]
        if i % 200 == 199:
            await asyncio.sleep(0.05)  # do not SYN-flood the listen backlog
    await asyncio.wait_for(asyncio.gather(*opening), 300)
    # Ready once the gateway has acknowledged every subscription: events sent before then could not reach
    # every subscriber whatever the gateway's speed.
    await asyncio.wait_for(asyncio.gather(*(c.subscribed for c in clients)), 300)
    # The connections' objects live to the end: keep this process's collector from walking them (its
    # pauses would count as the gateway's latency).
    gc.freeze()
    print("READY", flush=True)
    stats.latencies.clear()
    stats.received = 0
    await asyncio.sleep(seconds)
    return {
        "held": count - stats.closed,
        "received": stats.received,
        "p50_ms": pct(stats.latencies, 0.5) * 1000,
        "p99_ms": pct(stats.latencies, 0.99) * 1000,
    }


# --- the driver ------------------------------------------------------------------------------------------


def events_producer(settings: Settings) -> Producer:
    """The driver's one producer, connected before any event is stamped: one made per load would hold its
    first events until it had connected, then send them at once, a burst its latency figures would blame
    on the gateway."""
    producer = Producer(producer_config(settings, **{"linger.ms": 5}))
    producer.list_topics(Catalog(settings).name(Role.EVENTS), timeout=30)
    return producer


def produce_events(
    producer: Producer, topic: str, runs: list[str], rate: float, seconds: float, seqs: dict[str, int]
) -> int:
    interval = 1.0 / rate
    sent = 0
    start = time.monotonic()
    while time.monotonic() - start < seconds:
        run_id = runs[sent % len(runs)]
        seqs[run_id] = seqs.get(run_id, 0) + 1
        seq = seqs[run_id]
        envelope = {
            "event_id": event_id_for(run_id, seq),
            "run_id": run_id,
            "tenant_id": "default",
            "seq": seq,
            "type": "RunStarted" if seq == 1 else "NodeStarted",
            "schema_version": 1,
            "time": "2026-01-01T00:00:00Z",
            "payload": {"workflow": "bench", "version": 1, "inputs": {}, "sent": time.time()}
            if seq == 1
            else {"node_id": "n", "attempt": 1, "sent": time.time()},
        }
        producer.produce(topic, key=run_id, value=orjson.dumps(envelope))
        producer.poll(0)
        sent += 1
        pause = start + sent * interval - time.monotonic()
        if pause > 0:
            time.sleep(pause)
    producer.flush(30)
    return sent


def run_subscribers(
    ws_url: str,
    runs: list[str],
    count: int,
    seconds: float,
    load: tuple[Producer, str],
    rate: float,
    seqs: dict[str, int],
) -> dict[str, Any]:
    proc = subprocess.Popen(
        [
            sys.executable,
            __file__,
            "--role",
            "subscribers",
            "--ws",
            ws_url,
            "--subscribers",
            str(count),
            "--seconds",
            str(seconds),
            "--run-ids",
            ",".join(runs),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line.startswith("READY"):
        raise RuntimeError(f"subscribers failed: {line}")
    print(f"{count:,} subscribers connected; producing for {seconds - 1:.0f} s", flush=True)
    produce_events(*load, runs, rate, seconds - 1, seqs)
    out, _ = proc.communicate(timeout=seconds + 120)
    return dict(json.loads(out.strip().splitlines()[-1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--role", default="driver")
    parser.add_argument("--ws", default="")
    parser.add_argument("--run-ids", default="")
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--subscribers", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=1_000)
    parser.add_argument("--rate", type=float, default=1_000.0, help="events/s in total for (b)")
    parser.add_argument("--concurrency", type=int, default=64, help="HTTP clients for (a)")
    parser.add_argument("--rounds", type=int, default=3, help="alternated loads of each endpoint for (a)")
    parser.add_argument("--broadcast-rates", type=float, nargs="+", default=[5, 10, 20, 50, 100])
    parser.add_argument(
        "--parts", nargs="+", choices=["a", "b", "broadcast"], default=["a", "b", "broadcast"], help="what to run"
    )
    args = parser.parse_args()
    fds = raise_fd_limit()
    if args.role == "subscribers":
        stats = asyncio.run(subscribers(args.ws, args.run_ids.split(","), args.subscribers, args.seconds))
        print(json.dumps(stats), flush=True)
        return

    with ExitStack() as stack:
        bootstrap = os.environ.get("AWE_KAFKA_BOOTSTRAP")
        if not bootstrap:
            from streams import launcher

            port = 39393
            bootstrap = launcher.up(port, ephemeral=True).bootstrap
            stack.callback(launcher.down, port)
        tag = uuid.uuid4().hex[:6]
        settings = Settings(kafka_bootstrap=bootstrap, topic_prefix=f"bench{tag}.", partitions=6)
        ensure_topics(settings)
        # The gateway's own settings pass through (AWE_GATEWAY_LINGER_MS, say); the rest are set here.
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWE_") or k.startswith("AWE_GATEWAY_")}
        env.update(
            AWE_KAFKA_BOOTSTRAP=bootstrap,
            AWE_TOPIC_PREFIX=settings.topic_prefix,
            AWE_PARTITIONS="6",
            AWE_GATEWAY_RATE_LIMIT="1000000",
            AWE_GATEWAY_RATE_BURST="1000000",
        )
        gw_port, bare_port = free_port(), free_port()
        logs = Path(tempfile.mkdtemp(prefix="awe-bench-gateway-"))
        gw_log = (logs / "gateway.log").open("w")
        gateway = subprocess.Popen(
            [sys.executable, "-m", "awe", "gateway", "--port", str(gw_port), "--log-level", "warning"],
            env=env,
            cwd=REPO,
            stdout=gw_log,
            stderr=subprocess.STDOUT,
        )
        stack.callback(gateway.wait, 30)
        stack.callback(gateway.terminate)
        bare_file = logs / "bare_app.py"
        bare_file.write_text(BARE_APP)
        plain_port = free_port()
        for name, bare_port_of in (("app", bare_port), ("plain", plain_port)):
            command = [sys.executable, "-m", "uvicorn", f"bare_app:{name}", "--port", str(bare_port_of)]
            bare = subprocess.Popen([*command, "--log-level", "warning"], cwd=logs)
            stack.callback(bare.wait, 30)
            stack.callback(bare.terminate)
        gw = f"http://127.0.0.1:{gw_port}"
        wait_http(f"{gw}/readyz")
        for bare_port_of in (bare_port, plain_port):
            wait_http(f"http://127.0.0.1:{bare_port_of}/v1/runs")
        definition = {
            "name": "bench",
            "inputs": {"n": {"type": "integer", "default": 1}},
            "nodes": {"a": {"kind": "transform", "output": 1}},
        }
        httpx.post(f"{gw}/v1/workflows", json=definition, timeout=30).raise_for_status()
        print(f"machine: {os.cpu_count()} cores shared by broker, gateway, load and bare app; fd limit {fds}")
        print(f"gateway pid {gateway.pid}", flush=True)

        if "a" in args.parts:
            body = orjson.dumps({"workflow": "bench", "inputs": {"n": 2}})
            secs = min(args.seconds, 10.0)
            rates: dict[str, list[float]] = {"bare": [], "start": [], "plain": []}
            targets = {
                "bare": f"http://127.0.0.1:{bare_port}/v1/runs",
                "start": f"{gw}/v1/runs",
                "plain": f"http://127.0.0.1:{plain_port}/v1/runs",
            }
            client = ""
            for round_ in range(args.rounds):
                for what, url in targets.items():
                    rate, client = load(url, body, secs, args.concurrency, logs)
                    rates[what].append(rate)
                print(
                    f"(a) round {round_ + 1}: bare Starlette {rates['bare'][-1]:,.0f} req/s, POST /v1/runs "
                    f"{rates['start'][-1]:,.0f} req/s = {rates['start'][-1] / rates['bare'][-1]:.0%} of bare; "
                    f"bare plain ASGI {rates['plain'][-1]:,.0f} req/s",
                    flush=True,
                )
            ratio = statistics.median(s / b for s, b in zip(rates["start"], rates["bare"], strict=True))
            plain_ratio = statistics.median(s / p for s, p in zip(rates["start"], rates["plain"], strict=True))
            print(f"(a) load from {client}, {args.concurrency} connections, {args.rounds} rounds of {secs:.0f} s each")
            print(f"(a) bare Starlette JSON endpoint: {statistics.median(rates['bare']):,.0f} req/s (median)")
            print(
                f"(a) POST /v1/runs (inputs checked, StartRun stored, acks=all): "
                f"{statistics.median(rates['start']):,.0f} req/s (median) = {ratio:.0%} of bare, median of the "
                f"rounds (target >= 50%); {plain_ratio:.0%} of a bare plain-ASGI endpoint"
            )

        runs = [f"bench-run-{tag}-{i}" for i in range(args.runs)]
        seqs: dict[str, int] = {}
        producer = events_producer(settings)
        topic = Catalog(settings).name(Role.EVENTS)
        produce_events(producer, topic, runs, max(args.rate, 500), len(runs) / max(args.rate, 500) + 0.5, seqs)
        if "b" in args.parts:
            stats = run_subscribers(
                f"ws://127.0.0.1:{gw_port}/v1/stream",
                runs,
                args.subscribers,
                args.seconds,
                (producer, topic),
                args.rate,
                seqs,
            )
            print(
                f"(b) {args.subscribers:,} subscribers over {args.runs:,} runs at {args.rate:,.0f} events/s: "
                f"held {stats['held']:,}; gateway RSS {rss_mib(gateway.pid):,.0f} MiB; event-to-client latency "
                f"p50 {stats['p50_ms']:.1f} ms, p99 {stats['p99_ms']:.1f} ms ({stats['received']:,} deliveries)"
            )

        one = [runs[0]]
        for rate in args.broadcast_rates if "broadcast" in args.parts else []:
            stats = run_subscribers(
                f"ws://127.0.0.1:{gw_port}/v1/stream", one, args.subscribers, 6, (producer, topic), rate, seqs
            )
            expected = rate * 5 * args.subscribers
            share = stats["received"] / expected if expected else 0
            print(
                f"(b) broadcast {rate:,.0f} events/s to {args.subscribers:,}: {stats['received'] / 5:,.0f} "
                f"deliveries/s ({share:.0%} of sent x subscribers), held {stats['held']:,}, "
                f"p99 {stats['p99_ms']:.0f} ms"
            )
            if share < 0.95 or stats["held"] < args.subscribers:
                break
        print(f"gateway log: {logs / 'gateway.log'}")


if __name__ == "__main__":
    main()
