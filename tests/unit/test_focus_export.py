"""The FOCUS cost source over real Parquet files and DuckDB: what each kind of FOCUS line does to the bill.

The scenarios follow the FOCUS specification's example data (FinOps-Open-Cost-and-Usage-Spec/FOCUS_Spec,
``specification/data/``): the Savings Plan of ``commitment_discount_scenarios/aws_savings_plan_no_upfront_100pct.csv``
(a monthly fee of 38,580.50 USD as a Purchase with EffectiveCost 0; the usage it covered at 52.85 USD an hour,
BilledCost 0, EffectiveCost 52.85, 730 hours: the same 38,580.50), the unused commitment of
``aws_savings_plan_all_upfront_50pct.csv`` (Usage lines with status Unused, BilledCost 0), and the
correction of a closed month of ``correction-handling-examples/closed-billing-period/scenario_1_partial_reallocation``
(May's 1,500 on R-111 moved by -300 / +300 in June's billing period, ChargeClass Correction, ChargePeriodStart in May)
and ``scenario_3_itemized_cost_only_delta`` (Adjustment lines of 0.001).
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from billing_core.adapters.focus_duckdb import DuckDbFocusEngine
from billing_core.adapters.focus_export import (
    FOCUS_TAX,
    MARKETPLACE,
    FocusCostSource,
    MarketplaceCharges,
    charge_type,
    parse_export_uri,
    sql_literal,
)
from billing_core.domain.costs import CostAttribution, CostLine, Period
from billing_core.domain.shared_costs import SharedCostRule
from billing_core.errors import CostSourceError
from billing_core.use_cases.period_report import reconcile_aws_invoices
from local_stack.focus_seed import FocusLine, write_parquet

FEBRUARY = Period(2026, 2)
MAY, JUNE = Period(2025, 5), Period(2025, 6)
EC2 = "Amazon Elastic Compute Cloud"
SP_FEE = Decimal("38580.50")
SP_HOURLY = Decimal("52.85")
HOURS = 730


class Export:
    """An export on local disk: ``billing_period=YYYY-MM/part.parquet`` per period, read by DuckDB."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def write(self, period: Period, lines: list[FocusLine]) -> None:
        folder = self.root / f"billing_period={period.label}"
        folder.mkdir(parents=True, exist_ok=True)
        write_parquet(folder / "part-00001.parquet", period, lines)

    def files(self, label: str) -> list[Path]:
        return sorted((self.root / f"billing_period={label}").glob("*.parquet"))

    def source(self, **options) -> FocusCostSource:
        return FocusCostSource(DuckDbFocusEngine(self.files), **options)


@pytest.fixture
def export(tmp_path) -> Export:
    return Export(tmp_path)


def savings_plan_month(invoice: str | None = "INV-AWS-2026-001") -> list[FocusLine]:
    covered = [
        FocusLine(EC2, "0", FEBRUARY, effective=str(SP_HOURLY), invoice_id=invoice, commitment_status="Used")
        for _ in range(HOURS)
    ]
    fee = FocusLine(
        "Savings Plans for AWS Compute usage", str(SP_FEE), FEBRUARY, effective="0", category="Purchase",
        invoice_id=invoice,
    )  # fmt: skip
    return [*covered, fee]


def test_billed_cost_passes_the_savings_plan_fee_on_as_its_own_line_and_the_covered_usage_as_zero(export):
    export.write(FEBRUARY, savings_plan_month())

    report = export.source().costs(FEBRUARY.start, FEBRUARY.end)

    assert report.lines == (
        CostLine(EC2, Decimal(0)),
        CostLine("Savings Plans for AWS Compute usage", SP_FEE),
    )
    assert report.estimated is False and report.currency == "USD"


def test_effective_cost_spreads_the_fee_over_the_usage_it_covered_and_both_sum_to_the_same(export):
    export.write(FEBRUARY, savings_plan_month())

    amortized = export.source(cost_column="EffectiveCost").costs(FEBRUARY.start, FEBRUARY.end)
    billed = export.source().costs(FEBRUARY.start, FEBRUARY.end)

    assert amortized.for_scope(None)[0] == CostLine(EC2, SP_HOURLY * HOURS)
    assert sum(line.amount for line in amortized.lines) == sum(line.amount for line in billed.lines) == SP_FEE


def test_an_unused_commitment_costs_nothing_under_billed_cost_and_its_amortized_share_under_effective_cost(export):
    unused = [
        FocusLine(EC2, "0", FEBRUARY, effective="79.11", invoice_id="INV-1", commitment_status="Unused")
        for _ in range(12)
    ]
    export.write(FEBRUARY, unused)

    assert export.source().costs(FEBRUARY.start, FEBRUARY.end).lines == (CostLine(EC2, Decimal(0)),)
    amortized = export.source(cost_column="EffectiveCost").costs(FEBRUARY.start, FEBRUARY.end)
    assert amortized.lines == (CostLine(EC2, Decimal("949.32")),)


def test_a_period_is_final_only_when_every_line_has_an_invoice_id(export):
    lines = savings_plan_month()
    export.write(FEBRUARY, [*lines, FocusLine(EC2, "1.25", FEBRUARY, invoice_id=None)])

    assert export.source().costs(FEBRUARY.start, FEBRUARY.end).estimated is True
    export.write(FEBRUARY, lines)
    assert export.source().costs(FEBRUARY.start, FEBRUARY.end).estimated is False


def test_a_correction_of_a_closed_month_counts_for_that_month_so_the_true_up_bills_the_difference(export):
    may = [FocusLine(EC2, "1500", MAY, invoice_id="INV-20250501-20250601", sub_account="111111111111")]
    june = [
        FocusLine(EC2, "200", JUNE, invoice_id="INV-20250601-20250701", sub_account="111111111111"),
        # June's billing period corrects May: R-111 -300, R-222 +300 (another linked account here).
        FocusLine(EC2, "-300", MAY, charge_class="Correction", invoice_id="INV-20250601-20250701",
                  sub_account="111111111111"),
        FocusLine(EC2, "300", MAY, charge_class="Correction", invoice_id="INV-20250601-20250701",
                  sub_account="222222222222"),
        FocusLine(EC2, "0.001", MAY, category="Adjustment", charge_class="Correction",
                  invoice_id="INV-20250601-20250701", sub_account="222222222222"),
    ]  # fmt: skip
    export.write(MAY, may)
    export.write(JUNE, june)
    by_account = CostAttribution.by_account()

    may_then = export.source().costs_by_month(MAY.start, MAY.end, by_account)
    may_now, june_now = export.source().costs_by_month(MAY.start, JUNE.end, by_account)

    assert may_then[0].lines == (CostLine(EC2, Decimal("1500"), "111111111111"),)
    assert may_now.lines == (
        CostLine(EC2, Decimal("1200"), "111111111111"),
        CostLine(EC2, Decimal("300.001"), "222222222222"),
    )
    assert june_now.lines == (CostLine(EC2, Decimal("200"), "111111111111"),)


def test_tax_is_left_out_and_credits_are_kept(export):
    export.write(
        FEBRUARY,
        [
            FocusLine(EC2, "100", FEBRUARY, invoice_id="INV-1"),
            FocusLine(EC2, "-12.5", FEBRUARY, category="Credit", invoice_id="INV-1"),
            FocusLine("Tax", "19", FEBRUARY, category="Tax", invoice_id="INV-1"),
        ],
    )
    source = export.source()

    assert source.costs(FEBRUARY.start, FEBRUARY.end).lines == (CostLine(EC2, Decimal("87.5")),)
    assert source.costs_by_charge_type(FEBRUARY.start, FEBRUARY.end) == {
        charge_type("Credit"): Decimal("-12.5"),
        FOCUS_TAX: Decimal("19"),
        charge_type("Usage"): Decimal("100"),
    }


def _marketplace_month() -> list[FocusLine]:
    return [
        FocusLine(EC2, "10", FEBRUARY, invoice_id="INV-1"),
        FocusLine("Acme Firewall", "4.99", FEBRUARY, invoice_id="INV-2", issuer="AWS Marketplace"),
    ]


def test_marketplace_charges_are_their_own_line_or_left_out(export):
    export.write(FEBRUARY, _marketplace_month())

    as_line = export.source().costs(FEBRUARY.start, FEBRUARY.end)
    left_out = export.source(marketplace=MarketplaceCharges.EXCLUDE)

    assert as_line.lines == (CostLine(EC2, Decimal(10)), CostLine("Marketplace: Acme Firewall", Decimal("4.99")))
    assert left_out.costs(FEBRUARY.start, FEBRUARY.end).lines == (CostLine(EC2, Decimal(10)),)
    assert MARKETPLACE in left_out.excluded
    assert left_out.costs_by_charge_type(FEBRUARY.start, FEBRUARY.end)[MARKETPLACE] == Decimal("4.99")


def test_costs_by_tag_read_the_tag_from_the_tags_map_and_untagged_costs_have_the_empty_scope(export):
    key = "user:customer's"  # a quote in the key must not break the query
    export.write(
        FEBRUARY,
        [
            FocusLine(EC2, "4", FEBRUARY, invoice_id="I", tags={key: "acme", "aws:createdBy": "x"}),
            FocusLine(EC2, "1", FEBRUARY, invoice_id="I", tags={key: "globex"}),
            FocusLine("Amazon S3", "0.75", FEBRUARY, invoice_id="I"),
        ],
    )

    report = export.source().costs(FEBRUARY.start, FEBRUARY.end, CostAttribution.by_tag(key))

    assert report.lines == (
        CostLine("Amazon S3", Decimal("0.75"), ""),
        CostLine(EC2, Decimal(4), "acme"),
        CostLine(EC2, Decimal(1), "globex"),
    )


def test_a_period_without_files_is_missing_and_several_currencies_are_refused(export):
    assert export.source().costs_by_month(FEBRUARY.start, FEBRUARY.end) == []
    export.write(
        FEBRUARY,
        [FocusLine(EC2, "1", FEBRUARY, invoice_id="I"), FocusLine(EC2, "1", FEBRUARY, invoice_id="I", currency="EUR")],
    )
    with pytest.raises(CostSourceError, match="several currencies"):
        export.source().costs(FEBRUARY.start, FEBRUARY.end)


def test_only_focus_charge_categories_can_be_left_out_and_values_in_sql_are_quoted_or_refused():
    with pytest.raises(ValueError, match="no charge category Refund"):
        FocusCostSource(DuckDbFocusEngine(lambda _: []), excluded=(charge_type("Refund"),))
    with pytest.raises(ValueError, match="BilledCost, EffectiveCost"):
        FocusCostSource(DuckDbFocusEngine(lambda _: []), cost_column="ListCost")
    assert sql_literal("it's") == "'it''s'"
    with pytest.raises(CostSourceError):
        sql_literal("a\nb")
    assert parse_export_uri("s3://billing-exports/focus/billing-focus/") == ("billing-exports", "focus/billing-focus")
    with pytest.raises(ValueError):
        parse_export_uri("https://billing-exports/focus")


def test_each_aws_invoice_reconciles_exactly_to_tax_earlier_months_shared_allocated_and_unallocated(export):
    """June's invoice: June's usage of two accounts and an unclaimed one, Support shared, May corrected, Tax."""
    invoice = "INV-20250601-20250701"
    june = [
        FocusLine(EC2, "200.0000000001", JUNE, invoice_id=invoice, sub_account="111111111111"),
        FocusLine(EC2, "50", JUNE, invoice_id=invoice, sub_account="222222222222"),
        FocusLine(EC2, "7.5", JUNE, invoice_id=invoice, sub_account="333333333333"),
        FocusLine("AWS Support (Business)", "100", JUNE, invoice_id=invoice, sub_account="999999999999"),
        FocusLine(EC2, "-300", MAY, charge_class="Correction", invoice_id=invoice, sub_account="111111111111"),
        FocusLine("Tax", "68.21", JUNE, category="Tax", invoice_id=invoice, sub_account="999999999999"),
    ]
    export.write(JUNE, june)
    by_account = CostAttribution.by_account()
    rule = SharedCostRule(frozenset({"AWS Support (Business)"}))

    parts = export.source().invoiced(JUNE, by_account)
    [reconciled] = reconcile_aws_invoices(parts, {FOCUS_TAX}, rule, {"111111111111", "222222222222"})

    assert reconciled.invoice_id == invoice
    assert reconciled.billed == sum((Decimal(line.billed) for line in june), Decimal(0))
    assert (reconciled.excluded, reconciled.earlier, reconciled.shared) == (Decimal("68.21"), Decimal(-300), 100)
    assert (reconciled.allocated, reconciled.unallocated) == (Decimal("250.0000000001"), Decimal("7.5"))
    assert reconciled.difference == 0 and reconciled.amortization == 0


def test_the_months_an_export_query_reads_are_the_billing_periods_the_range_touches(export):
    export.write(FEBRUARY, [FocusLine(EC2, "1", FEBRUARY, invoice_id="I")])
    source = export.source()

    assert [r.start for r in source.costs_by_month(date(2025, 12, 1), FEBRUARY.end)] == [FEBRUARY.start]
    assert source.forecast(FEBRUARY.start, FEBRUARY.end) is None
