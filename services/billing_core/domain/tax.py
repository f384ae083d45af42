"""VAT on the operator's invoices: which treatment a customer gets, and the tax amounts to the cent.

The operator is a German company selling a service (hosting) to businesses:

- a customer in Germany (or one whose country is not known) pays German VAT at ``VAT_RATE`` (S);
- a business in another EU country with a valid VAT id gets reverse charge (AE, § 13b UStG): 0 %,
  the customer owes the VAT, and the invoice says so;
- a customer outside the EU is not taxable in Germany (O, § 3a (2) UStG: the place of a B2B service
  is the customer's);
- an EU customer without a VAT id is taxed like a German one (a consumer below the OSS threshold);
- an operator under § 19 UStG (``TAX_MODE=small-business``) charges no VAT at all (E).

Rounding. EN 16931 computes the tax once per VAT category (taxable amount x rate, rounded); Stripe
rounds the tax of every line under Tax Rates (Stripe Tax sums first, then rounds, as EN 16931 does).
The two agree whenever at most one line's tax has a fraction of a cent,
which is the usual invoice (a whole-euro base fee and one AWS line). When they would not agree, the
invoice's lines carry their tax as manual amounts (Stripe's ``tax_amounts``) that sum exactly to the
category's tax, so Stripe's total and the e-invoice's are one number either way.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum

from billing_core.domain.einvoice import VatCategory
from billing_core.domain.errors import ConfigurationError

# The EU member states (ISO 3166-1 alpha-2; Greece is GR here, EL in VAT ids).
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

LEGENDS = {
    VatCategory.REVERSE_CHARGE: {
        "de": "Steuerschuldnerschaft des Leistungsempfängers (Reverse Charge)",
        "en": "Reverse charge: VAT is owed by the recipient of the service (Steuerschuldnerschaft des "
        "Leistungsempfängers)",
    },
    VatCategory.NOT_TAXABLE: {
        "de": "Nicht im Inland steuerbare Leistung (§ 3a Abs. 2 UStG)",
        "en": "Service not taxable in Germany (§ 3a (2) UStG); the place of supply is the recipient's",
    },
    VatCategory.SMALL_BUSINESS: {
        "de": "Gemäß § 19 UStG wird keine Umsatzsteuer berechnet.",
        "en": "No VAT is charged under the small business rule of § 19 UStG.",
    },
}

_ZERO = Decimal(0)
_HUNDRED = Decimal(100)


class TaxMode(StrEnum):
    """``TAX_MODE``: how VAT reaches the Stripe invoice."""

    RATES = "rates"  # a Stripe Tax Rate "USt. 19 %" on every line
    STRIPE_TAX = "stripe-tax"  # Stripe Tax computes it (automatic_tax)
    SMALL_BUSINESS = "small-business"  # § 19 UStG: no VAT


@dataclass(frozen=True)
class TaxPolicy:
    """The operator's VAT settings: mode, the German rate and the seller's country."""

    mode: TaxMode = TaxMode.RATES
    rate: Decimal = Decimal(19)
    seller_country: str = "DE"

    def __post_init__(self) -> None:
        if not isinstance(self.rate, Decimal) or not self.rate.is_finite() or not _ZERO < self.rate < _HUNDRED:
            raise ConfigurationError(f"VAT rate must be a percentage between 0 and 100, got {self.rate!r}")
        if self.rate.as_tuple().exponent < -2:  # type: ignore[operator]
            raise ConfigurationError(f"VAT rate has at most two decimal places, got {self.rate}")
        object.__setattr__(self, "mode", TaxMode(self.mode))

    def treatment_for(self, country: str | None, vat_id: str | None) -> TaxTreatment:
        """The treatment of a customer in ``country`` (None: not known, taken as domestic) with ``vat_id``."""
        if self.mode is TaxMode.SMALL_BUSINESS:
            return TaxTreatment(VatCategory.SMALL_BUSINESS, _ZERO)
        country = (country or self.seller_country).upper()
        if country == self.seller_country:
            return TaxTreatment(VatCategory.STANDARD, self.rate)
        if country in EU_COUNTRIES:
            if vat_id:
                return TaxTreatment(VatCategory.REVERSE_CHARGE, _ZERO)
            return TaxTreatment(VatCategory.STANDARD, self.rate)
        return TaxTreatment(VatCategory.NOT_TAXABLE, _ZERO)


@dataclass(frozen=True)
class TaxTreatment:
    """One customer's VAT: category and rate (percent), and what Stripe's customer says about it."""

    category: VatCategory
    rate: Decimal

    @property
    def taxed(self) -> bool:
        """Whether VAT is charged (category S)."""
        return self.category is VatCategory.STANDARD

    @property
    def stripe_tax_exempt(self) -> str:
        """The Stripe customer's ``tax_exempt``: reverse for AE, exempt for O and E, none for S."""
        return {VatCategory.STANDARD: "none", VatCategory.REVERSE_CHARGE: "reverse"}.get(self.category, "exempt")

    def legend(self, language: str) -> str | None:
        """What the invoice must say about an untaxed supply (None under S)."""
        texts = LEGENDS.get(self.category)
        return None if texts is None else texts.get(language, texts["de"])


def category_tax(net: Decimal, rate: Decimal) -> Decimal:
    """``net`` x ``rate`` % rounded half up (away from zero) to cents, once."""
    return (net * rate / _HUNDRED).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def stripe_line_taxes(line_cents: Sequence[int], rate: Decimal) -> list[int]:
    """The tax Stripe computes per line (minor units) for a tax rate of ``rate`` %, exclusive."""
    return [
        int((Decimal(cents) * rate / _HUNDRED).quantize(Decimal(1), rounding=ROUND_HALF_UP)) for cents in line_cents
    ]


def category_tax_cents(line_cents: Sequence[int], rate: Decimal) -> int:
    """EN 16931's category tax of these lines, in minor units."""
    return int((Decimal(sum(line_cents)) * rate / _HUNDRED).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def rates_agree(line_cents: Sequence[int], rate: Decimal) -> bool:
    """Whether Stripe's per-line rounding gives EN 16931's category tax for these lines."""
    return sum(stripe_line_taxes(line_cents, rate)) == category_tax_cents(line_cents, rate)


def manual_line_taxes(line_cents: Sequence[int], rate: Decimal) -> list[int]:
    """Per-line taxes that sum exactly to the category tax: each line's own rounding, the remainder
    on the line with the largest amount (the one whose tax moves least, relative to it)."""
    taxes = stripe_line_taxes(line_cents, rate)
    if not taxes:
        return taxes
    largest = max(range(len(line_cents)), key=lambda index: (abs(line_cents[index]), -index))
    taxes[largest] += category_tax_cents(line_cents, rate) - sum(taxes)
    return taxes
