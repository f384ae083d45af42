"""The e-invoice of one finalized invoice, as EN 16931 (XRechnung 3.0, ZUGFeRD EN 16931) models it.

Pure data: the adapters in ``adapters/einvoice_*`` write it as UN/CEFACT CII XML and as a PDF/A-3
with that XML embedded. Amounts are the invoice's own, as Stripe computed them and our check
confirmed: the file repeats the invoice, it never computes a different one. Whether an invoice
may be written at all is ``einvoice_rules``.

The document says what it is (BT-3) and which earlier invoices it refers to (BG-3), and its title
follows from its type: the XML writes the code and the references, the PDF shows the title.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from enum import StrEnum

from billing_core.domain.errors import BillingDomainError


class EInvoiceInvalid(BillingDomainError):
    """The e-invoice cannot be written as EN 16931 requires (a buyer without an address, totals that
    do not add up); the message names every problem."""


class VatCategory(StrEnum):
    """EN 16931 VAT category codes (UNTDID 5305) the operator's invoices use."""

    STANDARD = "S"  # German VAT at VAT_RATE
    REVERSE_CHARGE = "AE"  # business customer in another EU country: the customer owes the VAT
    NOT_TAXABLE = "O"  # customer outside the EU: the service is not taxable in Germany
    SMALL_BUSINESS = "E"  # seller under § 19 UStG: no VAT charged

    @property
    def untaxed(self) -> bool:
        """No VAT is charged: rate 0, and the legend is the exemption reason (BT-120; BR-S-10 forbids one under S)."""
        return self in (VatCategory.REVERSE_CHARGE, VatCategory.NOT_TAXABLE, VatCategory.SMALL_BUSINESS)


class DocumentType(StrEnum):
    """What the document is (BT-3): the UNTDID 1001 codes EN 16931 and XRechnung (BR-DE-17) know."""

    COMMERCIAL_INVOICE = "380"
    CREDIT_NOTE = "381"  # takes back all (a cancellation) or part of a preceding invoice
    CORRECTED_INVOICE = "384"  # replaces a preceding invoice


@dataclass(frozen=True)
class DocumentTitle:
    """The heading of a document in each language its PDF is written in."""

    de: str
    en: str

    def text(self, language: str) -> str:
        """The English title for ``"en"``, else the German one (the PDF's own choice of language)."""
        return self.en if language == "en" else self.de


# Never "Gutschrift": under § 14 (2) UStG that is an invoice the buyer issues (self-billing), and a
# credit note called so could be read as one. German practice names a full cancellation
# "Stornorechnung" and a partial one "Rechnungskorrektur".
_TITLES = {
    (DocumentType.COMMERCIAL_INVOICE, False): DocumentTitle("Rechnung", "Invoice"),
    (DocumentType.CREDIT_NOTE, True): DocumentTitle("Stornorechnung", "Credit note"),
    (DocumentType.CREDIT_NOTE, False): DocumentTitle("Rechnungskorrektur", "Credit note"),
    (DocumentType.CORRECTED_INVOICE, False): DocumentTitle("Korrigierte Rechnung", "Corrected invoice"),
}


def document_title(document_type: DocumentType, *, cancels_in_full: bool = False) -> DocumentTitle:
    """The title of a document of ``document_type``; a credit note's depends on whether it cancels in full.

    ``cancels_in_full`` is a credit note's alone: for another type it is ignored (``einvoice_rules``
    refuses a document that sets it).
    """
    in_full = cancels_in_full and document_type is DocumentType.CREDIT_NOTE
    return _TITLES[(document_type, in_full)]


@dataclass(frozen=True)
class PrecedingInvoice:
    """An invoice the document refers to (BG-3): the one a credit note takes back or a correction replaces."""

    number: str  # BT-25: its invoice number
    issue_date: date  # BT-26


@dataclass(frozen=True)
class Party:
    """Seller or buyer: name, postal address, tax ids and how to reach them."""

    name: str
    street: str | None
    postal_code: str | None
    city: str | None
    country: str  # ISO 3166-1 alpha-2
    email: str | None = None
    vat_id: str | None = None  # USt-IdNr / EU VAT id
    tax_number: str | None = None  # Steuernummer (seller only, where there is no VAT id)
    contact_name: str | None = None  # seller contact (BG-6)
    contact_phone: str | None = None


@dataclass(frozen=True)
class EInvoiceLine:
    """One invoice line: what was supplied, for which period, its net amount and VAT category, a note."""

    line_id: str  # "1", "2", ...
    description: str
    net_amount: Decimal  # may be negative (a correction or a carried credit)
    period_start: date
    period_end: date  # inclusive
    category: VatCategory
    rate: Decimal  # percent, 0 outside STANDARD
    note: str | None = None  # BT-127: e.g. which earlier invoice a correction line corrects


@dataclass(frozen=True)
class VatBreakdown:
    """The VAT of one category and rate over the invoice (BG-23)."""

    category: VatCategory
    rate: Decimal
    taxable_amount: Decimal
    tax_amount: Decimal
    exemption_reason: str | None = None  # BT-120: the legend, required for AE, O, E


@dataclass(frozen=True)
class PaymentMeans:
    """How the invoice is collected: SEPA direct debit or card (BG-16)."""

    kind: str  # "sepa_debit" or "card"
    mandate_reference: str | None = None  # SEPA: BT-89
    creditor_id: str | None = None  # SEPA: BT-90, the seller's Gläubiger-ID
    debited_account: str | None = None  # SEPA: BT-91, the IBAN as far as it is known (masked)
    card_last4: str | None = None  # card: BT-87, last four digits only
    card_holder: str | None = None  # card: BT-88


@dataclass(frozen=True)
class EInvoice:
    """Everything the XRechnung and the ZUGFeRD PDF of one invoice say."""

    number: str  # Stripe's sequential invoice number (BT-1)
    document_type: DocumentType  # BT-3
    issue_date: date  # BT-2: the day it was finalized
    preceding: tuple[PrecedingInvoice, ...]  # BG-3: the credited invoice, or the one a period's true-up corrects
    currency: str  # ISO 4217, upper case
    language: str  # "de" or "en": the texts of the PDF
    buyer_reference: str  # BT-10: Leitweg-ID or order reference, else the account id
    seller: Party
    buyer: Party
    period_start: date  # BG-14, inclusive
    period_end: date
    lines: tuple[EInvoiceLine, ...]
    vat: tuple[VatBreakdown, ...]
    net_total: Decimal  # BT-106 = BT-109: sum of the line nets
    tax_total: Decimal  # BT-110
    gross_total: Decimal  # BT-112
    due_date: date | None  # BT-9
    payment_terms: str  # BT-20
    payment: PaymentMeans
    notes: tuple[str, ...] = ()  # BT-22: legends, the exchange rate used, the invoices referred to
    cancels_in_full: bool = False  # a credit note only: it takes back the whole preceding invoice
    # BT-113: a credit on the customer's balance (a credit note's) that Stripe deducted at finalization
    prepaid: Decimal = Decimal(0)

    @property
    def due_payable(self) -> Decimal:
        """BT-115 = BT-112 - BT-113 (BR-CO-16; no rounding amount)."""
        return self.gross_total - self.prepaid

    @property
    def title(self) -> DocumentTitle:
        """The document's title: "Rechnung" / "Invoice" for a commercial invoice."""
        return document_title(self.document_type, cancels_in_full=self.cancels_in_full)

    def has_category(self, category: VatCategory) -> bool:
        """Whether a VAT breakdown or a line is of ``category``."""
        return any(vat.category is category for vat in self.vat) or any(
            line.category is category for line in self.lines
        )
