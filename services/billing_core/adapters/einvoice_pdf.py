"""The ZUGFeRD PDF of an ``EInvoice``: the invoice for people (weasyprint, PDF/A-3b) with its XRechnung embedded.

The page shows what § 14 (4) UStG asks an invoice to show (both parties with address and VAT id,
number, date, service period, the net amount per line, the VAT per rate, the total, the legend of
an untaxed supply) in German, or in English when ``invoice.language == "en"``. factur-x then embeds
the XML as ``factur-x.xml`` and writes the Factur-X XMP; it files an XRechnung under the EN 16931 level.

Every text comes from the invoice and is HTML-escaped; the title is the document's own
(``EInvoice.title``: "Rechnung", "Stornorechnung", ...). The only things that differ between two
renderings of one invoice are the timestamps factur-x writes.

The page is set in DejaVu Sans (the worker image's font). A character it has no glyph for (an emoji
in a name stored before names were checked), a control or a bidirectional control (which would
reorder the text) is shown as U+FFFD instead, and the rendering logs that once: weasyprint would
otherwise draw an empty box and log a warning for each.
"""

from __future__ import annotations

import logging
from datetime import date
from decimal import Decimal
from html import escape

import facturx
import weasyprint

from billing_core.domain.account_profile import pdf_printable
from billing_core.domain.einvoice import EInvoice, Party, PaymentMeans, VatBreakdown
from billing_core.domain.invoice_mail import MONTH_NAMES

log = logging.getLogger(__name__)
_REPLACEMENT = "\ufffd"  # in the font: the replacement character, a question mark in a diamond
_LINE_BREAKS = frozenset("\n\r\t")  # the HTML's own whitespace

_TEXTS: dict[str, dict[str, str]] = {
    "de": {
        "number": "Rechnungsnummer",
        "date": "Rechnungsdatum",
        "period": "Leistungszeitraum",
        "seller": "Rechnungssteller",
        "buyer": "Rechnungsempfänger",
        "reference": "Ihre Referenz",
        "vat_id": "USt-IdNr.",
        "tax_number": "Steuernummer",
        "line": "Pos.",
        "description": "Beschreibung",
        "line_period": "Zeitraum",
        "net": "Betrag netto",
        "net_total": "Summe netto",
        "vat": "USt.",
        "taxable": "auf",
        "total": "Gesamtbetrag",
        "prepaid": "Verrechnetes Guthaben",
        "due_payable": "Zahlbetrag",
        "notes": "Hinweise",
        "payment": "Zahlung",
        "due": "Fällig am",
        "sepa": "SEPA-Lastschrift",
        "mandate": "Mandatsreferenz",
        "creditor": "Gläubiger-ID",
        "account": "Konto",
        "card": "Karte",
        "holder": "Karteninhaber",
        "contact": "Kontakt",
    },
    "en": {
        "number": "Invoice number",
        "date": "Invoice date",
        "period": "Service period",
        "seller": "From",
        "buyer": "Bill to",
        "reference": "Your reference",
        "vat_id": "VAT ID",
        "tax_number": "Tax number",
        "line": "No.",
        "description": "Description",
        "line_period": "Period",
        "net": "Net amount",
        "net_total": "Total net",
        "vat": "VAT",
        "taxable": "on",
        "total": "Total",
        "prepaid": "Credit applied",
        "due_payable": "Amount due",
        "notes": "Notes",
        "payment": "Payment",
        "due": "Due date",
        "sepa": "SEPA direct debit",
        "mandate": "Mandate reference",
        "creditor": "Creditor ID",
        "account": "Account",
        "card": "Card",
        "holder": "Cardholder",
        "contact": "Contact",
    },
}
_SYMBOLS = {"EUR": "€"}

_CSS = """
@page { size: A4; margin: 20mm 18mm 22mm 18mm; }
body { font-family: "DejaVu Sans", sans-serif; font-size: 9.5pt; color: #111; }
h1 { font-size: 18pt; margin: 0 0 6mm 0; }
.parties { display: flex; justify-content: space-between; margin-bottom: 8mm; }
.party { width: 48%; }
.label { color: #555; font-size: 8pt; text-transform: uppercase; letter-spacing: 0.04em; }
table { width: 100%; border-collapse: collapse; }
table.facts { width: auto; }
table.facts td { padding: 0.6mm 8mm 0.6mm 0; }
table.lines { margin-top: 6mm; }
table.lines th { text-align: left; border-bottom: 0.6pt solid #111; padding: 1.5mm 1mm; font-size: 8.5pt; }
table.lines td { border-bottom: 0.3pt solid #bbb; padding: 1.5mm 1mm; vertical-align: top; }
.amount { text-align: right; white-space: nowrap; }
.line-note { color: #555; font-size: 8pt; margin-top: 0.6mm; }
table.totals { width: 60%; margin: 4mm 0 0 auto; }
table.totals td { padding: 1mm; }
table.totals tr.total td { border-top: 0.6pt solid #111; font-weight: bold; }
section { margin-top: 6mm; }
footer { margin-top: 10mm; color: #555; font-size: 8pt; }
"""


def zugferd_pdf(invoice: EInvoice, xml: bytes) -> bytes:
    """The PDF/A-3 of ``invoice`` with ``xml`` (its XRechnung) embedded as Factur-X EN 16931."""
    html = invoice_html(invoice)
    visible: bytes = weasyprint.HTML(string=html).write_pdf(
        pdf_variant="pdf/a-3b", stylesheets=[weasyprint.CSS(string=_CSS)]
    )
    title = invoice.title.text(invoice.language)
    pdf: bytes = facturx.generate_from_binary(
        visible,
        xml,
        flavor="factur-x",
        level="en16931",
        check_xsd=True,
        pdf_metadata={
            "author": invoice.seller.name,
            "keywords": "Factur-X, ZUGFeRD, XRechnung",
            "title": f"{title} {invoice.number}",
            "subject": f"{title} {invoice.number}, {_date(invoice.issue_date, invoice.language)}",
        },
        lang=_lang(invoice),
        # Uncompressed XMP: the PDF/A identification stays readable to any checker (and to a signature later).
        xmp_compression=False,
    )
    return pdf


def invoice_html(invoice: EInvoice) -> str:
    """The HTML the PDF is rendered from (every text escaped, every character one the font shows)."""
    return _printable(_html(invoice), invoice.number)


def _html(invoice: EInvoice) -> str:
    t, language, currency = _texts(invoice), invoice.language, invoice.currency
    title = invoice.title.text(language)
    e = _escape
    lines = "".join(
        f"<tr><td>{e(line.line_id)}</td><td>{e(line.description)}{_line_note(line.note)}</td>"
        f"<td>{e(_period(line.period_start, line.period_end, language))}</td>"
        f"<td class='amount'>{e(format_amount(line.net_amount, currency, language))}</td></tr>"
        for line in invoice.lines
    )
    vat_rows = "".join(_vat_row(vat, invoice) for vat in invoice.vat)
    notes = "".join(f"<p>{e(note)}</p>" for note in invoice.notes)
    seller = invoice.seller
    contact = " · ".join(e(part) for part in (seller.contact_name, seller.contact_phone, seller.email) if part)
    due = f"<p>{e(t['due'])}: {e(_date(invoice.due_date, language))}</p>" if invoice.due_date else ""
    return f"""<!DOCTYPE html>
<html lang="{e(_lang(invoice))}">
<head>
<meta charset="utf-8">
<title>{e(title)} {e(invoice.number)}</title>
<meta name="author" content="{e(seller.name)}">
<meta name="dcterms.created" content="{invoice.issue_date.isoformat()}">
<meta name="dcterms.modified" content="{invoice.issue_date.isoformat()}">
</head>
<body>
<h1>{e(title)}</h1>
<div class="parties">
<div class="party"><div class="label">{e(t["seller"])}</div>{_party(seller, t)}</div>
<div class="party"><div class="label">{e(t["buyer"])}</div>{_party(invoice.buyer, t)}</div>
</div>
<table class="facts">
<tr><td>{e(t["number"])}</td><td>{e(invoice.number)}</td></tr>
<tr><td>{e(t["date"])}</td><td>{e(_date(invoice.issue_date, language))}</td></tr>
<tr><td>{e(t["period"])}</td><td>{e(_period(invoice.period_start, invoice.period_end, language))}</td></tr>
<tr><td>{e(t["reference"])}</td><td>{e(invoice.buyer_reference)}</td></tr>
</table>
<table class="lines">
<thead><tr><th>{e(t["line"])}</th><th>{e(t["description"])}</th><th>{e(t["line_period"])}</th>
<th class="amount">{e(t["net"])}</th></tr></thead>
<tbody>{lines}</tbody>
</table>
<table class="totals">
<tr><td>{e(t["net_total"])}</td><td class="amount">{e(format_amount(invoice.net_total, currency, language))}</td></tr>
{vat_rows}
<tr class="total"><td>{e(t["total"])}</td>
<td class="amount">{e(format_amount(invoice.gross_total, currency, language))}</td></tr>
{_prepaid_rows(invoice, t, language)}
</table>
{f'<section><div class="label">{e(t["notes"])}</div>{notes}</section>' if notes else ""}
<section><div class="label">{e(t["payment"])}</div>
<p>{_payment(invoice.payment, t)}</p>
<p>{e(invoice.payment_terms)}</p>
{due}
</section>
<footer>{e(t["contact"])}: {contact}</footer>
</body>
</html>
"""


def _printable(html: str, number: str) -> str:
    """``html`` with each character the font cannot show (or a control, bidi control) as U+FFFD; logged once."""
    missing = sorted(
        character for character in set(html) if character not in _LINE_BREAKS and not pdf_printable(character)
    )
    if not missing:
        return html
    log.warning(
        "characters the invoice font cannot show are printed as U+FFFD",
        extra={
            "document": number,
            "replaced": sum(html.count(character) for character in missing),
            "characters": " ".join(f"U+{ord(character):04X}" for character in missing[:20]),
        },
    )
    return html.translate(dict.fromkeys(map(ord, missing), _REPLACEMENT))


def format_amount(amount: Decimal, currency: str, language: str) -> str:
    """``1.234,56 €`` in German, ``€1,234.56`` in English (``USD 1,234.56`` for other currencies)."""
    sign = "-" if amount < 0 else ""
    digits = f"{abs(amount).quantize(Decimal('0.01')):,.2f}"  # 1,234.56
    symbol = _SYMBOLS.get(currency.upper())
    if language == "en":
        return f"{sign}{symbol}{digits}" if symbol else f"{sign}{currency.upper()} {digits}"
    german = digits.replace(",", " ").replace(".", ",").replace(" ", ".")
    return f"{sign}{german} {symbol or currency.upper()}"


def _line_note(note: str | None) -> str:
    return f"<div class='line-note'>{_escape(note)}</div>" if note else ""


def _prepaid_rows(invoice: EInvoice, t: dict[str, str], language: str) -> str:
    """The credit deducted (BT-113) and what is left to pay (BT-115), when a credit was deducted."""
    if not invoice.prepaid:
        return ""
    currency, e = invoice.currency, _escape
    return (
        f'<tr><td>{e(t["prepaid"])}</td><td class="amount">'
        f"{e(format_amount(-invoice.prepaid, currency, language))}</td></tr>"
        f'<tr class="total"><td>{e(t["due_payable"])}</td><td class="amount">'
        f"{e(format_amount(invoice.due_payable, currency, language))}</td></tr>"
    )


def _vat_row(vat: VatBreakdown, invoice: EInvoice) -> str:
    t, language, currency = _texts(invoice), invoice.language, invoice.currency
    taxable = format_amount(vat.taxable_amount, currency, language)
    label = f"{t['vat']} {_rate(vat.rate, language)} % {t['taxable']} {taxable}"
    return (
        f"<tr><td>{_escape(label)}</td>"
        f"<td class='amount'>{_escape(format_amount(vat.tax_amount, currency, language))}</td></tr>"
    )


def _party(party: Party, t: dict[str, str]) -> str:
    e = _escape
    rows = [f"<strong>{e(party.name)}</strong>"]
    rows += [e(part) for part in (party.street, " ".join(p for p in (party.postal_code, party.city) if p)) if part]
    rows.append(e(party.country))
    if party.vat_id:
        rows.append(f"{e(t['vat_id'])} {e(party.vat_id)}")
    if party.tax_number:
        rows.append(f"{e(t['tax_number'])} {e(party.tax_number)}")
    if party.email:
        rows.append(e(party.email))
    return "<br>".join(rows)


def _payment(payment: PaymentMeans, t: dict[str, str]) -> str:
    e = _escape
    if payment.kind == "sepa_debit":
        parts = [t["sepa"]]
        parts += [
            f"{t[label]} {value}"
            for label, value in (
                ("mandate", payment.mandate_reference),
                ("creditor", payment.creditor_id),
                ("account", payment.debited_account),
            )
            if value
        ]
        return e(", ".join(parts))
    text = f"{t['card']} •••• {payment.card_last4 or ''}".rstrip()
    if payment.card_holder:
        text += f", {t['holder']} {payment.card_holder}"
    return e(text)


def _texts(invoice: EInvoice) -> dict[str, str]:
    return _TEXTS["en" if invoice.language == "en" else "de"]


def _lang(invoice: EInvoice) -> str:
    return "en" if invoice.language == "en" else "de-DE"


def _date(day: date | None, language: str) -> str:
    if day is None:
        return ""
    if language == "en":
        return f"{day.day} {MONTH_NAMES['en'][day.month - 1]} {day.year}"
    return day.strftime("%d.%m.%Y")


def _period(start: date, end: date, language: str) -> str:
    return f"{_date(start, language)} – {_date(end, language)}"


def _rate(rate: Decimal, language: str) -> str:
    text = format(rate.normalize(), "f")  # 19, 7.5
    return text.replace(".", ",") if language != "en" else text


def _escape(text: str | None) -> str:
    return escape(text or "", quote=True)
