"""Chaos: Stripe's API answers 500 to everything for two minutes while 100 events arrive.

Each event (``setup_intent.succeeded``) needs Stripe to be applied: the worker makes the payment
method the customer's default there and reads it back. The events go through the stack's
webhook-receiver (gunicorn), SQS and its scheduler-worker process; the worker backs off and retries
until Stripe is back. Every event must end applied exactly once, and nothing in the dead-letter queue.
"""

from __future__ import annotations

import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import requests

from billing_core.adapters.dynamodb import DynamoAccountRepository
from billing_core.adapters.dynamodb_events import DynamoProcessedEvents
from billing_core.adapters.sqs import SqsMessageQueue
from tests.support.observe import event_applications, waiting_messages
from tests.support.stripe_events import (
    account_item,
    aws_client,
    deliveries,
    emulator_knobs,
    stack_endpoint_subscribed_to,
    wait_for,
)

EVENTS = 100
OUTAGE_SECONDS = 120


def _emulator_faults(stack) -> int:
    stats = requests.get(stack.info["stripe_api_base"] + "/_emulator/requests", timeout=5).json()
    return int(stats["rejected"].get("faults", 0))


def test_a_two_minute_stripe_outage_while_100_events_arrive_ends_with_each_applied_once_and_no_dead_letter(
    clean_stack,
):
    stack, client = clean_stack, clean_stack.stripe_client()
    dynamodb = aws_client(stack, "dynamodb")
    accounts = DynamoAccountRepository(dynamodb, stack.info["tables"]["payment_methods"])
    ledger = DynamoProcessedEvents(dynamodb, stack.info["tables"]["events"])
    stripe_events = SqsMessageQueue(aws_client(stack, "sqs"), stack.info["queues"]["stripe_events"])
    run = uuid.uuid4().hex[:6]

    def customer(n: int) -> tuple[str, str]:
        account_id = f"user-{run}-{n:03d}"
        created = client.v1.customers.create(
            params={"email": f"{account_id}@example.com", "metadata": {"userId": account_id}}
        )
        accounts.put(account_item(account_id, created.id))
        return account_id, created.id

    with ThreadPoolExecutor(max_workers=4) as pool:
        customers = list(pool.map(customer, range(EVENTS)))

    def set_up_card(account: tuple[str, str]) -> str:
        intent = client.v1.setup_intents.create(params={"customer": account[1], "metadata": {"userId": account[0]}})
        client.v1.setup_intents.confirm(intent.id, params={"payment_method": "pm_card_visa"})
        return intent.id

    # The deliveries are held back 20 to 60 s, so they all arrive while Stripe's API is down.
    subscribed = stack_endpoint_subscribed_to(stack, ["setup_intent.succeeded"])
    with subscribed, emulator_knobs(stack, delivery_delay=20.0, reorder_window=40.0):
        with ThreadPoolExecutor(max_workers=4) as pool:
            intents = set(pool.map(set_up_card, customers))
        faults_before = _emulator_faults(stack)
        outage_started = time.monotonic()
        with emulator_knobs(stack, fault_rate=1.0):
            wait_for(
                lambda: (
                    len(
                        {
                            d["event_id"]
                            for d in deliveries(stack, event_type="setup_intent.succeeded")
                            if d["delivered"]
                        }
                    )
                    == EVENTS
                ),
                timeout=OUTAGE_SECONDS - 5,
                what=f"{EVENTS} events delivered during the outage",
                interval=2.0,
            )
            time.sleep(max(0.0, OUTAGE_SECONDS - (time.monotonic() - outage_started)))
            faults = _emulator_faults(stack) - faults_before
        outage_ended = time.monotonic()

        def all_applied() -> bool:
            return all(getattr(accounts.get(account_id), "payment_method", None) for account_id, _ in customers)

        wait_for(all_applied, timeout=300, what=f"the {EVENTS} payment methods stored after the outage", interval=2.0)
        caught_up = time.monotonic() - outage_ended

    assert faults > EVENTS  # the worker did meet the outage, more than once per event
    events = [
        event
        for event in client.v1.events.list(params={"type": "setup_intent.succeeded", "limit": 100}).auto_paging_iter()
        if event.data.object["id"] in intents
    ]
    assert len(events) == EVENTS
    assert {event.id: event_applications(ledger, event.id) for event in events} == {event.id: 1 for event in events}
    for account_id, _ in customers:
        assert accounts.get(account_id).payment_method.type == "card"
    assert stripe_events.dead_letter_depth() == 0
    wait_for(lambda: waiting_messages(stripe_events) == 0, timeout=30, what="the stripe-events queue drained")
    print(
        f"\nstripe outage: {OUTAGE_SECONDS} s of 500s, {EVENTS} events, {faults} Stripe requests refused; every "
        f"event applied once {caught_up:.0f} s after Stripe was back; 0 dead letters"
    )
