"""What an e-invoice must hold before it is written: the EN 16931 and XRechnung rules, as the domain states them."""

from __future__ import annotations

import dataclasses
import re
from datetime import date
from decimal import Decimal

import pytest

from billing_core.domain.einvoice import DocumentType, EInvoiceInvalid, PrecedingInvoice, VatCategory
from billing_core.domain.einvoice_rules import check_einvoice, einvoice_problems
from tests.unit.einvoice_fixtures import AUSTRIAN_BUYER, CARD, SELLER, US_BUYER, a_credit_note, an_einvoice

TAX_NUMBER = "27/123/45678"


@pytest.mark.parametrize(
    "invoice",
    [
        an_einvoice(),
        an_einvoice(payment=CARD, language="en"),
        an_einvoice(category=VatCategory.REVERSE_CHARGE, buyer=AUSTRIAN_BUYER),
        an_einvoice(category=VatCategory.NOT_TAXABLE, buyer=US_BUYER),
        an_einvoice(
            category=VatCategory.SMALL_BUSINESS, seller=dataclasses.replace(SELLER, vat_id=None, tax_number=TAX_NUMBER)
        ),
        an_einvoice(["20.00", "-20.00"]),
        a_credit_note(),
        a_credit_note(["5.00"], cancels_in_full=False),
        a_credit_note(document_type=DocumentType.CORRECTED_INVOICE, cancels_in_full=False),
    ],
    ids=lambda invoice: f"{invoice.document_type} {invoice.vat[0].category} {invoice.net_total}",
)
def test_a_complete_document_whose_sums_hold_has_no_problems(invoice):
    assert einvoice_problems(invoice) == []
    check_einvoice(invoice)


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (dict(buyer_reference=" "), "there is no buyer reference"),
        (dict(buyer=dataclasses.replace(AUSTRIAN_BUYER, postal_code=None)), "the buyer has no postal_code"),
        (dict(buyer=dataclasses.replace(AUSTRIAN_BUYER, city=None)), "the buyer has no city"),
        (dict(buyer=dataclasses.replace(AUSTRIAN_BUYER, email=None)), "the buyer has no email"),
        (dict(seller=dataclasses.replace(SELLER, email=None)), "the seller has no email"),
        (dict(seller=dataclasses.replace(SELLER, contact_name=None)), "the seller has no contact_name"),
        (dict(seller=dataclasses.replace(SELLER, contact_phone=None)), "the seller has no contact_phone"),
        (dict(seller=dataclasses.replace(SELLER, vat_id=None)), "the seller has neither a VAT id nor a tax number"),
        (dict(lines=(), net_total=Decimal(0)), "there are no lines"),
        (dict(payment=dataclasses.replace(CARD, card_last4=None)), "the card payment has no card_last4"),
        (dict(payment=dataclasses.replace(CARD, kind="paypal")), "unknown payment kind 'paypal'"),
        (dict(net_total=Decimal("37.75")), "the lines do not sum to the net total"),
        (dict(tax_total=Decimal("7.18")), "the VAT breakdown does not sum to the tax total"),
        (dict(gross_total=Decimal("44.92")), "net total + tax total is not the gross total"),
    ],
)
def test_an_invoice_missing_what_xrechnung_requires_is_refused_by_name(change, problem):
    invoice = dataclasses.replace(an_einvoice(), **change)

    assert problem in einvoice_problems(invoice)
    with pytest.raises(EInvoiceInvalid, match=re.escape(problem)):
        check_einvoice(invoice)


@pytest.mark.parametrize("field", ["mandate_reference", "creditor_id", "debited_account"])
def test_a_sepa_debit_without_mandate_creditor_or_account_is_refused(field):
    invoice = an_einvoice()
    invoice = dataclasses.replace(invoice, payment=dataclasses.replace(invoice.payment, **{field: None}))

    assert einvoice_problems(invoice) == [f"the SEPA direct debit has no {field}"]


def test_reverse_charge_needs_both_vat_ids():
    invoice = an_einvoice(
        category=VatCategory.REVERSE_CHARGE,
        buyer=dataclasses.replace(AUSTRIAN_BUYER, vat_id=None),
        seller=dataclasses.replace(SELLER, vat_id=None, tax_number=TAX_NUMBER),
    )

    assert einvoice_problems(invoice) == [
        "reverse charge without the buyer's VAT id",
        "reverse charge without the seller's VAT id",
    ]


def test_not_taxable_stands_alone_among_the_vat_breakdowns():
    invoice = an_einvoice(category=VatCategory.NOT_TAXABLE, buyer=US_BUYER)
    invoice = dataclasses.replace(
        invoice, vat=(*invoice.vat, dataclasses.replace(invoice.vat[0], taxable_amount=Decimal(0)))
    )

    assert "category O cannot be combined with another VAT breakdown" in einvoice_problems(invoice)


def test_an_untaxed_breakdown_names_its_exemption_reason():
    invoice = an_einvoice(category=VatCategory.REVERSE_CHARGE, buyer=AUSTRIAN_BUYER)
    invoice = dataclasses.replace(invoice, vat=(dataclasses.replace(invoice.vat[0], exemption_reason=None),))

    assert einvoice_problems(invoice) == ["the AE breakdown has no exemption reason"]


def test_a_line_whose_category_has_no_breakdown_is_refused():
    invoice = an_einvoice()
    lines = (dataclasses.replace(invoice.lines[0], rate=Decimal(7)), invoice.lines[1])

    assert einvoice_problems(dataclasses.replace(invoice, lines=lines)) == [
        "the S 19 % lines do not sum to its taxable amount",
        "a line's VAT category and rate has no VAT breakdown",
    ]


def test_an_amount_finer_than_a_cent_is_refused_rather_than_rounded():
    invoice = an_einvoice(["20.00", "17.745"], net_total=Decimal("37.745"))

    assert einvoice_problems(invoice) == ["an amount is not a whole number of cents"]


def test_a_credit_note_or_corrected_invoice_names_the_invoice_it_corrects():
    for document_type in (DocumentType.CREDIT_NOTE, DocumentType.CORRECTED_INVOICE):
        invoice = a_credit_note(document_type=document_type, preceding=(), cancels_in_full=False)

        assert einvoice_problems(invoice) == [f"the {document_type} document names no preceding invoice"]


def test_a_preceding_invoice_has_a_number():
    invoice = a_credit_note(preceding=(PrecedingInvoice(" ", date(2026, 12, 1)),))

    assert einvoice_problems(invoice) == ["a preceding invoice has no number"]  # BR-55


def test_only_a_credit_note_cancels_an_invoice_in_full():
    for document_type in (DocumentType.COMMERCIAL_INVOICE, DocumentType.CORRECTED_INVOICE):
        invoice = a_credit_note(document_type=document_type)

        assert einvoice_problems(invoice) == ["only a credit note cancels an invoice in full"]


def test_the_refusal_names_the_invoice_and_every_problem():
    invoice = an_einvoice(buyer_reference="", seller=dataclasses.replace(SELLER, contact_name=None))

    with pytest.raises(EInvoiceInvalid) as refused:
        check_einvoice(invoice)

    assert str(refused.value) == "invoice INV-2026-0042: the seller has no contact_name; there is no buyer reference"
