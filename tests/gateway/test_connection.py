"""A connection's send queue: each run's seq sent once, live events held during a history read and sent
after it, and a full queue closing the connection as a slow consumer."""

from __future__ import annotations

import asyncio

import orjson

from gateway.auth import Principal, Role
from gateway.connection import CLOSE_SLOW_CONSUMER, Connection, event_message
from gateway.history import RawEvent
from gateway.ratelimit import TokenBucket


def _event(seq: int, run_id: str = "r") -> RawEvent:
    value = orjson.dumps({"run_id": run_id, "tenant_id": "t", "seq": seq, "type": "NodeStarted"})
    found = RawEvent.parse(0, seq, value)
    assert found is not None
    return found


def _connection(size: int, closes: list[tuple[int, str]]) -> Connection:
    async def closer(code: int, reason: str) -> None:
        closes.append((code, reason))

    return Connection(Principal("t", Role.VIEWER, "v"), size, TokenBucket.full(10, 10), closer)


def _seqs(connection: Connection) -> list[int]:
    out = []
    while not connection.queue.empty():
        out.append(orjson.loads(connection.queue.get_nowait())["event"]["seq"])
    return out


def test_history_then_held_live_events_without_gap_or_duplicate() -> None:
    async def scenario() -> None:
        connection = _connection(100, [])
        connection.holding += 1
        for seq in (3, 4, 5):  # live events that arrive while the history is read
            connection.deliver(_event(seq), event_message(_event(seq)))
        await connection.send_history([_event(1), _event(2), _event(3), _event(4)])
        connection.release()
        connection.deliver(_event(5), "a duplicate, never sent")
        connection.deliver(_event(6), event_message(_event(6)))
        assert _seqs(connection) == [1, 2, 3, 4, 5, 6]

    asyncio.run(scenario())


def test_a_full_queue_closes_the_connection_once() -> None:
    async def scenario() -> None:
        closes: list[tuple[int, str]] = []
        connection = _connection(2, closes)
        for seq in range(1, 6):
            connection.deliver(_event(seq), "m")
        await asyncio.sleep(0)
        assert closes == [(CLOSE_SLOW_CONSUMER, "slow_consumer")]
        assert connection.closing

    asyncio.run(scenario())
