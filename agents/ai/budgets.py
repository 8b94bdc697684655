"""Token and cost budgets per tenant and per workflow, per day and per run, checked before each call.

Operators write them in a YAML file (``AWE_BUDGETS_FILE``)::

    tenants:
      acme: {per_day: {cost_usd: 25}, per_run: {tokens: 20000}}
      "*": {per_day: {tokens: 2000000}}     # every tenant without an entry of its own
    workflows:
      triage: {per_run: {cost_usd: 0.05}}   # counted per tenant

A budget is exhausted when what was spent reached the limit; the call that would overshoot cannot be known
in advance, so the check is "nothing left", not "enough left for this call".
"""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field

from agents.exceptions import ProviderError
from schemas.ai import UsageTotals


class Limit(BaseModel):
    """Upper bounds; ``None`` means unlimited."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    tokens: int | None = Field(default=None, ge=0)
    cost_usd: float | None = Field(default=None, ge=0)

    def exceeded_by(self, spent: UsageTotals) -> str | None:
        """What ran out, in words, or None."""
        if self.tokens is not None and spent.total_tokens >= self.tokens:
            return f"{spent.total_tokens} of {self.tokens} tokens used"
        if self.cost_usd is not None and spent.cost_usd >= self.cost_usd:
            return f"${spent.cost_usd:.6f} of ${self.cost_usd:g} spent"
        return None


class Scope(BaseModel):
    """The limits of one tenant or workflow."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    per_day: Limit = Field(default_factory=Limit)
    per_run: Limit = Field(default_factory=Limit)


class Budgets(BaseModel):
    """Every configured budget."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    tenants: dict[str, Scope] = Field(default_factory=dict)
    workflows: dict[str, Scope] = Field(default_factory=dict)

    @classmethod
    def load(cls, path: Path | None) -> Budgets:
        """The budgets in the YAML file at ``path``; none at all without a file."""
        if path is None:
            return cls()
        return cls.model_validate(yaml.safe_load(path.read_text()) or {})

    @property
    def needs_daily_usage(self) -> bool:
        """Whether any per-day limit is set (only then must a worker follow the day's usage)."""
        scopes = [*self.tenants.values(), *self.workflows.values()]
        return any(s.per_day != Limit() for s in scopes)

    def tenant(self, tenant: str) -> Scope:
        """The scope that applies to ``tenant``."""
        return self.tenants.get(tenant) or self.tenants.get("*") or Scope()

    def check(
        self,
        *,
        tenant: str,
        workflow: str | None,
        run: UsageTotals,
        tenant_day: UsageTotals,
        workflow_day: UsageTotals,
    ) -> None:
        """Raise ``budget_exceeded`` (non-retryable) if any budget that applies has nothing left."""
        checks: list[tuple[str, Limit, UsageTotals]] = []
        scope = self.tenant(tenant)
        checks += [
            (f"tenant {tenant} per run", scope.per_run, run),
            (f"tenant {tenant} today", scope.per_day, tenant_day),
        ]
        if workflow is not None and workflow in self.workflows:
            flow = self.workflows[workflow]
            checks += [
                (f"workflow {workflow} per run", flow.per_run, run),
                (f"workflow {workflow} today for tenant {tenant}", flow.per_day, workflow_day),
            ]
        for name, limit, spent in checks:
            reason = limit.exceeded_by(spent)
            if reason is not None:
                raise ProviderError(
                    f"budget exhausted: {name}: {reason}",
                    code="budget_exceeded",
                    retryable=False,
                    detail={"budget": name, "limit": limit.model_dump(), "spent": spent.model_dump()},
                )
