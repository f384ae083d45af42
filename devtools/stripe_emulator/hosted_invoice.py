"""The hosted invoice page and its PDF, as ``hosted_invoice_url`` and ``invoice_pdf`` point to them."""

from __future__ import annotations

import html
from typing import Any

# Customer.tax_exempt (SDK docstring): "When set to reverse, invoice and receipt PDFs include the
# following text: **"Reverse charge"**."
REVERSE_CHARGE = "Reverse charge"


def invoice_page(invoice: dict[str, Any], tax_rates: dict[str, dict[str, Any]] | None = None) -> str:
    """The HTML page of a finalized invoice: its lines, taxes (named by ``tax_rates``), total and amount due."""
    currency = invoice["currency"]
    rows = "".join(
        f"<tr><td>{html.escape(line['description'] or '')}</td><td>{_money(line['amount'], line['currency'])}</td></tr>"
        for line in invoice["lines"]["data"]
    )
    tax_rows = "".join(
        f"<tr><td>{html.escape(_tax_label(tax, tax_rates or {}))}</td><td>{_money(tax['amount'], currency)}</td></tr>"
        for tax in invoice["total_taxes"] or []
    )
    totals = f"<p>Subtotal: {_money(invoice['subtotal'], currency)}</p><table>{tax_rows}</table>" if tax_rows else ""
    reverse = f"<p><strong>{REVERSE_CHARGE}</strong></p>" if invoice["customer_tax_exempt"] == "reverse" else ""
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>Invoice {html.escape(invoice['number'] or '')}"
        f"</title></head><body><h1>Invoice {html.escape(invoice['number'] or '')}</h1>"
        f"<p>Status: <strong>{invoice['status']}</strong></p><table>{rows}</table>{totals}"
        f"<p>Total: {_money(invoice['total'], currency)}</p>{reverse}"
        f"<p>Amount due: {_money(invoice['amount_remaining'], currency)}</p></body></html>"
    )


def _tax_label(tax: dict[str, Any], tax_rates: dict[str, dict[str, Any]]) -> str:
    rate = tax_rates.get((tax["tax_rate_details"] or {}).get("tax_rate", ""))
    if rate is None:
        return "Tax"
    inclusive = " incl." if rate["inclusive"] else ""
    return f"{rate['display_name']} ({rate['percentage']}%{inclusive})"


def _money(amount: int, currency: str) -> str:
    exponent = 0 if currency.lower() in ("jpy", "krw", "vnd", "clp", "isk", "ugx") else 2
    sign = "-" if amount < 0 else ""
    whole, cents = divmod(abs(amount), 10**exponent) if exponent else (abs(amount), 0)
    return f"{sign}{whole}.{cents:02d} {currency.upper()}" if exponent else f"{sign}{whole} {currency.upper()}"


def invoice_pdf(invoice: dict[str, Any]) -> bytes:
    """A minimal valid one-page PDF naming the invoice number, status and total."""
    total = _money(invoice["total"], invoice["currency"])
    text = f"Invoice {invoice['number']}  status {invoice['status']}  total {total}"
    if invoice["customer_tax_exempt"] == "reverse":
        text += f"  {REVERSE_CHARGE}"
    text = text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
    stream = f"BT /F1 14 Tf 72 720 Td ({text}) Tj ET".encode("latin-1", "replace")
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length " + str(len(stream)).encode() + b" >>\nstream\n" + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    for offset in offsets:
        out += f"{offset:010d} 00000 n \n".encode()
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return bytes(out)
