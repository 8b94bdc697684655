"""Which partition a run lives on: murmur2 of the run id, as the Java client, aiokafka and our producers do."""

from __future__ import annotations

from aiokafka.partitioner import murmur2


def partition_for(run_id: str, partitions: int) -> int:
    """The partition of ``awe.commands``, ``awe.results`` and ``awe.events`` that holds a run."""
    digest: int = murmur2(run_id.encode())
    return (digest & 0x7FFFFFFF) % partitions
