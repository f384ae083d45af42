"""The payment flows the billing system relies on, driven with the official stripe SDK."""

from __future__ import annotations

import pytest
import requests
import stripe

from tests.emulator.conftest import make_customer, open_invoice
from tests.support.emulator import wait_for


def test_full_flow_pays_the_invoice_and_delivers_signed_invoice_paid(client, receiver, control):
    customer = client.v1.customers.create(params={"email": "admin@example.com", "metadata": {"userId": "u-1"}})
    intent = client.v1.setup_intents.create(params={"customer": customer.id, "usage": "off_session"})
    assert intent.status == "requires_payment_method"
    intent = client.v1.setup_intents.confirm(intent.id, params={"payment_method": "pm_card_visa"})
    assert intent.status == "succeeded"
    customer = client.v1.customers.update(
        customer.id, params={"invoice_settings": {"default_payment_method": intent.payment_method}}
    )

    draft = client.v1.invoices.create(
        params={"customer": customer.id, "currency": "eur", "auto_advance": True, "metadata": {"period": "2024-11"}}
    )
    assert draft.status == "draft"
    draft = client.v1.invoices.add_lines(
        draft.id,
        params={
            "lines": [
                {"amount": 2000, "description": "Monatliche Grundgebühr"},
                {"amount": 1774, "description": "AWS Infrastruktur (Nov 2024)"},
            ]
        },
    )
    assert (draft.subtotal, draft.total, draft.amount_due) == (3774, 3774, 3774)
    assert [line.description for line in draft.lines.data] == ["Monatliche Grundgebühr", "AWS Infrastruktur (Nov 2024)"]

    finalized = client.v1.invoices.finalize_invoice(draft.id)
    assert finalized.status == "open"
    assert finalized.number.startswith(customer.invoice_prefix + "-")
    assert finalized.status_transitions.finalized_at is not None

    paid_events = wait_for(lambda: receiver.of_type("invoice.paid"))
    assert len(paid_events) == 1
    paid = paid_events[0].data.object
    assert (paid.id, paid.status, paid.amount_paid, paid.amount_remaining) == (draft.id, "paid", 3774, 0)
    assert paid.metadata["period"] == "2024-11"
    assert paid_events[0].api_version == stripe.api_version

    invoice = client.v1.invoices.retrieve(draft.id)
    assert invoice.status == "paid"
    assert invoice.status_transitions.paid_at is not None
    assert invoice.attempt_count == 1 and invoice.attempted is True
    assert receiver.rejected == 0
    expected = {
        "customer.created",
        "setup_intent.succeeded",
        "payment_method.attached",
        "customer.updated",
        "invoice.created",
        "invoiceitem.created",
        "invoice.finalized",
        "invoice.paid",
    }
    wait_for(lambda: expected <= set(receiver.types()))


def test_a_draft_kept_from_auto_advancing_is_charged_once_finalized_with_auto_advance(client, customer_with_card):
    draft = client.v1.invoices.create(
        params={"customer": customer_with_card.id, "currency": "eur", "auto_advance": False}
    )
    client.v1.invoices.add_lines(draft.id, params={"lines": [{"amount": 3774, "description": "AWS"}]})

    finalized = client.v1.invoices.finalize_invoice(draft.id, params={"auto_advance": True})

    assert finalized.status == "open" and finalized.auto_advance is True
    paid = wait_for(lambda: (invoice := client.v1.invoices.retrieve(draft.id)).status == "paid" and invoice)
    assert paid.amount_paid == 3774 and paid.attempt_count == 1


def test_customer_updated_event_carries_previous_attributes(client, receiver):
    customer = make_customer(client, "pm_card_visa")
    updated = wait_for(lambda: [e for e in receiver.of_type("customer.updated")])
    previous = updated[0].data.previous_attributes
    assert previous["invoice_settings"]["default_payment_method"] is None
    assert (
        updated[0].data.object.invoice_settings.default_payment_method
        == customer.invoice_settings.default_payment_method
    )


def test_declined_card_leaves_invoice_open_and_pay_raises_card_error(client, receiver):
    customer = make_customer(client, "pm_card_chargeCustomerFail")
    invoice = open_invoice(client, customer.id, auto_advance=False)
    assert invoice.next_payment_attempt is None

    with pytest.raises(stripe.CardError) as declined:
        client.v1.invoices.pay(invoice.id)
    assert declined.value.code == "card_declined"
    assert declined.value.http_status == 402

    invoice = client.v1.invoices.retrieve(invoice.id)
    assert invoice.status == "open"
    assert invoice.attempt_count == 1 and invoice.attempted is True
    failed = wait_for(lambda: receiver.of_type("invoice.payment_failed"))
    assert failed[0].data.object.attempt_count == 1
    assert failed[0].data.previous_attributes["attempt_count"] == 0
    assert receiver.of_type("invoice.paid") == []


def test_automatic_charge_after_finalize_counts_a_failed_attempt_and_schedules_the_next(client, receiver):
    customer = make_customer(client, "pm_card_chargeCustomerFail")
    invoice = open_invoice(client, customer.id, auto_advance=True)

    failed = wait_for(lambda: receiver.of_type("invoice.payment_failed"))
    failed_invoice = failed[0].data.object
    assert failed_invoice.id == invoice.id
    assert failed_invoice.status == "open"
    assert failed_invoice.attempt_count == 1
    assert failed_invoice.next_payment_attempt > failed_invoice.status_transitions.finalized_at


def test_automatic_retry_pays_after_the_customer_fixes_the_payment_method(client, receiver, control):
    control.configure(payment_retry_interval=0.2)
    customer = make_customer(client, "pm_card_chargeCustomerFail")
    invoice = open_invoice(client, customer.id)
    wait_for(lambda: receiver.of_type("invoice.payment_failed"))
    good = client.v1.payment_methods.attach("pm_card_mastercard", params={"customer": customer.id})
    client.v1.customers.update(customer.id, params={"invoice_settings": {"default_payment_method": good.id}})

    paid = wait_for(lambda: receiver.of_type("invoice.paid"))
    assert paid[0].data.object.id == invoice.id
    assert client.v1.invoices.retrieve(invoice.id).attempt_count == 2


def test_card_requiring_authentication_emits_payment_action_required(client, receiver):
    customer = make_customer(client, "pm_card_authenticationRequired")
    invoice = open_invoice(client, customer.id, auto_advance=True)

    action = wait_for(lambda: receiver.of_type("invoice.payment_action_required"))
    assert action[0].data.object.id == invoice.id
    assert client.v1.invoices.retrieve(invoice.id).status == "open"
    with pytest.raises(stripe.CardError) as raised:
        client.v1.invoices.pay(invoice.id)
    assert raised.value.code == "invoice_payment_intent_requires_action"


def test_sepa_debit_is_processing_then_paid_after_the_settle_delay(client, receiver):
    customer = make_customer(client, "pm_sepaDebit")
    method = client.v1.payment_methods.retrieve(customer.invoice_settings.default_payment_method)
    assert method.type == "sepa_debit"
    assert (method.sepa_debit.last4, method.sepa_debit.bank_code, method.sepa_debit.country) == (
        "3000",
        "37040044",
        "DE",
    )

    invoice = open_invoice(client, customer.id, auto_advance=False)
    processing = client.v1.invoices.pay(invoice.id)
    assert processing.status == "open" and processing.attempted is True
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.invoices.pay(invoice.id)  # already processing

    paid = wait_for(lambda: receiver.of_type("invoice.paid"))
    assert paid[0].data.object.id == invoice.id
    assert client.v1.invoices.retrieve(invoice.id).status == "paid"


def test_failing_sepa_iban_fails_after_processing(client, receiver):
    customer = client.v1.customers.create(params={"email": "sepa@example.com"})
    method = client.v1.payment_methods.create(
        params={
            "type": "sepa_debit",
            "sepa_debit": {"iban": "DE62370400440532013001"},
            "billing_details": {"name": "Max Mustermann", "email": "sepa@example.com"},
        }
    )
    intent = client.v1.setup_intents.create(
        params={
            "customer": customer.id,
            "allowed_payment_method_types": ["sepa_debit"],
            "payment_method": method.id,
            "confirm": True,
            "mandate_data": {
                "customer_acceptance": {"type": "online", "online": {"ip_address": "127.0.0.1", "user_agent": "test"}}
            },
        }
    )
    assert intent.status == "succeeded" and intent.mandate.startswith("mandate_")
    client.v1.customers.update(customer.id, params={"invoice_settings": {"default_payment_method": method.id}})

    invoice = open_invoice(client, customer.id, auto_advance=True)
    failed = wait_for(lambda: receiver.of_type("invoice.payment_failed"))
    assert failed[0].data.object.id == invoice.id
    assert client.v1.invoices.retrieve(invoice.id).status == "open"


def test_card_declined_at_setup_fails_the_setup_intent(client, receiver):
    customer = client.v1.customers.create(params={"email": "declined@example.com"})
    intent = client.v1.setup_intents.create(params={"customer": customer.id, "allowed_payment_method_types": ["card"]})
    method = client.v1.payment_methods.create(
        params={"type": "card", "card": {"number": "4000000000000002", "exp_month": 12, "exp_year": 2031, "cvc": "123"}}
    )

    with pytest.raises(stripe.CardError) as declined:
        client.v1.setup_intents.confirm(intent.id, params={"payment_method": method.id})
    assert declined.value.code == "card_declined"
    intent = client.v1.setup_intents.retrieve(intent.id)
    assert intent.status == "requires_payment_method"
    assert intent.last_setup_error.code == "card_declined"
    assert wait_for(lambda: receiver.of_type("setup_intent.setup_failed"))
    assert client.v1.payment_methods.retrieve(method.id).customer is None


def test_paying_without_any_payment_method_is_an_invalid_request(client):
    customer = client.v1.customers.create(params={"email": "nopm@example.com"})
    invoice = open_invoice(client, customer.id, auto_advance=False)
    with pytest.raises(stripe.InvalidRequestError) as raised:
        client.v1.invoices.pay(invoice.id)
    assert "no attached payment source or default payment method" in raised.value.user_message
    assert client.v1.invoices.retrieve(invoice.id).attempt_count == 0


def test_invoice_with_nothing_due_is_paid_on_finalize(client, receiver):
    customer = client.v1.customers.create(params={"email": "zero@example.com"})
    draft = client.v1.invoices.create(params={"customer": customer.id, "currency": "eur"})
    invoice = client.v1.invoices.finalize_invoice(draft.id)
    assert invoice.status == "paid" and invoice.amount_due == 0
    assert wait_for(lambda: receiver.of_type("invoice.paid"))


def test_void_and_mark_uncollectible_emit_their_events(client, receiver):
    customer = client.v1.customers.create(params={"email": "void@example.com"})
    to_void = open_invoice(client, customer.id, auto_advance=False)
    voided = client.v1.invoices.void_invoice(to_void.id)
    assert voided.status == "void" and voided.status_transitions.voided_at is not None

    bad_debt = open_invoice(client, customer.id, auto_advance=False)
    uncollectible = client.v1.invoices.mark_uncollectible(bad_debt.id)
    assert uncollectible.status == "uncollectible"
    assert wait_for(lambda: receiver.of_type("invoice.voided"))
    marked = wait_for(lambda: receiver.of_type("invoice.marked_uncollectible"))
    assert marked[0].data.previous_attributes["status"] == "open"

    # An uncollectible invoice can still be paid.
    card = client.v1.payment_methods.attach("pm_card_visa", params={"customer": customer.id})
    assert client.v1.invoices.pay(bad_debt.id, params={"payment_method": card.id}).status == "paid"


def test_hosted_invoice_page_and_pdf_answer(client, customer_with_card):
    invoice = open_invoice(client, customer_with_card.id, auto_advance=False)
    page = requests.get(invoice.hosted_invoice_url, timeout=5)
    assert page.status_code == 200 and invoice.number in page.text and "37.74 EUR" in page.text
    pdf = requests.get(invoice.invoice_pdf, timeout=5)
    assert pdf.status_code == 200 and pdf.headers["Content-Type"] == "application/pdf"
    assert pdf.content.startswith(b"%PDF-") and invoice.number.encode() in pdf.content
