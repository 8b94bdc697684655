"""awe top's arithmetic: rates from two scrapes of the exposition text."""

from __future__ import annotations

from awe.top import Sample, figures, parse

BEFORE = """
# TYPE awe_runs_finished_total counter
awe_runs_finished_total{workflow="a",status="succeeded"} 10
awe_runs_finished_total{workflow="a",status="failed"} 2
# TYPE awe_ai_tokens_total counter
awe_ai_tokens_total{provider="openai",model="m",tenant="t",direction="input"} 100
awe_ai_tokens_total{provider="openai",model="m",tenant="t",direction="cached"} 50
# TYPE awe_ai_cost_usd_total counter
awe_ai_cost_usd_total{provider="openai",model="m",tenant="t"} 0.5
# TYPE awe_consumer_lag gauge
awe_consumer_lag{topic="c",partition="0"} 3
"""

AFTER = BEFORE.replace("} 10", "} 16").replace("} 100", "} 160").replace("} 0.5", "} 0.6")


def test_rates_and_totals_between_two_scrapes() -> None:
    before, after = Sample(at=0.0), Sample(at=2.0)
    parse(BEFORE, before)
    parse(AFTER, after)
    parse(AFTER, after)  # a second worker reports the same group lag: counted once
    shown = figures(before, after)
    assert shown.runs_per_s == (16 * 2 + 2 * 2 - 12) / 2
    assert shown.lag == 3
    assert shown.success_rate is not None and 0 < shown.success_rate <= 1
    assert shown.tokens_per_min == (320 - 100) * 60 / 2
    assert round(shown.cost_per_min, 9) == round((1.2 - 0.5) * 60 / 2, 9)


def test_no_finished_run_means_no_success_rate() -> None:
    before, after = Sample(at=0.0), Sample(at=1.0)
    assert figures(before, after).success_rate is None
