"""The invoice e-mail: checked addresses, texts in the customer's language, files attached byte for byte."""

from __future__ import annotations

import email
from decimal import Decimal
from email.policy import default

import pytest
from botocore.stub import Stubber

from billing_core.adapters.ses_mail import SesMailSender
from billing_core.domain.invoice_mail import (
    Attachment,
    DocumentMail,
    InvalidMailAddress,
    document_message,
    mail_subject,
    valid_mail_address,
    valid_recipients,
)
from billing_core.errors import MailRejected, MailThrottled

XML = b"<?xml version='1.0'?><rsm:CrossIndustryInvoice>...</rsm:CrossIndustryInvoice>"
PDF = b"%PDF-1.7\n" + bytes(range(256)) * 40


def _mail(**changes) -> DocumentMail:
    values = dict(
        document_number="INV-0031",
        credit_note=False,
        cancels_in_full=False,
        period_label="Oktober 2026",
        gross=Decimal("44.91"),
        currency="EUR",
        payment="sepa_debit",
        language="de",
        customer_name="Muster GmbH",
    )
    return DocumentMail(**{**values, **changes})


def _message(mail: DocumentMail | None = None, **options):
    values = dict(
        sender="rechnung@example.de",
        sender_name="Beispiel Hosting GmbH",
        reply_to="buchhaltung@example.de",
        recipients=("a@kunde.de", "b@kunde.de"),
        attachments=(
            Attachment("Rechnung-INV-0031.xml", XML, "application", "xml"),
            Attachment("Rechnung-INV-0031.pdf", PDF, "application", "pdf"),
        ),
    )
    raw = document_message(mail or _mail(), **{**values, **options})
    return raw, email.message_from_bytes(raw, policy=default)


@pytest.mark.parametrize("address", ["a@kunde.de", "first.last+rechnung@sub.kunde-gmbh.de", " A@Kunde.DE "])
def test_an_address_is_kept_as_one_checked_mailbox(address):
    assert valid_mail_address(address) == address.strip().split("@")[0] + "@" + address.strip().split("@")[1].lower()


@pytest.mark.parametrize(
    "address",
    [
        "",
        "kunde.de",
        "a@@kunde.de",
        "a@kunde",
        "a b@kunde.de",
        "a@kunde.de\r\nBcc: x@evil.de",
        "Name <a@kunde.de>",
        "a@kunde.de, b@kunde.de",
        ".a@kunde.de",
        "a..b@kunde.de",
        "a@-kunde.de",
    ],
)
def test_anything_but_one_address_is_refused_with_the_reason(address):
    with pytest.raises(InvalidMailAddress):
        valid_mail_address(address)


def test_recipients_are_one_to_ten_each_once():
    assert valid_recipients(["a@kunde.de", "A@kunde.de", "b@kunde.de"]) == ("a@kunde.de", "b@kunde.de")
    with pytest.raises(InvalidMailAddress, match="at least one"):
        valid_recipients([])
    with pytest.raises(InvalidMailAddress, match="at most 10"):
        valid_recipients([f"r{i}@kunde.de" for i in range(11)])


def test_the_message_carries_subject_recipients_and_both_files_byte_for_byte():
    raw, message = _message()

    assert b"\r\n" in raw and b"\n" not in raw.replace(b"\r\n", b"")  # CRLF throughout, as SES wants it
    assert message["Subject"] == "Rechnung INV-0031 für Oktober 2026"
    assert message["To"] == "a@kunde.de, b@kunde.de"
    assert message["Reply-To"] == "buchhaltung@example.de"
    assert message["From"].addresses[0].display_name == "Beispiel Hosting GmbH"
    assert message["Content-Language"] == "de"
    body = message.get_body(("plain",)).get_content()
    assert "44,91 EUR" in body and "SEPA-Lastschrift" in body and "Guten Tag Muster GmbH," in body
    files = {part.get_filename(): part.get_content() for part in message.iter_attachments()}
    assert files == {"Rechnung-INV-0031.xml": XML, "Rechnung-INV-0031.pdf": PDF}


def test_english_credit_notes_and_a_failed_payment_say_so():
    cancellation = _mail(credit_note=True, cancels_in_full=True, language="en", period_label="October 2026")
    assert mail_subject(cancellation) == "Credit note (cancellation) INV-0031 for October 2026"
    assert mail_subject(_mail(credit_note=True)) == "Rechnungskorrektur INV-0031 für Oktober 2026"
    _, failed = _message(_mail(payment="failed", pay_url="https://billing.example.de/billing"))
    assert "https://billing.example.de/billing" in failed.get_body(("plain",)).get_content()
    for mail in (cancellation, _mail(credit_note=True), _mail()):
        _, message = _message(mail)
        assert "Gutschrift" not in message.as_string()  # § 14 (2) UStG: self-billing, not ours


def test_a_header_injection_in_a_name_stays_one_header_and_a_huge_name_is_cut():
    evil = "Muster GmbH\r\nBcc: x@evil.de"
    raw, message = _message(_mail(customer_name=evil), sender_name=evil + " " + "X" * 5000)

    assert message["Bcc"] is None and b"\r\nBcc:" not in raw
    assert len(message["From"].addresses[0].display_name) <= 200
    assert "Guten Tag Muster GmbH Bcc: x@evil.de," in message.get_body(("plain",)).get_content()


def test_a_typical_invoice_mail_is_far_below_sess_40_mb():
    raw, _ = _message(attachments=(Attachment("Rechnung.pdf", PDF * 10, "application", "pdf"),))
    assert len(raw) < 1_000_000


def _stubbed(error_code: str):
    import boto3

    client = boto3.client("sesv2", region_name="eu-central-1", aws_access_key_id="x", aws_secret_access_key="x")
    stubber = Stubber(client)
    stubber.add_client_error("send_email", service_error_code=error_code, service_message="nope", http_status_code=400)
    stubber.activate()
    return SesMailSender(client)


@pytest.mark.parametrize("code", ["TooManyRequestsException", "LimitExceededException", "Throttling"])
def test_ses_asking_to_slow_down_is_a_retry(code):
    with pytest.raises(MailThrottled, match=code):
        _stubbed(code).send(b"x", sender="rechnung@example.de", recipients=["a@kunde.de"])


@pytest.mark.parametrize("code", ["MessageRejected", "MailFromDomainNotVerifiedException", "SendingPausedException"])
def test_ses_refusing_the_message_is_for_good(code):
    with pytest.raises(MailRejected, match=code):
        _stubbed(code).send(b"x", sender="rechnung@example.de", recipients=["a@kunde.de"])
