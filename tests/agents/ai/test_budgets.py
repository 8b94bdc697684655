"""Budgets: which limit applies, and the failure when one is spent."""

from __future__ import annotations

from pathlib import Path

import pytest

from agents.ai.budgets import Budgets
from agents.exceptions import ProviderError
from schemas.ai import UsageTotals

NONE = UsageTotals()


def spent(tokens: int = 0, cost: float = 0.0) -> UsageTotals:
    return UsageTotals(calls=1, input_tokens=tokens, cost_usd=cost)


def test_a_file_is_read_and_daily_usage_is_needed_only_for_daily_limits(tmp_path: Path) -> None:
    path = tmp_path / "budgets.yaml"
    path.write_text("tenants:\n  acme: {per_run: {tokens: 100}}\nworkflows:\n  triage: {per_day: {cost_usd: 1}}\n")
    budgets = Budgets.load(path)
    assert budgets.tenant("acme").per_run.tokens == 100
    assert budgets.needs_daily_usage
    assert not Budgets.load(None).needs_daily_usage
    assert not Budgets.model_validate({"tenants": {"a": {"per_run": {"tokens": 1}}}}).needs_daily_usage


@pytest.mark.parametrize(
    ("config", "run", "tenant_day", "workflow_day", "fragment"),
    [
        ({"tenants": {"acme": {"per_run": {"tokens": 100}}}}, spent(100), NONE, NONE, "tenant acme per run"),
        ({"tenants": {"*": {"per_day": {"cost_usd": 0.5}}}}, NONE, spent(cost=0.5), NONE, "tenant acme today"),
        ({"workflows": {"wf": {"per_run": {"cost_usd": 0.01}}}}, spent(cost=0.02), NONE, NONE, "workflow wf per run"),
        ({"workflows": {"wf": {"per_day": {"tokens": 10}}}}, NONE, NONE, spent(10), "workflow wf today"),
    ],
)
def test_an_exhausted_budget_fails_without_retry(
    config: dict[str, object], run: UsageTotals, tenant_day: UsageTotals, workflow_day: UsageTotals, fragment: str
) -> None:
    budgets = Budgets.model_validate(config)
    with pytest.raises(ProviderError) as caught:
        budgets.check(tenant="acme", workflow="wf", run=run, tenant_day=tenant_day, workflow_day=workflow_day)
    assert (caught.value.code, caught.value.retryable) == ("budget_exceeded", False)
    assert fragment in caught.value.message


def test_what_is_left_allows_the_call_and_other_tenants_are_not_bound() -> None:
    budgets = Budgets.model_validate({"tenants": {"acme": {"per_run": {"tokens": 100}}}})
    budgets.check(tenant="acme", workflow="wf", run=spent(99), tenant_day=NONE, workflow_day=NONE)
    budgets.check(tenant="other", workflow="wf", run=spent(10_000), tenant_day=NONE, workflow_day=NONE)
