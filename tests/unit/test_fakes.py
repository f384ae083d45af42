"""The in-memory fakes behave like the real adapters where use cases depend on it.

The storage and queue fakes are held to the contract tests they share with their adapters
(``tests/contracts``); these are the fakes of Cost Explorer, the secrets and Stripe.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from billing_core.domain.costs import CostAttribution, CostLine
from billing_core.errors import (
    IdempotencyKeyReused,
    PaymentActionRequired,
    PaymentDeclined,
    StripeRequestRejected,
    StripeUnavailable,
)
from billing_core.ports import InvoiceLine
from tests.support.fakes import (
    FakeCostSource,
    FakePaymentGateway,
    FakeSecretsProvider,
)

# --- cost source and secrets ---------------------------------------------------------------------


def test_fake_cost_source_answers_with_its_lines_and_counts_its_calls():
    source = FakeCostSource([CostLine("AWS Lambda", Decimal("5.23")), CostLine("AWS Lambda", Decimal("1"), "111")])

    unscoped = source.costs(date(2024, 11, 1), date(2024, 12, 1))
    scoped = source.costs(date(2024, 11, 1), date(2024, 12, 1), CostAttribution.by_account())

    assert unscoped.lines == (CostLine("AWS Lambda", Decimal("5.23")),)
    assert scoped.for_scope("111") == (CostLine("AWS Lambda", Decimal("1"), "111"),)
    assert source.calls == 2 and source.forecast(date(2024, 11, 1), date(2024, 12, 1)) is None


def test_fake_secrets_pick_up_a_rotation_only_on_refresh():
    secrets = FakeSecretsProvider(webhook_secrets=["whsec_old"])
    secrets.rotate(webhook_secrets=["whsec_new", "whsec_old"])

    assert secrets.get().webhook_secrets == ("whsec_old",)
    assert secrets.refresh().webhook_secrets == ("whsec_new", "whsec_old")
    assert "whsec" not in repr(secrets.get())


# --- payment gateway -----------------------------------------------------------------------------


@pytest.fixture
def gateway():
    return FakePaymentGateway()


def test_fake_gateway_replays_a_repeated_idempotency_key_instead_of_creating_twice(gateway):
    first = gateway.create_customer(account_id="user-1", idempotency_key="customer:user-1")
    again = gateway.create_customer(account_id="user-1", idempotency_key="customer:user-1")

    assert first == again
    assert len(gateway.customers) == 1
    assert len(gateway.calls_to("create_customer", replayed=True)) == 1


def test_fake_gateway_refuses_a_key_reused_with_other_parameters(gateway):
    gateway.create_customer(account_id="user-1", idempotency_key="k")

    with pytest.raises(IdempotencyKeyReused):
        gateway.create_customer(account_id="user-2", idempotency_key="k")


def test_fake_gateway_requires_idempotency_keys_on_writes(gateway):
    with pytest.raises(ValueError):
        gateway.create_customer(account_id="user-1", idempotency_key="")


def _open_invoice(gateway, payment_method="pm_card_visa"):
    customer = gateway.create_customer(account_id="user-1", idempotency_key="c")
    gateway.set_default_payment_method(customer_id=customer.id, payment_method_id=payment_method, idempotency_key="pm")
    draft = gateway.create_draft_invoice(
        customer_id=customer.id, currency="eur", idempotency_key="d", metadata={"period": "2024-11"}
    )
    gateway.add_invoice_lines(
        invoice_id=draft.id, lines=[InvoiceLine(2000, "Grundgebühr"), InvoiceLine(1774, "AWS")], idempotency_key="l"
    )
    return gateway.finalize_invoice(draft.id, idempotency_key="f")


def test_fake_gateway_takes_an_invoice_from_draft_to_paid(gateway):
    opened = _open_invoice(gateway)
    paid = gateway.pay_invoice(opened.id, idempotency_key="p")

    assert opened.status == "open" and opened.number
    assert paid.status == "paid" and paid.amount_due == 3774
    assert [e.type for e in gateway.list_events(created_after=0)] == ["invoice.finalized", "invoice.paid"]
    assert gateway.list_invoices(opened.customer_id)[0].metadata == {"period": "2024-11"}


def test_fake_gateway_refuses_lines_on_a_finalized_invoice(gateway):
    opened = _open_invoice(gateway)
    with pytest.raises(StripeRequestRejected):
        gateway.add_invoice_lines(invoice_id=opened.id, lines=[InvoiceLine(1, "late")], idempotency_key="l3")


def test_fake_gateway_declines_stripes_failing_test_cards_and_replays_the_decline(gateway):
    opened = _open_invoice(gateway, "pm_card_chargeCustomerFail")

    with pytest.raises(PaymentDeclined):
        gateway.pay_invoice(opened.id, idempotency_key="p")
    with pytest.raises(PaymentDeclined):
        gateway.pay_invoice(opened.id, idempotency_key="p")

    assert len(gateway.calls_to("pay_invoice", replayed=True)) == 1
    assert gateway.retrieve_invoice(opened.id).status == "open"


def test_fake_gateway_asks_for_authentication_on_the_sca_test_card(gateway):
    opened = _open_invoice(gateway, "pm_card_authenticationRequired")
    with pytest.raises(PaymentActionRequired) as raised:
        gateway.pay_invoice(opened.id, idempotency_key="p")
    # What Stripe answers, and what the real adapter maps to PaymentActionRequired.
    assert raised.value.code == "invoice_payment_intent_requires_action"


def test_fake_gateway_fails_the_next_call_when_told_and_then_recovers(gateway):
    gateway.fail_next("create_customer", StripeUnavailable("down"))

    with pytest.raises(StripeUnavailable):
        gateway.create_customer(account_id="user-1", idempotency_key="c")
    customer = gateway.create_customer(account_id="user-1", idempotency_key="c")

    assert customer.metadata == {"userId": "user-1"}
    assert len(gateway.customers) == 1


def test_fake_gateway_amounts_must_be_integer_cents(gateway):
    with pytest.raises(TypeError):
        gateway.add_invoice_lines(invoice_id="in_x", lines=[InvoiceLine(Decimal("20.00"), "x")], idempotency_key="k")
