"""A cost source with the shared costs split over the scopes (``billing_core.domain.shared_costs``).

It wraps either source, so the billing run, the true-up, the preview and the report all see the same
shares; what the source itself answers about charge types, forecasts and invoices passes through.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from billing_core.domain.costs import PAYER, ChargeType, CostAttribution, CostReport, InvoicedCost, Period
from billing_core.domain.shared_costs import SharedCostRule, share_costs
from billing_core.ports import CostSource


class SharedCostSource(CostSource):
    """``source``'s costs with ``rule``'s shared costs split over the scopes of each month."""

    def __init__(self, source: CostSource, rule: SharedCostRule) -> None:
        self.source = source
        self.rule = rule

    @property
    def excluded(self) -> tuple[ChargeType, ...]:
        return self.source.excluded

    def costs(self, start: date, end: date, attribution: CostAttribution = PAYER) -> CostReport:
        return share_costs(self.source.costs(start, end, attribution), self.rule)

    def costs_by_month(self, start: date, end: date, attribution: CostAttribution = PAYER) -> list[CostReport]:
        return [share_costs(report, self.rule) for report in self.source.costs_by_month(start, end, attribution)]

    def costs_by_charge_type(self, start: date, end: date) -> dict[ChargeType, Decimal]:
        return self.source.costs_by_charge_type(start, end)

    def forecast(self, start: date, end: date) -> Decimal | None:
        return self.source.forecast(start, end)

    def invoiced(self, period: Period, attribution: CostAttribution = PAYER) -> list[InvoicedCost] | None:
        return self.source.invoiced(period, attribution)
