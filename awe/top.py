"""``awe top``: a live view of runs/s, success rate, lag, tokens and cost per minute, from /metrics.

It reads the same counters the Grafana dashboards query, from the workers' metrics endpoints, and turns
the difference between two scrapes into rates.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import httpx
from prometheus_client.parser import text_string_to_metric_families


@dataclass
class Sample:
    """The counters awe top needs, summed over every endpoint, at one moment."""

    at: float
    finished: float = 0.0
    succeeded: float = 0.0
    tokens: float = 0.0
    cost_usd: float = 0.0
    lag: dict[tuple[str, str], float] = field(default_factory=dict)

    @property
    def total_lag(self) -> float:
        """Records behind, over every topic and partition."""
        return sum(self.lag.values())


@dataclass(frozen=True)
class Figures:
    """What one refresh of awe top shows."""

    runs_per_s: float
    success_rate: float | None
    lag: float
    tokens_per_min: float
    cost_per_min: float
    runs_finished: float
    tokens: float
    cost_usd: float


def parse(text: str, sample: Sample) -> None:
    """Add one endpoint's exposition text to ``sample``."""
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == "awe_runs_finished_total":
                sample.finished += s.value
                if s.labels.get("status") == "succeeded":
                    sample.succeeded += s.value
            elif s.name == "awe_ai_tokens_total" and s.labels.get("direction") in ("input", "output"):
                sample.tokens += s.value
            elif s.name == "awe_ai_cost_usd_total":
                sample.cost_usd += s.value
            elif s.name == "awe_consumer_lag":
                key = (s.labels["topic"], s.labels["partition"])
                # Every worker reports the group's lag: the same figure, counted once.
                sample.lag[key] = max(sample.lag.get(key, 0.0), s.value)


def scrape(urls: list[str]) -> Sample:
    """One sample over every endpoint."""
    sample = Sample(at=time.monotonic())
    for url in urls:
        parse(httpx.get(url, timeout=5).text, sample)
    return sample


def figures(before: Sample, after: Sample) -> Figures:
    """The rates between two samples, and the totals at the second."""
    seconds = max(after.at - before.at, 1e-9)
    finished = after.finished - before.finished
    return Figures(
        runs_per_s=finished / seconds,
        success_rate=(after.succeeded - before.succeeded) / finished if finished > 0 else None,
        lag=after.total_lag,
        tokens_per_min=(after.tokens - before.tokens) * 60 / seconds,
        cost_per_min=(after.cost_usd - before.cost_usd) * 60 / seconds,
        runs_finished=after.finished,
        tokens=after.tokens,
        cost_usd=after.cost_usd,
    )
