"""E-invoices for the writer tests, and the official XRechnung validator they are checked with.

The validator (CEN EN 16931 CII rules 1.3.15 + 1.3.16, KoSIT XRechnung 2.5.0, the CII D16B XSD) lives
outside the repository: ``$XRECHNUNG_RULES_HOME``, else ``<repo>/../shared/einvoice``. Without it the
tests that need it are skipped; drafthorse's own XSD check runs everywhere.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import pytest

from billing_core.domain.einvoice import (
    DocumentType,
    EInvoice,
    EInvoiceLine,
    Party,
    PaymentMeans,
    PrecedingInvoice,
    VatBreakdown,
    VatCategory,
)
from billing_core.domain.tax import LEGENDS
from tests.support.xrechnung import validator

CENT = Decimal("0.01")
NOVEMBER = (date(2026, 11, 1), date(2026, 11, 30))
SELLER = Party(
    "Beispiel Cloud GmbH",
    "Musterstraße 1",
    "10115",
    "Berlin",
    "DE",
    email="rechnung@beispiel-cloud.de",
    vat_id="DE136695976",
    contact_name="Erika Mustermann",
    contact_phone="+49 30 1234567",
)
GERMAN_BUYER = Party(
    "Kunde AG", "Kundenweg 5", "80331", "München", "DE", email="einkauf@kunde.example", vat_id="DE811907980"
)
AUSTRIAN_BUYER = Party(
    "Wiener Kunde GmbH", "Ringstraße 3", "1010", "Wien", "AT", email="ap@kunde.example.at", vat_id="ATU13585627"
)
US_BUYER = Party(
    "Customer Inc.", "1 Market Street", "94105", "San Francisco", "US", email="ap@customer.example", vat_id="12-3456789"
)  # a US EIN, not an EU VAT id: BR-O-02 keeps it out of the XML
SEPA = PaymentMeans(
    "sepa_debit", mandate_reference="pm_1QmandateABC", creditor_id="DE98ZZZ09999999999", debited_account="****3000"
)
CARD = PaymentMeans("card", card_last4="4242", card_holder="Kunde AG")
TERMS = {
    "sepa_debit": "Der Rechnungsbetrag wird per SEPA-Lastschrift eingezogen.",
    "card": "Der Rechnungsbetrag wird von Ihrer hinterlegten Karte abgebucht.",
}


def legend(category: VatCategory, language: str = "de") -> str:
    """The legend the invoice job writes for an untaxed ``category``."""
    return LEGENDS[category][language]


def category_tax(taxable: Decimal, rate: Decimal) -> Decimal:
    """EN 16931's tax of a category, computed independently here: taxable x rate %, half up to cents."""
    return (taxable * rate / 100).quantize(CENT, rounding=ROUND_HALF_UP)


def an_einvoice(
    amounts: Sequence[str | Decimal] = ("20.00", "17.74"),
    *,
    category: VatCategory = VatCategory.STANDARD,
    buyer: Party = GERMAN_BUYER,
    payment: PaymentMeans = SEPA,
    language: str = "de",
    **overrides: Any,
) -> EInvoice:
    """November 2026's invoice INV-2026-0042 of ``amounts`` (one line each) under ``category``, with overrides.

    The VAT breakdown is one category: taxable = the lines' sum, tax = ``category_tax`` at 19 % under S
    and 0 otherwise; the legend of an untaxed category is the exemption reason and the first note.
    """
    rate = Decimal(19) if category is VatCategory.STANDARD else Decimal(0)
    nets = [Decimal(amount) for amount in amounts]
    descriptions = ["Monatliche Grundgebühr", "AWS Infrastruktur (Nov 2026)"]
    lines = tuple(
        EInvoiceLine(
            str(number),
            descriptions[number - 1] if number <= 2 else f"Korrektur {number}",
            net,
            *NOVEMBER,
            category,
            rate,
        )
        for number, net in enumerate(nets, start=1)
    )
    net_total = sum(nets, Decimal(0))
    tax = category_tax(net_total, rate)
    reason = None if category is VatCategory.STANDARD else legend(category, language)
    gross = net_total + tax
    invoice = EInvoice(
        number="INV-2026-0042",
        document_type=DocumentType.COMMERCIAL_INVOICE,
        issue_date=date(2026, 12, 1),
        preceding=(),
        currency="EUR",
        language=language,
        buyer_reference="K-10023",
        seller=SELLER,
        buyer=buyer,
        period_start=NOVEMBER[0],
        period_end=NOVEMBER[1],
        lines=lines,
        vat=(VatBreakdown(category, rate, net_total, tax, reason),),
        net_total=net_total,
        tax_total=tax,
        gross_total=gross,
        due_date=date(2026, 12, 1) if gross > 0 else None,
        payment_terms=TERMS[payment.kind],
        payment=payment,
        notes=(reason,) if reason else (),
    )
    return dataclasses.replace(invoice, **overrides)


def a_credit_note(amounts: Sequence[str | Decimal] = ("20.00", "17.74"), **overrides: Any) -> EInvoice:
    """INV-2026-0057 (381), taking back ``amounts`` of INV-2026-0042 of 1 December 2026 (BG-3).

    Its amounts are positive, as CII writes a credit note; by default it cancels the invoice in full.
    """
    defaults: dict[str, Any] = {
        "number": "INV-2026-0057",
        "document_type": DocumentType.CREDIT_NOTE,
        "issue_date": date(2026, 12, 15),
        "preceding": (PrecedingInvoice("INV-2026-0042", date(2026, 12, 1)),),
        "cancels_in_full": True,
        "due_date": None,  # the buyer owes nothing
    }
    return an_einvoice(amounts, **{**defaults, **overrides})


@pytest.fixture(scope="session", name="xrechnung")
def xrechnung_validator() -> Any:
    """The official validator (compiled once; skipped with how to get the rules where they are absent)."""
    return validator()
