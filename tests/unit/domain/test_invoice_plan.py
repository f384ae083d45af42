"""Invoice planning: base fee + AWS costs per account, rounded once, breakdown summing to the AWS line."""

from datetime import date
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from billing_core.domain.costs import PAYER, CostAttribution, CostLine, CostReport, Period
from billing_core.domain.errors import ConfigurationError, CostReportMismatch, InvalidAmount
from billing_core.domain.invoice_plan import (
    Account,
    BillingPolicy,
    FxRate,
    InvoiceLine,
    invoice_id_for,
    line_descriptions,
    plan_invoice,
    plan_invoices,
)
from billing_core.domain.money import to_minor_units

NOV_2024 = Period(2024, 11)
SEED_COSTS = (
    ("AWS Lambda", "5.2312345678"),
    ("Amazon Simple Storage Service", "2.1487654321"),
    ("Amazon CloudFront", "8.4700000001"),
    ("Amazon DynamoDB", "1.8899999999"),
    ("Tax", "0"),
)
PARITY = FxRate(Decimal("1.0"), "fixed test rate", date(2024, 11, 29))
DEFAULT_ACCOUNT = Account("user-1")


def report(costs=SEED_COSTS, *, period=NOV_2024, currency="USD", estimated=False, attribution=PAYER):
    lines = tuple(CostLine(service, Decimal(amount), *scope) for service, amount, *scope in costs)
    return CostReport(period.start, period.end, currency, estimated, lines, attribution)


def plan(costs=SEED_COSTS, account=DEFAULT_ACCOUNT, **policy):
    policy.setdefault("fx", PARITY)
    return plan_invoice(NOV_2024, report(costs), account, BillingPolicy(**policy))


def test_seed_example_comes_out_to_the_cent():
    invoice = plan()

    assert invoice.breakdown == {
        "Amazon CloudFront": Decimal("8.47"),
        "AWS Lambda": Decimal("5.23"),
        "Amazon Simple Storage Service": Decimal("2.15"),
        "Amazon DynamoDB": Decimal("1.89"),
    }
    assert invoice.aws_costs == Decimal("17.74")
    assert invoice.base_fee == Decimal("20.00")
    assert invoice.total == Decimal("37.74")
    assert str(invoice.total) == "37.74"
    assert to_minor_units(invoice.total, invoice.currency) == 3774
    assert invoice.currency == "EUR"
    assert invoice.invoice_id == "inv_2024-11_user-1"


def test_zero_amount_services_are_left_out_of_the_breakdown():
    assert "Tax" not in plan().breakdown


def test_breakdown_lists_the_largest_service_first():
    assert list(plan().breakdown) == [
        "Amazon CloudFront",
        "AWS Lambda",
        "Amazon Simple Storage Service",
        "Amazon DynamoDB",
    ]


def test_fx_rate_its_source_and_date_are_stored_on_the_invoice():
    invoice = plan(fx=FxRate(Decimal("0.92"), "ECB reference rate", date(2024, 11, 29)))

    assert (invoice.fx.rate, invoice.fx.source, invoice.fx.as_of) == (
        Decimal("0.92"),
        "ECB reference rate",
        date(2024, 11, 29),
    )


def test_usd_costs_are_converted_with_the_fx_rate_before_rounding():
    # exact sum 17.7400000000 USD * 0.92 = 16.3208 EUR -> 16.32
    invoice = plan(fx=FxRate(Decimal("0.92"), "ECB reference rate", date(2024, 11, 29)))

    assert invoice.aws_costs == Decimal("16.32")
    assert invoice.total == Decimal("36.32")
    assert sum(invoice.breakdown.values()) == Decimal("16.32")


def test_markup_percent_is_added_to_the_aws_costs():
    # 17.74 * 1.10 = 19.514 -> 19.51
    invoice = plan(markup_percent=Decimal("10"))

    assert invoice.aws_costs == Decimal("19.51")
    assert invoice.total == Decimal("39.51")
    assert invoice.markup_percent == Decimal("10")


def test_fx_and_markup_combine_unrounded():
    # 1.005 USD * 0.5 * 1.10 = 0.55275 EUR -> 0.55; rounding before converting would give 1.01 * 0.5 = 0.505,
    # and rounding again after the markup 0.51 * 1.10 = 0.561 -> 0.56
    invoice = plan(
        costs=(("AWS Lambda", "1.005"),),
        fx=FxRate(Decimal("0.5"), "test", date(2024, 11, 29)),
        markup_percent=Decimal("10"),
    )

    assert invoice.aws_costs == Decimal("0.55")


def test_aws_line_is_rounded_once_from_the_exact_sum_not_from_rounded_services():
    # three services of 0.004 each: rounding each would give 0.00, the exact sum 0.012 gives 0.01
    invoice = plan(costs=(("c", "0.004"), ("b", "0.004"), ("a", "0.004")))

    assert invoice.aws_costs == Decimal("0.01")
    assert invoice.breakdown == {"a": Decimal("0.01")}  # equal remainders: the cent goes by name


def test_german_descriptions_by_default():
    invoice = plan()

    assert invoice.base_fee_description == "Monatliche Grundgebühr"
    assert invoice.aws_description == "AWS Infrastruktur (Nov 2024)"
    assert invoice.lines == (
        InvoiceLine("Monatliche Grundgebühr", Decimal("20.00")),
        InvoiceLine("AWS Infrastruktur (Nov 2024)", Decimal("17.74")),
    )


def test_english_descriptions_by_setting():
    invoice = plan(language="en")

    assert invoice.base_fee_description == "Monthly base fee"
    assert invoice.aws_description == "AWS infrastructure (Nov 2024)"


@pytest.mark.parametrize(
    ("month", "german", "english"),
    [
        (1, "Jan", "Jan"),
        (3, "Mär", "Mar"),
        (5, "Mai", "May"),
        (6, "Jun", "Jun"),
        (10, "Okt", "Oct"),
        (12, "Dez", "Dec"),
    ],
)
def test_month_abbreviations(month, german, english):
    assert line_descriptions(Period(2025, month), "de")[1] == f"AWS Infrastruktur ({german} 2025)"
    assert line_descriptions(Period(2025, month), "en")[1] == f"AWS infrastructure ({english} 2025)"


def test_account_base_fee_override_replaces_the_default():
    invoice = plan(account=Account("user-1", base_fee_override=Decimal("49.90")))

    assert invoice.base_fee == Decimal("49.90")
    assert invoice.total == Decimal("67.64")


def test_policy_base_fee_applies_to_accounts_without_override():
    assert plan(base_fee=Decimal("25")).base_fee == Decimal("25.00")


def test_zero_costs_bill_the_base_fee_only_with_an_empty_breakdown():
    for costs in ((), (("Tax", "0"),)):
        invoice = plan(costs=costs)
        assert invoice.aws_costs == Decimal("0.00")
        assert invoice.breakdown == {}
        assert invoice.total == Decimal("20.00")


def test_credits_reduce_the_aws_line_and_are_netted_into_the_breakdown_proportionally():
    invoice = plan(costs=(("AWS Lambda", "6"), ("Amazon S3", "4"), ("Credit", "-5")))

    assert invoice.aws_costs == Decimal("5.00")
    assert invoice.breakdown == {"AWS Lambda": Decimal("3.00"), "Amazon S3": Decimal("2.00")}


def test_credits_that_exceed_the_costs_leave_the_aws_line_at_zero_never_negative():
    invoice = plan(costs=(("AWS Lambda", "5.23"), ("Credit", "-8.00"), ("Refund", "-1.00")))

    assert invoice.aws_costs == Decimal("0.00")
    assert str(invoice.aws_costs) == "0.00"
    assert invoice.breakdown == {}
    assert invoice.total == Decimal("20.00")


def test_costs_of_one_service_on_several_lines_are_summed():
    costs = (("AWS Lambda", "1.004", "111"), ("AWS Lambda", "1.004", "222"))
    invoice = plan_invoice(
        NOV_2024, report(costs, attribution=CostAttribution.by_account()), Account("payer"), BillingPolicy(fx=PARITY)
    )

    assert invoice.breakdown == {"AWS Lambda": Decimal("2.01")}


def test_estimated_costs_are_flagged_on_the_invoice():
    costs = report(estimated=True)
    assert plan_invoice(NOV_2024, costs, Account("u"), BillingPolicy(fx=PARITY)).costs_estimated is True
    assert plan().costs_estimated is False


def test_same_currency_needs_no_fx_rate_and_stores_none():
    invoice = plan_invoice(NOV_2024, report(), Account("u"), BillingPolicy(currency="USD"))

    assert invoice.currency == "USD"
    assert invoice.total == Decimal("37.74")
    assert invoice.conversion is None


def test_currency_mismatch_without_fx_rate_refuses_to_start():
    policy = BillingPolicy(currency="EUR")

    with pytest.raises(ConfigurationError, match="no FX rate"):
        policy.check_can_convert("USD")
    with pytest.raises(ConfigurationError):
        plan_invoices(NOV_2024, report(), [Account("u")], policy)


def test_currency_match_or_configured_rate_may_start():
    BillingPolicy(currency="USD").check_can_convert("usd")
    BillingPolicy(fx=PARITY).check_can_convert("USD")


def test_plan_invoices_plans_every_account_by_its_cost_scope():
    costs = report(
        (("AWS Lambda", "1.00", "111"), ("Amazon S3", "2.00", "111"), ("AWS Lambda", "4.00", "222")),
        attribution=CostAttribution.by_account(),
    )
    accounts = [Account("a", cost_scope="111"), Account("b", cost_scope="222"), Account("c"), Account("d", "333")]

    plans = {p.account_id: p for p in plan_invoices(NOV_2024, costs, accounts, BillingPolicy(fx=PARITY))}

    assert plans["a"].breakdown == {"Amazon S3": Decimal("2.00"), "AWS Lambda": Decimal("1.00")}
    assert plans["b"].aws_costs == Decimal("4.00")
    assert plans["c"].aws_costs == Decimal("7.00")  # no scope: the whole payer account
    assert plans["d"].aws_costs == Decimal("0.00")
    assert [p.invoice_id for p in plan_invoices(NOV_2024, costs, accounts, BillingPolicy(fx=PARITY))] == [
        "inv_2024-11_a",
        "inv_2024-11_b",
        "inv_2024-11_c",
        "inv_2024-11_d",
    ]


def test_scoped_accounts_need_a_report_attributed_by_scope():
    with pytest.raises(CostReportMismatch, match="attributed by service only"):
        plan_invoices(NOV_2024, report(), [Account("a", cost_scope="111")], BillingPolicy(fx=PARITY))


def test_costs_of_another_period_are_refused():
    with pytest.raises(CostReportMismatch):
        plan_invoice(Period(2024, 10), report(), Account("u"), BillingPolicy(fx=PARITY))


def test_the_same_account_twice_is_refused():
    with pytest.raises(ConfigurationError, match="twice"):
        plan_invoices(NOV_2024, report(), [Account("u"), Account("u")], BillingPolicy(fx=PARITY))


def test_invoice_id_is_deterministic_per_account_and_period():
    assert invoice_id_for(Period(2025, 1), "abc") == "inv_2025-01_abc"


@pytest.mark.parametrize(
    "settings",
    [
        {"base_fee": Decimal("-1")},
        {"base_fee": Decimal("20.005")},
        {"base_fee": 20.0},
        {"base_fee": "NaN"},
        {"markup_percent": Decimal("-0.5")},
        {"language": "fr"},
        {"currency": "JPY"},
    ],
)
def test_invalid_policy_settings_are_refused(settings):
    with pytest.raises(ConfigurationError):
        BillingPolicy(**settings)


@pytest.mark.parametrize("rate", [Decimal("0"), Decimal("-0.92"), 0.92, "abc"])
def test_fx_rate_must_be_a_positive_decimal(rate):
    with pytest.raises(ConfigurationError):
        FxRate(rate, "ECB", date(2024, 11, 29))


def test_fx_rate_needs_a_source():
    with pytest.raises(ConfigurationError):
        FxRate(Decimal("0.92"), " ", date(2024, 11, 29))


@pytest.mark.parametrize(
    "account",
    [
        lambda: Account(""),
        lambda: Account(" u"),
        lambda: Account("u", cost_scope=""),
        lambda: Account("u", base_fee_override=Decimal("-5")),
        lambda: Account("u", base_fee_override=Decimal("9.999")),
    ],
)
def test_invalid_accounts_are_refused(account):
    with pytest.raises(ConfigurationError):
        account()


def test_float_cost_amounts_are_refused():
    costs = CostReport(NOV_2024.start, NOV_2024.end, "USD", False, (CostLine("AWS Lambda", 1.5),))
    with pytest.raises(InvalidAmount):
        plan_invoice(NOV_2024, costs, Account("u"), BillingPolicy(fx=PARITY))


# --- properties of the money rules ---------------------------------------------------------------

service_names = st.sampled_from(["AWS Lambda", "Amazon S3", "Amazon CloudFront", "Amazon DynamoDB", "Tax", "Credit"])
cost_amounts = st.decimals(
    min_value=Decimal("-50"), max_value=Decimal("500"), places=10, allow_nan=False, allow_infinity=False
)
cost_lists = st.lists(st.tuples(service_names, cost_amounts), max_size=12)
fx_rates = st.decimals(min_value=Decimal("0.1"), max_value=Decimal("2"), places=6).filter(lambda r: r > 0)
markups = st.decimals(min_value=Decimal("0"), max_value=Decimal("100"), places=2)
base_fees = st.integers(min_value=0, max_value=100_000).map(lambda cents: Decimal(cents).scaleb(-2))


def _half_up_cents(value: Fraction) -> Fraction:
    """Reference rounding for a non-negative exact value."""
    scaled = value * 100
    return Fraction(int(scaled + Fraction(1, 2)), 100)


@given(cost_lists, fx_rates, markups, base_fees)
def test_planned_invoice_obeys_the_money_rules(costs, rate, markup, base_fee):
    policy = BillingPolicy(base_fee=base_fee, fx=FxRate(rate, "test", date(2024, 11, 29)), markup_percent=markup)
    invoice = plan_invoice(NOV_2024, report([(s, str(a)) for s, a in costs]), Account("u"), policy)

    factor = Fraction(rate) * (1 + Fraction(markup) / 100)
    exact_sum = sum((Fraction(amount) * factor for _, amount in costs), Fraction(0))
    assert Fraction(invoice.aws_costs) == _half_up_cents(max(exact_sum, Fraction(0)))  # rounded once
    assert sum(invoice.breakdown.values(), Decimal(0)) == invoice.aws_costs
    assert invoice.total == invoice.base_fee + invoice.aws_costs
    assert invoice.base_fee == base_fee
    for amount in (invoice.aws_costs, invoice.base_fee, invoice.total, *invoice.breakdown.values()):
        assert amount >= 0
        assert amount == amount.quantize(Decimal("0.01"))
    assert all(amount > 0 for amount in invoice.breakdown.values())


@given(cost_lists, fx_rates)
def test_breakdown_shares_are_within_a_cent_of_each_service_s_proportional_share(costs, rate):
    policy = BillingPolicy(fx=FxRate(rate, "test", date(2024, 11, 29)))
    invoice = plan_invoice(NOV_2024, report([(s, str(a)) for s, a in costs]), Account("u"), policy)

    per_service: dict[str, Fraction] = {}
    for service, amount in costs:
        per_service[service] = per_service.get(service, Fraction(0)) + Fraction(amount)
    positive = {s: a for s, a in per_service.items() if a > 0}
    for service in invoice.breakdown:
        assert service in positive
    for service, weight in positive.items():
        share = Fraction(invoice.aws_costs) * weight / sum(positive.values())
        assert abs(Fraction(invoice.breakdown.get(service, Decimal(0))) - share) < Fraction(1, 100)


@given(cost_lists, st.randoms(use_true_random=False))
def test_planning_does_not_depend_on_the_order_of_cost_lines(costs, random):
    shuffled = list(costs)
    random.shuffle(shuffled)
    first = plan(costs=[(s, str(a)) for s, a in costs])
    second = plan(costs=[(s, str(a)) for s, a in shuffled])

    assert first == second
    assert list(first.breakdown.items()) == list(second.breakdown.items())
