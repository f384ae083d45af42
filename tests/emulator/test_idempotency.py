"""Idempotency-Key: replays, conflicts, expiry and concurrent reuse."""

from __future__ import annotations

import threading

import pytest
import requests
import stripe

from tests.emulator.conftest import SECRET_KEY, make_customer, open_invoice


def test_same_key_and_parameters_replays_the_first_response_without_a_new_object(client, receiver, control):
    first = client.v1.customers.create(params={"email": "a@example.com"}, options={"idempotency_key": "cus-1"})
    again = client.v1.customers.create(params={"email": "a@example.com"}, options={"idempotency_key": "cus-1"})

    assert again.id == first.id
    assert control.objects()["customer"] == 1
    stats = control.requests()
    assert stats["requests"]["POST /v1/customers"] == 2
    assert stats["idempotent_replays"]["POST /v1/customers"] == 1
    events = client.v1.events.list(params={"type": "customer.created"})
    assert len(events.data) == 1


def test_replay_is_marked_with_the_idempotent_replayed_header(emulator, client):
    headers = {"Authorization": f"Bearer {SECRET_KEY}", "Idempotency-Key": "raw-1"}
    first = requests.post(f"{emulator.url}/v1/customers", data={"name": "Raw"}, headers=headers, timeout=5)
    second = requests.post(f"{emulator.url}/v1/customers", data={"name": "Raw"}, headers=headers, timeout=5)
    assert "Idempotent-Replayed" not in first.headers
    assert second.headers["Idempotent-Replayed"] == "true"
    assert second.status_code == first.status_code == 200
    assert second.json() == first.json()


def test_same_key_with_other_parameters_is_an_idempotency_error(client, control):
    client.v1.customers.create(params={"email": "a@example.com"}, options={"idempotency_key": "cus-2"})
    with pytest.raises(stripe.IdempotencyError) as raised:
        client.v1.customers.create(params={"email": "b@example.com"}, options={"idempotency_key": "cus-2"})
    assert raised.value.http_status == 400
    assert raised.value.json_body["error"]["type"] == "idempotency_error"
    assert control.objects()["customer"] == 1


def test_same_key_on_another_endpoint_is_an_idempotency_error(client):
    customer = client.v1.customers.create(params={"email": "a@example.com"}, options={"idempotency_key": "k"})
    with pytest.raises(stripe.IdempotencyError):
        client.v1.invoices.create(params={"customer": customer.id}, options={"idempotency_key": "k"})


def test_expired_key_executes_again(client, control):
    control.configure(idempotency_ttl=0.0)
    first = client.v1.customers.create(params={"email": "a@example.com"}, options={"idempotency_key": "old"})
    second = client.v1.customers.create(params={"email": "a@example.com"}, options={"idempotency_key": "old"})
    assert first.id != second.id
    assert control.objects()["customer"] == 2


def test_validation_errors_are_not_saved_so_the_key_can_be_used_again(client):
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.customers.create(params={"emial": "typo@example.com"}, options={"idempotency_key": "fix-me"})
    fixed = client.v1.customers.create(params={"email": "typo@example.com"}, options={"idempotency_key": "fix-me"})
    assert fixed.email == "typo@example.com"


def test_a_declined_payment_replays_the_decline_without_a_second_attempt(client, receiver):
    customer = make_customer(client, "pm_card_chargeCustomerFail")
    invoice = open_invoice(client, customer.id, auto_advance=False)
    for _ in range(2):
        with pytest.raises(stripe.CardError):
            client.v1.invoices.pay(invoice.id, options={"idempotency_key": "pay-1"})
    assert client.v1.invoices.retrieve(invoice.id).attempt_count == 1


def test_concurrent_requests_with_one_key_create_one_object(emulator, control):
    headers = {"Authorization": f"Bearer {SECRET_KEY}", "Idempotency-Key": "race"}
    ids: list[str] = []
    barrier = threading.Barrier(8)

    def create() -> None:
        barrier.wait()
        response = requests.post(
            f"{emulator.url}/v1/customers", data={"email": "race@example.com"}, headers=headers, timeout=10
        )
        ids.append(response.json()["id"])

    threads = [threading.Thread(target=create) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(ids) == 8 and len(set(ids)) == 1
    assert control.objects()["customer"] == 1
    assert control.requests()["idempotent_replays"]["POST /v1/customers"] == 7
