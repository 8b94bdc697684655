"""What a commit costs by the number of partitions it writes: the orchestrator's producer on its own.

librdkafka sends one ProduceRequest per partition, and the broker answers a connection's requests one at a
time, so a transaction that writes 18 partitions (a batch of runs on 6 partitions of the events, tasks and
run-state topics) waits for 18 requests in turn before it can commit. This measures that with the loop
orchestrator's own producer settings: ``--records`` small records spread over P partitions, then a flush
and a commit, for P = 1 .. 18, transactional and (for the baseline) idempotent without a transaction.
Ratios are against one partition, measured in the same run.

    python benchmarks/transactions.py              # starts its own broker unless AWE_KAFKA_BOOTSTRAP is set
    python benchmarks/transactions.py --rounds 200 --records 60
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import uuid
from contextlib import ExitStack
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from confluent_kafka import Producer  # noqa: E402
from confluent_kafka.admin import AdminClient  # noqa: E402
from confluent_kafka.cimpl import NewTopic  # noqa: E402
from engine import broker, drop_topics  # noqa: E402

from agents.loop import BATCH_LINGER_MS, RETRY_BACKOFF_MS, TRANSACTION_TIMEOUT_MS  # noqa: E402
from streams.producer import producer_config  # noqa: E402
from streams.settings import Settings  # noqa: E402

#: Topics and partitions per topic, as one worker's events, tasks and run states on the default settings.
TOPICS = 3
PARTITIONS = 6
WIDTHS = (1, 3, 6, 9, 12, 18)
#: Rounds before the measured ones: the first transactions add partitions the coordinator has not seen.
WARMUP_ROUNDS = 10
VALUE = b"x" * 300


def producer(bootstrap: str, *, transactional: bool) -> Producer:
    """A producer configured as the loop orchestrator's (``agents/loop.py``)."""
    overrides: dict[str, object] = {"linger.ms": BATCH_LINGER_MS}
    if transactional:
        overrides |= {
            "transactional.id": f"bench-txn-{uuid.uuid4().hex}",
            "transaction.timeout.ms": TRANSACTION_TIMEOUT_MS,
            "retry.backoff.ms": RETRY_BACKOFF_MS,
        }
    p = Producer(producer_config(Settings(kafka_bootstrap=bootstrap), **overrides))
    if transactional:
        p.init_transactions(30)
    return p


def one_round(p: Producer, targets: list[tuple[str, int]], records: int, *, transactional: bool) -> float:
    """Seconds from the last record handed over to the records durable (and committed)."""
    if transactional:
        p.begin_transaction()
    for i in range(records):
        topic, partition = targets[i % len(targets)]
        p.produce(topic, VALUE, b"run", partition=partition)
    started = time.perf_counter()
    p.flush(30)
    if transactional:
        p.commit_transaction(30)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=100, help="measured rounds per width")
    parser.add_argument("--records", type=int, default=60, help="records per round (a 20 ms window at 64 clients)")
    args = parser.parse_args()

    with ExitStack() as stack:
        bootstrap = broker(stack)
        tag = f"bench-txn-{uuid.uuid4().hex[:6]}"
        topics = [f"{tag}.{i}" for i in range(TOPICS)]
        admin = AdminClient({"bootstrap.servers": bootstrap})
        for future in admin.create_topics([NewTopic(t, PARTITIONS, 1) for t in topics]).values():
            future.result()
        stack.callback(drop_topics, bootstrap, tag)
        targets = [(t, q) for q in range(PARTITIONS) for t in topics]

        print(f"{args.records} records of {len(VALUE)} B a round, {args.rounds} rounds per width; ms from the last")
        print("record handed over to all durable (idempotent) or committed (transactional)")
        print()
        header = f"{'transactional p50':>17} {'p90':>6} {'ratio':>6}  {'idempotent p50':>14} {'ratio':>6}"
        print(f"{'partitions':>10}  {header}")
        base: dict[bool, float] = {}
        clients = {kind: producer(bootstrap, transactional=kind) for kind in (True, False)}
        for width in WIDTHS:
            cells: dict[bool, list[float]] = {}
            for kind, p in clients.items():
                for _ in range(WARMUP_ROUNDS):
                    one_round(p, targets[:width], args.records, transactional=kind)
                cells[kind] = sorted(
                    one_round(p, targets[:width], args.records, transactional=kind) * 1000 for _ in range(args.rounds)
                )
            p50 = {kind: statistics.median(v) for kind, v in cells.items()}
            base = base or p50
            p90 = cells[True][int(0.9 * len(cells[True]))]
            print(
                f"{width:>10}  {p50[True]:>17.2f} {p90:>6.2f} {p50[True] / base[True]:>6.2f}"
                f"  {p50[False]:>14.2f} {p50[False] / base[False]:>6.2f}"
            )
        for p in clients.values():
            p.flush(30)


if __name__ == "__main__":
    main()
