"""The e-invoice of every finalized invoice and credit note: an XRechnung and a ZUGFeRD PDF, written once,
kept, downloadable.

The files repeat the finalized invoice (Stripe's number, the record's checked amounts); they are
written after finalization by the invoice job, resumed like every other step: a file that is there
already is not written again, and the record names both files once both exist. A credit note's
files are written the same way under keys of their own; whoever issues the credit note keeps the
keys on it.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from billing_core.domain.corrections import month_text
from billing_core.domain.costs import Period
from billing_core.domain.credit_notes import CreditNote, Settlement
from billing_core.domain.customer_balance import MINIMUM_CHARGE
from billing_core.domain.einvoice import (
    DocumentType,
    EInvoice,
    EInvoiceInvalid,
    EInvoiceLine,
    Party,
    PaymentMeans,
    PrecedingInvoice,
    VatBreakdown,
    VatCategory,
    document_title,
)
from billing_core.domain.einvoice_rules import check_einvoice
from billing_core.domain.money import amount_text
from billing_core.domain.records import Account, Invoice
from billing_core.domain.seller import Seller
from billing_core.errors import BillingError
from billing_core.ports import CreditNoteRepository, DocumentStore, EInvoiceWriter, InvoiceRepository
from billing_core.use_cases.invoice_records import (
    CorrectionCredit,
    correction_credits,
    record_line_items,
    standing_invoice,
)

log = logging.getLogger(__name__)

FORMATS = {"xrechnung": ("xml", "application/xml"), "zugferd": ("pdf", "application/pdf")}
_BERLIN = ZoneInfo("Europe/Berlin")  # the invoice date is the seller's calendar day

_PAYMENT_TERMS = {
    "sepa_debit": {
        "de": "Der Rechnungsbetrag wird per SEPA-Lastschrift eingezogen.",
        "en": "The amount is collected by SEPA direct debit.",
    },
    "card": {
        "de": "Der Rechnungsbetrag wird von Ihrer hinterlegten Karte abgebucht.",
        "en": "The amount is charged to your card on file.",
    },
}


# BT-20 of a credit note: where the money it takes back goes (``Settlement``), never a payment asked for.
_SETTLEMENT_TERMS = {
    Settlement.PRE_PAYMENT: {
        "de": "Der offene Betrag der Rechnung {invoice} vermindert sich um diesen Betrag.",
        "en": "The amount due on invoice {invoice} is reduced by this amount.",
    },
    Settlement.REFUND: {
        "de": "Der Betrag wird auf das ursprüngliche Zahlungsmittel erstattet.",
        "en": "The amount is refunded to the original payment method.",
    },
    Settlement.BALANCE: {
        "de": "Der Betrag wird Ihrem Kundenkonto als Guthaben angerechnet und von der nächsten Rechnung abgezogen.",
        "en": "The amount is credited to your customer balance and taken off your next invoice.",
    },
    Settlement.OUT_OF_BAND: {
        "de": "Der Betrag wird gesondert ausgeglichen.",
        "en": "The amount is settled separately.",
    },
}
# A true-up line's note (BT-127) and, where it corrects several invoices, the document's note (BT-22).
_CORRECTION_TEXTS = {
    "de": {
        "line": "Korrektur zu Rechnung {invoice}",
        "document": "Diese Rechnung korrigiert die Rechnungen {invoices}.",
    },
    "en": {"line": "Correction of invoice {invoice}", "document": "This invoice corrects the invoices {invoices}."},
}
# BT-20 of an invoice nothing is charged for now: too small to charge, or paid by a credit.
_BALANCE_TERMS = {
    "next": {
        "de": "Der Rechnungsbetrag wird mit der nächsten Rechnung eingezogen.",
        "en": "The amount is collected with the next invoice.",
    },
    "credit": {
        "de": "Der Rechnungsbetrag ist mit Ihrem Guthaben verrechnet; es wird nichts abgebucht.",
        "en": "The amount is paid from your credit balance; nothing is charged.",
    },
}
# BT-22 of an invoice that moved the customer's balance at Stripe (``domain.customer_balance``).
_BALANCE_TEXTS = {
    "de": {
        "carried": "Der Betrag liegt unter dem Mindestbetrag einer Abbuchung ({minimum}); er wird nicht "
        "abgebucht, sondern mit der nächsten Rechnung eingezogen.",
        "collected": "Mit dieser Rechnung wird zusätzlich der offene Betrag von {amount} aus einer früheren "
        "Rechnung eingezogen (unter dem Mindestbetrag einer Abbuchung); abgebucht werden {due}.",
        "deducted": "Ein Guthaben von {amount} aus einer Rechnungskorrektur ist verrechnet; zu zahlen: {due}.",
    },
    "en": {
        "carried": "The amount is below the minimum for a charge ({minimum}); it is not charged now but "
        "collected with the next invoice.",
        "collected": "This invoice also collects the open amount of {amount} of an earlier invoice (below the "
        "minimum for a charge); {due} is charged.",
        "deducted": "A credit of {amount} from a credit note is deducted; amount due: {due}.",
    },
}
# BT-22 of an invoice whose downward corrections credit notes settled (Stripe Tax: no negative lines);
# never "Gutschrift", which § 14 (2) UStG reserves for self-billing.
_SETTLED_TEXTS = {
    "de": {
        "one": "Die Korrektur für {month} ist mit der Rechnungskorrektur {notes} ausgeglichen.",
        "several": "Die Korrektur für {month} ist mit den Rechnungskorrekturen {notes} ausgeglichen.",
        "note": "{note} zu Rechnung {invoice}",
    },
    "en": {
        "one": "The correction of {month} is settled by credit note {notes}.",
        "several": "The correction of {month} is settled by credit notes {notes}.",
        "note": "{note} on invoice {invoice}",
    },
}
# BT-22 of a credit note: which invoice it corrects (§ 31 (5) UStDV asks it be named) and why.
_CREDIT_NOTE_TEXTS = {
    "de": {"refers": "Bezieht sich auf Rechnung {number} vom {day}.", "reason": "Grund: {reason}"},
    "en": {"refers": "Refers to invoice {number} of {day}.", "reason": "Reason: {reason}"},
}


class EInvoiceNotReady(BillingError):
    """The invoice is not finalized yet, or carries no VAT treatment to write an e-invoice of (or the
    credit note is not issued yet)."""


@dataclass(frozen=True)
class EInvoiceFile:
    """One stored e-invoice file, ready to download."""

    body: bytes
    content_type: str
    file_name: str


def issue_date(record: Invoice) -> date | None:
    """The invoice date of a finalized record, on the seller's calendar."""
    if not record.stripe.finalized_at:
        return None
    return _berlin_day(record.stripe.finalized_at)


def einvoice_of(
    record: Invoice,
    account: Account,
    seller: Seller,
    language: str,
    *,
    corrected: Sequence[Invoice] = (),
    settled: Sequence[CorrectionCredit] = (),
) -> EInvoice:
    """The e-invoice of a finalized ``record`` for ``account``, sold by ``seller``.

    Every record is a period's invoice: a commercial invoice (380). Its correction lines (true-up)
    name the earlier invoice they correct where ``corrected`` holds it finalized: in the line's note
    (BT-127) and, for a single corrected invoice, as the preceding invoice (BG-3). A correction a credit
    note settled instead (``settled``) is no line: a document note (BT-22) names the credit note.
    """
    if not record.stripe.number or not record.stripe.finalized_at or record.vat is None:
        raise EInvoiceNotReady(f"{record.invoice_id} is not finalized with a VAT treatment yet")
    category, rate = VatCategory(record.vat.category), record.vat.rate
    legend = record.vat.note
    start, end = record.period.start, _last_day(record.period)
    references = _corrected_references(record, corrected)
    texts = _CORRECTION_TEXTS[_text_language(language)]
    lines = tuple(
        EInvoiceLine(
            str(number),
            description,
            amount,
            start,
            end,
            category,
            rate,
            note=_named(texts["line"], references[kind], language) if kind in references else None,
        )
        for number, (kind, amount, description) in enumerate(record_line_items(record), start=1)
    )
    named = list(dict.fromkeys(references.values()))  # each corrected invoice once, in line order
    # EN 16931 allows any number of preceding invoices (BG-3, 0..n), but the CII D16B schema has room
    # for one: HeaderTradeSettlementType holds one InvoiceReferencedDocument (minOccurs 0, maxOccurs 1),
    # and the line's own one is not for this (CII-SR-210: "should not be present"). So BG-3 names the
    # corrected invoice when there is one; with several, the line notes and a document note name each.
    preceding = tuple(named) if len(named) == 1 else ()
    several = _named_all(texts["document"], named, language) if len(named) > 1 else None
    issued = issue_date(record) or date.today()
    conversion = record.conversion.note if record.conversion else None
    notes = tuple(
        note
        for note in (legend, conversion, several, _balance_note(record, language), *_settled_notes(settled, language))
        if note
    )
    return EInvoice(
        number=record.stripe.number,
        document_type=DocumentType.COMMERCIAL_INVOICE,
        issue_date=issued,
        preceding=preceding,
        currency=record.currency.upper(),
        language=language,
        buyer_reference=_buyer_reference(account),
        seller=_seller_party(seller),
        buyer=_buyer_party(account, seller),
        period_start=start,
        period_end=end,
        lines=lines,
        vat=(VatBreakdown(category, rate, record.net, record.tax, legend),),
        net_total=record.net,
        tax_total=record.tax,
        gross_total=record.amount,
        due_date=issued if record.amount > Decimal(0) else None,
        payment_terms=_payment_terms(record, account, language),
        payment=_payment_means(account, seller),
        notes=notes,
        # A credit on the balance Stripe deducted is prepaid (BT-113); an amount owed it added is a note.
        prepaid=max(-record.payment.balance_applied, Decimal(0)),
    )


def _payment_terms(record: Invoice, account: Account, language: str) -> str:
    """BT-20: how the amount is paid: charged, collected with the next invoice, or paid by a credit."""
    text_language = _text_language(language)
    if record.payment.carried_to_balance:
        return _BALANCE_TERMS["next"][text_language]
    if record.amount > 0 and record.amount_due <= 0:
        return _BALANCE_TERMS["credit"][text_language]
    return _PAYMENT_TERMS[_payment_kind(account)][text_language]


def _balance_note(record: Invoice, language: str) -> str | None:
    """What Stripe did with the customer's balance on this invoice, as the invoice says it (or ``None``)."""
    texts, currency = _BALANCE_TEXTS[_text_language(language)], record.currency
    applied, carried = record.payment.balance_applied, record.payment.carried_to_balance
    if carried:
        minimum = MINIMUM_CHARGE.get(currency.upper(), Decimal(0))
        return texts["carried"].format(minimum=amount_text(minimum, currency, language))
    due = amount_text(record.amount_due, currency, language)
    if applied > 0:
        return texts["collected"].format(amount=amount_text(applied, currency, language), due=due)
    if applied < 0:
        return texts["deducted"].format(amount=amount_text(-applied, currency, language), due=due)
    return None


def _corrected_references(record: Invoice, corrected: Sequence[Invoice]) -> dict[str, PrecedingInvoice]:
    """Per correction line (its kind, ``correction:<YYYY-MM>``), the finalized invoice of that month it corrects."""
    by_month = {
        earlier.period: PrecedingInvoice(earlier.stripe.number, day)
        for earlier in corrected
        if earlier.account_id == record.account_id and earlier.stripe.number and (day := issue_date(earlier))
    }
    return {
        f"correction:{correction.period.label}": by_month[correction.period]
        for correction in record.true_up.line_corrections
        if correction.period in by_month
    }


def _settled_notes(settled: Sequence[CorrectionCredit], language: str) -> list[str]:
    """One note per correction a credit note settled: which credit notes, on which invoices."""
    texts = _SETTLED_TEXTS[_text_language(language)]
    by_month: dict[Period, list[str]] = {}
    for credit in settled:
        day = issue_date(credit.invoice)
        if not credit.note.number or not credit.invoice.stripe.number or day is None:
            continue
        invoice = _invoice_text(PrecedingInvoice(credit.invoice.stripe.number, day), language)
        by_month.setdefault(credit.correction.period, []).append(
            texts["note"].format(note=credit.note.number, invoice=invoice)
        )
    return [
        texts["one" if len(parts) == 1 else "several"].format(
            month=month_text(month, _text_language(language)), notes=_joined(parts, language)
        )
        for month, parts in by_month.items()
    ]


def _joined(parts: Sequence[str], language: str) -> str:
    """``a``, ``a und b``, ``a, b und c`` (``and`` in English)."""
    conjunction = " and " if language == "en" else " und "
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + conjunction + parts[-1]


def _named(text: str, invoice: PrecedingInvoice, language: str) -> str:
    return text.format(invoice=_invoice_text(invoice, language))


def _named_all(text: str, invoices: Sequence[PrecedingInvoice], language: str) -> str:
    named = [_invoice_text(invoice, language) for invoice in invoices]
    conjunction = " and " if language == "en" else " und "
    return text.format(invoices=", ".join(named[:-1]) + conjunction + named[-1])


def _invoice_text(invoice: PrecedingInvoice, language: str) -> str:
    """``INV-1 vom 01.10.2026`` / ``INV-1 of 2026-10-01``."""
    of = "of" if language == "en" else "vom"
    return f"{invoice.number} {of} {_day_text(invoice.issue_date, language)}"


def credit_note_einvoice_of(
    note: CreditNote, record: Invoice, account: Account, seller: Seller, language: str
) -> EInvoice:
    """The e-invoice of the issued credit ``note`` of the invoice ``record``: a credit note (381) naming it in BG-3.

    Its amounts are positive: EN 16931 writes what a credit note takes back as positive amounts, the
    type code says they are taken back (negative ones would charge them again). Each line is a credited
    line with its own period and the invoice's VAT category and rate; the VAT breakdown takes back the
    note's tax. The document's period spans its lines' (PEPPOL-EN16931-R110/R111 want every line's
    period inside it; a correction line's is an earlier month). Nothing is due: the payment terms say
    where the money goes.
    """
    if not note.number or not note.issued_at:
        raise EInvoiceNotReady(f"credit note {note.credit_note_id} is not issued at Stripe yet (no number or date)")
    if note.invoice_id != record.invoice_id:
        raise ValueError(f"credit note {note.credit_note_id} credits {note.invoice_id}, not {record.invoice_id}")
    invoiced = issue_date(record)
    if not record.stripe.number or invoiced is None:
        raise EInvoiceNotReady(f"{record.invoice_id}, which {note.credit_note_id} credits, is not finalized")
    preceding = PrecedingInvoice(record.stripe.number, invoiced)
    category, rate, legend = VatCategory(note.vat.category), note.vat.rate, note.vat.note
    lines = tuple(
        EInvoiceLine(str(number), line.description, line.net, line.period.start, _last_day(line.period), category, rate)
        for number, line in enumerate(note.lines, start=1)
    )
    periods = [line.period for line in note.lines] or [record.period]
    texts = _CREDIT_NOTE_TEXTS[_text_language(language)]
    refers = texts["refers"].format(number=preceding.number, day=_day_text(preceding.issue_date, language))
    reason = texts["reason"].format(reason=note.reason.strip())
    terms = _SETTLEMENT_TERMS[note.settlement][_text_language(language)].format(invoice=preceding.number)
    return EInvoice(
        number=note.number,
        document_type=DocumentType.CREDIT_NOTE,
        issue_date=_berlin_day(note.issued_at),
        preceding=(preceding,),
        currency=note.currency.upper(),
        language=language,
        buyer_reference=_buyer_reference(account),
        seller=_seller_party(seller),
        buyer=_buyer_party(account, seller),
        period_start=min(period.start for period in periods),
        period_end=max(_last_day(period) for period in periods),
        lines=lines,
        vat=(VatBreakdown(category, rate, note.net, note.tax, legend),),
        net_total=note.net,
        tax_total=note.tax,
        gross_total=note.gross,
        due_date=None,  # the buyer owes nothing
        payment_terms=terms,
        payment=_payment_means(account, seller),
        notes=tuple(text for text in (refers, reason, legend) if text),
        cancels_in_full=note.full,
    )


def _day_text(day: date, language: str) -> str:
    """A date in a note: 01.12.2026 in German, ISO 8601 in English (as the exchange-rate note writes it)."""
    return day.isoformat() if language == "en" else day.strftime("%d.%m.%Y")


def _berlin_day(epoch_ms: int) -> date:
    return datetime.fromtimestamp(epoch_ms / 1000, UTC).astimezone(_BERLIN).date()


def _last_day(period: Period) -> date:
    return period.end - timedelta(days=1)  # Period.end is exclusive, an e-invoice's period end inclusive


def _text_language(language: str) -> str:
    return language if language in ("de", "en") else "de"


def _buyer_reference(account: Account) -> str:
    return account.buyer_reference or account.account_id


def _seller_party(seller: Seller) -> Party:
    """The seller as every e-invoice names it (BG-4, its contact BG-6)."""
    return Party(
        name=_required(seller.name, "SELLER_NAME"),
        street=seller.street,
        postal_code=seller.postal_code,
        city=seller.city,
        country=_required(seller.country, "SELLER_COUNTRY").upper(),
        email=seller.contact_email,
        vat_id=seller.vat_id,
        tax_number=seller.tax_number,
        contact_name=seller.contact_name,
        contact_phone=seller.contact_phone,
    )


def _buyer_party(account: Account, seller: Seller) -> Party:
    """The account as the buyer (BG-7): its name, else its e-mail, else its id; its country, else the seller's."""
    address = account.address
    return Party(
        name=account.name or account.email or account.account_id,
        street=address.line1 if address else None,
        postal_code=address.postal_code if address else None,
        city=address.city if address else None,
        country=(account.country or seller.country or "DE").upper(),
        email=account.email,
        vat_id=account.vat_id,
    )


def _payment_kind(account: Account) -> str:
    method = account.payment_method
    return "sepa_debit" if method is not None and method.type == "sepa_debit" else "card"


def _payment_means(account: Account, seller: Seller) -> PaymentMeans:
    method = account.payment_method
    last4 = (method.last4 if method else None) or "0000"
    if _payment_kind(account) == "sepa_debit":
        assert method is not None
        # Stripe keeps the mandate; its payment method id is the reference the customer's mandate has here.
        return PaymentMeans(
            "sepa_debit",
            mandate_reference=method.id,
            creditor_id=seller.sepa_creditor_id,
            debited_account=f"****{last4}",
        )
    return PaymentMeans("card", card_last4=last4, card_holder=account.name or account.email or account.account_id)


def _required(value: str | None, setting: str) -> str:
    if not value:
        raise EInvoiceNotReady(f"the e-invoice needs {setting}")
    return value


def object_key(record: Invoice, format_name: str) -> str:
    """Where a file of ``record`` is stored: ``einvoices/<YYYY-MM>/<userId>/<number>.<ext>``."""
    extension = FORMATS[format_name][0]
    return f"einvoices/{record.period.label}/{record.account_id}/{record.stripe.number}.{extension}"


def credit_note_object_key(note: CreditNote, record: Invoice, format_name: str) -> str:
    """Where a file of the credit ``note`` of ``record`` is stored:
    ``einvoices/<YYYY-MM>/<userId>/credit-notes/<number>.<ext>``.

    Beside the credited invoice's files (under the prefix the services may write), one folder deeper:
    a document number has no ``/``, so no credit note's key is ever an invoice's.
    """
    extension = FORMATS[format_name][0]
    return f"einvoices/{record.period.label}/{record.account_id}/credit-notes/{note.number}.{extension}"


def _written(writer: EInvoiceWriter, invoice: EInvoice) -> tuple[bytes, bytes]:
    """Both files of ``invoice``, once the domain's rules accept it (``EInvoiceInvalid`` naming every problem)."""
    check_einvoice(invoice)
    xml = writer.xrechnung(invoice)
    return xml, writer.zugferd(invoice, xml)


def _stored(documents: DocumentStore, xml_key: str, xml: bytes, pdf_key: str, pdf: bytes) -> tuple[bool, bool]:
    """Store both files unless there already; whether each was written."""
    return (
        documents.put_once(xml_key, xml, FORMATS["xrechnung"][1]),
        documents.put_once(pdf_key, pdf, FORMATS["zugferd"][1]),
    )


class EInvoices:
    """Writes each finalized invoice's e-invoice files once and serves them."""

    def __init__(
        self,
        *,
        invoices: InvoiceRepository,
        documents: DocumentStore,
        writer: EInvoiceWriter,
        seller: Seller,
        language: str = "de",
        credit_notes: CreditNoteRepository | None = None,
    ) -> None:
        self._invoices = invoices
        self._credit_notes = credit_notes  # to name the credit notes settling corrections (Stripe Tax)
        self._documents = documents
        self._writer = writer
        self._seller = seller
        self._language = language

    def issue(self, record: Invoice, account: Account, *, now_ms: int) -> Invoice:
        """Write both files of the finalized ``record`` (skipping any already stored); the record names them."""
        if record.einvoice.xml and record.einvoice.pdf:
            return record
        try:
            language = account.language or self._language
            invoice = einvoice_of(
                record,
                account,
                self._seller,
                language,
                corrected=self._corrected(record),
                settled=self._settled(record),
            )
            xml, pdf = _written(self._writer, invoice)
        except (EInvoiceInvalid, EInvoiceNotReady) as problem:
            # The invoice is finalized and charged: the job goes on, the record says what is missing, and
            # the next run of the invoice (``billing run --account``) writes the files once it is fixed.
            log.error("e-invoice not written", extra={"invoiceId": record.invoice_id, "reason": str(problem)})
            return self._invoices.update(
                record.account_id, record.invoice_id, {"einvoice_error": str(problem), "updated_at": now_ms}
            )
        xml_key, pdf_key = object_key(record, "xrechnung"), object_key(record, "zugferd")
        wrote_xml, wrote_pdf = _stored(self._documents, xml_key, xml, pdf_key, pdf)
        log.info(
            "e-invoice stored",
            extra={
                "invoiceId": record.invoice_id,
                "number": record.stripe.number,
                "wroteXml": wrote_xml,
                "wrotePdf": wrote_pdf,
            },
        )
        return self._invoices.update(
            record.account_id,
            record.invoice_id,
            {"einvoice_xml": xml_key, "einvoice_pdf": pdf_key, "einvoice_error": None, "updated_at": now_ms},
        )

    def _settled(self, record: Invoice) -> list[CorrectionCredit]:
        """The credit notes that settle ``record``'s corrections by credit note."""
        if self._credit_notes is None or not record.true_up.credit_note_corrections:
            return []
        return correction_credits(self._invoices, self._credit_notes, record)

    def _corrected(self, record: Invoice) -> list[Invoice]:
        """The earlier invoices ``record``'s correction lines correct, as far as they are stored and finalized."""
        found = []
        for correction in record.true_up.line_corrections:
            earlier = standing_invoice(self._invoices, record.account_id, correction.period)
            if earlier is None or issue_date(earlier) is None or not earlier.stripe.number:
                # The line still says which month it corrects; only the invoice's number is missing.
                log.warning(
                    "corrected invoice not found or not finalized",
                    extra={"invoiceId": record.invoice_id, "corrects": correction.period.label},
                )
                continue
            found.append(earlier)
        return found


@dataclass(frozen=True)
class CreditNoteFiles:
    """Where both e-invoice files of a credit note are stored (the credit note's ``einvoice_xml`` / ``_pdf``)."""

    xml_key: str
    pdf_key: str


@dataclass(frozen=True)
class CreditNoteEInvoiceRefused:
    """Why a credit note's e-invoice cannot be written yet (its ``einvoice_error``), in words the operator acts on."""

    problem: str


class CreditNoteEInvoices:
    """Writes each issued credit note's e-invoice files once; the caller keeps the keys on the credit note."""

    def __init__(
        self,
        *,
        documents: DocumentStore,
        writer: EInvoiceWriter,
        seller: Seller,
        language: str = "de",
    ) -> None:
        self._documents = documents
        self._writer = writer
        self._seller = seller
        self._language = language

    def issue(self, note: CreditNote, record: Invoice, account: Account) -> CreditNoteFiles | CreditNoteEInvoiceRefused:
        """Write both files of the issued ``note`` of ``record`` (skipping any already stored): their keys, or
        why they cannot be written. Nothing is written to a repository here."""
        if note.einvoice_xml and note.einvoice_pdf:
            return CreditNoteFiles(note.einvoice_xml, note.einvoice_pdf)
        try:
            einvoice = credit_note_einvoice_of(note, record, account, self._seller, account.language or self._language)
            xml, pdf = _written(self._writer, einvoice)
        except (EInvoiceInvalid, EInvoiceNotReady) as problem:
            # The credit note stands at Stripe either way: its record says what is missing, and once it
            # is fixed, issuing again writes the files.
            log.error(
                "credit note e-invoice not written",
                extra={"creditNoteId": note.credit_note_id, "invoiceId": record.invoice_id, "reason": str(problem)},
            )
            return CreditNoteEInvoiceRefused(str(problem))
        files = CreditNoteFiles(
            credit_note_object_key(note, record, "xrechnung"), credit_note_object_key(note, record, "zugferd")
        )
        wrote_xml, wrote_pdf = _stored(self._documents, files.xml_key, xml, files.pdf_key, pdf)
        log.info(
            "credit note e-invoice stored",
            extra={
                "creditNoteId": note.credit_note_id,
                "number": note.number,
                "wroteXml": wrote_xml,
                "wrotePdf": wrote_pdf,
            },
        )
        return files


class StoredEInvoices:
    """Serves the stored e-invoice files of invoices and credit notes (billing-api and the operator's command)."""

    def __init__(self, documents: DocumentStore) -> None:
        self._documents = documents

    def file(self, record: Invoice, format_name: str) -> EInvoiceFile | None:
        """The stored file of ``record`` in ``format_name`` (xrechnung or zugferd); None if not written."""
        key = record.einvoice.xml if _format(format_name) == "xrechnung" else record.einvoice.pdf
        return self._file(key, format_name, f"Rechnung-{record.stripe.number}")

    def credit_note_file(self, note: CreditNote, format_name: str) -> EInvoiceFile | None:
        """The stored file of the credit ``note`` in ``format_name``, named by its title (Stornorechnung-<number>
        for a cancellation, Rechnungskorrektur-<number> else); None if not written."""
        key = note.einvoice_xml if _format(format_name) == "xrechnung" else note.einvoice_pdf
        title = document_title(DocumentType.CREDIT_NOTE, cancels_in_full=note.full)
        return self._file(key, format_name, f"{title.de}-{note.number}")

    def _file(self, key: str | None, format_name: str, stem: str) -> EInvoiceFile | None:
        body = self._documents.get(key) if key else None
        if body is None:
            return None
        extension, content_type = FORMATS[format_name]
        return EInvoiceFile(body, content_type, f"{stem}.{extension}")


def _format(format_name: str) -> str:
    if format_name not in FORMATS:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}")
    return format_name
