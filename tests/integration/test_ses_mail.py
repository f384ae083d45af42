"""The SES mail sender against moto's SES v2 over HTTP: the raw message arrives as built, unverified is refused."""

from __future__ import annotations

import email
from decimal import Decimal
from email.policy import default

import pytest
import requests

from billing_core.adapters.ses_mail import SesMailSender
from billing_core.domain.invoice_mail import Attachment, DocumentMail, document_message
from billing_core.errors import MailRejected
from tests.support.aws import running_aws

XML = b"<?xml version='1.0' encoding='UTF-8'?><rsm:CrossIndustryInvoice/>"
PDF = b"%PDF-1.7\n" + bytes(range(256)) * 20


@pytest.fixture(scope="module")
def aws():
    yield from running_aws()


def _raw(sender: str) -> bytes:
    mail = DocumentMail("INV-0031", False, False, "Oktober 2026", Decimal("44.91"), "EUR", "card", "de", "Muster GmbH")
    return document_message(
        mail,
        sender=sender,
        sender_name="Beispiel Hosting GmbH",
        reply_to=None,
        recipients=("a@kunde.de",),
        attachments=(
            Attachment("Rechnung-INV-0031.xml", XML, "application", "xml"),
            Attachment("Rechnung-INV-0031.pdf", PDF, "application", "pdf"),
        ),
    )


def _sent(aws) -> list[dict]:
    data = requests.get(f"{aws.info['aws_endpoint']}/moto-api/data.json", timeout=10).json()
    return data["ses"]["RawMessage"]


def test_a_message_from_a_verified_domain_is_sent_as_built(aws):
    client = aws.client("sesv2")
    client.create_email_identity(EmailIdentity="example.de")
    raw = _raw("rechnung@example.de")

    message_id = SesMailSender(client).send(raw, sender="rechnung@example.de", recipients=["a@kunde.de"])

    [sent] = [m for m in _sent(aws) if m["id"] == message_id]
    assert sent["source"] == "rechnung@example.de" and "a@kunde.de" in sent["destinations"]
    received = email.message_from_bytes(sent["raw_data"].encode(), policy=default)
    assert received["Subject"] == "Rechnung INV-0031 für Oktober 2026"
    files = {part.get_filename(): part.get_content() for part in received.iter_attachments()}
    assert files == {"Rechnung-INV-0031.xml": XML, "Rechnung-INV-0031.pdf": PDF}


def test_a_sender_ses_has_not_verified_is_refused_for_good(aws):
    with pytest.raises(MailRejected, match="MessageRejected"):
        SesMailSender(aws.client("sesv2")).send(
            _raw("rechnung@unverified.example"), sender="rechnung@unverified.example", recipients=["a@kunde.de"]
        )
