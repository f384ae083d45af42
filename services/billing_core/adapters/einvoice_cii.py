"""The XRechnung 3.0 of an ``EInvoice``: UN/CEFACT CII built with drafthorse, checked against the EN 16931 XSD.

Every field XRechnung asks for beyond EN 16931 is written (see ``shared/einvoice/README.md``): the
specification id (BT-24), Peppol's business process (BT-23), the buyer reference (BT-10), the seller
contact (BG-6), e-mail addresses as electronic addresses (BT-34, BT-49) and the payment instructions
(BG-16). Rules of EN 16931 that shape the document:

- O (not subject to VAT): no VAT rate on a line (BR-O-05), and neither the seller's nor the buyer's
  VAT id (BR-O-02). The seller is then identified by BT-29 instead (BR-CO-26 wants BT-29, BT-30 or
  BT-31): its tax number, else its VAT id as a plain identifier. The header still carries rate 0,
  which XRechnung requires of every VAT breakdown (BR-DE-14).
- AE (reverse charge): rate 0, the legend as exemption reason (BR-AE-10) and the buyer's VAT id (BR-AE-02).
- E (§ 19 UStG): rate 0 and the legend as exemption reason (BR-E-10).
- A negative line (a correction, a carried credit) is quantity -1 at a positive price: an item's net
  price is never negative (BR-27).
- A due date is written when there is one; the payment terms text always is (BR-CO-25 asks for one
  of them while an amount is due).
- The type code (BT-3) is the document's; its preceding invoice (BG-3) follows the monetary summation,
  where the CII schema puts it. CII D16B has room for one: a document naming more is refused.

Nothing is computed here: the file repeats the invoice's amounts. What the document must hold to be
written is ``domain/einvoice_rules.py``; the writer checks it once more and refuses an invoice those
rules refuse with ``EInvoiceInvalid``, and a file the XSD refuses with ``EInvoiceRejected``.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

# drafthorse validates only when lxml imports, and otherwise just logs a warning: importing it here
# makes a missing lxml an import error instead of an unchecked file.
import lxml.etree
from drafthorse.models.accounting import ApplicableTradeTax
from drafthorse.models.document import Document
from drafthorse.models.note import IncludedNote
from drafthorse.models.party import TaxRegistration
from drafthorse.models.payment import PaymentMeans as CiiPaymentMeans
from drafthorse.models.payment import PaymentTerms
from drafthorse.models.tradelines import LineItem

from billing_core.domain.einvoice import (
    EInvoice,
    EInvoiceInvalid,
    EInvoiceLine,
    Party,
    VatBreakdown,
    VatCategory,
)
from billing_core.domain.einvoice_rules import check_einvoice

XRECHNUNG_3_0 = "urn:cen.eu:en16931:2017#compliant#urn:xeinkauf.de:kosit:xrechnung_3.0"  # BT-24
PEPPOL_BILLING = "urn:fdc:peppol.eu:2017:poacc:billing:01:1.0"  # BT-23
XSD = "FACTUR-X_EN16931"  # drafthorse's bundled Factur-X 1.0.07 EN 16931 schema
SEPA_DIRECT_DEBIT = "59"
PAYMENT_CARD = "48"  # bank card: Stripe does not tell a credit from a debit card here
ONE = "C62"  # unit code "one"

_CENT = Decimal("0.01")
_ZERO = Decimal(0)


class EInvoiceRejected(EInvoiceInvalid):
    """The invoice cannot be written as an XRechnung CII: the syntax has no room for it, or the XSD refused it."""


def xrechnung_xml(invoice: EInvoice) -> bytes:
    """The XRechnung 3.0 CII document of ``invoice``, UTF-8, after drafthorse's EN 16931 XSD check."""
    check_einvoice(invoice)  # whoever calls: no file the domain's rules refuse
    if len(invoice.preceding) > 1:
        raise EInvoiceRejected(f"invoice {invoice.number}: CII has room for one preceding invoice (BG-3)")
    doc = Document()
    doc.context.guideline_parameter.id = XRECHNUNG_3_0
    doc.context.business_parameter.id = PEPPOL_BILLING
    # doc.header.name (ram:Name) exists only in the EXTENDED schema: left unset.
    doc.header.id = invoice.number
    doc.header.type_code = invoice.document_type.value
    doc.header.issue_date_time = invoice.issue_date
    for note in invoice.notes:
        doc.header.notes.add(IncludedNote(content=note))

    not_taxable = invoice.has_category(VatCategory.NOT_TAXABLE)
    agreement = doc.trade.agreement
    agreement.buyer_reference = invoice.buyer_reference
    _seller(agreement.seller, invoice.seller, not_taxable)
    _buyer(agreement.buyer, invoice.buyer, not_taxable)

    for line in invoice.lines:
        doc.trade.items.add(_line(line))

    settlement = doc.trade.settlement
    settlement.currency_code = invoice.currency
    _payment(settlement, invoice)
    for vat in invoice.vat:
        settlement.trade_tax.add(_breakdown(vat))
    settlement.period.start = invoice.period_start
    settlement.period.end = invoice.period_end

    totals = settlement.monetary_summation
    totals.line_total = _amount(invoice.net_total)
    totals.charge_total = _amount(_ZERO)
    totals.allowance_total = _amount(_ZERO)
    totals.tax_basis_total = _amount(invoice.net_total)
    totals.tax_total = (_amount(invoice.tax_total), invoice.currency)
    totals.grand_total = _amount(invoice.gross_total)
    if invoice.prepaid:
        totals.prepaid_total = _amount(invoice.prepaid)  # BT-113
    totals.due_amount = _amount(invoice.due_payable)  # BT-115
    if invoice.preceding:  # BG-3; drafthorse writes it after the summation, where the schema wants it
        preceding, reference = invoice.preceding[0], settlement.invoice_referenced_document
        reference.issuer_assigned_id = preceding.number  # BT-25
        reference.issue_date_time = preceding.issue_date  # BT-26: qdt:DateTimeString, format 102
    try:
        xml: bytes = doc.serialize(schema=XSD)
    except lxml.etree.XMLSyntaxError as exc:
        raise EInvoiceRejected(f"invoice {invoice.number}: the EN 16931 XSD refused the XRechnung: {exc}") from exc
    return xml


def _seller(cii: Any, seller: Party, not_taxable: bool) -> None:
    _party(cii, seller)
    contact = cii.contact
    contact.person_name = seller.contact_name
    contact.telephone.number = seller.contact_phone
    contact.email.address = seller.email
    # BR-O-02: no VAT id under O. A tax number is a tax registration (FC), not a VAT id, so it stays.
    vat_id = None if not_taxable else seller.vat_id
    if vat_id:
        cii.tax_registrations.add(TaxRegistration(id=("VA", vat_id)))
    if seller.tax_number:
        cii.tax_registrations.add(TaxRegistration(id=("FC", seller.tax_number)))
    if not vat_id:
        # BR-CO-26: without a VAT id in the file the buyer identifies the seller by BT-29.
        cii.id = seller.tax_number or seller.vat_id


def _buyer(cii: Any, buyer: Party, not_taxable: bool) -> None:
    _party(cii, buyer)
    if buyer.vat_id and not not_taxable:  # BR-O-02: no buyer VAT id under O
        cii.tax_registrations.add(TaxRegistration(id=("VA", buyer.vat_id)))


def _party(cii: Any, party: Party) -> None:
    cii.name = party.name
    address = cii.address
    if party.street:
        address.line_one = party.street
    address.postcode = party.postal_code
    address.city_name = party.city
    address.country_id = party.country.upper()
    cii.electronic_address.uri_ID = ("EM", party.email)


def _line(line: EInvoiceLine) -> Any:
    item = LineItem()
    item.document.line_id = line.line_id
    if line.note:  # BT-127: CII has room for one note per line (CII-SR-039)
        item.document.notes.add(IncludedNote(content=line.note))
    item.product.name = line.description
    # BR-27: a net price is never negative, so a credit is a negative quantity at a positive price.
    quantity = Decimal(-1) if line.net_amount < 0 else Decimal(1)
    item.agreement.net.amount = _amount(abs(line.net_amount))
    item.delivery.billed_quantity = (quantity, ONE)
    tax = item.settlement.trade_tax
    tax.type_code = "VAT"
    tax.category_code = str(line.category)
    if line.category is not VatCategory.NOT_TAXABLE:  # BR-O-05: no rate at all under O
        tax.rate_applicable_percent = _rate(line.rate)
    item.settlement.period.start = line.period_start
    item.settlement.period.end = line.period_end
    item.settlement.monetary_summation.total_amount = _amount(line.net_amount)
    return item


def _breakdown(vat: VatBreakdown) -> Any:
    tax = ApplicableTradeTax()
    tax.calculated_amount = _amount(vat.tax_amount)
    tax.type_code = "VAT"
    if vat.category.untaxed:
        tax.exemption_reason = vat.exemption_reason  # BT-120; BR-S-10 forbids one under S
    tax.basis_amount = _amount(vat.taxable_amount)
    tax.category_code = str(vat.category)
    tax.rate_applicable_percent = _rate(vat.rate)  # BR-DE-14: every breakdown names its rate, 0 under O too
    return tax


def _payment(settlement: Any, invoice: EInvoice) -> None:
    payment = invoice.payment
    means = CiiPaymentMeans()
    terms = PaymentTerms()
    terms.description = invoice.payment_terms  # BT-20
    if invoice.due_date is not None:
        terms.due = invoice.due_date  # BT-9
    if payment.kind == "sepa_debit":
        means.type_code = SEPA_DIRECT_DEBIT
        means.payer_account.iban = payment.debited_account  # BT-91
        settlement.creditor_reference_id = payment.creditor_id  # BT-90
        terms.debit_mandate_id = payment.mandate_reference  # BT-89
    else:
        means.type_code = PAYMENT_CARD
        means.financial_card.id = payment.card_last4  # BT-87: never more than the last digits
        if payment.card_holder:
            means.financial_card.cardholder_name = payment.card_holder  # BT-88
    settlement.payment_means.add(means)
    settlement.terms.add(terms)


def _amount(value: Decimal) -> Decimal:
    """``value`` with exactly two decimals and no negative zero (checked to be whole cents already)."""
    return value.quantize(_CENT) + _ZERO


def _rate(rate: Decimal) -> Decimal:
    return rate.quantize(_CENT) + _ZERO
