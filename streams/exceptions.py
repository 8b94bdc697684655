"""Errors of the Kafka edge: topics, producing, reading."""

from __future__ import annotations

from schemas.exceptions import AweError


class StreamsError(AweError):
    """Root of the errors raised by ``streams``."""

    code = "streams_error"


class TopicMismatchError(StreamsError):
    """A topic exists with a partition count other than the catalog's: using it would split runs."""

    code = "topic_mismatch"


class BrokerUnavailableError(StreamsError):
    """The broker did not answer in time."""

    code = "broker_unavailable"
    retryable = True


class ProduceError(StreamsError):
    """A record could not be written."""

    code = "produce_failed"
    retryable = True


class PluginConflictError(StreamsError):
    """A plugin name and version already name another module: a registered version never changes."""

    code = "plugin_conflict"
