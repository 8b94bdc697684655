"""The Faust application: one per worker process, configured from the settings.

Tables live in memory and are rebuilt from their changelog topics on start; there are no standby replicas,
so a partition's durable timers are only ever fired by the worker that owns it.
"""

from __future__ import annotations

from typing import Any

import faust
from faust.serializers import codecs

from schemas.state import RunState
from streams.settings import Settings
from streams.tuning import tune_faust_consumer


class RunStateCodec(codecs.Codec):
    """Run states in the changelog as JSON (pydantic's Rust core); in memory, see :func:`stored_state`."""

    def _dumps(self, obj: Any) -> bytes:
        if isinstance(obj, bytes):
            return obj
        assert isinstance(obj, RunState)
        return obj.__pydantic_serializer__.to_json(obj)

    def _loads(self, s: bytes) -> Any:
        return stored_state(RunState.model_validate_json(s), s)


def stored_state(state: RunState, encoded: bytes) -> RunState | bytes:
    """What the runs table holds for ``state``: the object while the run is live, its JSON once it ended.

    Finished runs stay in the table for good (their state is what turns away a second StartRun with the same
    id) and are rarely read again. As JSON a finished 3-node run takes ~2 KB instead of ~9 KB, and none of
    its ~19 objects are left for the garbage collector to walk in every full collection.
    """
    return bytes(encoded) if state.terminal else state


def loaded_state(value: RunState | bytes | None) -> RunState | None:
    """A runs-table value as a RunState (see :func:`stored_state`)."""
    if isinstance(value, bytes):
        return RunState.model_validate_json(value)
    return value


codecs.register("awe_run_state", RunStateCodec())


class RunStateValue:
    """The value type of the runs table as Faust sees it: our codec both ways, none of Faust's models.

    Faust picks a table's codec from ``value_type._options.serializer`` when the table is created, and
    rebuilds values on recovery with ``value_type.from_data``; the codec has already built the RunState.
    """

    class _options:  # noqa: N801 - the attribute name Faust reads
        serializer = "awe_run_state"

    @classmethod
    def from_data(cls, data: Any, *, preferred_type: Any = None) -> Any:
        """The decoded value, unchanged."""
        return data


def raw_topic(app: faust.App, *names: str) -> faust.TopicT:
    """A topic whose keys and values awe (de)serializes itself, so a bad record reaches our error handling."""
    return app.topic(*names, key_serializer="raw", value_serializer="raw")


def create_app(settings: Settings, *, app_id: str | None = None, web_port: int | None = None) -> faust.App:
    """A Faust app bound to the configured broker with awe's processing guarantee and commit interval."""
    tune_faust_consumer()
    port = web_port if web_port is not None else settings.worker_web_port
    app_id = app_id or settings.app_id
    # Faust's default datadir is ``<app_id>-data`` in the working directory; it only mkdirs the last level.
    datadir = settings.worker_data_dir(app_id)
    datadir.parent.mkdir(parents=True, exist_ok=True)
    return faust.App(
        app_id,
        datadir=str(datadir),
        broker=[f"kafka://{host}" for host in settings.kafka_bootstrap.split(",")],
        processing_guarantee=settings.processing_guarantee,
        broker_commit_interval=settings.commit_interval_s,
        broker_session_timeout=settings.session_timeout_s,
        broker_heartbeat_interval=min(3.0, settings.session_timeout_s / 3),
        topic_partitions=settings.partitions,
        topic_replication_factor=settings.replication_factor,
        topic_allow_declare=True,
        table_standby_replicas=0,
        store="memory://",
        web_enabled=port is not None,
        web_port=port or 6066,
        web_host="127.0.0.1",
        consumer_auto_offset_reset="earliest",
        producer_linger=settings.producer_linger_ms / 1000,
        producer_max_request_size=settings.record_max_bytes,
        consumer_max_fetch_size=settings.record_max_bytes,
        stream_wait_empty=False,
    )
