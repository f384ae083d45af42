"""True-up lines on an e-invoice name the invoice they correct: in BG-3 when there is one, in their notes always."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from billing_core.adapters.einvoice_cii import xrechnung_xml
from billing_core.adapters.einvoice_files import EInvoiceFiles
from billing_core.domain.corrections import Correction, TrueUp
from billing_core.domain.costs import Period
from billing_core.domain.einvoice import DocumentType
from billing_core.domain.records import Invoice
from billing_core.use_cases.einvoices import EInvoices, StoredEInvoices, einvoice_of
from tests.support.fakes import FakeDocumentStore, FakeInvoiceRepository
from tests.unit.einvoice_fixtures import (
    SELLER_SETTINGS,
    a_buyer_account,
    a_finalized_invoice,
    pdf_text,
    xml_texts,
    xrechnung_validator,  # noqa: F401 (the session fixture "xrechnung")
)

SEPTEMBER, OCTOBER = Period(2026, 9), Period(2026, 10)
# The months' own invoices, finalized on the first of the next month.
EARLIER = {
    SEPTEMBER: a_finalized_invoice(period=SEPTEMBER, number="INV-2026-0019", finalized_on=date(2026, 10, 1)),
    OCTOBER: a_finalized_invoice(period=OCTOBER, number="INV-2026-0031", finalized_on=date(2026, 11, 1)),
}
REFERENCE = "//ram:ApplicableHeaderTradeSettlement/ram:InvoiceReferencedDocument/"
LINE_NOTES = "//ram:AssociatedDocumentLineDocument/ram:IncludedNote/ram:Content"
DOCUMENT_NOTES = "//rsm:ExchangedDocument/ram:IncludedNote/ram:Content"
TEXTS = {
    "de": {"line": "Korrektur zu Rechnung {} vom {}", "day": "%d.%m.%Y"},
    "en": {"line": "Correction of invoice {} of {}", "day": "%Y-%m-%d"},
}


def _correcting(*amounts: tuple[Period, str], language: str = "de") -> Invoice:
    """November's invoice with a correction line of each (month, amount)."""
    corrections = tuple(
        Correction(period, Decimal(amount), f"Korrektur AWS Infrastruktur ({period.label})")
        for period, amount in amounts
    )
    return a_finalized_invoice(language=language, true_up=TrueUp(corrections=corrections))


def _named(earlier: Invoice, language: str) -> str:
    """How a line names ``earlier``: its number and the day it was finalized (``EARLIER``'s first of a month)."""
    day = earlier.period.end  # the first of the next month
    return TEXTS[language]["line"].format(earlier.stripe.number, day.strftime(TEXTS[language]["day"]))


def _valid(xrechnung, xml: bytes, name: str) -> None:
    result = xrechnung.validate(xml, name)
    assert result.ok, result.format()
    assert {finding.id for finding in result.warnings} <= {"BR-DE-20"}, result.format(include_warnings=True)


def test_a_correction_of_one_invoice_names_it_in_bg3_and_in_the_lines_note(xrechnung):
    record = _correcting((OCTOBER, "3.10"))
    einvoice = einvoice_of(record, a_buyer_account(), SELLER_SETTINGS, "de", corrected=list(EARLIER.values()))
    xml = xrechnung_xml(einvoice)

    _valid(xrechnung, xml, "one correction")
    assert xml_texts(xml, "//rsm:ExchangedDocument/ram:TypeCode") == [DocumentType.COMMERCIAL_INVOICE.value]
    assert xml_texts(xml, REFERENCE + "ram:IssuerAssignedID") == [EARLIER[OCTOBER].stripe.number]
    assert xml_texts(xml, REFERENCE + "ram:FormattedIssueDateTime/*") == ["20261101"]
    assert [line.note for line in einvoice.lines] == [None, None, _named(EARLIER[OCTOBER], "de")]
    assert xml_texts(xml, LINE_NOTES) == [_named(EARLIER[OCTOBER], "de")]
    assert xml_texts(xml, DOCUMENT_NOTES) == []  # BG-3 names it already


def test_corrections_of_several_invoices_name_each_in_its_line_and_all_in_a_document_note(xrechnung):
    record = _correcting((SEPTEMBER, "-1.25"), (OCTOBER, "3.10"), language="en")
    einvoice = einvoice_of(record, a_buyer_account(), SELLER_SETTINGS, "en", corrected=list(EARLIER.values()))
    xml = xrechnung_xml(einvoice)

    _valid(xrechnung, xml, "two corrections")
    assert xml_texts(xml, REFERENCE + "ram:IssuerAssignedID") == []  # CII has room for one BG-3 only
    september, october = _named(EARLIER[SEPTEMBER], "en"), _named(EARLIER[OCTOBER], "en")
    assert xml_texts(xml, LINE_NOTES) == [september, october]
    (note,) = xml_texts(xml, DOCUMENT_NOTES)
    assert EARLIER[SEPTEMBER].stripe.number in note and EARLIER[OCTOBER].stripe.number in note
    assert "2026-10-01" in note and "2026-11-01" in note


def test_a_correction_whose_invoice_is_not_known_keeps_its_month_and_names_no_invoice(xrechnung):
    record = _correcting((SEPTEMBER, "-1.25"), (OCTOBER, "3.10"))
    einvoice = einvoice_of(record, a_buyer_account(), SELLER_SETTINGS, "de", corrected=[EARLIER[OCTOBER]])
    xml = xrechnung_xml(einvoice)

    _valid(xrechnung, xml, "one of two known")
    assert [line.note for line in einvoice.lines] == [None, None, None, _named(EARLIER[OCTOBER], "de")]
    assert einvoice.preceding[0].number == EARLIER[OCTOBER].stripe.number


def test_an_invoice_of_another_account_or_not_finalized_is_never_named():
    record = _correcting((OCTOBER, "3.10"))
    others = [
        a_finalized_invoice(period=OCTOBER, number="INV-2026-0099", account_id="acct-2"),
        a_finalized_invoice(period=OCTOBER, number="INV-2026-0031", finalized_at=None),
    ]

    einvoice = einvoice_of(record, a_buyer_account(), SELLER_SETTINGS, "de", corrected=others)

    assert einvoice.preceding == () and all(line.note is None for line in einvoice.lines)


def test_einvoice_of_without_corrected_invoices_names_none():
    einvoice = einvoice_of(_correcting((OCTOBER, "3.10")), a_buyer_account(), SELLER_SETTINGS, "de")

    assert einvoice.preceding == () and all(line.note is None for line in einvoice.lines)


def test_issuing_looks_the_corrected_invoice_up_and_its_files_name_it(xrechnung):
    record = _correcting((OCTOBER, "3.10"))
    invoices = FakeInvoiceRepository([record, *EARLIER.values()])
    documents = FakeDocumentStore()
    einvoices = EInvoices(invoices=invoices, documents=documents, writer=EInvoiceFiles(), seller=SELLER_SETTINGS)

    issued = einvoices.issue(record, a_buyer_account(), now_ms=record.updated_at)

    stored = StoredEInvoices(documents)
    xml = stored.file(issued, "xrechnung").body
    _valid(xrechnung, xml, "issued with a correction")
    assert xml_texts(xml, REFERENCE + "ram:IssuerAssignedID") == [EARLIER[OCTOBER].stripe.number]
    assert _named(EARLIER[OCTOBER], "de") in pdf_text(stored.file(issued, "zugferd").body)


def test_issuing_with_the_corrected_invoice_missing_still_writes_the_files():
    record = _correcting((OCTOBER, "3.10"))
    documents = FakeDocumentStore()
    einvoices = EInvoices(
        invoices=FakeInvoiceRepository([record]), documents=documents, writer=EInvoiceFiles(), seller=SELLER_SETTINGS
    )

    issued = einvoices.issue(record, a_buyer_account(), now_ms=record.updated_at)

    assert issued.einvoice.error is None and len(documents.files) == 2
    assert xml_texts(StoredEInvoices(documents).file(issued, "xrechnung").body, LINE_NOTES) == []
