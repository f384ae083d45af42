"""The e-invoice model: its document type (BT-3) and title, and the VAT categories it holds."""

from __future__ import annotations

import pytest

from billing_core.domain.einvoice import DocumentTitle, DocumentType, VatCategory, document_title
from tests.unit.einvoice_fixtures import US_BUYER, a_credit_note, an_einvoice


def test_the_document_types_are_the_untdid_1001_codes():
    assert [(kind.name, kind.value) for kind in DocumentType] == [
        ("COMMERCIAL_INVOICE", "380"),
        ("CREDIT_NOTE", "381"),
        ("CORRECTED_INVOICE", "384"),
    ]


@pytest.mark.parametrize(
    ("document_type", "cancels_in_full", "title"),
    [
        (DocumentType.COMMERCIAL_INVOICE, False, DocumentTitle("Rechnung", "Invoice")),
        (DocumentType.CREDIT_NOTE, True, DocumentTitle("Stornorechnung", "Credit note")),
        (DocumentType.CREDIT_NOTE, False, DocumentTitle("Rechnungskorrektur", "Credit note")),
        (DocumentType.CORRECTED_INVOICE, False, DocumentTitle("Korrigierte Rechnung", "Corrected invoice")),
    ],
)
def test_each_document_type_has_its_german_and_english_title(document_type, cancels_in_full, title):
    assert document_title(document_type, cancels_in_full=cancels_in_full) == title


def test_no_title_is_gutschrift_which_in_german_vat_law_is_self_billing():
    titles = [document_title(kind, cancels_in_full=in_full) for kind in DocumentType for in_full in (False, True)]

    assert not any("gutschrift" in text.lower() for title in titles for text in (title.de, title.en))


def test_cancelling_in_full_changes_only_a_credit_notes_title():
    assert document_title(DocumentType.COMMERCIAL_INVOICE, cancels_in_full=True).de == "Rechnung"


def test_the_title_speaks_english_for_en_and_german_otherwise():
    title = DocumentTitle("Stornorechnung", "Credit note")

    assert [title.text(language) for language in ("en", "de", "fr")] == [
        "Credit note",
        "Stornorechnung",
        "Stornorechnung",
    ]


def test_the_invoice_takes_its_title_from_its_type():
    assert an_einvoice().title == DocumentTitle("Rechnung", "Invoice")
    assert a_credit_note().title.de == "Stornorechnung"
    assert a_credit_note(cancels_in_full=False).title.de == "Rechnungskorrektur"


def test_the_untaxed_categories_are_those_with_an_exemption_reason():
    assert [category for category in VatCategory if category.untaxed] == [
        VatCategory.REVERSE_CHARGE,
        VatCategory.NOT_TAXABLE,
        VatCategory.SMALL_BUSINESS,
    ]


def test_an_invoice_has_a_category_in_its_lines_or_its_breakdown():
    invoice = an_einvoice(category=VatCategory.NOT_TAXABLE, buyer=US_BUYER)

    assert invoice.has_category(VatCategory.NOT_TAXABLE)
    assert not invoice.has_category(VatCategory.STANDARD)
