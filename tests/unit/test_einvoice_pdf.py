"""The ZUGFeRD PDF: a readable invoice in German or English, PDF/A-3, carrying the XRechnung unchanged."""

from __future__ import annotations

import dataclasses
import io
import re
from decimal import Decimal

import facturx
import pytest
from pypdf import PdfReader

from billing_core.adapters.einvoice_cii import xrechnung_xml
from billing_core.adapters.einvoice_pdf import format_amount, invoice_html, zugferd_pdf
from billing_core.domain.einvoice import EInvoice, VatCategory
from tests.unit.einvoice_fixtures import (
    AUSTRIAN_BUYER,
    CARD,
    US_BUYER,
    a_credit_note,
    an_einvoice,
    legend,
    pdf_text,
    xrechnung_validator,  # noqa: F401 (the session fixture "xrechnung")
)

# The timestamps factur-x writes (XMP and the document information): all that differs between two renderings.
TIMESTAMPS = re.compile(rb"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d|D\\072\d{14}[^)]*")


def _pdf(invoice: EInvoice) -> tuple[bytes, bytes]:
    xml = xrechnung_xml(invoice)
    return xml, zugferd_pdf(invoice, xml)


@pytest.fixture(scope="module")
def german() -> tuple[bytes, bytes]:
    """The German customer's invoice (S 19 %, SEPA): its XML and its PDF."""
    return _pdf(an_einvoice())


def test_the_pdf_carries_the_xrechnung_byte_for_byte(german):
    xml, pdf = german

    name, embedded = facturx.get_xml_from_pdf(pdf, check_xsd=True)

    assert name == "factur-x.xml" and embedded == xml


def test_an_xml_the_factur_x_schema_refuses_is_not_embedded(german):
    xml, _ = german
    # ram:Name in the document header exists only in the EXTENDED profile.
    extended = xml.replace(b"<ram:TypeCode>380", b"<ram:Name>Rechnung</ram:Name><ram:TypeCode>380", 1)

    with pytest.raises(Exception, match="not valid against the official XML Schema"):
        zugferd_pdf(an_einvoice(), extended)


def test_the_embedded_xrechnung_is_valid(german, xrechnung):
    _, pdf = german

    result = xrechnung.validate(facturx.get_xml_from_pdf(pdf, check_xsd=False)[1], "embedded")

    assert result.ok, result.format()


def test_the_german_pdf_shows_number_dates_lines_vat_and_total():
    text = pdf_text(_pdf(an_einvoice())[1])

    for expected in (
        "Rechnung",
        "Rechnungsnummer INV-2026-0042",
        "Rechnungsdatum 01.12.2026",
        "Leistungszeitraum 01.11.2026 – 30.11.2026",
        "Monatliche Grundgebühr",
        "20,00 €",
        "17,74 €",
        "Summe netto 37,74 €",
        "USt. 19 % auf 37,74 € 7,17 €",
        "Gesamtbetrag 44,91 €",
        "USt-IdNr. DE136695976",
        "USt-IdNr. DE811907980",
        "Kundenweg 5",
        "80331 München",
        "Mandatsreferenz pm_1QmandateABC",
        "Gläubiger-ID DE98ZZZ09999999999",
        "Fällig am: 01.12.2026",
        "Ihre Referenz K-10023",
    ):
        assert expected in text, expected


def test_the_english_pdf_speaks_english_with_english_amounts():
    text = pdf_text(_pdf(an_einvoice(language="en", payment=CARD))[1])

    for expected in (
        "Invoice",
        "Invoice number INV-2026-0042",
        "Invoice date 1 December 2026",
        "Service period 1 November 2026 – 30 November 2026",
        "Total net €37.74",
        "VAT 19 % on €37.74 €7.17",
        "Total €44.91",
        "Card •••• 4242",
        "Due date: 1 December 2026",
    ):
        assert expected in text, expected
    assert "Gesamtbetrag" not in text


@pytest.mark.parametrize(
    "category, buyer",
    [
        (VatCategory.REVERSE_CHARGE, AUSTRIAN_BUYER),
        (VatCategory.NOT_TAXABLE, US_BUYER),
        (VatCategory.SMALL_BUSINESS, AUSTRIAN_BUYER),
    ],
)
def test_an_untaxed_invoice_shows_its_legend_and_vat_zero(category, buyer, xrechnung):
    xml, pdf = _pdf(an_einvoice(category=category, buyer=buyer))
    text = pdf_text(pdf)

    assert legend(category) in text
    assert "USt. 0 % auf 37,74 € 0,00 €" in text and "Gesamtbetrag 37,74 €" in text
    assert xrechnung.validate(xml, str(category)).ok


@pytest.mark.parametrize(
    ("invoice", "title"),
    [
        (an_einvoice(), "Rechnung"),
        (an_einvoice(language="en"), "Invoice"),
        (a_credit_note(), "Stornorechnung"),
        (a_credit_note(cancels_in_full=False), "Rechnungskorrektur"),
        (a_credit_note(language="en"), "Credit note"),
    ],
)
def test_the_page_is_titled_by_the_documents_type(invoice, title):
    html = invoice_html(invoice)

    assert f"<h1>{title}</h1>" in html and f"<title>{title} {invoice.number}</title>" in html
    assert "Gutschrift" not in html


def test_a_credit_notes_pdf_carries_its_title_in_the_metadata():
    credit_note = a_credit_note()

    metadata = PdfReader(io.BytesIO(_pdf(credit_note)[1])).metadata

    assert metadata is not None and metadata.title == "Stornorechnung INV-2026-0057"
    assert metadata.subject == "Stornorechnung INV-2026-0057, 15.12.2026"


def test_a_line_note_is_shown_under_its_description():
    invoice = an_einvoice(["20.00", "17.74", "3.10"], language="en")
    note = "Corrects invoice INV-2026-0031 of 2026-11-01"
    invoice = dataclasses.replace(invoice, lines=(*invoice.lines[:2], dataclasses.replace(invoice.lines[2], note=note)))

    html = invoice_html(invoice)

    assert f"<td>Korrektur 3<div class='line-note'>{note}</div></td>" in html
    assert note in pdf_text(_pdf(invoice)[1])


def test_credits_and_a_zero_total_are_shown_with_their_signs():
    text = pdf_text(_pdf(an_einvoice(["20.00", "0.00", "-20.00"]))[1])

    assert "-20,00 €" in text and "0,00 €" in text and "Gesamtbetrag 0,00 €" in text
    assert "Fällig am" not in text  # nothing is due


def test_the_pdf_is_pdf_a_3b_with_the_factur_x_en16931_metadata(german):
    _, pdf = german
    reader = PdfReader(io.BytesIO(pdf))
    root = reader.trailer["/Root"]
    xmp = root["/Metadata"].get_object().get_data()

    assert b"<pdfaid:part>3</pdfaid:part>" in xmp and b"<pdfaid:conformance>B</pdfaid:conformance>" in xmp
    assert b"<fx:ConformanceLevel>EN 16931</fx:ConformanceLevel>" in xmp
    assert b"<fx:DocumentFileName>factur-x.xml</fx:DocumentFileName>" in xmp
    assert root["/OutputIntents"][0].get_object()["/S"] == "/GTS_PDFA1"  # the sRGB profile weasyprint embeds
    (filespec,) = [spec.get_object() for spec in root["/AF"]]
    assert filespec["/F"] == "factur-x.xml" and filespec["/AFRelationship"] == "/Data"
    assert root["/Lang"] == "de-DE"


def test_two_renderings_of_one_invoice_differ_only_in_their_timestamps():
    from weasyprint.text import ffi

    if ffi.harfbuzz_subset is None:
        pytest.skip(
            "without libharfbuzz-subset0 fontTools subsets the fonts and stamps them with the time; "
            "make pdf-tools installs it"
        )
    invoice = an_einvoice(payment=CARD)
    xml = xrechnung_xml(invoice)

    first, second = zugferd_pdf(invoice, xml), zugferd_pdf(invoice, xml)

    assert TIMESTAMPS.sub(b"T", first) == TIMESTAMPS.sub(b"T", second)


def test_every_text_is_html_escaped():
    invoice = an_einvoice(
        buyer=dataclasses.replace(AUSTRIAN_BUYER, name='<b>Evil & "Co"</b>'), category=VatCategory.REVERSE_CHARGE
    )
    script = dataclasses.replace(invoice.lines[0], description="<script>x</script>")
    invoice = dataclasses.replace(invoice, lines=(script, *invoice.lines[1:]))

    html = invoice_html(invoice)
    text = pdf_text(zugferd_pdf(invoice, xrechnung_xml(invoice)))

    assert "<script>" not in html and "&lt;script&gt;x&lt;/script&gt;" in html
    assert "&lt;b&gt;Evil &amp; &quot;Co&quot;&lt;/b&gt;" in html
    assert "<script>x</script>" in text and '<b>Evil & "Co"</b>' in text


@pytest.mark.parametrize(
    "amount, currency, language, shown",
    [
        ("1234.56", "EUR", "de", "1.234,56 €"),
        ("-1234.56", "EUR", "de", "-1.234,56 €"),
        ("0", "EUR", "de", "0,00 €"),
        ("1234567.5", "EUR", "de", "1.234.567,50 €"),
        ("1234.56", "EUR", "en", "€1,234.56"),
        ("-5", "EUR", "en", "-€5.00"),
        ("1234.56", "USD", "en", "USD 1,234.56"),
        ("1234.56", "USD", "de", "1.234,56 USD"),
    ],
)
def test_amounts_are_written_the_way_each_language_writes_them(amount, currency, language, shown):
    assert format_amount(Decimal(amount), currency, language) == shown
