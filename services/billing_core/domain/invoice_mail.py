"""The e-mail that brings an invoice or a credit note to the customer, with its XRechnung and PDF attached.

Built with the standard library's ``email`` package (``EmailMessage``, policy SMTP: CRLF line ends as
SES's raw message wants them). What comes from outside (a company name, an address) never becomes a
header of its own: addresses are parsed and checked, display names are put on one line and encoded by
the ``email`` package, which refuses a header value with a line break in it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import formatdate, make_msgid

from billing_core.domain.errors import BillingDomainError
from billing_core.domain.money import amount_text

# SES v2 SendEmail: "The maximum message size, including attachments, is 40 MB" (raw, after encoding).
MAX_MESSAGE_BYTES = 40 * 1024 * 1024
MAX_RECIPIENTS = 10
_NAME_CHARS = 200  # a display name is cut here: a 5,000-character company name still makes one header
_LOCAL = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]{1,64}")
_DOMAIN = re.compile(r"(?=.{1,253}$)([A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}")


class InvalidMailAddress(BillingDomainError):
    """Not an e-mail address this system sends to (one mailbox: local@domain.tld, no display part)."""


class MailTooLarge(BillingDomainError):
    """The message with its attachments is larger than SES sends (40 MB)."""


def valid_mail_address(value: str) -> str:
    """``value`` as a checked address (``name@example.de``); ``InvalidMailAddress`` saying why not."""
    if not isinstance(value, str):
        raise InvalidMailAddress(f"an e-mail address is text, got {type(value).__name__}")
    address = value.strip()
    if any(ch in address for ch in '\r\n\t <>,;"()') or address.count("@") != 1:
        raise InvalidMailAddress(f"{value!r} is not one e-mail address (name@example.de)")
    local, domain = address.split("@")
    if not _LOCAL.fullmatch(local) or local.startswith(".") or local.endswith(".") or ".." in local:
        raise InvalidMailAddress(f"{value!r}: the part before @ is not valid")
    if not _DOMAIN.fullmatch(domain):
        raise InvalidMailAddress(f"{value!r}: {domain!r} is not a domain name")
    return f"{local}@{domain.lower()}"


def valid_recipients(values: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """One to ``MAX_RECIPIENTS`` checked addresses, each once, in the order given."""
    checked = tuple(dict.fromkeys(valid_mail_address(value).lower() for value in values))
    if not checked:
        raise InvalidMailAddress("give at least one e-mail address for the invoices")
    if len(checked) > MAX_RECIPIENTS:
        raise InvalidMailAddress(f"at most {MAX_RECIPIENTS} invoice recipients, got {len(checked)}")
    return checked


@dataclass(frozen=True)
class Attachment:
    """A file sent with the e-mail."""

    filename: str
    content: bytes
    maintype: str
    subtype: str


@dataclass(frozen=True)
class DocumentMail:
    """What the e-mail of one document says: whose, which document, how much, how it is paid."""

    document_number: str
    credit_note: bool
    cancels_in_full: bool
    period_label: str  # "Oktober 2026" / "October 2026"
    gross: Decimal
    currency: str
    payment: str  # card, sepa_debit, balance, failed, refund, pre_payment, out_of_band
    language: str  # de / en
    customer_name: str | None
    pay_url: str | None = None  # the Billing tab, for a failed payment


_TEXTS = {
    "de": {
        "invoice": "Rechnung",
        "full": "Stornorechnung",
        "partial": "Rechnungskorrektur",
        "subject": "{title} {number} für {period}",
        "greeting": "Guten Tag{name},",
        "intro": "anbei erhalten Sie Ihre {title} {number} für {period} über {amount}.",
        "files": "Die elektronische Rechnung (XRechnung) und das PDF sind angehängt.",
        "card": "Der Betrag wird von Ihrer hinterlegten Karte abgebucht.",
        "sepa_debit": "Der Betrag wird per SEPA-Lastschrift eingezogen.",
        "balance": "Der Betrag ist mit Ihrem Guthaben verrechnet oder wird mit der nächsten Rechnung eingezogen.",
        "failed": "Die Zahlung ist fehlgeschlagen. Bitte zahlen Sie hier: {url}",
        "refund": "Der Betrag wird auf das ursprüngliche Zahlungsmittel erstattet.",
        "pre_payment": "Der offene Betrag der Rechnung vermindert sich um diesen Betrag.",
        "out_of_band": "Der Betrag wird außerhalb der Kartenzahlung ausgeglichen.",
        "credit_balance": "Der Betrag wird Ihrem Kundenkonto gutgebracht und mit der nächsten Rechnung verrechnet.",
        "closing": "Mit freundlichen Grüßen",
    },
    "en": {
        "invoice": "Invoice",
        "full": "Credit note (cancellation)",
        "partial": "Credit note",
        "subject": "{title} {number} for {period}",
        "greeting": "Hello{name},",
        "intro": "please find attached your {title} {number} for {period} of {amount}.",
        "files": "The electronic invoice (XRechnung) and the PDF are attached.",
        "card": "The amount is charged to your card on file.",
        "sepa_debit": "The amount is collected by SEPA direct debit.",
        "balance": "The amount is paid from your credit balance or collected with the next invoice.",
        "failed": "The payment failed. Please pay here: {url}",
        "refund": "The amount is refunded to the original payment method.",
        "pre_payment": "The amount due on the invoice is reduced by this amount.",
        "out_of_band": "The amount is settled outside the card payment.",
        "credit_balance": "The amount is credited to your customer balance and taken off the next invoice.",
        "closing": "Kind regards",
    },
}


MONTH_NAMES = {  # the months by name, as the e-mails and the PDF write them
    "de": (
        "Januar",
        "Februar",
        "März",
        "April",
        "Mai",
        "Juni",
        "Juli",
        "August",
        "September",
        "Oktober",
        "November",
        "Dezember",
    ),
    "en": (
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ),
}


def period_text(year: int, month: int, language: str) -> str:
    """``Oktober 2026`` / ``October 2026``: the billed month as the e-mail names it."""
    return f"{MONTH_NAMES[_language(language)][month - 1]} {year}"


def _language(language: str) -> str:
    return "en" if language == "en" else "de"


def _title(mail: DocumentMail) -> str:
    texts = _TEXTS[_language(mail.language)]
    if not mail.credit_note:
        return texts["invoice"]
    return texts["full"] if mail.cancels_in_full else texts["partial"]


def _one_line(text: str | None) -> str:
    """Outside text for a header or the body: whitespace (line breaks too) collapsed, cut to a sane length."""
    return " ".join((text or "").split())[:_NAME_CHARS]


def mail_subject(mail: DocumentMail) -> str:
    """``Rechnung INV-0031 für Oktober 2026`` in the mail's language."""
    texts = _TEXTS[_language(mail.language)]
    return texts["subject"].format(title=_title(mail), number=mail.document_number, period=mail.period_label)


def mail_body(mail: DocumentMail) -> str:
    """The plain-text body: greeting, what the document is, how it is paid, that the files are attached."""
    language = _language(mail.language)
    texts = _TEXTS[language]
    name = _one_line(mail.customer_name)
    payment_key = "credit_balance" if mail.credit_note and mail.payment == "balance" else mail.payment
    payment = texts.get(payment_key, "")
    if payment_key == "failed":
        payment = payment.format(url=mail.pay_url or "")
    lines = [
        texts["greeting"].format(name=f" {name}" if name else ""),
        "",
        texts["intro"].format(
            title=_title(mail),
            number=mail.document_number,
            period=mail.period_label,
            amount=amount_text(mail.gross, mail.currency, language),
        ),
        payment,
        texts["files"],
        "",
        texts["closing"],
    ]
    return "\n".join(lines) + "\n"


def document_message(
    mail: DocumentMail,
    *,
    sender: str,
    sender_name: str | None,
    reply_to: str | None,
    recipients: tuple[str, ...],
    attachments: tuple[Attachment, ...],
    domain: str | None = None,
) -> bytes:
    """The raw MIME message (CRLF) of ``mail`` to ``recipients`` with ``attachments``; at most 40 MB."""
    message = EmailMessage(policy=SMTP)
    message["Subject"] = mail_subject(mail)
    message["From"] = Address(display_name=_one_line(sender_name), addr_spec=valid_mail_address(sender))
    message["To"] = [Address(addr_spec=address) for address in valid_recipients(list(recipients))]
    if reply_to:
        message["Reply-To"] = Address(addr_spec=valid_mail_address(reply_to))
    message["Date"] = formatdate(localtime=False, usegmt=True)
    message["Message-ID"] = make_msgid(domain=domain or valid_mail_address(sender).split("@")[1])
    message.set_content(mail_body(mail))
    for attachment in attachments:
        message.add_attachment(
            attachment.content,
            maintype=attachment.maintype,
            subtype=attachment.subtype,
            filename=attachment.filename,
        )
    # Last: set_content and add_attachment move every Content-* header into the body part.
    message["Content-Language"] = _language(mail.language)
    raw = message.as_bytes()
    if len(raw) > MAX_MESSAGE_BYTES:
        raise MailTooLarge(f"the message is {len(raw)} bytes, more than SES sends ({MAX_MESSAGE_BYTES})")
    return raw
