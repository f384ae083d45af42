"""Invoice e-mail: requested once, sent once per recipient, resumed after throttling and crashes, followed by
SES's events (in-memory tables, queue and sender; the local stack's SES is in tests/integration)."""

from __future__ import annotations

import json

import pytest

from billing_core.domain.credit_notes import CreditNoteState
from billing_core.domain.deliveries import (
    STALE_CLAIM_MS,
    DeliveryState,
    DocumentMailState,
    delivery_id_for,
    mail_event_from,
)
from billing_core.domain.lifecycle import InvoiceStatus
from billing_core.domain.records import Account, SavedPaymentMethod
from billing_core.errors import MailThrottled
from billing_core.use_cases.document_mail import (
    DeliveryInProgress,
    DocumentMailer,
    DocumentNotMailable,
    InvalidMailMessage,
    MailSettings,
    mailing_of_message,
)
from billing_core.use_cases.einvoices import StoredEInvoices
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
from tests.support.records import a_credit_note, an_invoice

INVOICE = "inv_2024-11_acme"
XML = b"<?xml version='1.0'?><rsm:CrossIndustryInvoice/>"
PDF = b"%PDF-1.7 the invoice"


class Clock:
    def __init__(self) -> None:
        self.now = 1_764_547_200.0

    def __call__(self) -> float:
        return self.now


class MailWorld:
    def __init__(self, **account) -> None:
        self.clock = Clock()
        self.invoices = FakeInvoiceRepository()
        self.notes = FakeCreditNotes()
        self.accounts = FakeAccountRepository()
        self.deliveries = FakeDeliveries()
        self.documents = FakeDocumentStore()
        self.queue = FakeQueue()
        self.audit = FakeAuditLog()
        self.ses = FakeMailSender()
        profile = {
            "name": "Acme GmbH",
            "email": "admin@acme.de",
            "language": "de",
            "payment_method": SavedPaymentMethod("pm_1", "sepa_debit"),
            "invoice_emails": ("buchhaltung@acme.de", "chef@acme.de"),
        }
        self.accounts.put(Account("acme", **{**profile, **account}))
        self.documents.put_once("einvoices/acme/inv.xml", XML, "application/xml")
        self.documents.put_once("einvoices/acme/inv.pdf", PDF, "application/pdf")
        self.invoices.create_if_absent(
            an_invoice(
                account_id="acme",
                status=InvoiceStatus.OPEN,
                number="INV-0031",
                stripe_invoice_id="in_1",
                einvoice_xml="einvoices/acme/inv.xml",
                einvoice_pdf="einvoices/acme/inv.pdf",
            )
        )
        self.mailer = self.mailer_with(self.ses)

    def mailer_with(self, sender) -> DocumentMailer:
        return DocumentMailer(
            invoices=self.invoices,
            credit_notes=self.notes,
            accounts=self.accounts,
            deliveries=self.deliveries,
            files=StoredEInvoices(self.documents),
            queue=self.queue,
            audit=self.audit,
            sender=sender,
            settings=MailSettings("rechnung@beispiel-hosting.de", "Beispiel Hosting GmbH", "buero@beispiel-hosting.de"),
            clock=self.clock,
        )

    def deliver_queued(self) -> list:
        """What the worker does with every queued message."""
        done = []
        for body in self.queue.sent_bodies:
            document_id, round_number = mailing_of_message(body)
            done.extend(self.mailer.deliver(document_id, round_number))
        return done

    def delivery(self, recipient: str, round_number: int = 1):
        return self.deliveries.get(delivery_id_for(INVOICE, round_number, recipient))


@pytest.fixture
def world() -> MailWorld:
    return MailWorld()


def test_an_invoice_is_mailed_once_to_each_recipient_with_both_files(world):
    world.mailer.request(INVOICE)
    world.deliver_queued()

    assert [mail.recipients for mail in world.ses.sent] == [("buchhaltung@acme.de",), ("chef@acme.de",)]
    message = world.ses.sent[0].message
    assert message["Subject"] == "Rechnung INV-0031 für November 2024"
    assert message["To"] == "buchhaltung@acme.de" and message["Reply-To"] == "buero@beispiel-hosting.de"
    files = {part.get_filename(): part.get_content() for part in message.iter_attachments()}
    assert files == {"Rechnung-INV-0031.xml": XML, "Rechnung-INV-0031.pdf": PDF}
    assert "SEPA-Lastschrift" in message.get_body(("plain",)).get_content()
    sent = world.delivery("chef@acme.de")
    assert (sent.state, sent.message_id, sent.attempts, sent.possible_duplicate) == (
        DeliveryState.SENT,
        world.ses.sent[1].message_id,
        1,
        False,
    )
    assert world.mailer.status_of(INVOICE).state is DocumentMailState.DELIVERED


def test_a_rerun_neither_queues_nor_sends_again(world):
    world.mailer.request(INVOICE)
    world.mailer.request(INVOICE)
    assert len(world.queue.sent_bodies) == 1

    world.deliver_queued()
    world.deliver_queued()  # the same message delivered twice (SQS is at-least-once)

    assert len(world.ses.sent) == 2


def test_a_mailing_claimed_but_not_queued_is_queued_by_the_rerun(world):
    account = world.accounts.get("acme")
    world.deliveries.create_mailing_if_absent(
        world.mailer._new_mailing(INVOICE, account, 1, ("buchhaltung@acme.de",), "system")
    )

    world.mailer.request(INVOICE)

    assert world.queue.sent_bodies == [{"documentId": INVOICE, "round": 1}]
    assert world.deliveries.get_mailing(INVOICE, 1).queued_at is not None


def test_throttling_sends_nothing_and_leaves_the_delivery_waiting_for_the_retry(world):
    world.mailer.request(INVOICE)
    world.ses.throttle()

    with pytest.raises(MailThrottled):
        world.deliver_queued()
    waiting = world.delivery("buchhaltung@acme.de")
    assert (waiting.state, waiting.attempts) == (DeliveryState.WAITING, 0)
    assert world.ses.sent == []

    world.deliver_queued()

    assert [mail.recipients[0] for mail in world.ses.sent] == ["buchhaltung@acme.de", "chef@acme.de"]
    assert world.delivery("buchhaltung@acme.de").attempts == 1
    assert world.delivery("buchhaltung@acme.de").possible_duplicate is False


def test_a_permanent_refusal_is_recorded_and_shown_never_retried(world):
    world.mailer.request(INVOICE)
    world.ses.refuse("Email address is not verified. The following identities failed the check: rechnung@x.de")
    world.ses.refuse("Email address is not verified.")

    world.deliver_queued()
    world.deliver_queued()

    refused = world.delivery("buchhaltung@acme.de")
    assert refused.state is DeliveryState.REJECTED and "not verified" in refused.reason
    assert world.ses.sent == []
    status = world.mailer.status_of(INVOICE)
    assert status.state is DocumentMailState.NOT_DELIVERED and status.text.startswith("not delivered: buchhaltung@")
    assert [mailing.document_id for mailing, _ in world.mailer.undelivered()] == [INVOICE]


def test_a_crash_after_the_send_sends_at_most_one_duplicate_and_says_so(world):
    world.mailer.request(INVOICE)
    world.ses.crash_after_send = True
    with pytest.raises(SystemExit):
        world.deliver_queued()
    world.ses.crash_after_send = False
    assert world.delivery("buchhaltung@acme.de").state is DeliveryState.SENDING

    with pytest.raises(DeliveryInProgress):  # the claim is fresh: maybe another worker is still sending
        world.deliver_queued()
    world.clock.now += STALE_CLAIM_MS / 1000
    world.deliver_queued()

    assert [mail.recipients[0] for mail in world.ses.sent] == [
        "buchhaltung@acme.de",
        "buchhaltung@acme.de",
        "chef@acme.de",
    ]
    duplicate = world.delivery("buchhaltung@acme.de")
    assert (duplicate.state, duplicate.attempts, duplicate.possible_duplicate) == (DeliveryState.SENT, 2, True)
    assert world.delivery("chef@acme.de").possible_duplicate is False


def test_a_second_crash_mid_send_is_not_sent_a_third_time(world):
    world.mailer.request(INVOICE)
    world.ses.crash_after_send = True
    for _ in range(2):
        with pytest.raises(SystemExit):
            world.deliver_queued()
        world.clock.now += STALE_CLAIM_MS / 1000
    world.ses.crash_after_send = False

    world.deliver_queued()

    assert len(world.ses.to("buchhaltung@acme.de")) == 2
    uncertain = world.delivery("buchhaltung@acme.de")
    assert uncertain.state is DeliveryState.UNCERTAIN and "resend" in uncertain.reason


def bounce(message_id: str, address: str, kind: str = "Permanent") -> dict:
    """An SES Bounce event as the configuration set publishes it (AWS's documented example, our addresses)."""
    return {
        "eventType": "Bounce",
        "bounce": {
            "bounceType": kind,
            "bounceSubType": "General",
            "bouncedRecipients": [
                {
                    "emailAddress": address,
                    "action": "failed",
                    "status": "5.1.1",
                    "diagnosticCode": "smtp; 550 5.1.1 user unknown",
                }
            ],
            "timestamp": "2017-08-05T00:41:02.669Z",
            "feedbackId": "01000157c44f053b-61b59c11-9236-11e6-8f96-7be8aexample-000000",
        },
        "mail": {"timestamp": "2017-08-05T00:40:02.012Z", "messageId": message_id, "destination": [address]},
    }


def test_a_hard_bounce_rules_the_address_out_until_the_recipients_change(world):
    world.mailer.request(INVOICE)
    world.deliver_queued()
    first, second = world.ses.sent

    assert world.mailer.apply_event(mail_event_from(bounce(first.message_id, "buchhaltung@acme.de"))) is True
    assert world.mailer.apply_event(mail_event_from(bounce(second.message_id, "chef@acme.de"))) is True

    bounced = world.delivery("buchhaltung@acme.de")
    assert bounced.state is DeliveryState.BOUNCED and "550 5.1.1 user unknown" in bounced.reason
    account = world.accounts.get("acme")
    assert account.undeliverable_emails == ("buchhaltung@acme.de", "chef@acme.de")
    assert account.deliverable_recipients == ()
    assert world.mailer.status_of(INVOICE).text.startswith("not delivered: buchhaltung@acme.de: hard bounce (General)")
    with pytest.raises(DocumentNotMailable, match="change the account's invoice recipients"):
        world.mailer.resend(INVOICE, to=("chef@acme.de",), actor="op@example.com")


def test_a_soft_bounce_is_no_outcome_and_an_unknown_message_changes_nothing(world):
    assert mail_event_from(bounce("0100-x", "a@acme.de", kind="Transient")) is None
    assert world.mailer.apply_event(mail_event_from(bounce("0100-unknown", "a@acme.de"))) is False


def test_a_delivery_event_after_a_bounce_does_not_undo_it(world):
    world.mailer.request(INVOICE)
    world.deliver_queued()
    message_id = world.ses.sent[0].message_id
    world.mailer.apply_event(mail_event_from(bounce(message_id, "buchhaltung@acme.de")))
    delivered = {
        "eventType": "Delivery",
        "mail": {"messageId": message_id},
        "delivery": {"recipients": ["buchhaltung@acme.de"]},
    }

    assert world.mailer.apply_event(mail_event_from(delivered)) is False
    assert world.delivery("buchhaltung@acme.de").state is DeliveryState.BOUNCED


def test_a_suppressed_recipient_is_recorded_not_mailed(world):
    account = world.accounts.get("acme")
    world.accounts.update("acme", {"undeliverable_emails": ("chef@acme.de",)})
    world.deliveries.create_mailing_if_absent(
        world.mailer._new_mailing(INVOICE, account, 1, ("buchhaltung@acme.de", "chef@acme.de"), "system")
    )

    world.mailer.request(INVOICE)
    world.deliver_queued()

    assert [mail.recipients[0] for mail in world.ses.sent] == ["buchhaltung@acme.de"]
    assert world.delivery("chef@acme.de").state is DeliveryState.SUPPRESSED


def test_resend_goes_to_the_address_given_in_a_new_round_and_is_audited(world):
    world.mailer.request(INVOICE)
    world.deliver_queued()

    mailing = world.mailer.resend(INVOICE, to=("Neu@Acme.de",), actor="op@example.com")
    world.deliver_queued()

    assert (mailing.round_number, mailing.recipients) == (2, ("neu@acme.de",))
    assert [mail.recipients[0] for mail in world.ses.sent] == ["buchhaltung@acme.de", "chef@acme.de", "neu@acme.de"]
    entry = world.audit.entries()[0]
    assert (entry.action, entry.actor, entry.after["recipients"]) == ("invoice.resend", "op@example.com", "neu@acme.de")
    assert world.mailer.status_of(INVOICE).round_number == 2


def test_resend_refuses_a_bad_address_and_a_document_without_files(world):
    with pytest.raises(DocumentNotMailable, match="not one e-mail address"):
        world.mailer.resend(INVOICE, to=("chef@acme.de\r\nBcc: all@x.de",), actor="op")
    world.invoices.create_if_absent(an_invoice(account_id="acme", invoice_id="inv_2024-12_acme", number="INV-0040"))
    with pytest.raises(DocumentNotMailable, match="no e-invoice files"):
        world.mailer.resend("inv_2024-12_acme", actor="op")
    assert world.deliveries.mailings_of("inv_2024-12_acme") == []


def test_an_account_without_recipients_gets_a_mailing_that_says_so(world):
    world.accounts.put(Account("acme", name="Acme GmbH"))

    world.mailer.request(INVOICE)

    assert world.queue.sent_bodies == []
    assert world.mailer.status_of(INVOICE).text == "not delivered: no recipient to send it to"


def test_a_credit_note_is_mailed_with_its_title_and_settlement(world):
    invoice = world.invoices.get("acme", INVOICE)
    world.documents.put_once("einvoices/acme/cn.xml", b"<cn/>", "application/xml")
    world.documents.put_once("einvoices/acme/cn.pdf", b"%PDF cn", "application/pdf")
    note = a_credit_note(
        invoice,
        state=CreditNoteState.ISSUED,
        number="INV-0031-CN-01",
        einvoice_xml="einvoices/acme/cn.xml",
        einvoice_pdf="einvoices/acme/cn.pdf",
    )
    world.notes.create_if_absent(note)
    world.accounts.update("acme", {"language": "en"})

    world.mailer.request(note.credit_note_id)
    world.deliver_queued()

    message = world.ses.sent[0].message
    assert message["Subject"] == "Credit note INV-0031-CN-01 for November 2024"
    assert message["Content-Language"] == "en"
    assert "refunded to the original payment method" in message.get_body(("plain",)).get_content()
    assert [part.get_filename() for part in message.iter_attachments()] == [
        "Rechnungskorrektur-INV-0031-CN-01.xml",
        "Rechnungskorrektur-INV-0031-CN-01.pdf",
    ]


def test_a_failed_payment_mail_links_the_billing_tab(world):
    world.invoices.update("acme", INVOICE, {"status": InvoiceStatus.PAYMENT_FAILED})
    mailer = DocumentMailer(
        invoices=world.invoices,
        credit_notes=world.notes,
        accounts=world.accounts,
        deliveries=world.deliveries,
        files=StoredEInvoices(world.documents),
        queue=world.queue,
        audit=world.audit,
        sender=world.ses,
        settings=MailSettings("rechnung@beispiel-hosting.de", billing_page_url="https://billing.example.de/billing"),
        clock=world.clock,
    )

    mailer.request(INVOICE)
    mailer.deliver(INVOICE, 1)

    assert (
        "Bitte zahlen Sie hier: https://billing.example.de/billing"
        in world.ses.sent[0].message.get_body(("plain",)).get_content()
    )


@pytest.mark.parametrize(
    "body", [[], {"documentId": "x_1", "round": 1}, {"documentId": INVOICE, "round": 0}, {"documentId": INVOICE}]
)
def test_a_message_that_names_no_mailing_is_refused(body):
    with pytest.raises(InvalidMailMessage):
        mailing_of_message(json.loads(json.dumps(body)))
