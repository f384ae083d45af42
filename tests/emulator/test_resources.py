"""Resource semantics: CRUD, delete, metadata, list paging and filters, expand, payment methods, Stripe.js."""

from __future__ import annotations

import time

import pytest
import requests
import stripe

from tests.emulator.conftest import PUBLISHABLE_KEY, make_customer, open_invoice


def test_customer_create_retrieve_update_list_delete(client, control):
    customer = client.v1.customers.create(
        params={
            "email": "c@example.com",
            "name": "C GmbH",
            "metadata": {"userId": "u-1", "plan": "base"},
            "address": {"country": "DE", "city": "Berlin"},
            "preferred_locales": ["de"],
        }
    )
    assert customer.address.country == "DE" and customer.address.line1 is None
    assert client.v1.customers.retrieve(customer.id).email == "c@example.com"

    updated = client.v1.customers.update(
        customer.id, params={"metadata": {"plan": "", "tier": "gold"}, "description": "VIP"}
    )
    assert updated.metadata.to_dict() == {"userId": "u-1", "tier": "gold"}
    assert updated.description == "VIP"

    assert [c.id for c in client.v1.customers.list(params={"email": "c@example.com"}).data] == [customer.id]
    deleted = client.v1.customers.delete(customer.id)
    assert deleted.deleted is True
    assert client.v1.customers.retrieve(customer.id).deleted is True  # Stripe answers with the stub
    with pytest.raises(stripe.InvalidRequestError) as raised:
        client.v1.customers.update(customer.id, params={"name": "gone"})
    assert raised.value.http_status == 404
    assert client.v1.customers.list().data == []
    assert control.objects()["customer"] == 0


def test_list_paging_with_limit_starting_after_and_ending_before(client):
    ids = [client.v1.customers.create(params={"name": f"n{i}"}).id for i in range(5)]
    newest_first = list(reversed(ids))
    page1 = client.v1.customers.list(params={"limit": 2})
    assert [c.id for c in page1.data] == newest_first[:2] and page1.has_more is True
    page2 = client.v1.customers.list(params={"limit": 2, "starting_after": page1.data[-1].id})
    assert [c.id for c in page2.data] == newest_first[2:4] and page2.has_more is True
    page3 = client.v1.customers.list(params={"limit": 2, "starting_after": page2.data[-1].id})
    assert [c.id for c in page3.data] == newest_first[4:] and page3.has_more is False
    back = client.v1.customers.list(params={"limit": 2, "ending_before": page3.data[0].id})
    assert [c.id for c in back.data] == newest_first[2:4]
    everything = [c.id for c in client.v1.customers.list(params={"limit": 2}).auto_paging_iter()]
    assert everything == newest_first


def test_invoice_list_filters_by_customer_status_and_created(client):
    alice = client.v1.customers.create(params={"name": "alice"})
    bob = client.v1.customers.create(params={"name": "bob"})
    draft = client.v1.invoices.create(params={"customer": alice.id})
    opened = open_invoice(client, alice.id, auto_advance=False)
    other = client.v1.invoices.create(params={"customer": bob.id})

    by_customer = client.v1.invoices.list(params={"customer": alice.id})
    assert {i.id for i in by_customer.data} == {draft.id, opened.id}
    assert [i.id for i in client.v1.invoices.list(params={"customer": alice.id, "status": "open"}).data] == [opened.id]
    now = int(time.time())
    assert len(client.v1.invoices.list(params={"created": {"gte": now - 60, "lte": now + 60}}).data) == 3
    assert client.v1.invoices.list(params={"created": {"gt": now + 60}}).data == []
    assert other.id in {i.id for i in client.v1.invoices.list(params={"status": "draft"}).data}


def test_event_list_filters_by_type_types_and_wildcard(client):
    customer = client.v1.customers.create(params={"name": "events"})
    client.v1.customers.update(customer.id, params={"name": "events 2"})
    client.v1.invoices.create(params={"customer": customer.id})
    assert [e.type for e in client.v1.events.list(params={"type": "customer.updated"}).data] == ["customer.updated"]
    assert {e.type for e in client.v1.events.list(params={"types": ["customer.created", "invoice.created"]}).data} == {
        "customer.created",
        "invoice.created",
    }
    assert {e.type for e in client.v1.events.list(params={"type": "customer.*"}).data} == {
        "customer.created",
        "customer.updated",
    }
    first = client.v1.events.list(params={"limit": 1})
    assert first.has_more is True
    event = client.v1.events.retrieve(first.data[0].id)
    assert event.request.id.startswith("req_") and event.request.idempotency_key


def test_expand_fields_the_billing_system_uses(client):
    customer = make_customer(client, "pm_card_visa")
    expanded = client.v1.customers.retrieve(customer.id, params={"expand": ["invoice_settings.default_payment_method"]})
    assert expanded.invoice_settings.default_payment_method.card.last4 == "4242"

    intent = client.v1.setup_intents.list(params={"customer": customer.id}).data[0]
    intent = client.v1.setup_intents.retrieve(
        intent.id, params={"expand": ["payment_method", "latest_attempt", "customer"]}
    )
    assert intent.payment_method.card.brand == "visa"
    assert intent.latest_attempt.object == "setup_attempt" and intent.latest_attempt.status == "succeeded"
    assert intent.customer.id == customer.id

    invoice = open_invoice(client, customer.id, auto_advance=False)
    listed = client.v1.invoices.list(params={"customer": customer.id, "expand": ["data.customer"]})
    assert listed.data[0].customer.email == customer.email
    assert client.v1.invoices.retrieve(invoice.id, params={"expand": ["customer"]}).customer.id == customer.id

    with pytest.raises(stripe.InvalidRequestError) as raised:
        client.v1.invoices.retrieve(invoice.id, params={"expand": ["number"]})
    assert "cannot be expanded" in raised.value.user_message


def test_payment_methods_from_raw_card_numbers_and_ibans_have_real_display_fields(client):
    visa = client.v1.payment_methods.create(
        params={
            "type": "card",
            "card": {"number": "4242 4242 4242 4242", "exp_month": 8, "exp_year": 2031, "cvc": "314"},
        }
    )
    assert (visa.card.brand, visa.card.last4, visa.card.exp_month, visa.card.exp_year) == ("visa", "4242", 8, 2031)
    master = client.v1.payment_methods.create(
        params={"type": "card", "card": {"number": "5555555555554444", "exp_month": 1, "exp_year": 2030}}
    )
    assert (master.card.brand, master.card.last4) == ("mastercard", "4444")
    sepa = client.v1.payment_methods.create(
        params={
            "type": "sepa_debit",
            "sepa_debit": {"iban": "DE89 3704 0044 0532 0130 00"},
            "billing_details": {"name": "Erika", "email": "e@example.com"},
        }
    )
    assert (sepa.sepa_debit.last4, sepa.sepa_debit.country, sepa.sepa_debit.bank_code) == ("3000", "DE", "37040044")
    body = str(sepa) + str(visa)
    assert "DE89370400440532013000" not in body and "4242424242424242" not in body
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.payment_methods.create(params={"type": "sepa_debit", "sepa_debit": {"iban": "DE00123"}})


def test_attach_detach_and_list_payment_methods(client, receiver):
    customer = client.v1.customers.create()
    first = client.v1.payment_methods.attach("pm_card_visa", params={"customer": customer.id})
    second = client.v1.payment_methods.attach("pm_card_visa", params={"customer": customer.id})
    assert first.id != second.id  # test ids make a fresh PaymentMethod each time
    client.v1.customers.update(customer.id, params={"invoice_settings": {"default_payment_method": first.id}})
    listed = client.v1.payment_methods.list(params={"customer": customer.id, "type": "card"})
    assert {pm.id for pm in listed.data} == {first.id, second.id}
    assert len(client.v1.customers.payment_methods.list(customer.id).data) == 2

    detached = client.v1.payment_methods.detach(first.id)
    assert detached.customer is None
    assert client.v1.customers.retrieve(customer.id).invoice_settings.default_payment_method is None
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.payment_methods.detach(first.id)
    with pytest.raises(stripe.CardError):
        client.v1.payment_methods.attach("pm_card_chargeDeclined", params={"customer": customer.id})


def test_default_payment_method_must_belong_to_the_customer(client):
    customer = client.v1.customers.create()
    loose = client.v1.payment_methods.create(
        params={"type": "card", "card": {"number": "4242424242424242", "exp_month": 1, "exp_year": 2030}}
    )
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.customers.update(customer.id, params={"invoice_settings": {"default_payment_method": loose.id}})
    created = client.v1.customers.create(
        params={"payment_method": "pm_card_visa", "invoice_settings": {"default_payment_method": "pm_card_visa"}}
    )
    default = client.v1.payment_methods.retrieve(created.invoice_settings.default_payment_method)
    assert default.customer == created.id


def test_invoice_items_list_update_and_delete_only_while_draft(client):
    customer = client.v1.customers.create()
    draft = client.v1.invoices.create(params={"customer": customer.id, "currency": "eur"})
    item = client.v1.invoice_items.create(
        params={
            "customer": customer.id,
            "invoice": draft.id,
            "amount": 1500,
            "description": "Base",
            "metadata": {"kind": "base"},
        }
    )
    other = client.v1.invoice_items.create(params={"customer": customer.id, "invoice": draft.id, "amount": 250})
    assert client.v1.invoices.retrieve(draft.id).total == 1750
    assert {i.id for i in client.v1.invoice_items.list(params={"invoice": draft.id}).data} == {item.id, other.id}
    client.v1.invoice_items.update(other.id, params={"amount": 300})
    assert client.v1.invoices.retrieve(draft.id).total == 1800

    removed = client.v1.invoice_items.delete(other.id)
    assert removed.deleted is True
    invoice = client.v1.invoices.retrieve(draft.id)
    assert invoice.total == 1500 and [line.parent.invoice_item_details.invoice_item for line in invoice.lines.data] == [
        item.id
    ]

    client.v1.invoices.finalize_invoice(draft.id, params={"auto_advance": False})
    with pytest.raises(stripe.InvalidRequestError) as raised:
        client.v1.invoice_items.delete(item.id)
    assert raised.value.code == "invoice_not_editable"


def test_draft_invoice_can_be_updated_and_deleted(client, control):
    customer = client.v1.customers.create()
    draft = client.v1.invoices.create(params={"customer": customer.id})
    client.v1.invoices.add_lines(draft.id, params={"lines": [{"amount": 100}], "invoice_metadata": {"a": "1"}})
    updated = client.v1.invoices.update(draft.id, params={"description": "November", "metadata": {"b": "2"}})
    assert updated.description == "November" and updated.metadata.to_dict() == {"a": "1", "b": "2"}
    assert client.v1.invoices.delete(draft.id).deleted is True
    assert control.objects()["invoice"] == 0 and control.objects()["invoiceitem"] == 0


def test_pending_items_join_an_invoice_when_asked(client):
    customer = client.v1.customers.create()
    client.v1.invoice_items.create(params={"customer": customer.id, "amount": 900, "currency": "eur"})
    assert len(client.v1.invoice_items.list(params={"pending": True}).data) == 1
    invoice = client.v1.invoices.create(
        params={"customer": customer.id, "currency": "eur", "pending_invoice_items_behavior": "include"}
    )
    assert invoice.total == 900
    assert client.v1.invoice_items.list(params={"pending": True}).data == []


def test_invoice_lines_are_paged(client):
    customer = client.v1.customers.create()
    draft = client.v1.invoices.create(params={"customer": customer.id})
    invoice = client.v1.invoices.add_lines(draft.id, params={"lines": [{"amount": i + 1} for i in range(12)]})
    assert len(invoice.lines.data) == 10 and invoice.lines.has_more is True
    assert invoice.total == sum(range(1, 13))
    everything = list(client.v1.invoices.line_items.list(draft.id, params={"limit": 5}).auto_paging_iter())
    assert [line.amount for line in everything] == list(range(1, 13))


def test_stripe_js_style_confirm_with_publishable_key_and_client_secret(emulator, client):
    customer = client.v1.customers.create()
    intent = client.v1.setup_intents.create(params={"customer": customer.id})
    confirm_url = f"{emulator.url}/v1/setup_intents/{intent.id}/confirm"
    wrong = requests.post(
        confirm_url,
        data={"key": PUBLISHABLE_KEY, "client_secret": "seti_x_secret_y", "payment_method": "pm_card_visa"},
        timeout=5,
    )
    assert wrong.status_code == 400 and wrong.json()["error"]["param"] == "client_secret"
    # As Stripe.js does: the card becomes a PaymentMethod with the publishable key, then confirms the intent.
    created = requests.post(
        f"{emulator.url}/v1/payment_methods",
        data={
            "key": PUBLISHABLE_KEY,
            "type": "card",
            "card[number]": "5555555555554444",
            "card[exp_month]": "4",
            "card[exp_year]": "2032",
            "billing_details[name]": "Jenny",
        },
        timeout=5,
    )
    assert created.status_code == 200, created.text
    response = requests.post(
        confirm_url,
        data={"key": PUBLISHABLE_KEY, "client_secret": intent.client_secret, "payment_method": created.json()["id"]},
        timeout=5,
    )
    assert response.status_code == 200 and response.json()["status"] == "succeeded"
    fetched = requests.get(
        f"{emulator.url}/v1/setup_intents/{intent.id}",
        params={"client_secret": intent.client_secret},
        headers={"Authorization": f"Bearer {PUBLISHABLE_KEY}"},
        timeout=5,
    )
    assert fetched.json()["status"] == "succeeded"
    method = client.v1.payment_methods.retrieve(fetched.json()["payment_method"])
    assert (method.customer, method.card.brand, method.billing_details.name) == (customer.id, "mastercard", "Jenny")


def test_control_endpoints_report_and_reset(emulator, client, control):
    client.v1.customers.create()
    assert requests.get(f"{emulator.url}/healthz", timeout=5).status_code == 200
    assert control.objects()["customer"] == 1 and control.objects()["event"] == 1
    assert control.requests()["requests"] == {"POST /v1/customers": 1}
    assert "sk_test_emulator_suite" not in str(control.configure())
    control.reset()
    assert control.objects()["customer"] == 0 and control.requests()["total"] == 0
    bad = requests.post(f"{emulator.url}/_emulator/config", json={"no_such_knob": 1}, timeout=5)
    assert bad.status_code == 400


def test_invoice_custom_fields_are_kept_within_the_sdks_limits_as_stripe_does(client):
    customer = client.v1.customers.create(params={"email": "a@example.com"})
    fields = [{"name": "USt-IdNr.", "value": "DE136695976"}]

    invoice = client.v1.invoices.create(params={"customer": customer.id, "custom_fields": fields})

    assert [(f.name, f.value) for f in invoice.custom_fields] == [("USt-IdNr.", "DE136695976")]
    for too_much, param in [
        ([{"name": f"n{i}", "value": "v"} for i in range(5)], "custom_fields"),
        ([{"name": "x" * 41, "value": "v"}], "custom_fields[0][name]"),
        ([{"name": "n", "value": "v" * 141}], "custom_fields[0][value]"),
    ]:
        with pytest.raises(stripe.InvalidRequestError) as refused:
            client.v1.invoices.create(params={"customer": customer.id, "custom_fields": too_much})
        assert refused.value.param == param
