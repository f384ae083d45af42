"""VAT treatment per customer, and EN 16931's category tax against Stripe's per-line rounding."""

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from billing_core.domain.einvoice import VatCategory
from billing_core.domain.errors import ConfigurationError
from billing_core.domain.tax import (
    TaxMode,
    TaxPolicy,
    category_tax,
    category_tax_cents,
    manual_line_taxes,
    rates_agree,
    stripe_line_taxes,
)

GERMAN = TaxPolicy()


@pytest.mark.parametrize(
    ("country", "vat_id", "category", "rate"),
    [
        ("DE", None, VatCategory.STANDARD, Decimal(19)),
        ("DE", "DE136695976", VatCategory.STANDARD, Decimal(19)),
        (None, None, VatCategory.STANDARD, Decimal(19)),  # not known: domestic
        ("AT", "ATU13585627", VatCategory.REVERSE_CHARGE, Decimal(0)),
        ("FR", None, VatCategory.STANDARD, Decimal(19)),  # an EU consumer pays German VAT
        ("CH", None, VatCategory.NOT_TAXABLE, Decimal(0)),
        ("US", None, VatCategory.NOT_TAXABLE, Decimal(0)),
    ],
)
def test_each_customer_gets_its_treatment(country, vat_id, category, rate):
    treatment = GERMAN.treatment_for(country, vat_id)
    assert (treatment.category, treatment.rate) == (category, rate)


def test_untaxed_supplies_carry_their_legend_and_stripe_exemption():
    reverse = GERMAN.treatment_for("AT", "ATU13585627")
    assert reverse.legend("de") == "Steuerschuldnerschaft des Leistungsempfängers (Reverse Charge)"
    assert reverse.stripe_tax_exempt == "reverse"
    outside = GERMAN.treatment_for("US", None)
    assert "nicht im inland steuerbar" in outside.legend("de").lower()
    assert outside.stripe_tax_exempt == "exempt"
    small = TaxPolicy(TaxMode.SMALL_BUSINESS).treatment_for("DE", None)
    assert small.category is VatCategory.SMALL_BUSINESS
    assert small.legend("de") == "Gemäß § 19 UStG wird keine Umsatzsteuer berechnet."
    assert GERMAN.treatment_for("DE", None).legend("de") is None


def test_seed_example_is_37_74_net_7_17_tax():
    assert category_tax(Decimal("37.74"), Decimal(19)) == Decimal("7.17")
    assert stripe_line_taxes([2000, 1774], Decimal(19)) == [380, 337]


def test_per_line_rounding_can_disagree_and_manual_amounts_then_agree():
    # 3 + 3 cents at 19 %: Stripe's lines round to 1 + 1, EN 16931's category to round(1.14) = 1.
    assert not rates_agree([3, 3], Decimal(19))
    assert sum(manual_line_taxes([3, 3], Decimal(19))) == category_tax_cents([3, 3], Decimal(19)) == 1


@pytest.mark.parametrize("rate", ["0", "100", "-1", "19.123"])
def test_an_impossible_rate_is_refused(rate):
    with pytest.raises(ConfigurationError):
        TaxPolicy(rate=Decimal(rate))


lines = st.lists(st.integers(min_value=-100_000, max_value=1_000_000), min_size=1, max_size=8)
rates = st.sampled_from([Decimal(19), Decimal(7), Decimal("16"), Decimal("19.5")])


@given(lines, rates)
def test_manual_line_taxes_always_sum_to_the_category_tax(cents, rate):
    manual = manual_line_taxes(cents, rate)
    assert sum(manual) == category_tax_cents(cents, rate)
    # Each line's tax stays within a cent per other line of its own exact tax.
    exact = [Decimal(c) * rate / 100 for c in cents]
    assert all(abs(m - e) <= len(cents) for m, e in zip(manual, exact, strict=True))


@given(lines, rates)
def test_whichever_setup_is_chosen_stripe_and_en16931_agree(cents, rate):
    # Tax Rates where per-line rounding agrees, manual amounts otherwise: Stripe's sum is EN 16931's.
    stripe_total = (
        sum(stripe_line_taxes(cents, rate)) if rates_agree(cents, rate) else sum(manual_line_taxes(cents, rate))
    )
    assert stripe_total == category_tax_cents(cents, rate)


@given(st.integers(min_value=0, max_value=10_000_000), rates)
def test_one_line_with_whole_euro_others_always_agree(aws_cents, rate):
    # The usual invoice: a whole-euro base fee (exact tax at a whole-number rate) and one AWS line.
    whole_rate = rate == rate.to_integral_value()
    assert rates_agree([2000, aws_cents], rate) or not whole_rate
