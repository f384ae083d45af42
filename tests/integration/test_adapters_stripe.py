"""The Stripe adapter through the official SDK against the Stripe emulator over real HTTP.

The module's ``stripe_api_base`` fixture serves its own emulator on a free port; on the shared local
stack the same tests run by returning ``stack.info["stripe_api_base"]`` (and the stack's key) instead.
"""

from __future__ import annotations

import time
import uuid

import pytest
import stripe

import stripe_emulator
from billing_core.adapters.stripe_gateway import StripePaymentGateway
from billing_core.errors import (
    IdempotencyKeyReused,
    PaymentActionRequired,
    PaymentDeclined,
    StripeAuthenticationFailed,
    StripeObjectNotFound,
    StripeRequestRejected,
)
from billing_core.ports import InvoiceLine
from tests.support.fakes import FakeSecretsProvider

SECRET_KEY = "sk_test_adapters"


@pytest.fixture(scope="module")
def stripe_api_base():
    config = stripe_emulator.EmulatorConfig(secret_key=SECRET_KEY, log_requests=False)
    with stripe_emulator.EmulatorServer(config) as server:
        yield server.url


@pytest.fixture
def secrets():
    return FakeSecretsProvider(secret_key=SECRET_KEY)


@pytest.fixture
def gateway(stripe_api_base, secrets):
    return StripePaymentGateway(secrets, api_base=stripe_api_base, max_network_retries=0)


def sdk_client(stripe_api_base: str) -> stripe.StripeClient:
    """The official SDK on the emulator, for reading what the gateway did (the gateway only has what use cases need)."""
    return stripe.StripeClient(SECRET_KEY, base_addresses={"api": stripe_api_base}, max_network_retries=0)


@pytest.fixture
def account_id():
    return f"user-{uuid.uuid4().hex[:8]}"


def key(*parts: str) -> str:
    return ":".join(parts)


def customer_with_card(gateway, stripe_api_base, account_id, payment_method="pm_card_visa"):
    """A customer whose default payment method is ``payment_method``, saved as the admin page does."""
    customer = gateway.create_customer(
        account_id=account_id, email=f"{account_id}@example.com", idempotency_key=key("cus", account_id)
    )
    intent = gateway.create_setup_intent(customer_id=customer.id, idempotency_key=key("seti", account_id))
    # The browser's part (Stripe.js confirmSetup), done with the SDK directly.
    client = stripe.StripeClient(SECRET_KEY, base_addresses={"api": stripe_api_base})
    confirmed = client.v1.setup_intents.confirm(intent.id, params={"payment_method": payment_method})
    assert confirmed.status == "succeeded"
    gateway.set_default_payment_method(
        customer_id=customer.id, payment_method_id=confirmed.payment_method, idempotency_key=key("pm", account_id)
    )
    return customer, confirmed.payment_method


def draft_with_lines(gateway, customer, account_id, *, auto_advance=False):
    draft = gateway.create_draft_invoice(
        customer_id=customer.id,
        currency="eur",
        description="AWS Kosten 2024-11",
        metadata={"userId": account_id, "period": "2024-11"},
        auto_advance=auto_advance,
        idempotency_key=key(account_id, "2024-11", "draft"),
    )
    with_lines = gateway.add_invoice_lines(
        invoice_id=draft.id,
        lines=[
            InvoiceLine(2000, "Monatliche Grundgebühr", {"line": "base-fee"}, 1730419200, 1733011199),
            InvoiceLine(1774, "AWS Infrastruktur (Nov 2024)", {"line": "aws"}, 1730419200, 1733011199),
        ],
        idempotency_key=key(account_id, "2024-11", "add-lines"),
    )
    assert with_lines.total == 3774 and with_lines.status == "draft"
    return draft


def test_a_setup_intent_offers_card_and_sepa_debit_for_off_session_use(gateway, stripe_api_base, account_id):
    customer = gateway.create_customer(account_id=account_id, idempotency_key=key("cus", account_id))

    intent = gateway.create_setup_intent(customer_id=customer.id, idempotency_key=key("seti", account_id))

    stored = sdk_client(stripe_api_base).v1.setup_intents.retrieve(intent.id)
    assert customer.metadata == {"userId": account_id}
    assert intent.customer_id == customer.id
    assert sorted(stored.payment_method_types) == ["card", "sepa_debit"]
    assert stored.usage == "off_session"
    assert intent.client_secret and intent.client_secret.startswith(intent.id)


def test_the_saved_card_becomes_the_default_and_its_display_fields_are_readable(gateway, stripe_api_base, account_id):
    customer, payment_method_id = customer_with_card(gateway, stripe_api_base, account_id)

    stored = sdk_client(stripe_api_base).v1.customers.retrieve(customer.id)
    method = gateway.retrieve_payment_method(payment_method_id)

    assert stored.invoice_settings.default_payment_method == payment_method_id
    assert method.type == "card"
    assert (method.brand, method.last4) == ("visa", "4242")


def test_an_invoice_of_base_fee_and_aws_costs_is_finalized_and_paid(gateway, stripe_api_base, account_id):
    customer, _ = customer_with_card(gateway, stripe_api_base, account_id)
    draft = draft_with_lines(gateway, customer, account_id)

    opened = gateway.finalize_invoice(draft.id, idempotency_key=key(account_id, "2024-11", "finalize"))
    paid = gateway.pay_invoice(draft.id, idempotency_key=key(account_id, "2024-11", "pay"))

    stored = sdk_client(stripe_api_base).v1.invoices.retrieve(draft.id)
    assert stored.collection_method == "charge_automatically"
    assert opened.status == "open" and opened.number
    assert paid.status == "paid"
    assert paid.amount_paid == 3774 and paid.currency == "eur"
    assert [line.amount for line in stored.lines.data] and sum(line.amount for line in stored.lines.data) == 3774
    assert paid.line_kinds == {"base-fee", "aws"}


def test_a_finalized_invoice_with_auto_advance_is_charged_by_stripe_itself(gateway, stripe_api_base, account_id):
    customer, _ = customer_with_card(gateway, stripe_api_base, account_id)
    draft = draft_with_lines(gateway, customer, account_id, auto_advance=True)
    gateway.finalize_invoice(draft.id, idempotency_key=key(account_id, "2024-11", "finalize"))

    deadline = time.monotonic() + 10
    while (status := gateway.retrieve_invoice(draft.id).status) != "paid" and time.monotonic() < deadline:
        time.sleep(0.05)

    assert status == "paid"


def test_a_rerun_finds_the_invoice_it_already_created_by_metadata(gateway, stripe_api_base, account_id):
    customer, _ = customer_with_card(gateway, stripe_api_base, account_id)
    draft = draft_with_lines(gateway, customer, account_id)

    found = [i for i in gateway.list_invoices(customer.id) if i.metadata.get("period") == "2024-11"]

    assert [i.id for i in found] == [draft.id]


def test_a_repeated_idempotency_key_returns_the_first_result(gateway, account_id):
    first = gateway.create_customer(account_id=account_id, idempotency_key=key("cus", account_id))
    again = gateway.create_customer(account_id=account_id, idempotency_key=key("cus", account_id))

    assert again.id == first.id


def test_an_idempotency_key_reused_with_other_parameters_is_refused(gateway, account_id):
    gateway.create_customer(account_id=account_id, idempotency_key=key("cus", account_id))

    with pytest.raises(IdempotencyKeyReused):
        gateway.create_customer(account_id=account_id + "-other", idempotency_key=key("cus", account_id))


def test_a_declined_card_is_payment_declined(gateway, stripe_api_base, account_id):
    customer, _ = customer_with_card(gateway, stripe_api_base, account_id, "pm_card_chargeCustomerFail")
    draft = draft_with_lines(gateway, customer, account_id)
    gateway.finalize_invoice(draft.id, idempotency_key=key(account_id, "2024-11", "finalize"))

    with pytest.raises(PaymentDeclined) as declined:
        gateway.pay_invoice(draft.id, idempotency_key=key(account_id, "2024-11", "pay"))

    assert declined.value.code == "card_declined"
    assert gateway.retrieve_invoice(draft.id).status == "open"


def test_lines_cannot_be_added_after_finalizing(gateway, stripe_api_base, account_id):
    customer, _ = customer_with_card(gateway, stripe_api_base, account_id)
    draft = draft_with_lines(gateway, customer, account_id)
    gateway.finalize_invoice(draft.id, idempotency_key=key(account_id, "2024-11", "finalize"))

    with pytest.raises(StripeRequestRejected) as rejected:
        gateway.add_invoice_lines(
            invoice_id=draft.id, lines=[InvoiceLine(1, "late")], idempotency_key=key(account_id, "late")
        )
    assert rejected.value.code == "invoice_not_editable"


def test_paying_an_invoice_that_needs_3d_secure_is_payment_action_required(gateway, stripe_api_base, account_id):
    customer, _ = customer_with_card(gateway, stripe_api_base, account_id, "pm_card_authenticationRequired")
    draft = draft_with_lines(gateway, customer, account_id)
    gateway.finalize_invoice(draft.id, idempotency_key=key(account_id, "2024-11", "finalize"), auto_advance=False)

    with pytest.raises(PaymentActionRequired) as raised:
        gateway.pay_invoice(draft.id, idempotency_key=key(account_id, "2024-11", "pay"))

    assert raised.value.code == "invoice_payment_intent_requires_action"


def test_every_gateway_request_passes_the_emulators_sdk_contract(gateway, stripe_api_base, account_id):
    """The emulator validates each request against the pinned SDK's params: all of these succeed."""
    customer, payment_method = customer_with_card(gateway, stripe_api_base, account_id)
    gateway.retrieve_payment_method(payment_method)
    draft = draft_with_lines(gateway, customer, account_id)
    assert [i.id for i in gateway.list_invoices(customer.id, status="draft")] == [draft.id]
    gateway.finalize_invoice(draft.id, idempotency_key=key(account_id, "f"), auto_advance=False)
    gateway.void_invoice(draft.id, idempotency_key=key(account_id, "v"))
    other = draft_with_lines(gateway, customer, f"{account_id}-2")
    gateway.finalize_invoice(other.id, idempotency_key=key(account_id, "f2"), auto_advance=False)
    assert gateway.pay_invoice(other.id, idempotency_key=key(account_id, "p2")).status == "paid"
    assert list(gateway.list_events(created_after=0, types=["invoice.paid", "invoice.voided"]))


def test_an_unknown_invoice_is_not_found(gateway):
    with pytest.raises(StripeObjectNotFound):
        gateway.retrieve_invoice("in_doesnotexist")


def test_events_since_a_time_include_the_invoice_payment(gateway, stripe_api_base, account_id):
    since = int(time.time()) - 1
    customer, _ = customer_with_card(gateway, stripe_api_base, account_id)
    draft = draft_with_lines(gateway, customer, account_id)
    gateway.finalize_invoice(draft.id, idempotency_key=key(account_id, "2024-11", "finalize"))
    gateway.pay_invoice(draft.id, idempotency_key=key(account_id, "2024-11", "pay"))

    events = list(gateway.list_events(created_after=since, types=["invoice.paid"]))

    assert draft.id in {e.object.id for e in events}
    assert {e.type for e in events} == {"invoice.paid"}


def test_a_rotated_key_is_picked_up_after_the_old_one_is_rejected(stripe_api_base, account_id):
    secrets = FakeSecretsProvider(secret_key="sk_test_revoked")
    secrets.rotate(secret_key=SECRET_KEY)
    gateway = StripePaymentGateway(secrets, api_base=stripe_api_base, max_network_retries=0)

    customer = gateway.create_customer(account_id=account_id, idempotency_key=key("cus", account_id))

    assert customer.metadata == {"userId": account_id}
    assert secrets.refreshes == 1


def test_a_wrong_key_that_did_not_rotate_is_an_authentication_failure(stripe_api_base):
    gateway = StripePaymentGateway(
        FakeSecretsProvider(secret_key="sk_test_wrong"), api_base=stripe_api_base, max_network_retries=0
    )

    with pytest.raises(StripeAuthenticationFailed):
        gateway.retrieve_invoice("in_x")


def test_an_event_is_read_back_by_its_id_as_the_event_it_is(gateway, stripe_api_base, account_id):
    customer, _ = customer_with_card(gateway, stripe_api_base, account_id)
    draft = draft_with_lines(gateway, customer, account_id)
    gateway.finalize_invoice(draft.id, idempotency_key=key(account_id, "2024-11", "finalize"))
    (listed,) = [
        e
        for e in gateway.list_events(created_after=0, types=["invoice.finalized"])
        if getattr(e.object, "id", None) == draft.id
    ]

    event = gateway.retrieve_event(listed.id)

    assert (event.id, event.type, event.object.id) == (listed.id, "invoice.finalized", draft.id)
