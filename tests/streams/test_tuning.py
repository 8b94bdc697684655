"""The consumer latency fixes are in force once an app exists."""

from __future__ import annotations

from pathlib import Path

import pytest
from aiokafka.consumer.fetcher import Fetcher
from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread, Producer

from streams.app import create_app
from streams.settings import Settings
from streams.tuning import FETCH_MAX_WAIT_MS, PREFETCH_BACKOFF_S


def test_create_app_applies_the_fetch_fixes(tmp_path: Path) -> None:
    create_app(Settings(kafka_bootstrap="127.0.0.1:1", data_dir=tmp_path))
    assert (Fetcher.__init__.__kwdefaults__ or {})["prefetch_backoff"] == PREFETCH_BACKOFF_S
    assert AIOKafkaConsumerThread._create_worker_consumer.__name__ == "_create_worker_consumer_with_short_poll"
    assert FETCH_MAX_WAIT_MS <= 100
    assert Producer.commit_transactions.__name__ == "_commit_transactions_concurrently"
    from faust.transport.drivers.aiokafka import Consumer

    assert Consumer._commit_handler.fun.__name__ == "_commit_when_idle"
    assert Consumer.ack.__name__ == "_ack_and_wake_committer"


def test_the_table_data_lives_under_the_data_dir(tmp_path: Path) -> None:
    app = create_app(Settings(kafka_bootstrap="127.0.0.1:1", data_dir=tmp_path / "data", app_id="awe-x"))
    assert app.conf.datadir == tmp_path / "data" / "awe-x"
    assert app.conf.tabledir.is_relative_to(tmp_path / "data" / "awe-x")


def test_the_data_dir_defaults_to_the_awe_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("AWE_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("AWE_DATA_DIR", raising=False)
    assert Settings(app_id="awe-y").worker_data_dir("awe-y") == tmp_path / "home" / "workers" / "awe-y"
