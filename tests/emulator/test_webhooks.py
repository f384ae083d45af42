"""Webhook endpoints and delivery: signatures, retries, filters and the delivery knobs."""

from __future__ import annotations

import time

import pytest
import stripe

from stripe_emulator import sign_payload
from tests.support.emulator import wait_for


def test_signature_is_stripes_scheme():
    header = sign_payload('{"id": "evt_1"}', "whsec_test", 1700000000)
    stripe.WebhookSignature.verify_header('{"id": "evt_1"}', header, "whsec_test", tolerance=None)
    assert header.startswith("t=1700000000,v1=")
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.WebhookSignature.verify_header('{"id": "evt_2"}', header, "whsec_test", tolerance=None)


def test_endpoint_secret_is_returned_only_on_create_and_endpoints_can_be_listed_and_deleted(client):
    endpoint = client.v1.webhook_endpoints.create(
        params={"url": "http://127.0.0.1:9/hook", "enabled_events": ["invoice.paid"], "description": "billing"}
    )
    assert endpoint.secret.startswith("whsec_")
    listed = client.v1.webhook_endpoints.list()
    assert [e.id for e in listed.data] == [endpoint.id]
    assert "secret" not in listed.data[0]
    deleted = client.v1.webhook_endpoints.delete(endpoint.id)
    assert deleted.deleted is True
    assert client.v1.webhook_endpoints.list().data == []


def test_receiver_failing_twice_gets_the_event_exactly_once_more_after_recovering(client, receiver, control):
    receiver.planned_statuses.extend([500, 500])
    customer = client.v1.customers.create(params={"email": "retry@example.com"})

    attempts = wait_for(
        lambda: (
            [a for a in control.deliveries(event_type="customer.created") if a["delivered"]]
            and control.deliveries(event_type="customer.created")
        )
    )
    assert len(receiver.of_type("customer.created")) == 1
    assert [a["status_code"] for a in attempts] == [500, 500, 200]
    assert [a["attempt"] for a in attempts] == [1, 2, 3]
    assert attempts[-1]["next_retry_in"] is None  # delivered: nothing more is scheduled
    event = client.v1.events.list(params={"type": "customer.created"}).data[0]
    assert event.data.object.id == customer.id
    assert event.pending_webhooks == 0


def test_unreachable_endpoint_is_retried_up_to_the_maximum(client, control):
    control.configure(webhook_max_attempts=3)
    client.v1.webhook_endpoints.create(params={"url": "http://127.0.0.1:9/closed", "enabled_events": ["*"]})
    client.v1.customers.create(params={"email": "down@example.com"})
    attempts = wait_for(lambda: [a for a in control.deliveries() if a["attempt"] == 3])
    assert attempts[0]["delivered"] is False and attempts[0]["error"]
    assert attempts[0]["next_retry_in"] is None  # the last attempt schedules no other
    assert [a["attempt"] for a in control.deliveries()] == [1, 2, 3]


def test_endpoint_gets_only_its_enabled_events(client, receiver_server, control):
    endpoint = client.v1.webhook_endpoints.create(
        params={"url": receiver_server.url, "enabled_events": ["invoice.created", "customer.updated"]}
    )
    receiver_server.reset(secret=endpoint.secret)
    customer = client.v1.customers.create(params={"email": "filter@example.com"})
    client.v1.customers.update(customer.id, params={"name": "Renamed"})
    client.v1.invoices.create(params={"customer": customer.id})
    wait_for(lambda: {"customer.updated", "invoice.created"} <= set(receiver_server.types()))
    assert "customer.created" not in receiver_server.types()
    assert all(d["event_type"] != "customer.created" for d in control.deliveries())


def test_endpoint_refuses_event_types_stripe_does_not_have(client):
    for unknown in ("invoice.*", "invoiceitem.updated", "setup_intent.updated"):
        with pytest.raises(stripe.InvalidRequestError) as raised:
            client.v1.webhook_endpoints.create(params={"url": "http://127.0.0.1:9/x", "enabled_events": [unknown]})
        assert raised.value.param == "enabled_events[0]"


def test_duplicate_knob_delivers_every_event_more_than_once(client, receiver, control):
    control.configure(duplicate_deliveries=2)
    client.v1.customers.create(params={"email": "dup@example.com"})
    copies = wait_for(lambda: len(receiver.of_type("customer.created")) == 3 and receiver.of_type("customer.created"))
    assert len({e.id for e in copies}) == 1


def test_delay_knob_holds_deliveries_back(client, receiver, control):
    control.configure(delivery_delay=0.3)
    before = time.time()
    client.v1.customers.create(params={"email": "late@example.com"})
    delivered = wait_for(lambda: [a for a in control.deliveries(event_type="customer.created") if a["delivered"]])
    assert delivered[0]["planned_delay"] == 0.3
    assert delivered[0]["started_at"] - before >= 0.3  # a lower bound only: load can delay, never hasten
    assert receiver.of_type("customer.created")


def test_reorder_knob_is_deterministic_for_a_seed(client, receiver, control):
    def planned_delays() -> list[float]:
        """Each customer's delivery delay, in creation order (arrival order depends on machine load)."""
        control.reset()
        control.configure(reorder_window=0.3, seed=129)
        endpoint = client.v1.webhook_endpoints.create(params={"url": receiver.url, "enabled_events": ["*"]})
        receiver.reset(secret=endpoint.secret)
        ids = [client.v1.customers.create(params={"name": f"c{i}"}).id for i in range(6)]
        wait_for(lambda: len(receiver.events) == 6)
        delay_by_customer = {}
        for attempt in control.deliveries(event_type="customer.created"):
            event = client.v1.events.retrieve(attempt["event_id"])
            delay_by_customer[event.data.object.id] = attempt["planned_delay"]
        return [delay_by_customer[customer_id] for customer_id in ids]

    first = planned_delays()
    assert all(0 <= delay <= 0.3 for delay in first)
    assert first != sorted(first)  # seed 129 plans these six out of creation order
    assert planned_delays() == first
    assert sorted(e.data.object.name for e in receiver.events) == [f"c{i}" for i in range(6)]


def test_disabled_endpoint_gets_nothing(client, receiver, control):
    endpoint = client.v1.webhook_endpoints.list().data[0]
    client.v1.webhook_endpoints.update(endpoint.id, params={"disabled": True})
    client.v1.customers.create(params={"email": "quiet@example.com"})
    event = client.v1.events.list().data[0]
    assert event.pending_webhooks == 0
    assert control.deliveries() == []
