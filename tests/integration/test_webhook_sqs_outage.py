"""SQS down: the receiver answers 503, Stripe retries, and once SQS is back the event is applied."""

from __future__ import annotations

import uuid

from billing_core.adapters.dynamodb import DynamoAccountRepository, DynamoInvoiceRepository
from billing_core.bootstrap import WebhookReceiverUseCases, webhook_receiver_ports
from tests.support.servers import WsgiServer
from tests.support.stripe_events import (
    SwitchableProxy,
    account_item,
    aws_client,
    billing_record,
    customer_with_card,
    deliveries,
    draft_invoice,
    receiver_sqs_client,
    stack_endpoint_disabled,
    store_webhook_secret,
    wait_for,
)
from webhook_receiver import create_app


def test_sqs_outage_answers_503_and_the_emulators_retry_delivers_once_sqs_is_back(clean_stack):
    stack, client = clean_stack, clean_stack.stripe_client()
    dynamodb = aws_client(stack, "dynamodb")
    invoices = DynamoInvoiceRepository(dynamodb, stack.info["tables"]["billing"])
    account_id = f"user-{uuid.uuid4().hex[:8]}"
    invoice_id = f"inv_2024-11_{account_id}"
    customer = customer_with_card(client, account_id)
    accounts = DynamoAccountRepository(dynamodb, stack.info["tables"]["payment_methods"])
    accounts.put(account_item(account_id, customer.id))
    draft = draft_invoice(client, customer.id, account_id, invoice_id)
    invoices.create_if_absent(billing_record(account_id, invoice_id, draft.id))

    proxy = SwitchableProxy(stack.info["aws_endpoint"])
    with stack_endpoint_disabled(stack):
        endpoint = client.v1.webhook_endpoints.create(
            params={"url": "http://placeholder.invalid/", "enabled_events": ["invoice.finalized", "invoice.paid"]},
        )
        # This receiver sends to the stack's stripe-events queue through the proxy; the stack's worker applies.
        settings = stack.settings(STRIPE_SECRET_ID=store_webhook_secret(stack, [endpoint.secret]))
        services = webhook_receiver_ports(
            settings,
            clients={
                "sqs": receiver_sqs_client(stack, endpoint=proxy.url),
                "secretsmanager": aws_client(stack, "secretsmanager"),
            },
        )
        try:
            with WsgiServer(create_app(settings, WebhookReceiverUseCases(services))) as receiver:
                client.v1.webhook_endpoints.update(endpoint.id, params={"url": receiver.base_url + "/billing/webhook"})
                proxy.up = False
                client.v1.invoices.finalize_invoice(draft.id)  # auto-charges pm_card_visa: finalized, then paid

                refused = wait_for(
                    lambda: [d for d in deliveries(stack, event_type="invoice.paid") if d["status_code"] == 503],
                    timeout=20,
                    what="a delivery refused with 503 while SQS is down",
                )
                assert invoices.get(account_id, invoice_id).status == "draft"
                proxy.up = True

                record = wait_for(
                    lambda: (r := invoices.get(account_id, invoice_id)) and r.status == "paid" and r,
                    timeout=30,
                    what="the paid invoice applied after SQS returned",
                )
        finally:
            proxy.close()
            client.v1.webhook_endpoints.delete(endpoint.id)

    paid = client.v1.invoices.retrieve(draft.id)
    assert record.stripe.number == paid.number
    assert record.payment.paid_at == paid.status_transitions.paid_at * 1000
    assert record.stripe.hosted_invoice_url == paid.hosted_invoice_url
    attempts = deliveries(stack, event_type="invoice.paid")
    assert refused[0]["attempt"] == 1
    assert [a["status_code"] for a in attempts][-1] == 200
    assert {a["status_code"] for a in attempts} == {503, 200}
