"""E-invoices for the writer tests, the records, accounts and credit notes the use case maps to them,
and the official XRechnung validator they are checked with.

The validator (CEN EN 16931 CII rules 1.3.15 + 1.3.16, KoSIT XRechnung 2.5.0, the CII D16B XSD) lives
outside the repository: ``$XRECHNUNG_RULES_HOME``, else ``<repo>/../shared/einvoice``. Without it the
tests that need it are skipped; drafthorse's own XSD check runs everywhere.
"""

from __future__ import annotations

import dataclasses
import io
from collections.abc import Mapping, Sequence
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from lxml import etree
from pypdf import PdfReader

from billing_core.domain.account_profile import PostalAddress
from billing_core.domain.costs import Period
from billing_core.domain.credit_notes import (
    CreditableLine,
    CreditNote,
    CreditNoteState,
    CreditRequest,
    CreditVat,
    Settlement,
    credit_note_id_for,
    plan_credit,
)
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
from billing_core.domain.invoice_plan import line_descriptions
from billing_core.domain.records import Account, Invoice, InvoiceVat, LineDescriptions, SavedPaymentMethod
from billing_core.domain.seller import Seller
from billing_core.domain.tax import LEGENDS, manual_line_taxes
from billing_core.use_cases.invoice_records import record_line_items
from tests.support.records import an_account, an_invoice
from tests.support.xrechnung import validator

NS = {
    "rsm": "urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100",
    "ram": "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100",
    "qdt": "urn:un:unece:uncefact:data:standard:QualifiedDataType:100",
}
SUMMATION = "//ram:SpecifiedTradeSettlementHeaderMonetarySummation/ram:"
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


def xml_texts(xml: bytes, path: str) -> list[str]:
    """The text of every node at the XPath ``path`` (prefixes of ``NS``) in the document ``xml``."""
    return [str(node.text) for node in etree.fromstring(xml).xpath(path, namespaces=NS)]


def pdf_text(pdf: bytes) -> str:
    """The text a reader extracts from every page of ``pdf``."""
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)


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


# --- what the use case maps: the seller's settings, a finalized record, its buyer's account, a credit note ----

BERLIN = ZoneInfo("Europe/Berlin")
BILLED_MONTH = Period(2026, 11)  # NOVEMBER's month
SELLER_SETTINGS = Seller(
    name=SELLER.name,
    street=SELLER.street,
    postal_code=SELLER.postal_code,
    city=SELLER.city,
    country=SELLER.country,
    vat_id=SELLER.vat_id,
    contact_name=SELLER.contact_name,
    contact_phone=SELLER.contact_phone,
    contact_email=SELLER.email,
    sepa_creditor_id=SEPA.creditor_id,
)  # the settings SELLER is written from
BUYERS = {
    VatCategory.STANDARD: GERMAN_BUYER,
    VatCategory.REVERSE_CHARGE: AUSTRIAN_BUYER,
    VatCategory.NOT_TAXABLE: US_BUYER,
    VatCategory.SMALL_BUSINESS: GERMAN_BUYER,
}
SAVED_METHODS = {
    "sepa_debit": SavedPaymentMethod("pm_1QmandateABC", "sepa_debit", last4="3000"),  # SEPA's mandate and IBAN
    "card": SavedPaymentMethod("pm_card_visa", "card", "visa", "4242"),  # CARD's last four digits
}


def epoch_ms(day: date, hour: int = 9) -> int:
    """``hour`` o'clock of ``day`` in Berlin, as epoch ms (Stripe's timestamps, the records')."""
    return int(datetime(day.year, day.month, day.day, hour, tzinfo=BERLIN).timestamp() * 1000)


def a_buyer_account(buyer: Party = GERMAN_BUYER, payment: str = "sepa_debit", **overrides: Any) -> Account:
    """The account ``buyer`` is written from, paying by ``payment`` (``sepa_debit`` or ``card``)."""
    fields: dict[str, Any] = {
        "name": buyer.name,
        "email": buyer.email,
        "country": buyer.country,
        "vat_id": buyer.vat_id,
        "address": PostalAddress(buyer.street, buyer.postal_code, buyer.city),
        "payment_method": SAVED_METHODS[payment],
        "buyer_reference": "K-10023",
    }
    return an_account("acct-1", **{**fields, **overrides})


def a_finalized_invoice(
    category: VatCategory = VatCategory.STANDARD,
    *,
    language: str = "de",
    period: Period = BILLED_MONTH,
    finalized_on: date = date(2026, 12, 1),
    number: str = "INV-2026-0042",
    **overrides: Any,
) -> Invoice:
    """The seed invoice (20.00 base fee + 17.74 AWS) of ``period`` for acct-1, finalized as ``number``, under
    ``category``: 19 % German VAT taken once over the lines, or 0 with the category's legend."""
    rate = Decimal(19) if category is VatCategory.STANDARD else Decimal(0)
    base_fee_text, aws_text = line_descriptions(period, language)
    fields: dict[str, Any] = {
        "account_id": "acct-1",
        "period": period,
        "line_descriptions": LineDescriptions(base_fee_text, aws_text),
        "number": number,
        "finalized_at": epoch_ms(finalized_on),
        "stripe_invoice_id": f"in_{number}",
    }
    record = an_invoice(**{**fields, **overrides})
    net = sum((amount for _, amount, _ in record_line_items(record)), Decimal(0))
    tax = category_tax(net, rate)
    note = None if category is VatCategory.STANDARD else legend(category, language)
    vat = InvoiceVat(category.value, net=net, tax=tax, rate=rate, note=note)
    return dataclasses.replace(record, amount=net + tax, vat=vat)


def creditable_lines(record: Invoice) -> list[CreditableLine]:
    """The record's lines as a credit note sees them: each with the tax Stripe charged on it (summing to
    the invoice's tax), the month it is for (a correction's: the corrected month)."""
    items = record_line_items(record)
    assert record.vat is not None
    taxes = manual_line_taxes([int(amount * 100) for _, amount, _ in items], record.vat.rate)
    return [
        CreditableLine(
            kind,
            description,
            amount,
            (Decimal(tax) / 100).quantize(CENT),
            Period.parse(kind.removeprefix("correction:")) if kind.startswith("correction:") else record.period,
        )
        for (kind, amount, description), tax in zip(items, taxes, strict=True)
    ]


def an_issued_credit_note(
    record: Invoice,
    *,
    lines: Mapping[str, Decimal] | None = None,
    settlement: Settlement | None = None,
    paid: bool = True,
    number: str = "INV-2026-0042-CN-01",
    issued_on: date = date(2026, 12, 15),
    reason: str = "Grundgebühr doppelt berechnet",
) -> CreditNote:
    """Stripe's credit note ``number`` of ``record``: a cancellation, or ``lines`` (kind -> net) taken back,
    planned by the domain's ``plan_credit`` (refunded if ``paid``, else off what is due)."""
    assert record.vat is not None
    vat = CreditVat(record.vat.category, record.vat.rate, record.vat.note)
    plan = plan_credit(
        invoice_gross=record.amount,
        invoice_tax=record.tax,
        lines=creditable_lines(record),
        notes=[],
        vat=vat,
        currency=record.currency,
        request=CreditRequest(reason, lines=dict(lines or {}), full=not lines, settlement=settlement),
        paid=paid,
    )
    issued_at = epoch_ms(issued_on)
    return CreditNote(
        credit_note_id=credit_note_id_for(record.invoice_id, 1),
        account_id=record.account_id,
        invoice_id=record.invoice_id,
        sequence=1,
        currency=record.currency.lower(),
        lines=plan.lines,
        vat=vat,
        reason=reason,
        settlement=plan.settlement,
        full=plan.full,
        actor="operator@example.com",
        created_at=issued_at,
        updated_at=issued_at,
        state=CreditNoteState.ISSUED,
        stripe_credit_note_id="cn_1Q",
        number=number,
        issued_at=issued_at,
    )


@pytest.fixture(scope="session", name="xrechnung")
def xrechnung_validator() -> Any:
    """The official validator (compiled once; skipped with how to get the rules where they are absent)."""
    return validator()
