"""Shared costs: split over the scopes exactly, as their own invoice line, through either cost source."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from billing_core.adapters.shared_cost_source import SharedCostSource
from billing_core.domain.costs import CostAttribution, CostLine, CostReport, Period
from billing_core.domain.invoice_plan import BillingPolicy, FxRate, plan_invoices
from billing_core.domain.records import Account
from billing_core.domain.shared_costs import (
    SHARED_COSTS,
    SharedCostRule,
    SharedCostSplit,
    share_costs,
)
from tests.support.fakes import FakeCostSource

NOVEMBER = Period(2024, 11)
SUPPORT = "AWS Support (Business)"
BY_TAG = CostAttribution.by_tag("customer")
RULE = SharedCostRule(frozenset({SUPPORT}))


def report(*lines: CostLine, attribution: CostAttribution = BY_TAG) -> CostReport:
    return CostReport(NOVEMBER.start, NOVEMBER.end, "USD", False, lines, attribution=attribution)


def shares(result: CostReport) -> dict[str | None, Decimal]:
    return {line.scope: line.amount for line in result.lines if line.service == SHARED_COSTS}


def test_support_is_split_in_proportion_to_each_scopes_own_costs():
    costs = report(
        CostLine("Amazon EC2", Decimal("75"), "acme"),
        CostLine("Amazon EC2", Decimal("25"), "globex"),
        CostLine(SUPPORT, Decimal("100"), "payer"),
    )

    result = share_costs(costs, RULE)

    assert shares(result) == {"acme": Decimal("75"), "globex": Decimal("25")}
    assert all(line.service != SUPPORT for line in result.lines)
    # The payer's own scope had nothing but Support: it gets no share.
    assert "payer" not in {line.scope for line in result.lines}


def test_an_even_split_gives_every_scope_the_same_and_the_remainder_goes_by_largest_remainder():
    costs = report(
        CostLine("Amazon EC2", Decimal("1"), "a"),
        CostLine("Amazon EC2", Decimal("500"), "b"),
        CostLine("Amazon EC2", Decimal("3"), "c"),
        CostLine(SUPPORT, Decimal("0.10"), "payer"),
    )

    result = share_costs(costs, SharedCostRule(frozenset({SUPPORT}), split=SharedCostSplit.EVEN))

    assert shares(result) == {"a": Decimal("0.04"), "b": Decimal("0.03"), "c": Decimal("0.03")}


def test_untagged_costs_are_shared_when_the_rule_says_so_and_stay_unattributed_otherwise():
    costs = report(
        CostLine("Amazon EC2", Decimal("30"), "acme"),
        CostLine("Amazon EC2", Decimal("10"), "globex"),
        CostLine("NAT Gateway", Decimal("8"), ""),
    )

    assert share_costs(costs, RULE) == costs
    result = share_costs(costs, SharedCostRule(unattributed=True))

    assert shares(result) == {"acme": Decimal("6"), "globex": Decimal("2")}
    assert "" not in {line.scope for line in result.lines}


def test_nothing_is_shared_without_scopes_to_share_onto_or_when_costs_are_by_service_only():
    only_support = report(CostLine(SUPPORT, Decimal("100"), "payer"))
    payer = report(CostLine("Amazon EC2", Decimal("5")), CostLine(SUPPORT, Decimal("1")), attribution=CostAttribution())

    assert share_costs(only_support, RULE) == only_support
    assert share_costs(payer, RULE) == payer


scopes = st.dictionaries(
    st.text("abcdefgh", min_size=1, max_size=4),
    st.decimals(min_value=Decimal("-5"), max_value=Decimal("10000"), places=4, allow_nan=False, allow_infinity=False),
    min_size=1,
    max_size=12,
)
pools = st.lists(
    st.decimals(min_value=Decimal("-50"), max_value=Decimal("5000"), places=10, allow_nan=False, allow_infinity=False),
    min_size=1,
    max_size=4,
)


@given(scopes, pools, st.sampled_from(list(SharedCostSplit)))
def test_the_shares_always_sum_exactly_to_the_shared_cost_and_the_total_is_unchanged(own, pool, split):
    lines = [CostLine("Amazon EC2", amount, scope) for scope, amount in own.items()]
    lines += [CostLine(SUPPORT, amount, "zz-payer") for amount in pool]
    costs = report(*lines)

    result = share_costs(costs, SharedCostRule(frozenset({SUPPORT}), split=split))

    assert sum(shares(result).values(), Decimal(0)) == sum(pool, Decimal(0))
    assert sum((line.amount for line in result.lines), Decimal(0)) == sum(
        (line.amount for line in costs.lines), Decimal(0)
    )
    assert set(shares(result)) <= set(own)


def test_a_share_is_its_own_line_on_the_invoice_in_the_invoices_language():
    source = SharedCostSource(
        FakeCostSource(
            [
                CostLine("Amazon EC2", Decimal("30"), "acme"),
                CostLine("Amazon EC2", Decimal("10"), "globex"),
                CostLine(SUPPORT, Decimal("8"), "payer"),
            ]
        ),
        RULE,
    )
    costs = source.costs(NOVEMBER.start, NOVEMBER.end, BY_TAG)
    accounts = [Account("acct_acme", cost_scope="acme"), Account("acct_globex", cost_scope="globex")]
    policy = BillingPolicy(fx=FxRate(Decimal("1"), "test", date(2024, 11, 29)))

    acme, globex = plan_invoices(NOVEMBER, costs, accounts, policy)

    assert acme.breakdown == {"Amazon EC2": Decimal("30.00"), "Anteilige gemeinsame Kosten": Decimal("6.00")}
    assert globex.breakdown == {"Amazon EC2": Decimal("10.00"), "Anteilige gemeinsame Kosten": Decimal("2.00")}
    assert acme.aws_costs + globex.aws_costs == Decimal("48.00")
    english = plan_invoices(NOVEMBER, costs, accounts[:1], BillingPolicy(fx=policy.fx, language="en"))[0]
    assert "Share of shared costs" in english.breakdown
