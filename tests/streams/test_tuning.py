"""The consumer latency fixes are in force once an app exists."""

from __future__ import annotations

from aiokafka.consumer.fetcher import Fetcher
from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread, Producer

from streams.app import create_app
from streams.settings import Settings
from streams.tuning import FETCH_MAX_WAIT_MS, PREFETCH_BACKOFF_S


def test_create_app_applies_the_fetch_fixes() -> None:
    create_app(Settings(kafka_bootstrap="127.0.0.1:1"))
    assert (Fetcher.__init__.__kwdefaults__ or {})["prefetch_backoff"] == PREFETCH_BACKOFF_S
    assert AIOKafkaConsumerThread._create_worker_consumer.__name__ == "_create_worker_consumer_with_short_poll"
    assert FETCH_MAX_WAIT_MS <= 100
    assert Producer.commit_transactions.__name__ == "_commit_transactions_concurrently"
