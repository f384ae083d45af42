"""E-mail deliveries of invoices and credit notes: one mailing per sending, one delivery per recipient.

A document (invoice ``inv_...`` or credit note ``cn_...``) is mailed in rounds: round 1 right after it
was issued, round 2, 3, ... each time the operator resends it. A round is a ``Mailing`` naming its
recipients; each recipient's ``Delivery`` is claimed before SES hears of it and holds SES's message id
after. The claim is what makes a send happen once:

    sending --(SES answered)--> sent --(SES event)--> delivered | bounced | complained
    sending --(SES throttled)--> waiting --(claimed again)--> sending
    sending --(SES refused for good)--> rejected
    sending --(found stale: the sender died)--> sending, attempt 2, ``possible_duplicate``
    sending, attempt 2 --(found stale again)--> uncertain (never sent a third time)

so a crash between SES's answer and its record sends at most one duplicate, and the record says so.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import TypedDict

from billing_core.domain.errors import BillingDomainError

# A delivery still "sending" after this long was claimed by a sender that died mid-send.
STALE_CLAIM_MS = 120_000
MAX_SEND_ATTEMPTS = 2


class DocumentKind(StrEnum):
    """What is mailed."""

    INVOICE = "invoice"
    CREDIT_NOTE = "credit_note"


def document_kind_of(document_id: str) -> DocumentKind:
    """``inv_...`` is an invoice, ``cn_...`` a credit note; anything else is no document of ours."""
    if document_id.startswith("inv_"):
        return DocumentKind.INVOICE
    if document_id.startswith("cn_"):
        return DocumentKind.CREDIT_NOTE
    raise UnknownDocument(f"{document_id!r} is neither an invoice (inv_...) nor a credit note (cn_...)")


class UnknownDocument(BillingDomainError):
    """No invoice or credit note of that id."""


class DeliveryState(StrEnum):
    """Where one recipient's copy of a document stands."""

    SENDING = "sending"  # claimed: SES may have it (a crash here is resolved by the stale-claim rule)
    WAITING = "waiting"  # SES throttled: nothing was sent, it is tried again
    SENT = "sent"  # SES accepted it (its message id is kept)
    DELIVERED = "delivered"  # SES reported the recipient's server took it
    REJECTED = "rejected"  # SES refused it for good (unverified sender, MessageRejected)
    BOUNCED = "bounced"  # a permanent bounce: the recipient is undeliverable
    COMPLAINED = "complained"  # the recipient marked it as spam
    SUPPRESSED = "suppressed"  # not sent: the recipient is undeliverable on the account
    UNCERTAIN = "uncertain"  # two senders died mid-send: not tried a third time, the operator decides


FAILED = frozenset({DeliveryState.REJECTED, DeliveryState.BOUNCED, DeliveryState.SUPPRESSED, DeliveryState.UNCERTAIN})
ARRIVED = frozenset({DeliveryState.SENT, DeliveryState.DELIVERED, DeliveryState.COMPLAINED})
IN_FLIGHT = frozenset({DeliveryState.SENDING, DeliveryState.WAITING})
# Where an SES event may move a sent delivery: a later event never undoes a bounce or a complaint.
_EVENT_ORDER = {
    DeliveryState.SENT: 0,
    DeliveryState.DELIVERED: 1,
    DeliveryState.COMPLAINED: 2,
    DeliveryState.BOUNCED: 3,
    DeliveryState.REJECTED: 3,
}


def event_may_move(current: DeliveryState, new: DeliveryState) -> bool:
    """Whether an SES event saying ``new`` moves a delivery that is ``current`` (forward only)."""
    return current in _EVENT_ORDER and new in _EVENT_ORDER and _EVENT_ORDER[new] > _EVENT_ORDER[current]


def mailing_id_for(document_id: str, round_number: int) -> str:
    """``inv_2026-10_acme#1``: the first sending of a document."""
    return f"{document_id}#{round_number}"


def delivery_id_for(document_id: str, round_number: int, recipient: str) -> str:
    """``inv_2026-10_acme#1#buchhaltung@acme.de``: one recipient's copy of one sending."""
    return f"{mailing_id_for(document_id, round_number)}#{recipient.lower()}"


@dataclass(frozen=True)
class Mailing:
    """One sending of a document to its recipients: the first one, or a resend by the operator."""

    document_id: str
    kind: DocumentKind
    account_id: str
    round_number: int
    recipients: tuple[str, ...]
    requested_at: int
    actor: str  # "system" for the first sending, else the operator who resent it
    queued_at: int | None = None  # when its send message went onto the document-mail queue

    @property
    def mailing_id(self) -> str:
        return mailing_id_for(self.document_id, self.round_number)


class MailingChanges(TypedDict, total=False):
    """A partial update of a ``Mailing``."""

    queued_at: int | None


@dataclass(frozen=True)
class Delivery:
    """One recipient's copy of one sending: claimed, then sent once (SES's message id), then what SES saw."""

    delivery_id: str
    document_id: str
    account_id: str
    round_number: int
    recipient: str
    state: DeliveryState
    attempts: int  # sends that may have reached SES (2: a sender died mid-send, a duplicate is possible)
    claimed_at: int
    updated_at: int
    message_id: str | None = None
    sent_at: int | None = None
    reason: str | None = None  # why it failed (SES's words), or what SES reported
    possible_duplicate: bool = False


class DeliveryChanges(TypedDict, total=False):
    """A partial update of a ``Delivery`` (``None`` removes a field)."""

    state: DeliveryState
    attempts: int
    claimed_at: int
    updated_at: int
    message_id: str | None
    sent_at: int | None
    reason: str | None
    possible_duplicate: bool


class DocumentMailState(StrEnum):
    """A document's mail as the operator sees it (its latest sending)."""

    NOT_SENT = "not_sent"  # never mailed (no e-invoice yet, or nobody to send it to)
    SENDING = "sending"
    DELIVERED = "delivered"  # at least one recipient got it
    NOT_DELIVERED = "not_delivered"  # nobody of the latest sending got it


@dataclass(frozen=True)
class DocumentMailStatus:
    """What became of a document's latest sending, and why it did not arrive where it did not."""

    state: DocumentMailState
    round_number: int
    deliveries: tuple[Delivery, ...] = ()
    reason: str | None = None

    @property
    def text(self) -> str:
        """``delivered`` / ``not delivered: <reason>`` (the operator's words)."""
        if self.state is DocumentMailState.NOT_DELIVERED:
            return f"not delivered: {self.reason}" if self.reason else "not delivered"
        return self.state.value.replace("_", " ")


def mail_status(mailing: Mailing | None, deliveries: Sequence[Delivery]) -> DocumentMailStatus:
    """The status of a document from its latest ``mailing`` and that mailing's ``deliveries``."""
    if mailing is None:
        return DocumentMailStatus(DocumentMailState.NOT_SENT, 0)
    ordered = tuple(deliveries)
    if any(delivery.state in ARRIVED for delivery in ordered):
        state = DocumentMailState.DELIVERED
    elif len(ordered) == len(mailing.recipients) and all(delivery.state in FAILED for delivery in ordered):
        state = DocumentMailState.NOT_DELIVERED
    elif not mailing.recipients:
        state = DocumentMailState.NOT_DELIVERED
    else:
        state = DocumentMailState.SENDING
    failures = [f"{d.recipient}: {d.reason or d.state.value}" for d in ordered if d.state in FAILED]
    if not mailing.recipients:
        failures = ["no recipient to send it to"]
    return DocumentMailStatus(state, mailing.round_number, ordered, "; ".join(failures) or None)


@dataclass(frozen=True)
class MailEvent:
    """What SES reported about one sent message (from the configuration set's event destination)."""

    message_id: str
    outcome: DeliveryState  # DELIVERED, BOUNCED, COMPLAINED, REJECTED (a transient bounce is no event here)
    recipients: tuple[str, ...]
    reason: str


class InvalidMailEvent(BillingDomainError):
    """A mail-events message that is no SES event notification."""


def mail_event_from(notification: dict[str, object]) -> MailEvent | None:
    """The ``MailEvent`` of an SES event notification (``eventType`` Bounce / Complaint / Delivery / Reject).

    A transient or undetermined bounce (a full mailbox) is no outcome: SES keeps retrying it and so
    do we not mark anyone undeliverable; it returns ``None``, as do events that say nothing of delivery.
    """
    kind = notification.get("eventType") or notification.get("notificationType")
    mail = notification.get("mail")
    if not isinstance(kind, str) or not isinstance(mail, dict) or not isinstance(mail.get("messageId"), str):
        raise InvalidMailEvent("not an SES event notification (eventType and mail.messageId missing)")
    message_id = str(mail["messageId"])
    if kind == "Bounce":
        bounce = _section(notification, "bounce")
        if bounce.get("bounceType") != "Permanent":
            return None
        recipients = _addresses(bounce.get("bouncedRecipients"))
        detail = _first_diagnostic(bounce.get("bouncedRecipients"))
        reason = f"hard bounce ({bounce.get('bounceSubType', 'General')})" + (f": {detail}" if detail else "")
        return MailEvent(message_id, DeliveryState.BOUNCED, recipients, reason)
    if kind == "Complaint":
        complaint = _section(notification, "complaint")
        kind_text = complaint.get("complaintFeedbackType") or "abuse"
        recipients = _addresses(complaint.get("complainedRecipients"))
        return MailEvent(message_id, DeliveryState.COMPLAINED, recipients, f"complaint ({kind_text})")
    if kind == "Reject":
        reject = _section(notification, "reject")
        reason = f"rejected by SES ({reject.get('reason', 'unknown')})"
        return MailEvent(message_id, DeliveryState.REJECTED, _texts_of(mail.get("destination")), reason)
    if kind == "Delivery":
        delivery = _section(notification, "delivery")
        recipients = _texts_of(delivery.get("recipients"))
        return MailEvent(message_id, DeliveryState.DELIVERED, recipients, "delivered")
    return None


def _section(notification: dict[str, object], name: str) -> dict[str, object]:
    section = notification.get(name)
    if not isinstance(section, dict):
        raise InvalidMailEvent(f"an SES {name} event without its {name!r} object")
    return section


def _texts_of(values: object) -> tuple[str, ...]:
    return tuple(value.lower() for value in values if isinstance(value, str)) if isinstance(values, list) else ()


def _addresses(entries: object) -> tuple[str, ...]:
    if not isinstance(entries, list):
        return ()
    found = (entry.get("emailAddress") for entry in entries if isinstance(entry, dict))
    return tuple(address.lower() for address in found if isinstance(address, str))


def _first_diagnostic(entries: object) -> str | None:
    for entry in entries if isinstance(entries, list) else ():
        if isinstance(entry, dict) and isinstance(entry.get("diagnosticCode"), str):
            return " ".join(str(entry["diagnosticCode"]).split())[:300]
    return None
