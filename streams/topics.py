"""The topic catalog: every topic awe uses, by role. Nothing else in the code spells a topic name."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from streams.settings import Settings


class Role(StrEnum):
    """What a topic is for; its name is the prefix plus this value."""

    COMMANDS = "commands"
    RESULTS = "results"
    EVENTS = "events"
    TOKENS = "tokens"
    DEFINITIONS = "definitions"
    PLUGINS = "plugins"
    DLQ = "dlq"
    RUN_INDEX = "index.runs"
    RUNS = "projections.runs"
    USAGE = "projections.usage"
    SINK_EVENTS = "sink.events"
    SINK_RUNS = "sink.runs"
    CONNECT_CONFIGS = "connect.configs"
    CONNECT_OFFSETS = "connect.offsets"
    CONNECT_STATUS = "connect.status"


TASK_KINDS: tuple[str, ...] = ("http", "ai", "wasm")
"""Side-effecting node kinds that have a tasks topic (``awe.tasks.<kind>``); later kinds add theirs here."""


@dataclass(frozen=True, slots=True)
class TopicSpec:
    """A topic as it must exist on the broker."""

    name: str
    partitions: int
    config: dict[str, str]

    @property
    def compacted(self) -> bool:
        """Whether the topic keeps only the newest record per key."""
        return self.config.get("cleanup.policy") == "compact"


class Catalog:
    """Names and specs of every topic, derived from the settings."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.prefix = settings.topic_prefix

    def name(self, role: Role) -> str:
        """The topic name for a role."""
        return f"{self.prefix}{role.value}"

    def tasks(self, kind: str) -> str:
        """The tasks topic of a node kind."""
        return f"{self.prefix}tasks.{kind}"

    def run_states(self) -> str:
        """The orchestrator's run states (compacted): the changelog Faust names for table ``runs`` of the app."""
        return f"{self.settings.app_id}-runs-changelog"

    def specs(self) -> list[TopicSpec]:
        """Every topic with its partitions and retention, in creation order."""
        s = self.settings
        run_partitions = s.partitions

        # A node's output travels in a result, an event and the run's state: records that can pass Kafka's
        # default limit of 1 MiB (a plugin may answer 1 MiB), so the run topics take larger ones.
        sized = {"max.message.bytes": str(s.record_max_bytes)}

        def retained(ms: int) -> dict[str, str]:
            return {"cleanup.policy": "delete", "retention.ms": str(ms), **sized}

        compacted = {"cleanup.policy": "compact"}
        specs = [
            TopicSpec(self.name(Role.COMMANDS), run_partitions, retained(s.retention_commands_ms)),
            TopicSpec(self.name(Role.RESULTS), run_partitions, retained(s.retention_results_ms)),
            TopicSpec(self.name(Role.EVENTS), run_partitions, retained(-1)),
            TopicSpec(self.name(Role.TOKENS), run_partitions, retained(s.retention_tokens_ms)),
            TopicSpec(self.run_states(), run_partitions, {**compacted, **sized}),
            TopicSpec(self.name(Role.DEFINITIONS), 1, compacted),
            # Records carry whole modules (up to 8 MiB, base64): more than Kafka's default 1 MiB.
            TopicSpec(self.name(Role.PLUGINS), 1, {**compacted, "max.message.bytes": str(16 << 20)}),
            TopicSpec(self.name(Role.DLQ), 1, retained(s.retention_dlq_ms)),
            # Projections of awe.events, rebuilt from it at will: keyed by run id (on the run's partition
            # number) and by usage key.
            TopicSpec(self.name(Role.RUN_INDEX), run_partitions, compacted),
            TopicSpec(self.name(Role.RUNS), run_partitions, {**compacted, **sized}),
            TopicSpec(self.name(Role.USAGE), 1, compacted),
            # Sink-ready copies of awe.events for Kafka Connect (JSON with an embedded Connect schema), derived
            # by streams/connect/deriver.py and re-derivable from awe.events at will: see docs/connect.md.
            TopicSpec(self.name(Role.SINK_EVENTS), run_partitions, retained(s.retention_sink_ms)),
            TopicSpec(self.name(Role.SINK_RUNS), run_partitions, {**compacted, **sized}),
            # Kafka Connect's own state; the worker requires them compacted, its config topic on one partition.
            TopicSpec(self.name(Role.CONNECT_CONFIGS), 1, compacted),
            TopicSpec(self.name(Role.CONNECT_OFFSETS), 5, compacted),
            TopicSpec(self.name(Role.CONNECT_STATUS), 5, compacted),
        ]
        specs += [TopicSpec(self.tasks(kind), run_partitions, retained(s.retention_tasks_ms)) for kind in TASK_KINDS]
        return specs
