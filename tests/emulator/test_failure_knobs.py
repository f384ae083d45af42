"""Failures as Stripe has them: a 500 after execution began, a failed finalization, asynchronous collection."""

from __future__ import annotations

import pytest
import requests
import stripe

from tests.emulator.conftest import SECRET_KEY, make_customer
from tests.support.emulator import wait_for

HEADERS = {"Authorization": f"Bearer {SECRET_KEY}"}


def test_a_500_after_execution_is_saved_under_the_key_and_replayed_with_should_retry_false(emulator, control):
    control.configure(fault_after_execution_next_n=1)
    first = requests.post(
        f"{emulator.url}/v1/customers",
        data={"email": "x@example.com"},
        headers={**HEADERS, "Idempotency-Key": "k-500"},
        timeout=5,
    )
    again = requests.post(
        f"{emulator.url}/v1/customers",
        data={"email": "x@example.com"},
        headers={**HEADERS, "Idempotency-Key": "k-500"},
        timeout=5,
    )

    assert (first.status_code, first.headers["Stripe-Should-Retry"]) == (500, "false")
    assert (again.status_code, again.headers["Stripe-Should-Retry"]) == (500, "false")
    assert again.headers["Idempotent-Replayed"] == "true"
    assert control.objects()["customer"] == 1  # the request had taken effect, once


def test_the_sdk_does_not_retry_a_500_that_says_it_should_not_be(emulator, control):
    client = stripe.StripeClient(SECRET_KEY, base_addresses={"api": emulator.url}, max_network_retries=3)
    control.configure(fault_after_execution_next_n=1)

    with pytest.raises(stripe.APIError):
        client.v1.customers.create(params={"email": "y@example.com"})

    assert control.requests()["requests"]["POST /v1/customers"] == 1


def test_a_failed_finalization_keeps_the_draft_says_why_and_emits_its_event(client, control, receiver):
    customer = make_customer(client, "pm_card_visa")
    draft = client.v1.invoices.create(params={"customer": customer.id, "currency": "eur"})
    client.v1.invoices.add_lines(draft.id, params={"lines": [{"amount": 500, "description": "x"}]})
    control.configure(finalization_failures_next_n=1)

    with pytest.raises(stripe.InvalidRequestError):
        client.v1.invoices.finalize_invoice(draft.id, options={"idempotency_key": "fin-1"})
    with pytest.raises(stripe.InvalidRequestError):  # the same key replays the failure
        client.v1.invoices.finalize_invoice(draft.id, options={"idempotency_key": "fin-1"})

    invoice = client.v1.invoices.retrieve(draft.id)
    assert invoice.status == "draft" and "could not be finalized" in invoice.last_finalization_error.message
    wait_for(lambda: receiver.of_type("invoice.finalization_failed"))
    finalized = client.v1.invoices.finalize_invoice(draft.id, options={"idempotency_key": "fin-2"})
    assert finalized.status == "open" and finalized.last_finalization_error is None  # cleared, as on Stripe


def test_automatic_collection_happens_after_the_finalize_answer(client, control, receiver):
    control.configure(auto_charge_delay=0.5)
    customer = make_customer(client, "pm_card_visa")
    draft = client.v1.invoices.create(params={"customer": customer.id, "currency": "eur", "auto_advance": True})
    client.v1.invoices.add_lines(draft.id, params={"lines": [{"amount": 500, "description": "x"}]})

    finalized = client.v1.invoices.finalize_invoice(draft.id)

    assert finalized.status == "open" and finalized.next_payment_attempt is not None
    wait_for(lambda: receiver.of_type("invoice.paid"))
    assert client.v1.invoices.retrieve(draft.id).status == "paid"
