"""billing report: the period's Cost Explorer total split exactly into excluded, allocated and unallocated."""

from __future__ import annotations

import argparse
import io
import json
from datetime import date
from decimal import Decimal
from types import SimpleNamespace

from billing_cli import report_command
from billing_core.domain.costs import ChargeCategory, ChargeType, CostAttribution, CostLine, Period
from billing_core.domain.fx import ECB_SOURCE, Conversion, FxQuote, FxRate
from billing_core.use_cases.period_report import period_report
from tests.support.fakes import FakeAccountRepository, FakeCostSource, FakeInvoiceRepository
from tests.support.records import an_account, an_invoice

ECB_NOVEMBER = Conversion(FxRate(Decimal("1.0497"), ECB_SOURCE, date(2026, 11, 30), FxQuote.COST_PER_INVOICE_UNIT))

NOV = Period(2026, 11)
USAGE = ChargeType(ChargeCategory.USAGE, "Usage")
TAX = ChargeType(ChargeCategory.TAX, "Tax")
CREDIT = ChargeType(ChargeCategory.CREDIT, "Credit")


def a_report():
    costs = FakeCostSource(
        [
            CostLine("AWS Lambda", Decimal("10.0000000001"), "111111111111"),
            CostLine("Amazon S3", Decimal("5.5"), "222222222222"),
            CostLine("Amazon S3", Decimal("2.25"), "333333333333"),  # no account claims it
            CostLine("AWS Lambda", Decimal("1"), ""),
        ]
    )  # untagged
    costs.charge_types = {USAGE: Decimal("18.7500000001"), TAX: Decimal("3.5625"), CREDIT: Decimal("0")}
    accounts = FakeAccountRepository(
        [an_account("u1", cost_scope="111111111111"), an_account("u2", cost_scope="222222222222")]
    )
    invoices = FakeInvoiceRepository(
        [
            an_invoice(
                account_id="u1",
                period=NOV,
                amount=Decimal("29.53"),
                aws_costs=Decimal("9.53"),
                conversion=ECB_NOVEMBER,
            ),
            an_invoice(
                account_id="u2",
                period=NOV,
                amount=Decimal("25.24"),
                aws_costs=Decimal("5.24"),
                conversion=ECB_NOVEMBER,
            ),
        ]
    )
    report = period_report(
        NOV,
        costs=costs,
        accounts=accounts,
        invoices=invoices,
        attribution=CostAttribution.by_account(),
        excluded=(TAX,),
        invoice_currency="eur",
        cost_requests=lambda: costs.calls,
    )
    return report, costs


def test_the_parts_add_up_exactly_to_cost_explorers_total_in_usd():
    report, costs = a_report()

    assert report.payer_total == Decimal("22.3125000001")
    assert report.excluded == {"Tax": Decimal("3.5625")}
    assert report.allocated == Decimal("15.5000000001")
    assert report.unallocated == {"": Decimal("1"), "333333333333": Decimal("2.25")}
    assert report.grouping_difference == 0
    assert sum(report.excluded.values()) + report.allocated + sum(report.unallocated.values()) == report.payer_total
    assert report.cost_requests == costs.calls == 2


def test_what_each_account_was_billed_and_the_margin():
    report, _ = a_report()

    u1, u2 = report.accounts
    assert (u1.account_id, u1.aws_line, u1.total, u1.markup) == ("u1", Decimal("9.53"), Decimal("29.53"), 0)
    assert (u2.aws_raw, u2.aws_line) == (Decimal("5.5"), Decimal("5.24"))  # 5.50 USD / 1.0497
    assert report.billed_total == Decimal("54.77") and report.margin == Decimal("40.00")
    assert report.rate.rate == Decimal("1.0497")


def test_the_command_prints_json_table_and_csv():
    report, _ = a_report()
    use_cases = SimpleNamespace(period_report=lambda period: report)
    outputs = {}
    for output in ("json", "table", "csv"):
        out = io.StringIO()
        args = argparse.Namespace(period=NOV, format=output)
        assert report_command.report_command(args, use_cases, out=out, err=io.StringIO()) == 0
        outputs[output] = out.getvalue()

    document = json.loads(outputs["json"])
    assert document["costExplorer"]["payerTotal"] == "22.3125000001"
    assert document["costExplorer"]["unallocated"] == {"": "1.00", "333333333333": "2.25"}
    assert "grouping difference" in outputs["table"] and "(untagged)" in outputs["csv"]
