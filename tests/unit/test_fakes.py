"""The in-memory fakes behave like the real adapters where use cases depend on it."""
from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from billing_core.domain.costs import CostLine
from billing_core.errors import (
    ConditionFailed,
    IdempotencyKeyReused,
    InvalidCursor,
    NotFound,
    PaymentActionRequired,
    PaymentDeclined,
    StripeRequestRejected,
    StripeUnavailable,
)
from billing_core.ports import FieldIs, InvoiceLine
from tests.fakes import (
    FakeAccountRepository,
    FakeCostSource,
    FakeEventLedger,
    FakeInvoiceRepository,
    FakePaymentGateway,
    FakeQueue,
    FakeSecretsProvider,
)


def invoice(user_id="user-1", period="2024-11", **fields):
    return {"userId": user_id, "invoiceId": f"inv_{period}_{user_id}", "status": "pending",
            "amount": Decimal("37.74"), **fields}


# --- repositories --------------------------------------------------------------------------------


def test_fake_invoices_create_only_once_and_return_numbers_as_decimal():
    invoices = FakeInvoiceRepository()

    assert invoices.create_if_absent(invoice(createdAt=1732924800000)) is True
    assert invoices.create_if_absent(invoice(amount=Decimal("1"))) is False
    stored = invoices.get("user-1", "inv_2024-11_user-1")
    assert stored["amount"] == Decimal("37.74")
    assert stored["createdAt"] == Decimal(1732924800000) and isinstance(stored["createdAt"], Decimal)


def test_fake_invoices_refuse_floats_like_dynamodb():
    with pytest.raises(TypeError):
        FakeInvoiceRepository().create_if_absent(invoice(amount=37.74))


def test_fake_invoice_update_honours_conditions_and_reports_the_current_item():
    invoices = FakeInvoiceRepository([invoice(status="paid")])

    with pytest.raises(ConditionFailed) as refused:
        invoices.update("user-1", "inv_2024-11_user-1", {"status": "open"},
                        conditions=[FieldIs.one_of("status", "draft")])
    with pytest.raises(NotFound):
        invoices.update("user-1", "inv_2099-01_user-1", {"status": "open"})

    assert refused.value.current["status"] == "paid"
    assert invoices.get("user-1", "inv_2024-11_user-1")["status"] == "paid"


def test_fake_invoice_returned_items_are_copies():
    invoices = FakeInvoiceRepository([invoice(awsBreakdown={"AWS Lambda": Decimal("5.23")})])

    invoices.get("user-1", "inv_2024-11_user-1")["awsBreakdown"]["AWS Lambda"] = Decimal("0")

    assert invoices.get("user-1", "inv_2024-11_user-1")["awsBreakdown"]["AWS Lambda"] == Decimal("5.23")


def test_fake_invoices_list_newest_first_with_a_cursor():
    invoices = FakeInvoiceRepository(
        [invoice(period=p) for p in ("2024-09", "2024-11", "2024-10")] + [invoice("other")])

    first = invoices.list_for_user("user-1", limit=2)
    second = invoices.list_for_user("user-1", limit=2, cursor=first.next_cursor)

    assert [i["invoiceId"] for i in first.items + second.items] == [
        "inv_2024-11_user-1", "inv_2024-10_user-1", "inv_2024-09_user-1",
    ]
    assert second.next_cursor is None
    with pytest.raises(InvalidCursor):
        invoices.list_for_user("other", cursor=first.next_cursor)


def test_fake_invoices_are_found_by_stripe_invoice_id():
    invoices = FakeInvoiceRepository([invoice(stripeInvoiceId="in_1")])
    assert invoices.find_by_stripe_invoice_id("in_1")["userId"] == "user-1"
    assert invoices.find_by_stripe_invoice_id("in_2") is None


def test_fake_accounts_record_only_the_first_stripe_customer():
    accounts = FakeAccountRepository()

    assert accounts.set_stripe_customer_id_if_absent("user-1", "cus_1", {"email": "a@example.com"}) is True
    assert accounts.set_stripe_customer_id_if_absent("user-1", "cus_2") is False
    assert accounts.get("user-1") == {"userId": "user-1", "stripeCustomerId": "cus_1", "email": "a@example.com"}
    assert accounts.find_by_stripe_customer_id("cus_1")["userId"] == "user-1"
    assert [a["userId"] for a in accounts.list_accounts()] == ["user-1"]
    with pytest.raises(NotFound):
        accounts.update("user-2", {"brand": "visa"})


# --- ledger and queue ----------------------------------------------------------------------------


class Clock:
    def __init__(self, now: float = 0.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_fake_ledger_records_events_once_and_leases_expire():
    clock = Clock(1_700_000_000)
    ledger = FakeEventLedger(clock)

    assert ledger.record_once("evt_1", 60) and not ledger.record_once("evt_1", 60)
    assert ledger.acquire_lease("run", "a", 60) and not ledger.acquire_lease("run", "b", 60)
    clock.now += 61
    assert ledger.acquire_lease("run", "b", 60)
    assert not ledger.release_lease("run", "a") and ledger.release_lease("run", "b")
    assert ledger.put_record("run#1", {"n": 1}, ttl_seconds=10, only_if_absent=True)
    assert not ledger.put_record("run#1", {"n": 2}, only_if_absent=True)
    assert ledger.get_record("run#1") == {"n": Decimal(1)}
    clock.now += 11
    assert ledger.get_record("run#1") is None


def test_fake_queue_redelivers_until_deleted_and_dead_letters_after_max_receives():
    clock = Clock()
    queue = FakeQueue(max_receive_count=2, visibility_timeout=30, clock=clock)
    queue.send({"userId": "user-1", "fee": Decimal("20.00")}, {"runId": "r1"})

    (first,) = queue.receive()
    assert queue.receive() == []  # invisible while being handled
    clock.now += 30
    (second,) = queue.receive()
    clock.now += 30

    assert first.json() == {"fee": "20.00", "userId": "user-1"} and first.attributes == {"runId": "r1"}
    assert (first.receive_count, second.receive_count) == (1, 2)
    assert queue.receive() == []
    assert (queue.approximate_depth(), queue.dead_letter_depth()) == (0, 1)


def test_fake_queue_delete_and_change_visibility():
    queue = FakeQueue()
    queue.send("a")
    (message,) = queue.receive()
    queue.change_visibility(message.receipt_handle, 0)
    (again,) = queue.receive()

    queue.delete(again.receipt_handle)

    assert again.receive_count == 2
    assert queue.approximate_depth() == 0


# --- cost source and secrets ---------------------------------------------------------------------


def test_fake_cost_source_answers_with_its_lines_and_counts_requests():
    source = FakeCostSource([CostLine("AWS Lambda", Decimal("5.23")), CostLine("AWS Lambda", Decimal("1"), "111")])

    unscoped = source.costs(date(2024, 11, 1), date(2024, 12, 1))
    scoped = source.costs(date(2024, 11, 1), date(2024, 12, 1), "LINKED_ACCOUNT")

    assert unscoped.lines == (CostLine("AWS Lambda", Decimal("5.23")),)
    assert scoped.for_scope("111") == (CostLine("AWS Lambda", Decimal("1"), "111"),)
    assert source.requests_made == 2 and source.forecast(date(2024, 11, 1), date(2024, 12, 1)) is None


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
    first = gateway.create_customer(user_id="user-1", idempotency_key="customer:user-1")
    again = gateway.create_customer(user_id="user-1", idempotency_key="customer:user-1")

    assert first == again
    assert len(gateway.customers) == 1
    assert len(gateway.calls_to("create_customer", replayed=True)) == 1


def test_fake_gateway_refuses_a_key_reused_with_other_parameters(gateway):
    gateway.create_customer(user_id="user-1", idempotency_key="k")

    with pytest.raises(IdempotencyKeyReused):
        gateway.create_customer(user_id="user-2", idempotency_key="k")


def test_fake_gateway_requires_idempotency_keys_on_writes(gateway):
    with pytest.raises(ValueError):
        gateway.create_customer(user_id="user-1", idempotency_key="")


def _open_invoice(gateway, payment_method="pm_card_visa"):
    customer = gateway.create_customer(user_id="user-1", idempotency_key="c")
    gateway.set_default_payment_method(
        customer_id=customer["id"], payment_method_id=payment_method, idempotency_key="pm")
    draft = gateway.create_draft_invoice(
        customer_id=customer["id"], currency="eur", idempotency_key="d", metadata={"period": "2024-11"})
    gateway.add_invoice_lines(
        invoice_id=draft["id"], lines=[InvoiceLine(2000, "Grundgebühr"), InvoiceLine(1774, "AWS")], idempotency_key="l")
    return gateway.finalize_invoice(draft["id"], idempotency_key="f")


def test_fake_gateway_takes_an_invoice_from_draft_to_paid(gateway):
    opened = _open_invoice(gateway)
    paid = gateway.pay_invoice(opened["id"], idempotency_key="p")

    assert opened["status"] == "open" and opened["number"]
    assert paid["status"] == "paid" and paid["amount_due"] == 3774
    assert [e["type"] for e in gateway.list_events(created_after=0)] == ["invoice.finalized", "invoice.paid"]
    assert gateway.list_invoices(opened["customer"])[0]["metadata"] == {"period": "2024-11"}


def test_fake_gateway_refuses_lines_on_a_finalized_invoice(gateway):
    opened = _open_invoice(gateway)
    with pytest.raises(StripeRequestRejected):
        gateway.add_invoice_lines(invoice_id=opened["id"], lines=[InvoiceLine(1, "late")], idempotency_key="l3")


def test_fake_gateway_declines_stripes_failing_test_cards_and_replays_the_decline(gateway):
    opened = _open_invoice(gateway, "pm_card_chargeCustomerFail")

    with pytest.raises(PaymentDeclined):
        gateway.pay_invoice(opened["id"], idempotency_key="p")
    with pytest.raises(PaymentDeclined):
        gateway.pay_invoice(opened["id"], idempotency_key="p")

    assert len(gateway.calls_to("pay_invoice", replayed=True)) == 1
    assert gateway.retrieve_invoice(opened["id"])["status"] == "open"


def test_fake_gateway_asks_for_authentication_on_the_sca_test_card(gateway):
    opened = _open_invoice(gateway, "pm_card_authenticationRequired")
    with pytest.raises(PaymentActionRequired) as raised:
        gateway.pay_invoice(opened["id"], idempotency_key="p")
    # What Stripe answers, and what the real adapter maps to PaymentActionRequired.
    assert raised.value.code == "invoice_payment_intent_requires_action"


def test_fake_gateway_fails_the_next_call_when_told_and_then_recovers(gateway):
    gateway.fail_next("create_customer", StripeUnavailable("down"))

    with pytest.raises(StripeUnavailable):
        gateway.create_customer(user_id="user-1", idempotency_key="c")
    customer = gateway.create_customer(user_id="user-1", idempotency_key="c")

    assert customer["metadata"] == {"userId": "user-1"}
    assert len(gateway.customers) == 1


def test_fake_gateway_amounts_must_be_integer_cents(gateway):
    with pytest.raises(TypeError):
        gateway.add_invoice_lines(invoice_id="in_x", lines=[InvoiceLine(Decimal("20.00"), "x")], idempotency_key="k")
