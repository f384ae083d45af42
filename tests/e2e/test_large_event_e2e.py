"""End to end: an event larger than an SQS message (up to 256 KiB) still reaches the worker, once.

The receiver takes bodies up to 1 MiB. One over SQS's limit is queued as a claim check (its id);
the stack's scheduler-worker reads the event from Stripe (``GET /v1/events/{id}``) and applies it.
"""

from __future__ import annotations

import json
import time
import uuid

import requests

from billing_core.adapters.dynamodb import DynamoAccountRepository
from billing_core.adapters.dynamodb_events import DynamoProcessedEvents
from billing_core.adapters.sqs import SqsMessageQueue
from stripe_emulator import sign_payload
from tests.support.observe import event_applications
from tests.support.stripe_events import account_item, aws_client, stack_endpoint_disabled, wait_for

EVENT_BYTES = 700 * 1024


def test_a_700_kib_event_reaches_the_worker_through_a_claim_check_and_is_applied_once(clean_stack):
    stack, client = clean_stack, clean_stack.stripe_client()
    dynamodb = aws_client(stack, "dynamodb")
    accounts = DynamoAccountRepository(dynamodb, stack.info["tables"]["payment_methods"])
    ledger = DynamoProcessedEvents(dynamodb, stack.info["tables"]["events"])
    stripe_events = SqsMessageQueue(aws_client(stack, "sqs"), stack.info["queues"]["stripe_events"])
    account_id = f"user-{uuid.uuid4().hex[:8]}"
    customer = client.v1.customers.create(
        params={"email": f"{account_id}@example.com", "metadata": {"userId": account_id}}
    )
    accounts.put(account_item(account_id, customer.id))

    # Stripe keeps the event but does not deliver it: this test delivers it, grown past SQS's limit.
    with stack_endpoint_disabled(stack):
        intent = client.v1.setup_intents.create(params={"customer": customer.id, "metadata": {"userId": account_id}})
        confirmed = client.v1.setup_intents.confirm(intent.id, params={"payment_method": "pm_card_visa"})
    [event] = [
        e
        for e in client.v1.events.list(params={"type": "setup_intent.succeeded"}).auto_paging_iter()
        if e.data.object["id"] == intent.id
    ]
    delivered = event.to_dict()
    # As an object with many entries would be: the size is in the object, the envelope stays Stripe's.
    delivered["data"]["object"]["padding"] = "x" * EVENT_BYTES
    body = json.dumps(delivered)
    assert len(body.encode()) > EVENT_BYTES

    def deliver() -> requests.Response | None:
        response = requests.post(
            stack.info["webhook_url"],
            data=body.encode(),
            timeout=30,
            headers={
                "Content-Type": "application/json",
                "Stripe-Signature": sign_payload(body, stack.info["stripe_webhook_secret"], int(time.time())),
            },
        )
        return response if response.status_code != 400 else None

    # As Stripe does: a refused delivery is sent again (the stack's reset has just rotated the signing
    # secret, which the receiver picks up at its next read of Secrets Manager).
    response = wait_for(deliver, timeout=30, interval=1.0, what="the receiver to accept the signed event")
    assert response.status_code == 200 and response.json() == {"received": True, "enqueued": True}
    wait_for(
        lambda: getattr(accounts.get(account_id), "payment_method", None),
        timeout=60,
        what="the payment method stored by the worker",
    )
    assert accounts.get(account_id).payment_method.type == "card"
    assert event_applications(ledger, event.id) == 1
    default = client.v1.customers.retrieve(customer.id).invoice_settings.default_payment_method
    assert default == confirmed.payment_method
    assert stripe_events.dead_letter_depth() == 0
