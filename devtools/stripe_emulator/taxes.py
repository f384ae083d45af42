"""Tax on invoice lines, as Stripe computes it for Tax Rates, manual tax amounts and (a model of) Stripe Tax.

Amounts are integers in minor units; percentages are ``Decimal``. Rounding is half up, ties away
from zero (``ROUND_HALF_UP``), so a tax of -0.5 cents is -1.

**Tax Rates** (``tax_rates`` on a line, else the invoice's ``default_tax_rates``) are rounded per
line item, Stripe's default ("line item level" rounding, https://docs.stripe.com/billing/taxes/tax-rates#rounding):

- inclusive rates: the tax of rate ``p`` is ``round(amount * p / (100 + sum of the line's inclusive
  rates))`` (for one rate that is ``round(amount - amount / (1 + p/100))``); it is part of the amount;
- exclusive rates: ``round(base * p / 100)`` on top, where ``base`` is the amount less the line's
  inclusive taxes (the amount itself when the line has none).

A customer whose ``tax_exempt`` is ``exempt`` or ``reverse`` pays no tax on Tax Rates: "In both cases,
no tax is calculated on the invoice", and an inclusive rate's tax is "backed out" of the price
(https://docs.stripe.com/billing/taxes/tax-rates#tax-exempt-and-reverse-charge). Each rate still
gets an entry, of 0, whose ``taxable_amount`` is the price without that tax.

**Manual tax amounts** (``tax_amounts``) are taken as given.

**Automatic tax** is a *model* of Stripe Tax, not Stripe Tax itself. The seller is registered in
Germany only and sells services below the EU's OSS threshold, so:

- the customer's location is the country of its address (Stripe Tax would try the shipping address
  first; emulated customers have none); without one the invoice's ``automatic_tax.status`` is
  ``requires_location_inputs`` and it cannot be finalized (``customer_tax_location_invalid``);
- ``tax_exempt=reverse``: 0, ``reverse_charge``; ``tax_exempt=exempt``: 0, ``customer_exempt``;
- otherwise a customer in Germany or anywhere else in the EU: 19 % German VAT, exclusive,
  ``standard_rated`` (the seller's origin applies below the OSS threshold);
- outside the EU: 0, ``not_subject_to_tax``.

Stripe Tax sums a rate's unrounded taxes over the invoice and rounds once ("Invoices with automatic
Stripe tax always sum up the tax amounts first and then round",
https://docs.stripe.com/billing/taxes/tax-rates#rounding); the emulator then spreads that total over
the lines by largest remainder, so the lines' taxes add up to it. ``EmulatorConfig.automatic_tax_rounding
= "line"`` rounds each line instead.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import ROUND_FLOOR, ROUND_HALF_UP, Decimal
from typing import Any

HUNDRED = Decimal(100)
# Stripe's documented limits: "You can add up to ten tax rates to each line item"
# (https://docs.stripe.com/invoicing/taxes/tax-rates), applied here to an invoice's default_tax_rates too,
# and the SDK's InvoiceAddLinesParamsLine.tax_amounts: "A list of up to 20 tax amounts".
MAX_TAX_RATES = 10
MAX_TAX_AMOUNTS = 20
MAX_PERCENTAGE_PLACES = 4

EU_COUNTRIES = frozenset(
    {
        "AT",
        "BE",
        "BG",
        "CY",
        "CZ",
        "DE",
        "DK",
        "EE",
        "ES",
        "FI",
        "FR",
        "GR",
        "HR",
        "HU",
        "IE",
        "IT",
        "LT",
        "LU",
        "LV",
        "MT",
        "NL",
        "PL",
        "PT",
        "RO",
        "SE",
        "SI",
        "SK",
    }
)
SELLER_COUNTRY = "DE"
SELLER_VAT = Decimal(19)
NOT_AVAILABLE = "not_available"  # Stripe's taxability reason for a Tax Rate it did not decide on
EXEMPTION_REASONS = {"exempt": "customer_exempt", "reverse": "reverse_charge"}


@dataclass(frozen=True)
class RateTerms:
    """What the tax computation needs of a TaxRate."""

    tax_rate: str
    percentage: Decimal
    inclusive: bool


def round_half_up(value: Decimal) -> int:
    """``value`` rounded to an integer, ties away from zero."""
    return int(value.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def percentage_of(rate: dict[str, Any]) -> Decimal:
    """A TaxRate's percentage, exactly (the JSON keeps it as an int or a short float)."""
    return Decimal(str(rate["percentage"]))


def percentage_json(value: Decimal) -> int | float:
    """A percentage as Stripe shows it: ``19``, ``7.25``."""
    return int(value) if value == value.to_integral_value() else float(value)


def percentage_problem(value: Decimal) -> str | None:
    """Why Stripe would refuse this percentage (0 to 100, at most 4 decimal places), or None."""
    if not Decimal(0) <= value <= HUNDRED:
        return "must be between 0 and 100"
    exponent = value.normalize().as_tuple().exponent
    if isinstance(exponent, int) and exponent < -MAX_PERCENTAGE_PLACES:
        return f"can have at most {MAX_PERCENTAGE_PLACES} decimal places"
    return None


def entry(amount: int, tax_rate: str, inclusive: bool, taxable_amount: int, reason: str) -> dict[str, Any]:
    """One tax of a line (``InvoiceLineItem.Tax``) or of an invoice (``Invoice.TotalTax``)."""
    return {
        "amount": amount,
        "tax_behavior": "inclusive" if inclusive else "exclusive",
        "tax_rate_details": {"tax_rate": tax_rate},
        "taxability_reason": reason,
        "taxable_amount": taxable_amount,
        "type": "tax_rate_details",
    }


def rate_taxes(amount: int, rates: Sequence[RateTerms], tax_exempt: str | None) -> list[dict[str, Any]]:
    """A line's taxes under Tax Rates, rounded per line; none but zeros for an exempt or reverse customer."""
    inclusive = [rate for rate in rates if rate.inclusive]
    inclusive_sum = sum((rate.percentage for rate in inclusive), Decimal(0))
    included = {
        rate.tax_rate: round_half_up(Decimal(amount) * rate.percentage / (HUNDRED + inclusive_sum))
        for rate in inclusive
    }
    base = amount - sum(included.values())
    reason = EXEMPTION_REASONS.get(tax_exempt or "none")
    taxes = []
    for rate in rates:
        if reason is not None:  # no tax; an inclusive one is backed out of the price
            taxes.append(entry(0, rate.tax_rate, rate.inclusive, base, reason))
        elif rate.inclusive:
            taxes.append(entry(included[rate.tax_rate], rate.tax_rate, True, base, NOT_AVAILABLE))
        else:
            taxes.append(
                entry(
                    round_half_up(Decimal(base) * rate.percentage / HUNDRED), rate.tax_rate, False, base, NOT_AVAILABLE
                )
            )
    return taxes


@dataclass(frozen=True)
class AutomaticOutcome:
    """What the Stripe Tax model decides for a customer: the reason, the rate and whose rate it is."""

    taxability_reason: str
    percentage: Decimal
    rate_country: str  # the country of the TaxRate Stripe Tax uses


def automatic_outcome(country: str | None, tax_exempt: str | None) -> AutomaticOutcome | None:
    """The Stripe Tax model's outcome; None when the customer's location is missing."""
    if not country:
        return None
    country = country.upper()
    reason = EXEMPTION_REASONS.get(tax_exempt or "none")
    if reason is not None:
        return AutomaticOutcome(reason, Decimal(0), country)
    if country in EU_COUNTRIES:
        return AutomaticOutcome("standard_rated", SELLER_VAT, SELLER_COUNTRY)
    return AutomaticOutcome("not_subject_to_tax", Decimal(0), country)


def automatic_taxes(amounts: Sequence[int], percentage: Decimal, rounding: str) -> list[int]:
    """Each line's exclusive tax: rounded once over the invoice and spread by largest remainder, or per line."""
    exact = [Decimal(amount) * percentage / HUNDRED for amount in amounts]
    if rounding == "line":
        return [round_half_up(value) for value in exact]
    floors = [int(value.to_integral_value(rounding=ROUND_FLOOR)) for value in exact]
    remainder = round_half_up(sum(exact, Decimal(0))) - sum(floors)
    by_fraction = sorted(range(len(exact)), key=lambda i: (-(exact[i] - floors[i]), i))
    for index in by_fraction[:remainder]:
        floors[index] += 1
    return floors


def line_net(line: dict[str, Any]) -> int:
    """A line's amount without tax: its amount less the inclusive tax (or what an exemption backed out)."""
    for tax in line["taxes"] or []:
        if tax["tax_behavior"] == "inclusive" and tax["taxable_amount"] is not None:
            return int(tax["taxable_amount"])
    return int(line["amount"])


def total_taxes(lines: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """The invoice's ``total_taxes``: one entry per tax rate (and reason), amounts summed over the lines."""
    totals: dict[tuple[str, str, str], dict[str, Any]] = {}
    for line in lines:
        for tax in line["taxes"] or []:
            key = (tax["tax_rate_details"]["tax_rate"], tax["tax_behavior"], tax["taxability_reason"])
            if key not in totals:
                totals[key] = dict(tax, tax_rate_details=dict(tax["tax_rate_details"]))
            else:
                totals[key]["amount"] += tax["amount"]
                totals[key]["taxable_amount"] = (totals[key]["taxable_amount"] or 0) + (tax["taxable_amount"] or 0)
    return list(totals.values())
