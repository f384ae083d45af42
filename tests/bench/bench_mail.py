"""Benchmark of the invoice e-mail (``make bench``; not part of ``make test``).

1,000 issued invoices, one recipient each, e-mailed through the worker's document-mail handler and the
paced sender at ``SES_MAX_SEND_RATE=14`` to a stand-in for SES that throttles like SES does (more than 14
messages within one second is a ``Throttling`` refusal). Each message carries the seed invoice's real
XRechnung and ZUGFeRD PDF. Figures: e-mails per second / 14 (goal >= 0.9), SES refusals for the rate
(goal 0), and the size of one message against SES's 40 MB limit. Prints one JSON line.
"""

from __future__ import annotations

import json
import time
from decimal import Decimal

from billing_core.adapters.einvoice_files import EInvoiceFiles
from billing_core.adapters.ses_mail import PacedMailSender
from billing_core.domain.invoice_mail import MAX_MESSAGE_BYTES
from billing_core.domain.lifecycle import InvoiceStatus
from billing_core.domain.records import Account, SavedPaymentMethod
from billing_core.errors import MailThrottled
from billing_core.ports import ReceivedMessage
from billing_core.use_cases.document_mail import DocumentMailer, MailSettings
from billing_core.use_cases.einvoices import StoredEInvoices
from scheduler_worker.document_mail import document_mail_handler
from tests.support.fakes import (
    FakeAccountRepository,
    FakeAuditLog,
    FakeCreditNotes,
    FakeDeliveries,
    FakeDocumentStore,
    FakeInvoiceRepository,
    FakeQueue,
)
from tests.support.mail_fakes import FakeMailSender
from tests.support.records import an_invoice
from tests.unit.einvoice_fixtures import an_einvoice

INVOICES = 1_000
SES_RATE = 14


def test_mail_throughput_at_the_ses_sending_rate():
    writer = EInvoiceFiles()
    einvoice = an_einvoice()
    xml = writer.xrechnung(einvoice)
    pdf = writer.zugferd(einvoice, xml)
    documents = FakeDocumentStore()
    documents.put_once("x.xml", xml, "application/xml")
    documents.put_once("x.pdf", pdf, "application/pdf")
    invoices, accounts, deliveries, queue = (
        FakeInvoiceRepository(),
        FakeAccountRepository(),
        FakeDeliveries(),
        FakeQueue(),
    )
    for number in range(INVOICES):
        account_id = f"acct-{number:04d}"
        accounts.put(
            Account(
                account_id,
                name="Muster GmbH",
                email=f"buchhaltung@kunde-{number}.example",
                payment_method=SavedPaymentMethod("pm_1", "sepa_debit"),
            )
        )
        invoices.create_if_absent(
            an_invoice(
                account_id=account_id,
                status=InvoiceStatus.OPEN,
                number=f"INV-{number:04d}",
                einvoice_xml="x.xml",
                einvoice_pdf="x.pdf",
            )
        )
    ses = FakeMailSender(max_rate=SES_RATE)
    mailer = DocumentMailer(
        invoices=invoices,
        credit_notes=FakeCreditNotes(),
        accounts=accounts,
        deliveries=deliveries,
        files=StoredEInvoices(documents),
        queue=queue,
        audit=FakeAuditLog(),
        sender=PacedMailSender.at_rate(ses, Decimal(SES_RATE)),
        settings=MailSettings("rechnung@beispiel-hosting.de", "Beispiel Hosting GmbH"),
    )
    for number in range(INVOICES):
        mailer.request(f"inv_2024-11_acct-{number:04d}")
    handle = document_mail_handler(mailer)
    bodies = [json.dumps(body) for body in queue.sent_bodies]

    started = time.monotonic()
    retried = 0
    for index, body in enumerate(bodies):
        message = ReceivedMessage(f"m{index}", body, f"r{index}")
        while True:
            try:
                handle(message)
                break
            except MailThrottled:
                retried += 1
                time.sleep(1.0)  # the consumer's back-off is longer; any refusal here is a pacing fault
    seconds = time.monotonic() - started

    rate = len(ses.sent) / seconds
    size = len(ses.sent[0].raw)
    print(
        json.dumps(
            {
                "benchmark": "invoice e-mail at the SES sending rate",
                "emails": len(ses.sent),
                "seconds": round(seconds, 2),
                "emailsPerSecond": round(rate, 2),
                "ofSesRate": round(rate / SES_RATE, 3),
                "goal": 0.9,
                "sesThrottled": ses.throttled,
                "messageBytes": size,
                "ofSesLimit": round(size / MAX_MESSAGE_BYTES, 5),
            }
        )
    )
    assert len(ses.sent) == INVOICES and len({m.recipients for m in ses.sent}) == INVOICES
    assert rate / SES_RATE >= 0.9
    assert ses.throttled == 0 and retried == 0
