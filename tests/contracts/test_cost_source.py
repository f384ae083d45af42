"""The cost source's contract: the in-memory fake, the Cost Explorer adapter on moto and the FOCUS export (in moto's
S3, through DuckDB) answer alike.

Each test tells the source what to answer (``costs.answer``), asks it as the use cases do, and checks
what every cost source gives them: lines per service and scope in a fixed order, the month's dates,
the estimated flag, the attribution asked for, a report per month answered, the payer's bill by
charge type. Cost Explorer's own query (filters, pages, back-off) is tested in ``test_cost_explorer``.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from billing_core.domain.costs import PAYER, ChargeCategory, ChargeType, CostAttribution, CostLine, Period

NOVEMBER = Period(2024, 11)
BY_ACCOUNT = CostAttribution.by_account()
BY_TAG = CostAttribution.by_tag("customer")


def test_a_month_by_service_only_has_one_line_per_service_and_no_scope(costs):
    costs.answer(
        {
            NOVEMBER: [
                CostLine("Amazon Simple Storage Service", Decimal("2.1487654321")),
                CostLine("AWS Lambda", Decimal("5.2312345678")),
                CostLine("Amazon CloudFront", Decimal("8.4700000001")),
            ]
        },
        PAYER,
    )

    report = costs.source.costs(NOVEMBER.start, NOVEMBER.end, PAYER)

    assert report.lines == (
        CostLine("AWS Lambda", Decimal("5.2312345678")),
        CostLine("Amazon CloudFront", Decimal("8.4700000001")),
        CostLine("Amazon Simple Storage Service", Decimal("2.1487654321")),
    )
    assert (report.start, report.end, report.currency, report.estimated) == (
        date(2024, 11, 1),
        date(2024, 12, 1),
        "USD",
        False,
    )
    assert report.attribution == PAYER and not report.attribution.splits
    assert costs.source.costs(NOVEMBER.start, NOVEMBER.end, PAYER) == report  # the same query, the same answer


def test_a_month_not_final_yet_is_marked_estimated(costs):
    costs.answer({NOVEMBER: [CostLine("AWS Lambda", Decimal("1.5"))]}, PAYER, estimated={NOVEMBER})

    assert costs.source.costs(NOVEMBER.start, NOVEMBER.end).estimated is True


def test_costs_by_linked_account_carry_the_account_id_as_their_scope(costs):
    costs.answer(
        {
            NOVEMBER: [
                CostLine("AWS Lambda", Decimal("0.50"), "222222222222"),
                CostLine("Amazon CloudFront", Decimal("8.47"), "111111111111"),
                CostLine("AWS Lambda", Decimal("5.2312345678"), "111111111111"),
            ]
        },
        BY_ACCOUNT,
    )

    report = costs.source.costs(NOVEMBER.start, NOVEMBER.end, BY_ACCOUNT)

    assert report.attribution == BY_ACCOUNT
    assert report.lines == (
        CostLine("AWS Lambda", Decimal("5.2312345678"), "111111111111"),
        CostLine("Amazon CloudFront", Decimal("8.47"), "111111111111"),
        CostLine("AWS Lambda", Decimal("0.50"), "222222222222"),
    )
    assert report.for_scope("222222222222") == (CostLine("AWS Lambda", Decimal("0.50"), "222222222222"),)


def test_costs_by_tag_carry_the_tag_value_and_untagged_costs_have_the_empty_scope(costs):
    costs.answer(
        {
            NOVEMBER: [
                CostLine("AWS Lambda", Decimal("4.00"), "acme"),
                CostLine("Amazon S3", Decimal("0.75"), ""),
                CostLine("AWS Lambda", Decimal("1.00"), "globex"),
            ]
        },
        BY_TAG,
    )

    report = costs.source.costs(NOVEMBER.start, NOVEMBER.end, BY_TAG)

    assert report.attribution == BY_TAG
    assert report.for_scope("acme") == (CostLine("AWS Lambda", Decimal("4.00"), "acme"),)
    assert report.for_scope("") == (CostLine("Amazon S3", Decimal("0.75"), ""),)
    assert [line.scope for line in report.lines] == ["", "acme", "globex"]


def test_costs_by_month_give_a_report_per_month_answered_oldest_first(costs):
    september, october = Period(2024, 9), Period(2024, 10)
    costs.answer(
        {
            NOVEMBER: [CostLine("AWS Lambda", Decimal("3.00"), "111111111111")],
            september: [CostLine("AWS Lambda", Decimal("1.25"), "111111111111")],
        },
        BY_ACCOUNT,
        estimated={NOVEMBER},
    )

    reports = costs.source.costs_by_month(september.start, NOVEMBER.end, BY_ACCOUNT)

    # October is not in the answer, so it is not in the reports either (not a month of zero costs).
    assert [(report.start, report.end, report.estimated) for report in reports] == [
        (september.start, september.end, False),
        (NOVEMBER.start, NOVEMBER.end, True),
    ]
    assert october.start not in {report.start for report in reports}
    assert [report.lines for report in reports] == [
        (CostLine("AWS Lambda", Decimal("1.25"), "111111111111"),),
        (CostLine("AWS Lambda", Decimal("3.00"), "111111111111"),),
    ]
    assert {report.attribution for report in reports} == {BY_ACCOUNT}


def test_the_payers_bill_comes_by_charge_type_with_each_types_category(costs):
    usage = ChargeType(ChargeCategory.USAGE, "Usage")
    tax = ChargeType(ChargeCategory.TAX, "Tax")
    credit = ChargeType(ChargeCategory.CREDIT, "Credit")
    costs.answer_charge_types(NOVEMBER, {usage: Decimal("17.74"), tax: Decimal("3.3706"), credit: Decimal("-1")})

    totals = costs.source.costs_by_charge_type(NOVEMBER.start, NOVEMBER.end)

    assert totals == {usage: Decimal("17.74"), tax: Decimal("3.3706"), credit: Decimal("-1")}
    assert {kind.category for kind in totals} == {ChargeCategory.USAGE, ChargeCategory.TAX, ChargeCategory.CREDIT}


def test_no_forecast_is_none_not_a_guess(costs):
    assert costs.source.forecast(date(2024, 11, 15), NOVEMBER.end) is None
