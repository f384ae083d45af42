"""The e-invoice of a credit note: a valid XRechnung 381 naming the invoice it takes back, never a "Gutschrift",
written once under keys of its own and served under its title."""

from __future__ import annotations

import dataclasses
import io
from datetime import date
from decimal import Decimal
from typing import Any

import facturx
import pytest
from pypdf import PdfReader

from billing_core.adapters.einvoice_cii import xrechnung_xml
from billing_core.adapters.einvoice_files import EInvoiceFiles
from billing_core.adapters.einvoice_pdf import zugferd_pdf
from billing_core.domain.corrections import Correction, TrueUp
from billing_core.domain.costs import Period
from billing_core.domain.credit_notes import CreditNote, Settlement
from billing_core.domain.einvoice import DocumentType, EInvoice, VatCategory
from billing_core.domain.records import Invoice
from billing_core.use_cases.einvoices import (
    FORMATS,
    CreditNoteEInvoiceRefused,
    CreditNoteEInvoices,
    CreditNoteFiles,
    EInvoiceNotReady,
    StoredEInvoices,
    credit_note_einvoice_of,
    credit_note_object_key,
    object_key,
)
from tests.support.fakes import FakeDocumentStore
from tests.unit.einvoice_fixtures import (
    BUYERS,
    SELLER_SETTINGS,
    SUMMATION,
    a_buyer_account,
    a_finalized_invoice,
    an_issued_credit_note,
    category_tax,
    legend,
    pdf_text,
    xml_texts,
    xrechnung_validator,  # noqa: F401 (the session fixture "xrechnung")
)

INVOICED_ON = date(2026, 12, 1)  # a_finalized_invoice's default: BG-3's date
CREDITED_ON = date(2026, 12, 15)  # an_issued_credit_note's default: BT-2
PARTIAL = {"aws": Decimal("5.00")}  # 5.00 of the 17.74 AWS line
CASES = [
    pytest.param(category, full, language, id=f"{category}-{'full' if full else 'partial'}-{language}")
    for category in VatCategory
    for full in (True, False)
    for language in ("de", "en")
]
HEADER_TAX = "//ram:ApplicableHeaderTradeSettlement/ram:ApplicableTradeTax/ram:"
REFERENCE = "//ram:ApplicableHeaderTradeSettlement/ram:InvoiceReferencedDocument/"


def _credited(
    category: VatCategory = VatCategory.STANDARD, full: bool = True, language: str = "de", **note: Any
) -> tuple[CreditNote, Invoice, EInvoice]:
    """The credit note of November's invoice under ``category`` (all of it, or 5.00 of AWS), and its e-invoice."""
    record = a_finalized_invoice(category, language=language)
    credit_note = an_issued_credit_note(record, lines=None if full else PARTIAL, **note)
    account = a_buyer_account(BUYERS[category], language=language)
    return credit_note, record, credit_note_einvoice_of(credit_note, record, account, SELLER_SETTINGS, language)


def _decimals(xml: bytes, path: str) -> list[Decimal]:
    return [Decimal(text) for text in xml_texts(xml, path)]


@pytest.mark.parametrize(("category", "full", "language"), CASES)
def test_a_credit_note_is_a_valid_xrechnung_381_naming_its_invoice_with_the_notes_totals(
    category, full, language, xrechnung
):
    credit_note, record, einvoice = _credited(category, full, language)
    xml = xrechnung_xml(einvoice)

    result = xrechnung.validate(xml, f"credit note {category} {full} {language}")

    assert result.ok, result.format()
    assert {finding.id for finding in result.warnings} <= {"BR-DE-20"}, result.format(include_warnings=True)
    assert xml_texts(xml, "//rsm:ExchangedDocument/ram:TypeCode") == ["381"]
    assert xml_texts(xml, "//rsm:ExchangedDocument/ram:ID") == [credit_note.number]
    assert xml_texts(xml, "//rsm:ExchangedDocument/ram:IssueDateTime/*") == [CREDITED_ON.strftime("%Y%m%d")]
    assert xml_texts(xml, REFERENCE + "ram:IssuerAssignedID") == [record.stripe.number]  # BT-25
    assert xml_texts(xml, REFERENCE + "ram:FormattedIssueDateTime/*") == [INVOICED_ON.strftime("%Y%m%d")]  # BT-26
    lines = _decimals(xml, "//ram:IncludedSupplyChainTradeLineItem//ram:LineTotalAmount")
    assert lines == [line.net for line in credit_note.lines] and all(amount > 0 for amount in lines)
    assert [_decimals(xml, SUMMATION + field)[0] for field in ("LineTotalAmount", "TaxBasisTotalAmount")] == [
        credit_note.net
    ] * 2
    assert _decimals(xml, SUMMATION + "TaxTotalAmount") == [sum((line.tax for line in credit_note.lines), Decimal(0))]
    assert _decimals(xml, SUMMATION + "GrandTotalAmount") == [credit_note.net + credit_note.tax]
    assert _decimals(xml, SUMMATION + "DuePayableAmount") == [credit_note.net + credit_note.tax]
    assert xml_texts(xml, HEADER_TAX + "CategoryCode") == [category.value]
    assert _decimals(xml, HEADER_TAX + "CalculatedAmount") == [credit_note.tax]
    exemption = [] if category is VatCategory.STANDARD else [legend(category, language)]
    assert xml_texts(xml, HEADER_TAX + "ExemptionReason") == exemption  # BT-120 for AE, O and E
    assert "gutschrift" not in xml.decode().lower()


@pytest.mark.parametrize(
    ("full", "taken_back"),
    [(True, (Decimal("37.74"), Decimal("7.17"))), (False, (Decimal("5.00"), category_tax(Decimal("5.00"), 19)))],
)
def test_a_credit_note_takes_back_the_invoices_net_and_its_vat_to_the_cent(full, taken_back):
    credit_note, record, einvoice = _credited(full=full)
    net, tax = taken_back

    assert (einvoice.net_total, einvoice.tax_total, einvoice.gross_total) == (net, tax, net + tax)
    assert (einvoice.vat[0].taxable_amount, einvoice.vat[0].tax_amount) == (net, tax)
    if full:
        assert (einvoice.net_total, einvoice.gross_total) == (record.net, record.amount)


@pytest.mark.parametrize(
    ("language", "refers", "reason"),
    [
        ("de", "Bezieht sich auf Rechnung INV-2026-0042 vom 01.12.2026.", "Grund: Grundgebühr doppelt berechnet"),
        ("en", "Refers to invoice INV-2026-0042 of 2026-12-01.", "Reason: Grundgebühr doppelt berechnet"),
    ],
)
def test_the_notes_name_the_credited_invoice_and_the_reason(language, refers, reason):
    _, record, einvoice = _credited(language=language)

    assert record.stripe.number in refers
    assert einvoice.notes == (refers, reason)
    assert einvoice.preceding[0].number == record.stripe.number and einvoice.preceding[0].issue_date == INVOICED_ON


def test_an_untaxed_credit_note_repeats_the_invoices_legend_as_a_note():
    _, _, einvoice = _credited(VatCategory.REVERSE_CHARGE, language="en")

    assert einvoice.notes[-1] == legend(VatCategory.REVERSE_CHARGE, "en")
    assert einvoice.vat[0].exemption_reason == legend(VatCategory.REVERSE_CHARGE, "en")


SETTLEMENT_TERMS = {
    (Settlement.PRE_PAYMENT, "de"): "Der offene Betrag der Rechnung INV-2026-0042 vermindert sich um diesen Betrag.",
    (Settlement.PRE_PAYMENT, "en"): "The amount due on invoice INV-2026-0042 is reduced by this amount.",
    (Settlement.REFUND, "de"): "Der Betrag wird auf das ursprüngliche Zahlungsmittel erstattet.",
    (Settlement.REFUND, "en"): "The amount is refunded to the original payment method.",
    (Settlement.BALANCE, "de"): (
        "Der Betrag wird Ihrem Kundenkonto als Guthaben angerechnet und von der nächsten Rechnung abgezogen."
    ),
    (Settlement.BALANCE, "en"): "The amount is credited to your customer balance and taken off your next invoice.",
    (Settlement.OUT_OF_BAND, "de"): "Der Betrag wird gesondert ausgeglichen.",
    (Settlement.OUT_OF_BAND, "en"): "The amount is settled separately.",
}


@pytest.mark.parametrize(("settlement", "language"), SETTLEMENT_TERMS)
def test_the_payment_terms_say_where_the_money_goes(settlement, language, xrechnung):
    _, _, einvoice = _credited(language=language, settlement=settlement, paid=settlement is not Settlement.PRE_PAYMENT)
    xml = xrechnung_xml(einvoice)

    assert xml_texts(xml, "//ram:SpecifiedTradePaymentTerms/ram:Description") == [
        SETTLEMENT_TERMS[(settlement, language)]
    ]
    assert xml_texts(xml, "//ram:SpecifiedTradePaymentTerms/ram:DueDateDateTime/*") == []  # nothing is due
    assert xrechnung.validate(xml, f"{settlement}").ok


@pytest.mark.parametrize(
    ("full", "language", "title"),
    [(True, "de", "Stornorechnung"), (False, "de", "Rechnungskorrektur"), (True, "en", "Credit note")],
)
def test_the_pdf_is_titled_stornorechnung_or_rechnungskorrektur_and_never_gutschrift(full, language, title):
    credit_note, record, einvoice = _credited(VatCategory.STANDARD, full, language)
    xml = xrechnung_xml(einvoice)

    pdf = zugferd_pdf(einvoice, xml)

    text = pdf_text(pdf)
    metadata = PdfReader(io.BytesIO(pdf)).metadata
    assert metadata is not None and metadata.title == f"{title} {credit_note.number}"
    assert text.startswith(title) and record.stripe.number in text
    assert "gutschrift" not in text.lower() and "gutschrift" not in xml.decode().lower()


@pytest.mark.parametrize(("category", "full", "language"), CASES)
def test_no_credit_notes_pdf_says_gutschrift(category, full, language):
    _, _, einvoice = _credited(category, full, language)

    text = pdf_text(zugferd_pdf(einvoice, xrechnung_xml(einvoice)))

    assert "gutschrift" not in text.lower()
    assert text.startswith(einvoice.title.text(language))


def test_each_credited_line_keeps_its_own_period_and_the_document_spans_them(xrechnung):
    september = Period(2026, 9)
    correction = Correction(september, Decimal("3.10"), "Korrektur AWS Infrastruktur (Sep 2026)")
    record = a_finalized_invoice(true_up=TrueUp(corrections=(correction,)))
    credit_note = an_issued_credit_note(
        record, lines={"base-fee": Decimal("20.00"), "correction:2026-09": Decimal("3.10")}
    )
    einvoice = credit_note_einvoice_of(credit_note, record, a_buyer_account(), SELLER_SETTINGS, "de")
    xml = xrechnung_xml(einvoice)

    assert xml_texts(xml, "//ram:SpecifiedLineTradeSettlement/ram:BillingSpecifiedPeriod/*/*") == [
        "20261101",
        "20261130",
        "20260901",
        "20260930",
    ]
    assert xml_texts(xml, "//ram:ApplicableHeaderTradeSettlement/ram:BillingSpecifiedPeriod/*/*") == [
        "20260901",
        "20261130",
    ]
    result = xrechnung.validate(xml, "lines of two months")
    assert result.ok, result.format()


@pytest.mark.parametrize("missing", ["number", "issued_at"])
def test_a_credit_note_stripe_has_not_numbered_and_dated_is_refused(missing):
    record = a_finalized_invoice()
    credit_note = dataclasses.replace(an_issued_credit_note(record), **{missing: None})

    with pytest.raises(EInvoiceNotReady, match="not issued at Stripe"):
        credit_note_einvoice_of(credit_note, record, a_buyer_account(), SELLER_SETTINGS, "de")


def test_a_credit_note_of_an_invoice_not_finalized_is_refused():
    record = a_finalized_invoice()
    credit_note = an_issued_credit_note(record)
    unfinalized = dataclasses.replace(record, stripe=dataclasses.replace(record.stripe, finalized_at=None))

    with pytest.raises(EInvoiceNotReady, match="is not finalized"):
        credit_note_einvoice_of(credit_note, unfinalized, a_buyer_account(), SELLER_SETTINGS, "de")


def test_a_credit_note_is_written_only_against_the_invoice_it_credits():
    credit_note = an_issued_credit_note(a_finalized_invoice())
    other = a_finalized_invoice(period=Period(2026, 10), number="INV-2026-0031")

    with pytest.raises(ValueError, match="credits inv_2026-11_acct-1, not inv_2026-10_acct-1"):
        credit_note_einvoice_of(credit_note, other, a_buyer_account(), SELLER_SETTINGS, "de")


def test_its_document_type_and_cancellation_follow_the_credit_note():
    _, _, full = _credited(full=True)
    _, _, partial = _credited(full=False)

    assert full.document_type is partial.document_type is DocumentType.CREDIT_NOTE
    assert (full.cancels_in_full, partial.cancels_in_full) == (True, False)
    assert (full.title.de, partial.title.de) == ("Stornorechnung", "Rechnungskorrektur")


# --- written once under keys of their own, served under their title -----------------------------------------


def _issued_files(credit_note: CreditNote, record: Invoice, account=None, documents=None):
    documents = documents if documents is not None else FakeDocumentStore()
    einvoices = CreditNoteEInvoices(documents=documents, writer=EInvoiceFiles(), seller=SELLER_SETTINGS)
    return documents, einvoices.issue(credit_note, record, account or a_buyer_account())


def test_issuing_writes_both_files_once_under_keys_beside_the_invoices_and_never_an_invoices():
    record = a_finalized_invoice()
    credit_note = an_issued_credit_note(record)

    documents, files = _issued_files(credit_note, record)
    first = dict(documents.files)
    _, again = _issued_files(credit_note, record, documents=documents)

    assert isinstance(files, CreditNoteFiles) and again == files
    assert set(first) == {files.xml_key, files.pdf_key} and documents.files == first  # nothing rewritten
    assert (first[files.xml_key][1], first[files.pdf_key][1]) == ("application/xml", "application/pdf")
    invoice_keys = {object_key(record, name) for name in FORMATS}
    prefix = object_key(record, "xrechnung").split("/")[0] + "/"  # what IAM lets the services write
    assert all(key.startswith(prefix) for key in (files.xml_key, files.pdf_key))
    assert not {files.xml_key, files.pdf_key} & invoice_keys
    # Even a credit note numbered as its invoice is would not land on the invoice's files.
    same_number = dataclasses.replace(credit_note, number=record.stripe.number)
    assert not {credit_note_object_key(same_number, record, name) for name in FORMATS} & invoice_keys


def test_the_stored_xml_is_the_credit_notes_valid_xrechnung(xrechnung):
    record = a_finalized_invoice()
    credit_note = an_issued_credit_note(record, lines=PARTIAL)

    documents, files = _issued_files(credit_note, record)

    xml = documents.get(files.xml_key)
    assert xrechnung.validate(xml, "stored").ok
    assert xml_texts(xml, "//rsm:ExchangedDocument/ram:ID") == [credit_note.number]
    assert facturx.get_xml_from_pdf(documents.get(files.pdf_key), check_xsd=False)[1] == xml


def test_a_credit_note_whose_einvoice_is_invalid_gets_the_problem_and_no_files():
    record = a_finalized_invoice()
    credit_note = an_issued_credit_note(record)

    documents, outcome = _issued_files(credit_note, record, a_buyer_account(address=None))

    assert isinstance(outcome, CreditNoteEInvoiceRefused)
    assert "the buyer has no postal_code" in outcome.problem and "the buyer has no city" in outcome.problem
    assert documents.files == {}


def test_a_credit_note_not_yet_numbered_gets_the_problem_and_no_files():
    record = a_finalized_invoice()
    credit_note = dataclasses.replace(an_issued_credit_note(record), number=None)

    documents, outcome = _issued_files(credit_note, record)

    assert isinstance(outcome, CreditNoteEInvoiceRefused) and "not issued at Stripe" in outcome.problem
    assert documents.files == {}


def test_a_credit_note_naming_its_files_already_is_not_written_again():
    record = a_finalized_invoice()
    credit_note = dataclasses.replace(an_issued_credit_note(record), einvoice_xml="x.xml", einvoice_pdf="x.pdf")

    documents, files = _issued_files(credit_note, record)

    assert files == CreditNoteFiles("x.xml", "x.pdf") and documents.files == {}


@pytest.mark.parametrize(("lines", "title"), [(None, "Stornorechnung"), (PARTIAL, "Rechnungskorrektur")])
def test_the_stored_files_are_served_under_the_credit_notes_title_and_number(lines, title):
    record = a_finalized_invoice()
    credit_note = an_issued_credit_note(record, lines=lines)
    documents, files = _issued_files(credit_note, record)
    stored = dataclasses.replace(credit_note, einvoice_xml=files.xml_key, einvoice_pdf=files.pdf_key)

    xml = StoredEInvoices(documents).credit_note_file(stored, "xrechnung")
    pdf = StoredEInvoices(documents).credit_note_file(stored, "zugferd")

    assert (xml.file_name, xml.content_type) == (f"{title}-{credit_note.number}.xml", "application/xml")
    assert (pdf.file_name, pdf.content_type) == (f"{title}-{credit_note.number}.pdf", "application/pdf")
    assert (xml.body, pdf.body) == (documents.get(files.xml_key), documents.get(files.pdf_key))


def test_a_credit_note_without_stored_files_has_none_to_serve_and_an_unknown_format_is_refused():
    credit_note = an_issued_credit_note(a_finalized_invoice())
    stored = StoredEInvoices(FakeDocumentStore())

    assert stored.credit_note_file(credit_note, "xrechnung") is None
    assert stored.credit_note_file(dataclasses.replace(credit_note, einvoice_pdf="gone.pdf"), "zugferd") is None
    with pytest.raises(ValueError, match="format must be one of"):
        stored.credit_note_file(credit_note, "ubl")
