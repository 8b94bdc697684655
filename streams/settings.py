"""The one settings object of awe, read from the environment (prefix ``AWE_``) and a ``.env`` file."""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

Guarantee = Literal["exactly_once", "at_least_once"]


class Settings(BaseSettings):
    """Everything a worker, the gateway or the CLI can be told, with defaults that run on a laptop."""

    model_config = SettingsConfigDict(env_prefix="AWE_", env_file=".env", extra="ignore", frozen=True)

    kafka_bootstrap: str = "127.0.0.1:9092"
    topic_prefix: str = "awe."
    partitions: int = Field(default=6, ge=1, description="partitions of commands, results, events, tasks")
    replication_factor: int = Field(default=1, ge=1)
    record_max_bytes: int = Field(
        default=8 << 20, ge=1 << 20, description="largest record on the run topics (their max.message.bytes)"
    )
    retention_commands_ms: int = 7 * 24 * 3600 * 1000
    retention_results_ms: int = 7 * 24 * 3600 * 1000
    retention_tasks_ms: int = 7 * 24 * 3600 * 1000
    retention_tokens_ms: int = 6 * 3600 * 1000
    retention_dlq_ms: int = 28 * 24 * 3600 * 1000
    retention_sink_ms: int = 7 * 24 * 3600 * 1000

    tenant: str = "default"
    principal: str | None = Field(default=None, description="who commands from this process; else the OS user")
    app_id: str = "awe"
    processing_guarantee: Guarantee = "exactly_once"
    orchestrator: Literal["loop", "faust"] = Field(
        default="loop", description="the orchestrator's runtime: a librdkafka loop, or a Faust agent"
    )
    commit_interval_s: float = Field(default=0.1, gt=0, description="bounds per-step latency under exactly-once")
    producer_linger_ms: float = Field(
        default=0.0, ge=0, description="the workers' producer batching delay; 0 keeps every hop short"
    )
    http_concurrency: int = Field(default=32, ge=1)
    ai_concurrency: int = Field(default=16, ge=1, description="AI calls in flight per worker")
    ai_timeout_s: float = Field(default=120.0, gt=0, description="per AI call, when the node sets no timeout")
    bedrock_region: str | None = Field(default=None, description="else AWS_REGION / the AWS profile's region")
    bedrock_profile: str | None = Field(default=None, description="an AWS profile name; else the default chain")
    bedrock_endpoint_url: str | None = Field(default=None, description="else AWS_ENDPOINT_URL_BEDROCK_RUNTIME")
    budgets_file: Path | None = Field(default=None, description="YAML of token and cost budgets")
    pricing_file: Path | None = Field(default=None, description="a pricing table to use instead of awe's")
    wasm_fuel: int = Field(default=1_000_000_000, ge=1, description="instruction budget of one plugin call")
    wasm_memory_bytes: int = Field(default=64 << 20, ge=1 << 16, description="linear memory of one plugin call")
    wasm_deadline_s: float = Field(default=5.0, gt=0, description="wall-clock limit of one plugin call")
    wasm_output_bytes: int = Field(default=1 << 20, ge=1, description="largest output of one plugin call")
    wasm_max_instances: int = Field(default=2, ge=1, description="plugin instances running at once per worker")
    wasm_inline_fuel: int = Field(
        default=1_000_000,
        ge=0,
        description="fuel a call may use on the loop before it moves to a thread",
    )
    wasm_host_functions: str = Field(default="log", description="comma-separated host functions plugins may use")
    wasm_cache_dir: Path | None = Field(default=None, description="compiled plugins; else a per-user temp dir")
    timer_tick_s: float = Field(default=0.05, gt=0)
    worker_web_port: int | None = None
    metrics_port: int | None = Field(default=None, description="a worker's /metrics port; off when unset")
    metrics_host: str = "127.0.0.1"
    log_format: Literal["text", "json"] = "text"
    event_loop: Literal["uvloop", "asyncio"] = Field(default="uvloop", description="the workers' event loop")
    session_timeout_s: float = 10.0
    log_level: str = "INFO"
    data_dir: Path | None = Field(
        default=None, description="where workers keep Faust's local table data; default $AWE_HOME/workers"
    )

    # The gateway (docs/gateway.md). Credentials are SecretStr so they never show in a settings dump.
    api_keys: SecretStr | None = Field(
        default=None, description='gateway API keys, JSON {"<key>": {"tenant": ..., "role": ...}}; hashed at load'
    )
    api_keys_file: Path | None = Field(default=None, description="a file holding the same JSON as AWE_API_KEYS")
    api_key: SecretStr | None = Field(default=None, description="the key the CLI sends with --gateway")
    jwt_secret: SecretStr | None = Field(default=None, description="HS256 secret the gateway verifies JWTs with")
    jwt_public_key_file: Path | None = Field(default=None, description="PEM public key for RS256 JWTs")
    jwt_issuer: str | None = Field(default=None, description="the `iss` a JWT must carry, when set")
    jwt_audience: str | None = Field(default=None, description="the `aud` a JWT must carry, when set")
    jwt_tenant_claim: str = "tenant"
    jwt_role_claim: str = "role"
    gateway_rate_limit: float = Field(default=200.0, gt=0, description="requests/s per tenant per gateway process")
    gateway_rate_burst: int = Field(default=400, ge=1)
    gateway_max_body_bytes: int = Field(default=1024 * 1024, ge=1024)
    gateway_linger_ms: float = Field(
        default=1.0, ge=0, le=1000, description="how long the gateway's producer batches commands before sending"
    )
    ws_max_message_bytes: int = Field(default=64 * 1024, ge=256)
    ws_rate_limit: float = Field(default=20.0, gt=0, description="client messages/s per WebSocket connection")
    ws_rate_burst: int = Field(default=40, ge=1)
    ws_send_queue: int = Field(default=1000, ge=1, description="messages queued per connection before slow_consumer")
    ws_ping_interval_s: float = Field(default=15.0, gt=0)

    def worker_data_dir(self, app_id: str) -> Path:
        """The data directory of one Faust app: never the working directory, where Faust puts it by default."""
        return (self.data_dir or awe_home() / "workers").expanduser().absolute() / app_id


def awe_home() -> Path:
    """``$AWE_HOME``, or ``~/.cache/awe``: where jars, default data and run state live."""
    return Path(os.environ.get("AWE_HOME") or Path.home() / ".cache" / "awe").expanduser().absolute()


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return Settings()
