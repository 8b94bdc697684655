"""The exactly-once executor's committer thread: when it commits, what it gathers, and that it survives."""

from __future__ import annotations

import threading

from confluent_kafka import KafkaError, KafkaException

from agents.executors.committer import Committer

WAIT_S = 5.0


class Transactions:
    """Stands in for the runner's ``_commit_done``: takes what finished, returns how many it answered."""

    def __init__(self, fail_first: int = 0) -> None:
        self.finished: list[int] = []
        self.commits: list[list[int]] = []
        self.failures = 0
        self._fail_first = fail_first
        self._lock = threading.Lock()
        self.committed = threading.Event()

    def finish(self, task: int, committer: Committer) -> None:
        with self._lock:
            self.finished.append(task)
        committer.wake()

    def commit(self) -> int:
        if self.failures < self._fail_first:
            self.failures += 1
            raise KafkaException(KafkaError(KafkaError._TRANSPORT, "broker away"))
        with self._lock:
            taken, self.finished = self.finished, []
        if taken:
            self.commits.append(taken)
            self.committed.set()
        return len(taken)


def wait_for_commits(txns: Transactions, count: int) -> None:
    while len(txns.commits) < count:
        assert txns.committed.wait(WAIT_S), f"only {len(txns.commits)} of {count} commits happened"
        txns.committed.clear()


def test_a_lone_task_is_committed_on_its_own() -> None:
    txns = Transactions()
    # Were a lone task gathered for, its commit would come long after ``wait_for_commits`` gives up.
    committer = Committer("test-txn", txns.commit, gather_s=60.0, idle_s=WAIT_S)
    committer.start()
    try:
        txns.finish(1, committer)
        wait_for_commits(txns, 1)
        txns.finish(2, committer)
        wait_for_commits(txns, 2)
    finally:
        committer.close()
    assert txns.commits == [[1], [2]]


def test_after_a_commit_of_several_tasks_the_next_gathers() -> None:
    txns = Transactions()
    committer = Committer("test-txn", txns.commit, gather_s=0.5, idle_s=WAIT_S)
    txns.finished.extend([1, 2])
    committer.start()
    try:
        committer.wake()
        wait_for_commits(txns, 1)
        # These come within the gathering time, so one transaction answers all three.
        for task in (3, 4, 5):
            txns.finish(task, committer)
        wait_for_commits(txns, 2)
    finally:
        committer.close()
    assert txns.commits == [[1, 2], [3, 4, 5]]


def test_a_failed_commit_is_tried_again_and_loses_nothing() -> None:
    txns = Transactions(fail_first=2)
    committer = Committer("test-txn", txns.commit, gather_s=0.0, idle_s=0.05)
    committer.start()
    try:
        txns.finish(1, committer)
        wait_for_commits(txns, 1)
        txns.finish(2, committer)
        wait_for_commits(txns, 2)
    finally:
        committer.close()
    assert txns.failures == 2
    assert txns.commits == [[1], [2]]
