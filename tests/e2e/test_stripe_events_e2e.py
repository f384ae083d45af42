"""End to end: 200 invoices paid in the Stripe emulator, every webhook delivered twice and out of order,
through the stack's webhook-receiver (gunicorn) and scheduler-worker; every record ends right,
no event applied twice."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor

from billing_core.adapters.dynamodb import DynamoAccountRepository, DynamoInvoiceRepository
from billing_core.adapters.dynamodb_events import DynamoProcessedEvents
from tests.support.observe import event_applications
from tests.support.stripe_events import (
    account_item,
    aws_client,
    billing_record,
    customer_with_card,
    deliveries,
    draft_invoice,
    emulator_knobs,
    stack_endpoint_subscribed_to,
    wait_for,
)

INVOICES = 200
INVOICE_EVENTS = ("invoice.finalized", "invoice.paid")


def test_duplicated_and_reordered_webhooks_for_200_invoices_end_in_correct_records_applied_once(clean_stack):
    stack, client = clean_stack, clean_stack.stripe_client()
    dynamodb = aws_client(stack, "dynamodb")
    invoices = DynamoInvoiceRepository(dynamodb, stack.info["tables"]["billing"])
    accounts = DynamoAccountRepository(dynamodb, stack.info["tables"]["payment_methods"])
    ledger = DynamoProcessedEvents(dynamodb, stack.info["tables"]["events"])
    run = uuid.uuid4().hex[:6]

    def bill(n: int) -> tuple[str, str, str]:
        account_id = f"user-{run}-{n:03d}"
        invoice_id = f"inv_2024-11_{account_id}"
        customer = customer_with_card(client, account_id)
        accounts.put(account_item(account_id, customer.id))
        draft = draft_invoice(client, customer.id, account_id, invoice_id)
        invoices.create_if_absent(billing_record(account_id, invoice_id, draft.id))
        client.v1.invoices.finalize_invoice(draft.id)  # charges pm_card_visa: finalized, then paid
        return account_id, invoice_id, draft.id

    # The endpoint gets the invoice events only, as a production endpoint subscribes to what it uses.
    subscribed = stack_endpoint_subscribed_to(stack, list(INVOICE_EVENTS))
    with subscribed, emulator_knobs(stack, duplicate_deliveries=1, reorder_window=1.0):
        with ThreadPoolExecutor(max_workers=4) as pool:
            keys = list(pool.map(bill, range(INVOICES)))

        def all_paid() -> bool:
            return all(getattr(invoices.get(u, i), "status", None) == "paid" for u, i, _ in keys)

        wait_for(all_paid, timeout=180, what=f"{INVOICES} records to reach paid", interval=1.0)

    stripe_invoices = {i.id: i for i in client.v1.invoices.list(params={"limit": 100}).auto_paging_iter()}
    for account_id, invoice_id, stripe_id in keys:
        record, paid = invoices.get(account_id, invoice_id), stripe_invoices[stripe_id]
        assert (record.status, record.stripe.number, record.stripe.hosted_invoice_url, record.stripe.invoice_pdf) == (
            "paid",
            paid.number,
            paid.hosted_invoice_url,
            paid.invoice_pdf,
        ), invoice_id
        assert record.payment.paid_at == paid.status_transitions.paid_at * 1000
        assert record.payment.attempt_count == 1 and record.payment.next_payment_attempt is None

    events = list(client.v1.events.list(params={"types": list(INVOICE_EVENTS), "limit": 100}).auto_paging_iter())
    assert len(events) == INVOICES * len(INVOICE_EVENTS)
    assert {e.id: event_applications(ledger, e.id) for e in events} == {e.id: 1 for e in events}
    # The knobs were on: every event went out twice, so the receiver and worker did see duplicates.
    delivered = [d for d in deliveries(stack, event_type="invoice.paid") if d["delivered"]]
    assert len(delivered) >= 2 * INVOICES
