"""A stored name the invoice font cannot show (issue 34: emoji, a right-to-left override) still makes a
readable PDF: each such character is printed as U+FFFD and logged once, not a warning per glyph."""

from __future__ import annotations

import dataclasses
import logging

from billing_core.adapters.einvoice_cii import xrechnung_xml
from billing_core.adapters.einvoice_pdf import invoice_html, zugferd_pdf
from tests.unit.einvoice_fixtures import GERMAN_BUYER, an_einvoice, pdf_text

# Stored before names were checked: 200 emoji DejaVu Sans has no glyph for and a right-to-left override.
HOSTILE_NAME = "Kunde \u202eGA " + "🍕🚀🎉🦄" * 50 + " Ende"


def _hostile_invoice(name: str = HOSTILE_NAME):
    return an_einvoice(buyer=dataclasses.replace(GERMAN_BUYER, name=name, city="M\u202eünchen"))


def test_a_pdf_for_a_name_with_emoji_and_an_rlo_renders_with_a_handful_of_warnings(caplog):
    invoice = _hostile_invoice()
    caplog.set_level(logging.WARNING)

    pdf = zugferd_pdf(invoice, xrechnung_xml(invoice))

    warnings = [record for record in caplog.records if record.levelno >= logging.WARNING]
    assert len(warnings) <= 3, [record.getMessage() for record in warnings[:5]]
    (replaced,) = [record for record in warnings if record.name == "billing_core.adapters.einvoice_pdf"]
    assert replaced.replaced == 202
    assert replaced.characters.split() == [
        "U+202E",
        "U+1F355",
        "U+1F389",
        "U+1F680",
        "U+1F984",
    ]
    assert not [record for record in warnings if record.name.startswith(("weasyprint", "fontTools"))]
    text = pdf_text(pdf)
    assert pdf.startswith(b"%PDF-") and "Kunde" in text and "Ende" in text and "\ufffd" in text
    assert "\u202e" not in text and "🍕" not in text
    assert "Gesamtbetrag 44,91 €" in text  # the rest of the invoice is there


def test_the_html_the_pdf_is_rendered_from_holds_only_characters_the_font_shows():
    # A control character too (the XRechnung, XML 1.0, cannot hold a BEL at all; the page can show U+FFFD).
    html = invoice_html(_hostile_invoice(HOSTILE_NAME + "\u0007 \u0085"))

    assert "\u202e" not in html and "\u0007" not in html and "🍕" not in html
    assert "Kunde \ufffdGA \ufffd" in html and "M\ufffdünchen" in html


def test_an_ordinary_invoice_logs_nothing(caplog):
    caplog.set_level(logging.WARNING)
    invoice = an_einvoice()

    html = invoice_html(invoice)

    assert "\ufffd" not in html and not caplog.records
