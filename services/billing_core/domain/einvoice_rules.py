"""Whether an ``EInvoice`` may be written: what EN 16931 and XRechnung 3.0 require of its content.

The rules run before any file is written, so a refusal names every problem in words the operator
can act on (a buyer's postal code, the seller's contact) rather than as a failed Schematron rule.
Each check names the official rules it stands for. The writers in ``adapters/einvoice_*`` then only
put the fields where their syntax wants them.

Nothing is computed or rounded here either: the sums the file will carry must already hold.
"""

from __future__ import annotations

from decimal import Decimal

from billing_core.domain.einvoice import DocumentType, EInvoice, EInvoiceInvalid, PaymentMeans, VatCategory

_CENT = Decimal("0.01")
_ZERO = Decimal(0)
_CORRECTIONS = (DocumentType.CREDIT_NOTE, DocumentType.CORRECTED_INVOICE)


def check_einvoice(invoice: EInvoice) -> None:
    """Raise ``EInvoiceInvalid`` naming every problem ``einvoice_problems`` finds in ``invoice``."""
    problems = einvoice_problems(invoice)
    if problems:
        raise EInvoiceInvalid(f"invoice {invoice.number}: " + "; ".join(problems))


def einvoice_problems(invoice: EInvoice) -> list[str]:
    """What XRechnung requires that ``invoice`` lacks, or amounts that do not add up (empty: writable)."""
    problems = []
    seller, buyer = invoice.seller, invoice.buyer
    for party, role in ((seller, "seller"), (buyer, "buyer")):
        for field in ("postal_code", "city", "email"):  # BR-DE-3/4, BR-DE-8/9, PEPPOL R020/R010
            if not getattr(party, field):
                problems.append(f"the {role} has no {field}")
    for field in ("contact_name", "contact_phone"):  # BG-6: BR-DE-2, -5, -6
        if not getattr(seller, field):
            problems.append(f"the seller has no {field}")
    if not seller.vat_id and not seller.tax_number:  # BR-DE-16, BR-S-02, BR-CO-26
        problems.append("the seller has neither a VAT id nor a tax number")
    if not invoice.buyer_reference.strip():  # BR-DE-15
        problems.append("there is no buyer reference")
    if not invoice.lines:
        problems.append("there are no lines")
    if invoice.has_category(VatCategory.REVERSE_CHARGE):  # BR-AE-02: both VAT ids
        if not buyer.vat_id:
            problems.append("reverse charge without the buyer's VAT id")
        if not seller.vat_id:
            problems.append("reverse charge without the seller's VAT id")
    if invoice.has_category(VatCategory.NOT_TAXABLE) and len(invoice.vat) != 1:  # BR-O-11
        problems.append("category O cannot be combined with another VAT breakdown")
    problems += [
        f"the {vat.category} breakdown has no exemption reason"  # BR-AE-10, BR-O-10, BR-E-10
        for vat in invoice.vat
        if vat.category.untaxed and not vat.exemption_reason
    ]
    problems += _document_problems(invoice)
    problems += _payment_problems(invoice.payment)
    problems += _sum_problems(invoice)
    return problems


def _document_problems(invoice: EInvoice) -> list[str]:
    """The document type and its preceding invoices (BG-3): a correction says which invoice it corrects."""
    problems = [
        "a preceding invoice has no number"  # BR-55
        for preceding in invoice.preceding
        if not preceding.number.strip()
    ]
    # A credit note or corrected invoice stands in for an earlier invoice: without naming it, the
    # buyer cannot tell which one (XRechnung's BR-DE-26 asks it of a 384).
    if invoice.document_type in _CORRECTIONS and not invoice.preceding:
        problems.append(f"the {invoice.document_type} document names no preceding invoice")
    if invoice.cancels_in_full and invoice.document_type is not DocumentType.CREDIT_NOTE:
        problems.append("only a credit note cancels an invoice in full")
    return problems


def _payment_problems(payment: PaymentMeans) -> list[str]:
    """BG-16 as XRechnung wants it for the two ways the operator collects."""
    if payment.kind == "sepa_debit":  # BR-DE-25-a, BR-DE-30, BR-DE-31, PEPPOL R061
        return [
            f"the SEPA direct debit has no {field}"
            for field in ("mandate_reference", "creditor_id", "debited_account")
            if not getattr(payment, field)
        ]
    if payment.kind == "card":  # BR-DE-24-a
        return [] if payment.card_last4 else ["the card payment has no card_last4"]
    return [f"unknown payment kind {payment.kind!r}"]


def _sum_problems(invoice: EInvoice) -> list[str]:
    """BR-CO-10/13/14/15 and the breakdown's BR-x-08: the file carries the sums, so they must hold."""
    amounts = [line.net_amount for line in invoice.lines] + [invoice.net_total, invoice.tax_total, invoice.gross_total]
    amounts += [amount for vat in invoice.vat for amount in (vat.taxable_amount, vat.tax_amount)]
    if any(not amount.is_finite() or amount != amount.quantize(_CENT) for amount in amounts):
        return ["an amount is not a whole number of cents"]
    problems = []
    if sum((line.net_amount for line in invoice.lines), _ZERO) != invoice.net_total:
        problems.append("the lines do not sum to the net total")
    for vat in invoice.vat:
        lines = sum(
            (line.net_amount for line in invoice.lines if line.category is vat.category and line.rate == vat.rate),
            _ZERO,
        )
        if lines != vat.taxable_amount:
            problems.append(f"the {vat.category} {vat.rate} % lines do not sum to its taxable amount")
    if {(line.category, line.rate) for line in invoice.lines} - {(vat.category, vat.rate) for vat in invoice.vat}:
        problems.append("a line's VAT category and rate has no VAT breakdown")
    if sum((vat.tax_amount for vat in invoice.vat), _ZERO) != invoice.tax_total:
        problems.append("the VAT breakdown does not sum to the tax total")
    if invoice.net_total + invoice.tax_total != invoice.gross_total:
        problems.append("net total + tax total is not the gross total")
    prepaid = invoice.prepaid
    if not _ZERO <= prepaid <= max(invoice.gross_total, _ZERO) or prepaid != prepaid.quantize(_CENT):
        problems.append("the prepaid amount is not whole cents between 0.00 and the gross total")
    return problems
