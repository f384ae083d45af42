"""Shared AWS costs: what no one customer caused (AWS Support, a NAT gateway, untagged resources), split
over the cost scopes of the period.

The rule names the shared services and whether the unattributed costs (scope ``""``: untagged, or no
linked account) are shared too. Every scope with costs of its own in the period receives a share,
in proportion to those costs or evenly; the shares sum exactly to the shared cost (largest remainder
in the smallest decimal unit the amounts carry), and each reaches the invoice as its own breakdown
entry, ``SHARED_COSTS``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from decimal import Decimal
from enum import StrEnum

from billing_core.domain.costs import CostLine, CostReport, sorted_lines
from billing_core.domain.money import ZERO, allocate

SHARED_COSTS = "Shared costs"  # the service name of a scope's share (its invoice text: SHARED_COSTS_TEXT)
SHARED_COSTS_TEXT = {"de": "Anteilige gemeinsame Kosten", "en": "Share of shared costs"}
UNATTRIBUTED = ""  # the scope of costs no tag or linked account claims


class SharedCostSplit(StrEnum):
    """How the shared cost is split over the scopes."""

    PROPORTIONAL = "proportional"  # by each scope's own (positive) costs of the period
    EVEN = "even"  # the same part for every scope with costs of its own


@dataclass(frozen=True)
class SharedCostRule:
    """Which costs are shared, and how they are split. The default shares nothing."""

    services: frozenset[str] = frozenset()
    unattributed: bool = False
    split: SharedCostSplit = SharedCostSplit.PROPORTIONAL

    @property
    def active(self) -> bool:
        return bool(self.services) or self.unattributed

    def is_shared(self, scope: str | None, service: str) -> bool:
        """Whether a cost of ``service`` in ``scope`` belongs to the shared pool."""
        return service in self.services or (self.unattributed and scope == UNATTRIBUTED)


NO_SHARING = SharedCostRule()


def share_costs(report: CostReport, rule: SharedCostRule) -> CostReport:
    """``report`` with the shared costs taken out of their scopes and split over the others.

    A report that is not split by scope, or a period without any scope to share onto, is returned as
    it is (the shared cost then stays where the source put it, and the reconciliation shows it)."""
    if not rule.active or not report.attribution.splits:
        return report
    shared = [line for line in report.lines if rule.is_shared(line.scope, line.service)]
    own = [line for line in report.lines if not rule.is_shared(line.scope, line.service)]
    if not shared:
        return report
    weights = _weights(own, rule.split)
    if not weights:
        return report
    shares = split_amount(sum((line.amount for line in shared), ZERO), weights, (line.amount for line in shared))
    lines = own + [CostLine(SHARED_COSTS, amount, scope) for scope, amount in shares.items() if amount]
    return replace(report, lines=sorted_lines(lines))


def split_amount(total: Decimal, weights: dict[str, Decimal], amounts: Iterable[Decimal]) -> dict[str, Decimal]:
    """``total`` split over ``weights`` by largest remainder, in the smallest unit of ``amounts``."""
    exponent = min((amount.as_tuple().exponent for amount in amounts), default=0)
    if not isinstance(exponent, int):  # pragma: no cover - amounts are finite (the plan checks it)
        raise ValueError("shared costs must be finite amounts")
    unit = Decimal(1).scaleb(min(exponent, 0))
    units = int((abs(total) / unit).to_integral_exact())
    sign = -1 if total < 0 else 1
    return {scope: sign * part * unit for scope, part in allocate(units, weights).items()}


def _weights(own: list[CostLine], split: SharedCostSplit) -> dict[str, Decimal]:
    """Each receiving scope's weight: its positive own costs (proportional) or 1 (even)."""
    totals: dict[str, Decimal] = {}
    for line in own:
        if line.scope is not None and line.scope != UNATTRIBUTED:
            totals[line.scope] = totals.get(line.scope, ZERO) + line.amount
    if split is SharedCostSplit.EVEN:
        return {scope: Decimal(1) for scope in totals}
    positive = {scope: amount for scope, amount in totals.items() if amount > 0}
    # No scope used anything (all credits): an even split is the only fair one left.
    return positive or {scope: Decimal(1) for scope in totals}
