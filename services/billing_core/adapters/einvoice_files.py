"""``EInvoiceWriter`` over drafthorse (XRechnung CII) and weasyprint + factur-x (ZUGFeRD PDF/A-3).

The libraries load on first use: billing-api and webhook-receiver never write e-invoices, and
weasyprint takes a moment (and its system libraries) to load.
"""

from __future__ import annotations

from billing_core.domain.einvoice import EInvoice
from billing_core.ports import EInvoiceWriter


class EInvoiceFiles(EInvoiceWriter):
    """Writes both files of an e-invoice."""

    def xrechnung(self, invoice: EInvoice) -> bytes:
        """The XRechnung 3.0 XML (drafthorse checks it against the EN 16931 CII schema)."""
        from billing_core.adapters.einvoice_cii import xrechnung_xml

        return xrechnung_xml(invoice)

    def zugferd(self, invoice: EInvoice, xml: bytes) -> bytes:
        """The PDF/A-3 with ``xml`` embedded."""
        from billing_core.adapters.einvoice_pdf import zugferd_pdf

        return zugferd_pdf(invoice, xml)
