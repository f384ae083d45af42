"""E-mailing invoices and credit notes with their XRechnung and PDF: requested once, sent once per recipient.

    request (invoice job after the e-invoice step, credit note after its files; resend by the operator)
        -> mailing <doc>#<n> with its recipients -> document-mail queue
    deliver (scheduler-worker, paced to SES's sending rate), per recipient:
        claim delivery (sending) -> SES SendEmail (raw MIME) -> sent + message id
    SES events (mail-events queue): delivered / bounced / complained / rejected; a hard bounce or a
        complaint makes the address undeliverable on the account until the operator changes the recipients

Every step resumes: a mailing already queued is not queued again, a delivery already sent is not sent
again, throttling leaves the delivery waiting (the message comes back later, never dead-lettered), and a
delivery a dead sender left "sending" is sent once more, marked as a possible duplicate
(``domain.deliveries``).
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from billing_core.domain.audit import AuditEntry
from billing_core.domain.credit_notes import CreditNote, CreditNoteState
from billing_core.domain.deliveries import (
    MAX_SEND_ATTEMPTS,
    STALE_CLAIM_MS,
    Delivery,
    DeliveryChanges,
    DeliveryState,
    DocumentKind,
    DocumentMailState,
    DocumentMailStatus,
    MailEvent,
    Mailing,
    UnknownDocument,
    delivery_id_for,
    document_kind_of,
    event_may_move,
    mail_status,
)
from billing_core.domain.invoice_mail import (
    Attachment,
    DocumentMail,
    InvalidMailAddress,
    document_message,
    period_text,
    valid_recipients,
)
from billing_core.domain.lifecycle import InvoiceStatus
from billing_core.domain.records import Account, Invoice
from billing_core.errors import BillingError, ConditionFailed, MailRejected, MailThrottled
from billing_core.ports import (
    AccountRepository,
    AuditLog,
    CreditNoteRepository,
    DeliveryRepository,
    FieldIs,
    InvoiceRepository,
    MessageQueue,
)
from billing_core.ports.mail import MailSender
from billing_core.use_cases.einvoices import EInvoiceFile, StoredEInvoices
from billing_core.use_cases.operator_invoices import account_of_invoice_id

log = logging.getLogger(__name__)

SYSTEM = "system"


class DocumentNotMailable(BillingError):
    """The document cannot be e-mailed (yet): not issued, no e-invoice files, or nobody to send it to."""


class DeliveryInProgress(MailThrottled):
    """Another sender claimed this delivery moments ago: the message comes back after a back-off."""


class InvalidMailMessage(BillingError):
    """A document-mail message that names no document mailing; retrying will not help."""


@dataclass(frozen=True)
class MailSettings:
    """Who the e-mails come from, and where a customer pays a failed invoice."""

    sender: str
    sender_name: str | None = None
    reply_to: str | None = None
    billing_page_url: str | None = None


def mail_message(mailing: Mailing) -> dict[str, object]:
    """The document-mail message of ``mailing``."""
    return {"documentId": mailing.document_id, "round": mailing.round_number}


def mailing_of_message(body: object) -> tuple[str, int]:
    """The (document id, round) a document-mail message names; ``InvalidMailMessage`` if none."""
    if not isinstance(body, dict):
        raise InvalidMailMessage("a document-mail message is a JSON object")
    document_id, round_number = body.get("documentId"), body.get("round")
    if not isinstance(document_id, str) or not isinstance(round_number, int) or round_number < 1:
        raise InvalidMailMessage("a document-mail message names documentId (text) and round (1, 2, ...)")
    try:
        document_kind_of(document_id)
    except UnknownDocument as error:
        raise InvalidMailMessage(str(error)) from None
    return document_id, round_number


@dataclass(frozen=True)
class _Document:
    """A mailable document: its record, its account and what its e-mail says and carries."""

    account: Account
    mail: DocumentMail
    attachments: tuple[Attachment, ...]


class DocumentMailer:
    """Requests, sends, resends and follows the e-mail of invoices and credit notes."""

    def __init__(
        self,
        *,
        invoices: InvoiceRepository,
        credit_notes: CreditNoteRepository,
        accounts: AccountRepository,
        deliveries: DeliveryRepository,
        files: StoredEInvoices,
        queue: MessageQueue | None,
        audit: AuditLog,
        sender: MailSender | None = None,
        settings: MailSettings | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._invoices = invoices
        self._notes = credit_notes
        self._accounts = accounts
        self._deliveries = deliveries
        self._files = files
        self._queue = queue
        self._audit = audit
        self._sender = sender
        self._settings = settings
        self._clock = clock

    # --- requesting ------------------------------------------------------------------------------

    def request(self, document_id: str) -> Mailing | None:
        """Queue the first sending of an issued document (once: a rerun finds it queued); ``None`` if no mail
        is configured (no queue)."""
        if self._queue is None:
            return None
        mailing = self._deliveries.get_mailing(document_id, 1)
        if mailing is None:
            account = self._account(self._account_id_of(document_id))
            self._deliveries.create_mailing_if_absent(
                self._new_mailing(document_id, account, 1, account.deliverable_recipients, SYSTEM)
            )
            mailing = self._deliveries.get_mailing(document_id, 1)
            assert mailing is not None  # claimed just now, by us or by a racing request
        return self._queued(mailing)

    def resend(self, document_id: str, *, to: tuple[str, ...] = (), actor: str) -> Mailing:
        """Send the document again (to ``to``, else to the account's deliverable recipients), audited."""
        if self._queue is None:
            raise DocumentNotMailable("e-mail is not configured here (DOCUMENT_MAIL_QUEUE_URL is unset)")
        self._document(document_id)  # refuses a document that cannot be mailed, before anything is written
        account = self._account(self._account_id_of(document_id))
        try:
            recipients = valid_recipients(list(to)) if to else account.deliverable_recipients
        except InvalidMailAddress as error:
            raise DocumentNotMailable(str(error)) from None
        ruled_out = sorted(set(recipients) & {address.lower() for address in account.undeliverable_emails})
        if ruled_out:
            raise DocumentNotMailable(
                f"{', '.join(ruled_out)} bounced or complained: change the account's invoice recipients first"
            )
        if not recipients:
            raise DocumentNotMailable(
                "the account has no deliverable invoice recipient: name an address to send to, or change the recipients"
            )
        while True:
            round_number = len(self._deliveries.mailings_of(document_id)) + 1
            mailing = self._new_mailing(document_id, account, round_number, recipients, actor)
            if self._deliveries.create_mailing_if_absent(mailing):
                break
        self._audit.record(
            AuditEntry(
                entry_id=uuid.uuid5(uuid.NAMESPACE_URL, f"mailing/{mailing.mailing_id}").hex,
                at=self._now_ms(),
                actor=actor,
                action="invoice.resend",
                account_id=account.account_id,
                before={"document": document_id},
                after={"document": document_id, "round": str(round_number), "recipients": ", ".join(recipients)},
            )
        )
        return self._queued(mailing)

    # --- sending ---------------------------------------------------------------------------------

    def deliver(self, document_id: str, round_number: int) -> list[Delivery]:
        """Send the mailing to each of its recipients once; ``MailThrottled`` when SES asks to slow down."""
        if self._sender is None or self._settings is None:
            raise DocumentNotMailable("no mail sender configured (INVOICE_MAIL_FROM is unset)")
        mailing = self._deliveries.get_mailing(document_id, round_number)
        if mailing is None:
            raise InvalidMailMessage(f"no mailing {document_id}#{round_number}")
        document = self._document(document_id)
        return [self._deliver_one(mailing, document, recipient) for recipient in mailing.recipients]

    def _deliver_one(self, mailing: Mailing, document: _Document, recipient: str) -> Delivery:
        delivery_id = delivery_id_for(mailing.document_id, mailing.round_number, recipient)
        now = self._now_ms()
        delivery = self._deliveries.get(delivery_id)
        if delivery is None:
            suppressed = recipient.lower() in {address.lower() for address in document.account.undeliverable_emails}
            claim = Delivery(
                delivery_id=delivery_id,
                document_id=mailing.document_id,
                account_id=mailing.account_id,
                round_number=mailing.round_number,
                recipient=recipient,
                state=DeliveryState.SUPPRESSED if suppressed else DeliveryState.SENDING,
                attempts=0 if suppressed else 1,
                claimed_at=now,
                updated_at=now,
                reason="the address bounced or complained earlier" if suppressed else None,
            )
            if self._deliveries.create_if_absent(claim):
                return claim if suppressed else self._send(claim, document)
            delivery = self._deliveries.get(delivery_id)
            assert delivery is not None
            if delivery.state is DeliveryState.SENDING:
                raise DeliveryInProgress(f"{delivery_id} is being sent by another worker")
        return self._resume(delivery, document, now)

    def _resume(self, delivery: Delivery, document: _Document, now: int) -> Delivery:
        if delivery.state is DeliveryState.WAITING:
            claimed = self._claim_again(delivery, now, possible_duplicate=delivery.possible_duplicate)
            return self._send(claimed, document)
        if delivery.state is not DeliveryState.SENDING:
            return delivery  # sent, delivered, refused, bounced, suppressed, uncertain: never sent again
        if now - delivery.claimed_at < STALE_CLAIM_MS:
            raise DeliveryInProgress(f"{delivery.delivery_id} was claimed {now - delivery.claimed_at} ms ago")
        if delivery.attempts >= MAX_SEND_ATTEMPTS:
            log.error("a delivery was left mid-send twice; not sent again", extra={"deliveryId": delivery.delivery_id})
            return self._deliveries.update(
                delivery.delivery_id,
                {
                    "state": DeliveryState.UNCERTAIN,
                    "updated_at": now,
                    "reason": "the sender stopped twice while sending it; resend it if it did not arrive",
                },
                conditions=[
                    FieldIs.one_of("state", DeliveryState.SENDING),
                    FieldIs.one_of("attempts", delivery.attempts),
                ],
            )
        # The sender died between claiming and recording: SES may have sent it. Once more, and say so.
        log.warning("a delivery left mid-send is sent again", extra={"deliveryId": delivery.delivery_id})
        return self._send(self._claim_again(delivery, now, possible_duplicate=True), document)

    def _claim_again(self, delivery: Delivery, now: int, *, possible_duplicate: bool) -> Delivery:
        try:
            return self._deliveries.update(
                delivery.delivery_id,
                {
                    "state": DeliveryState.SENDING,
                    "attempts": delivery.attempts + 1,
                    "claimed_at": now,
                    "updated_at": now,
                    "possible_duplicate": possible_duplicate,
                },
                conditions=[FieldIs.one_of("state", delivery.state), FieldIs.one_of("attempts", delivery.attempts)],
            )
        except ConditionFailed:
            raise DeliveryInProgress(f"{delivery.delivery_id} was claimed by another worker") from None

    def _send(self, claim: Delivery, document: _Document) -> Delivery:
        assert self._sender is not None and self._settings is not None
        settings = self._settings
        mine = _claimed(claim)
        raw = document_message(
            document.mail,
            sender=settings.sender,
            sender_name=settings.sender_name,
            reply_to=settings.reply_to,
            recipients=(claim.recipient,),
            attachments=document.attachments,
        )
        try:
            message_id = self._sender.send(raw, sender=settings.sender, recipients=(claim.recipient,))
        except MailThrottled as throttled:
            # Nothing was sent: the claim goes back to waiting, and the attempt is not counted.
            self._deliveries.update(
                claim.delivery_id,
                {"state": DeliveryState.WAITING, "attempts": claim.attempts - 1, "reason": str(throttled)},
                conditions=mine,
            )
            raise
        except MailRejected as rejected:
            log.error("SES refused an invoice e-mail", extra={"deliveryId": claim.delivery_id, "reason": str(rejected)})
            return self._deliveries.update(
                claim.delivery_id,
                {"state": DeliveryState.REJECTED, "updated_at": self._now_ms(), "reason": str(rejected)},
                conditions=mine,
            )
        changes: DeliveryChanges = {
            "state": DeliveryState.SENT,
            "message_id": message_id,
            "sent_at": self._now_ms(),
            "updated_at": self._now_ms(),
            "reason": None,
        }
        sent = self._deliveries.update(claim.delivery_id, changes, conditions=mine)
        log.info(
            "document e-mailed",
            extra={
                "deliveryId": claim.delivery_id,
                "messageId": message_id,
                "possibleDuplicate": sent.possible_duplicate,
            },
        )
        return sent

    # --- SES's events ----------------------------------------------------------------------------

    def apply_event(self, event: MailEvent) -> bool:
        """Move the delivery SES reported on; a hard bounce or a complaint rules its address out."""
        delivery = self._deliveries.find_by_message_id(event.message_id)
        if delivery is None:
            log.warning("an SES event of a message we do not know", extra={"messageId": event.message_id})
            return False
        if event.recipients and delivery.recipient.lower() not in event.recipients:
            log.warning("an SES event names other recipients", extra={"messageId": event.message_id})
        if not event_may_move(delivery.state, event.outcome):
            return False
        self._deliveries.update(
            delivery.delivery_id, {"state": event.outcome, "reason": event.reason, "updated_at": self._now_ms()}
        )
        if event.outcome in (DeliveryState.BOUNCED, DeliveryState.COMPLAINED):
            self._rule_out(delivery.account_id, delivery.recipient)
            log.warning(
                "a document was not delivered",
                extra={"documentId": delivery.document_id, "recipient": delivery.recipient, "reason": event.reason},
            )
        return True

    def _rule_out(self, account_id: str, address: str) -> None:
        account = self._accounts.get(account_id)
        if account is None or address.lower() in {a.lower() for a in account.undeliverable_emails}:
            return
        self._accounts.update(
            account_id,
            {"undeliverable_emails": (*account.undeliverable_emails, address.lower()), "updated_at": self._now_ms()},
        )

    # --- reading ---------------------------------------------------------------------------------

    def status_of(self, document_id: str) -> DocumentMailStatus:
        """What became of the document's latest sending."""
        mailings = self._deliveries.mailings_of(document_id)
        latest = mailings[-1] if mailings else None
        return mail_status(latest, self._deliveries_of(latest) if latest else [])

    def undelivered(self) -> list[tuple[Mailing, DocumentMailStatus]]:
        """Every document whose latest sending reached nobody, with why (the operator's list)."""
        latest: dict[str, Mailing] = {}
        for mailing in self._deliveries.all_mailings():
            if isinstance(mailing, Mailing):
                known = latest.get(mailing.document_id)
                if known is None or known.round_number < mailing.round_number:
                    latest[mailing.document_id] = mailing
        found = []
        for document_id in sorted(latest):
            mailing = latest[document_id]
            status = mail_status(mailing, self._deliveries_of(mailing))
            if status.state is DocumentMailState.NOT_DELIVERED:
                found.append((mailing, status))
        return found

    def _deliveries_of(self, mailing: Mailing) -> list[Delivery]:
        found = (
            self._deliveries.get(delivery_id_for(mailing.document_id, mailing.round_number, recipient))
            for recipient in mailing.recipients
        )
        return [delivery for delivery in found if delivery is not None]

    # --- the documents ---------------------------------------------------------------------------

    def _document(self, document_id: str) -> _Document:
        if document_kind_of(document_id) is DocumentKind.INVOICE:
            return self._invoice_document(document_id)
        return self._credit_note_document(document_id)

    def _invoice_document(self, invoice_id: str) -> _Document:
        record = self._invoices.get(account_of_invoice_id(invoice_id), invoice_id)
        if record is None:
            raise UnknownDocument(f"no invoice {invoice_id}")
        if not record.stripe.number:
            raise DocumentNotMailable(f"invoice {invoice_id} is not issued yet")
        account = self._account(record.account_id)
        language = account.language or "de"
        mail = DocumentMail(
            document_number=record.stripe.number,
            credit_note=False,
            cancels_in_full=False,
            period_label=period_text(record.period.year, record.period.month, language),
            gross=record.amount,
            currency=record.currency,
            payment=_invoice_payment(record, account),
            language=language,
            customer_name=account.name,
            pay_url=self._settings.billing_page_url if self._settings else None,
        )
        files = (self._files.file(record, "xrechnung"), self._files.file(record, "zugferd"))
        return _Document(account, mail, _attachments(invoice_id, files))

    def _credit_note_document(self, credit_note_id: str) -> _Document:
        note = self._notes.get(credit_note_id)
        if note is None:
            raise UnknownDocument(f"no credit note {credit_note_id}")
        if note.state is not CreditNoteState.ISSUED or not note.number:
            raise DocumentNotMailable(f"credit note {credit_note_id} is not issued")
        record = self._invoices.get(note.account_id, note.invoice_id)
        if record is None:
            raise UnknownDocument(f"no invoice {note.invoice_id} of credit note {credit_note_id}")
        account = self._account(note.account_id)
        language = account.language or "de"
        mail = DocumentMail(
            document_number=note.number,
            credit_note=True,
            cancels_in_full=note.full,
            period_label=period_text(record.period.year, record.period.month, language),
            gross=note.gross,
            currency=note.currency,
            payment=note.settlement.value,
            language=language,
            customer_name=account.name,
        )
        files = (self._files.credit_note_file(note, "xrechnung"), self._files.credit_note_file(note, "zugferd"))
        return _Document(account, mail, _attachments(credit_note_id, files))

    def _account_id_of(self, document_id: str) -> str:
        if document_kind_of(document_id) is DocumentKind.INVOICE:
            return account_of_invoice_id(document_id)
        note = self._notes.get(document_id)
        if note is None:
            raise UnknownDocument(f"no credit note {document_id}")
        return note.account_id

    def _account(self, account_id: str) -> Account:
        account = self._accounts.get(account_id)
        if account is None:
            raise UnknownDocument(f"no account {account_id}")
        return account

    def _new_mailing(
        self, document_id: str, account: Account, round_number: int, recipients: tuple[str, ...], actor: str
    ) -> Mailing:
        return Mailing(
            document_id=document_id,
            kind=document_kind_of(document_id),
            account_id=account.account_id,
            round_number=round_number,
            recipients=recipients,
            requested_at=self._now_ms(),
            actor=actor,
        )

    def _queued(self, mailing: Mailing) -> Mailing:
        if mailing.queued_at is not None or not mailing.recipients or self._queue is None:
            return mailing
        self._queue.send(json.dumps(mail_message(mailing)))
        return self._deliveries.update_mailing(mailing.document_id, mailing.round_number, {"queued_at": self._now_ms()})

    def _now_ms(self) -> int:
        return int(self._clock() * 1000)


def _claimed(delivery: Delivery) -> list[FieldIs]:
    """The guard of a write by the sender holding ``delivery``'s claim."""
    return [FieldIs.one_of("state", DeliveryState.SENDING), FieldIs.one_of("attempts", delivery.attempts)]


def _invoice_payment(record: Invoice, account: Account) -> str:
    """How the invoice is paid, as its e-mail says: failed (pay now), from the balance, SEPA or card."""
    if record.status in (InvoiceStatus.PAYMENT_FAILED, InvoiceStatus.ACTION_REQUIRED):
        return "failed"
    if record.amount_due <= 0 or record.payment.carried_to_balance > 0:
        return "balance"
    method = account.payment_method
    return "sepa_debit" if method is not None and method.type == "sepa_debit" else "card"


def _attachments(document_id: str, files: tuple[EInvoiceFile | None, EInvoiceFile | None]) -> tuple[Attachment, ...]:
    if any(file is None for file in files):
        raise DocumentNotMailable(f"{document_id} has no e-invoice files yet")
    return tuple(
        Attachment(file.file_name, file.body, *file.content_type.split("/", 1)) for file in files if file is not None
    )


def credit_note_mailing(mailer: DocumentMailer | None) -> Callable[[CreditNote], None]:
    """The step after a credit note's files: queue its e-mail (a no-op without mail)."""

    def request(note: CreditNote) -> None:
        if mailer is not None and note.einvoice_xml and note.einvoice_pdf:
            mailer.request(note.credit_note_id)

    return request
