"""``POST /v1/invoices/{id}/pay`` refusing an invoice Stripe already paid, and a customer with nothing to pay with.

Stripe answers both with ``400 invalid_request_error`` and no ``code`` (the pinned SDK lists no error
code for either; Stripe's error object has ``code`` "for some errors" only):

- "Invoice is already paid" (as Stripe's answer is reported by its users, e.g. twentyhq/twenty#22705,
  vm0-ai/vm0#32124, mozilla/fxa#11409);
- "This customer has no attached payment source or default payment method. Please consider adding a
  default payment method. For more information, visit
  https://stripe.com/docs/billing/subscriptions/payment-methods-setting#payment-method-priority."

The gateway turns them into ``InvoiceAlreadyPaid`` and ``PaymentMethodMissing``.
"""

from __future__ import annotations

import pytest
import requests

from billing_core.adapters.stripe_gateway import StripePaymentGateway
from billing_core.errors import InvoiceAlreadyPaid, PaymentMethodMissing
from stripe_emulator.store.payments import NO_PAYMENT_METHOD
from tests.emulator.conftest import SECRET_KEY, make_customer, open_invoice
from tests.support.fakes import FakeSecretsProvider


@pytest.fixture
def gateway(emulator, client):
    return StripePaymentGateway(
        FakeSecretsProvider(secret_key=SECRET_KEY), api_base=emulator.url, max_network_retries=0
    )


def _pay(emulator, invoice_id: str) -> requests.Response:
    return requests.post(
        f"{emulator.url}/v1/invoices/{invoice_id}/pay",
        data={"off_session": "true"},
        headers={"Authorization": f"Bearer {SECRET_KEY}"},
        timeout=10,
    )


def test_paying_a_paid_invoice_is_stripes_400_without_a_code(emulator, client):
    invoice = open_invoice(client, make_customer(client, "pm_card_visa").id, auto_advance=False)
    assert _pay(emulator, invoice.id).status_code == 200

    answer = _pay(emulator, invoice.id)

    assert answer.status_code == 400
    assert answer.json() == {"error": {"type": "invalid_request_error", "message": "Invoice is already paid"}}
    assert client.v1.invoices.retrieve(invoice.id).attempt_count == 1


def test_paying_without_a_payment_method_is_stripes_400_without_a_code(emulator, client):
    customer = client.v1.customers.create(params={"email": "nopm@example.com"})
    invoice = open_invoice(client, customer.id, auto_advance=False)

    answer = _pay(emulator, invoice.id)

    assert answer.status_code == 400
    assert answer.json() == {"error": {"type": "invalid_request_error", "message": NO_PAYMENT_METHOD}}
    assert NO_PAYMENT_METHOD.startswith("This customer has no attached payment source or default payment method.")
    assert client.v1.invoices.retrieve(invoice.id).attempt_count == 0


def test_the_gateway_names_both_refusals(gateway, client):
    paid = open_invoice(client, make_customer(client, "pm_card_visa").id, auto_advance=False)
    gateway.pay_invoice(paid.id, idempotency_key="first")
    bare = open_invoice(client, client.v1.customers.create(params={"email": "b@example.com"}).id, auto_advance=False)

    with pytest.raises(InvoiceAlreadyPaid):
        gateway.pay_invoice(paid.id, idempotency_key="second")
    with pytest.raises(PaymentMethodMissing):
        gateway.pay_invoice(bare.id, idempotency_key="bare")


def test_the_gateway_reads_stripes_invoice_and_customer_to_tell_a_refusal_worded_otherwise(gateway, client):
    # What the gateway reads when a refusal's message does not say: the invoice with its customer.
    bare = open_invoice(client, client.v1.customers.create(params={"email": "b@example.com"}).id, auto_advance=False)
    carded = open_invoice(client, make_customer(client, "pm_card_visa").id, auto_advance=False)

    bare_state, carded_state = gateway._payment_state(bare.id), gateway._payment_state(carded.id)
    assert (bare_state.status, bare_state.without_payment_method) == ("open", True)
    assert (carded_state.status, carded_state.method, carded_state.without_payment_method) == (
        "open",
        client.v1.customers.retrieve(carded.customer).invoice_settings.default_payment_method,
        False,
    )
    client.v1.invoices.pay(carded.id)
    assert gateway._payment_state(carded.id).status == "paid"
    assert gateway._payment_state("in_missing") is None


def test_after_a_refusal_for_want_of_a_payment_method_the_customer_fixes_paying_again_pays(gateway, client):
    customer = client.v1.customers.create(params={"email": "later@example.com"})
    invoice = open_invoice(client, customer.id, auto_advance=False)
    with pytest.raises(PaymentMethodMissing):
        gateway.pay_invoice(invoice.id, idempotency_key="inv:pay-now:0")
    card = client.v1.payment_methods.attach("pm_card_visa", params={"customer": customer.id})
    client.v1.customers.update(customer.id, params={"invoice_settings": {"default_payment_method": card.id}})

    paid = gateway.pay_invoice(invoice.id, idempotency_key="inv:pay-now:0")  # the same attempt: Stripe saved its 400

    assert paid.status == "paid"
    assert client.v1.invoices.retrieve(invoice.id).attempt_count == 1
