"""Invoice e-mail on the local stack: the worker mails the seed month's invoice through SES (moto), a hard
bounce comes back through SNS and SQS, the operator resends it."""

from __future__ import annotations

import json

from billing_core.domain.deliveries import DeliveryState, DocumentMailState
from billing_core.domain.invoice_mail import period_text
from billing_core.use_cases.einvoices import StoredEInvoices
from local_stack.demo import wait_for
from local_stack.mailbox import sent_messages
from tests.e2e.test_billing_run import SETTLE_SECONDS, billing_run, record_with, status_is
from tests.e2e.test_corrections_e2e import german
from tests.e2e.test_operator_accounts_e2e import billing
from tests.integration.test_billing_run_resume import new_account, seed_period
from tests.support.xrechnung import assert_valid_xrechnung


def _status(services, document_id):
    from billing_core.bootstrap import WorkerUseCases

    return WorkerUseCases(services).document_mailer.status_of(document_id)


def _sent_ids(services, document_id, round_number=1):
    status = _status(services, document_id)
    if status.round_number != round_number:
        return None
    ids = [d.message_id for d in status.deliveries if d.state is DeliveryState.SENT]
    return ids if len(ids) == len(status.deliveries) and ids else None


def test_the_invoice_is_mailed_with_its_xrechnung_a_bounce_rules_the_address_out_and_a_resend_reaches(
    clean_stack, services
):
    account_id = new_account(clean_stack, services)
    german(services, account_id, invoice_emails=("buchhaltung@kunde.example", "chef@kunde.example"))
    period = seed_period(clean_stack)
    assert billing_run(services, period)[0] == 0
    record = record_with(services, account_id, period, lambda r: r.einvoice.xml is not None)
    record = record_with(services, account_id, period, status_is("paid"))

    message_ids = wait_for(lambda: _sent_ids(services, record.invoice_id), SETTLE_SECONDS)
    assert message_ids, _status(services, record.invoice_id)
    outbox = {m.message_id: m for m in sent_messages(clean_stack.info["aws_endpoint"])}
    first, second = (outbox[message_id] for message_id in message_ids)
    # moto lists a recipient once per place it names it (Destination and the To header).
    assert (set(first.destinations), set(second.destinations)) == (
        {"buchhaltung@kunde.example"},
        {"chef@kunde.example"},
    )
    assert first.source == clean_stack.info["mail"]["sender"]

    message = first.message
    assert message["Subject"] == f"Rechnung {record.stripe.number} für {_month_de(period)}"
    assert message["To"] == "buchhaltung@kunde.example" and message["Content-Language"] == "de"
    body = message.get_body(("plain",)).get_content()
    assert "Guten Tag Muster GmbH," in body and "44,91 EUR" in body and "hinterlegten Karte" in body
    attachments = {part.get_filename(): part.get_content() for part in message.iter_attachments()}
    stored = StoredEInvoices(services.documents)
    xml = stored.file(record, "xrechnung").body
    assert attachments == {
        f"Rechnung-{record.stripe.number}.xml": xml,
        f"Rechnung-{record.stripe.number}.pdf": stored.file(record, "zugferd").body,
    }
    assert_valid_xrechnung(attachments[f"Rechnung-{record.stripe.number}.xml"])

    # A rerun of the month sends nothing again.
    assert billing_run(services, period)[0] == 0
    recipients = {"buchhaltung@kunde.example", "chef@kunde.example"}
    again = [m for m in sent_messages(clean_stack.info["aws_endpoint"]) if m.message_id not in outbox]
    assert [m for m in again if recipients & set(m.destinations)] == []
    assert _status(services, record.invoice_id).round_number == 1

    # SES reports a hard bounce through the configuration set's topic (moto has no event destinations:
    # the test publishes what SES would, AWS's documented Bounce record with our message id).
    clean_stack.aws_client("sns").publish(
        TopicArn=clean_stack.info["mail"]["events_topic"],
        Message=json.dumps(_bounce(first.message_id, "buchhaltung@kunde.example")),
    )
    bounced = wait_for(lambda: services.accounts.get(account_id).undeliverable_emails or None, SETTLE_SECONDS)
    assert bounced == ("buchhaltung@kunde.example",)
    code, shown, err = billing(services, "invoices", "mail", record.invoice_id)
    assert code == 0, err
    assert "buchhaltung@kunde.example" in shown and "bounced" in shown and "550 5.1.1" in shown

    # The operator sends it to a new address; the bounced one is refused until the recipients change.
    code, _, err = billing(services, "invoices", "resend", record.invoice_id, "--to", "buchhaltung@kunde.example")
    assert code == 1 and "change the account's invoice recipients" in err
    code, out, err = billing(services, "invoices", "resend", record.invoice_id, "--to", "rechnungen@kunde.example")
    assert code == 0, err
    [resent_id] = wait_for(lambda: _sent_ids(services, record.invoice_id, 2), SETTLE_SECONDS)
    resent = {m.message_id: m for m in sent_messages(clean_stack.info["aws_endpoint"])}[resent_id]
    assert set(resent.destinations) == {"rechnungen@kunde.example"}
    assert _status(services, record.invoice_id).state is DocumentMailState.DELIVERED
    entry = services.audit.entries(account_id=account_id, limit=5)[0]
    assert entry.action == "invoice.resend" and entry.after["recipients"] == "rechnungen@kunde.example"


def _month_de(period) -> str:
    return period_text(period.year, period.month, "de")


def _bounce(message_id: str, address: str) -> dict:
    return {
        "eventType": "Bounce",
        "bounce": {
            "bounceType": "Permanent",
            "bounceSubType": "General",
            "bouncedRecipients": [
                {
                    "emailAddress": address,
                    "action": "failed",
                    "status": "5.1.1",
                    "diagnosticCode": "smtp; 550 5.1.1 user unknown",
                }
            ],
            "timestamp": "2026-12-03T00:41:02.669Z",
            "feedbackId": "01000157c44f053b-61b59c11-9236-11e6-8f96-7be8aexample-000000",
        },
        "mail": {"timestamp": "2026-12-03T00:40:02.012Z", "messageId": message_id, "destination": [address]},
    }
