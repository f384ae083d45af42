"""Paying an invoice now while something else pays it, or with nothing to pay with, on the local stack.

Issue 34: "Pay now" and the operator's retry answered 502 when a racing request had already paid the
invoice (Stripe answers ``400 invalid_request_error`` "Invoice is already paid", without a code) or
when the customer had no payment method (``400`` "This customer has no attached payment source or
default payment method. ..."). Required: exactly one charge, a paid answer or a 409 for the racer,
and a clear decline (``declined: "no_payment_method"``) instead of a 502.

The Stripe customers here get their cards by attaching them directly (no SetupIntent): a
``setup_intent.succeeded`` would make the worker pay the failed invoices itself.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

import pytest
import requests

from billing_core.adapters.dynamodb import DynamoInvoiceRepository
from billing_core.adapters.stripe_gateway import StripePaymentGateway
from billing_core.domain.costs import Period
from billing_core.domain.lifecycle import InvoiceStatus
from billing_core.domain.records import Invoice
from billing_core.ports import StripeInvoice
from billing_core.use_cases.operator_invoices import InvoiceNotRetryable, OperatorInvoices
from billing_core.use_cases.payment_retry import AlreadyPaid, pay_again
from tests.support.api import bearer, sign_in
from tests.support.fakes import FakeAuditLog, FakeInvoiceRepository, FakeSecretsProvider
from tests.support.records import an_invoice

NOT_A_502 = "a racing or impossible payment is never a payment_provider_error"


@dataclass(frozen=True)
class Tokens:
    admin: dict[str, str]
    operator: dict[str, str]


@pytest.fixture
def tokens(clean_stack) -> Tokens:
    operator = clean_stack.info["operator"]
    return Tokens(
        admin=bearer(sign_in(clean_stack, clean_stack.admin.username, clean_stack.admin.password)["AccessToken"]),
        operator=bearer(sign_in(clean_stack, operator["username"], operator["password"])["AccessToken"]),
    )


def _customer(stack, card: str | None):
    """A Stripe customer whose default payment method is the test card ``card`` (none if ``None``)."""
    client = stack.stripe_client()
    customer = client.v1.customers.create(params={"email": "race@example.com", "name": "Race GmbH"})
    if card is not None:
        _use_card(stack, customer.id, card)
    return customer


def _use_card(stack, customer_id: str, card: str) -> None:
    client = stack.stripe_client()
    method = client.v1.payment_methods.attach(card, params={"customer": customer_id})
    client.v1.customers.update(customer_id, params={"invoice_settings": {"default_payment_method": method.id}})


def _open_invoice(stack, customer_id: str):
    """A finalized 37.74 EUR invoice that Stripe does not collect by itself (the tests pay it)."""
    client = stack.stripe_client()
    draft = client.v1.invoices.create(params={"customer": customer_id, "currency": "eur", "auto_advance": False})
    client.v1.invoices.add_lines(
        draft.id,
        params={"lines": [{"amount": 2000, "description": "Grundgebühr"}, {"amount": 1774, "description": "AWS"}]},
    )
    return client.v1.invoices.finalize_invoice(draft.id)


def _failed_invoice(stack, account_id: str, label: str) -> str:
    """An invoice whose first charge was declined, now with a working default card; its record says so."""
    customer = _customer(stack, "pm_card_chargeCustomerFail")
    invoice = _open_invoice(stack, customer.id)
    client = stack.stripe_client()
    with pytest.raises(Exception, match="declined"):
        client.v1.invoices.pay(invoice.id, params={"off_session": True})
    _use_card(stack, customer.id, "pm_card_visa")
    assert client.v1.invoices.retrieve(invoice.id).attempt_count == 1
    _record(stack, account_id, label, invoice.id, InvoiceStatus.PAYMENT_FAILED)
    return invoice.id


def _record(stack, account_id: str, label: str, stripe_invoice_id: str, status: InvoiceStatus) -> None:
    invoices = DynamoInvoiceRepository(stack.aws_client("dynamodb"), stack.info["tables"]["billing"])
    invoices.create_if_absent(_an_invoice(account_id, label, stripe_invoice_id, status))


def _an_invoice(account_id: str, label: str, stripe_invoice_id: str, status: InvoiceStatus) -> Invoice:
    return an_invoice(
        account_id=account_id, period=Period.parse(label), stripe_invoice_id=stripe_invoice_id, status=status
    )


def _charges(stack, stripe_invoice_id: str) -> int:
    """How many payments Stripe took for the invoice (its ``invoice.payment_succeeded`` events)."""
    events = stack.stripe_client().v1.events.list(params={"type": "invoice.payment_succeeded", "limit": 100})
    return sum(1 for event in events.data if event.data.object["id"] == stripe_invoice_id)


def _post(stack, path: str, headers: dict[str, str]) -> requests.Response:
    return requests.post(stack.info["api_url"] + path, headers=headers, json={}, timeout=30)


def _at_once(*calls: Callable[[], requests.Response]) -> list[requests.Response]:
    """Send the calls from one thread each, released together."""
    barrier = threading.Barrier(len(calls))
    answers: list[requests.Response | None] = [None] * len(calls)

    def run(index: int) -> None:
        barrier.wait()
        answers[index] = calls[index]()

    threads = [threading.Thread(target=run, args=(index,)) for index in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert all(answer is not None for answer in answers)
    return [answer for answer in answers if answer is not None]


def _assert_paid_or_conflict(answers: list[requests.Response]) -> None:
    for answer in answers:
        assert answer.status_code in (200, 409), (answer.status_code, answer.text, NOT_A_502)
        if answer.status_code == 409:
            assert answer.json()["error"]["code"] == "conflict"
        else:
            assert answer.json()["paid"] is True, answer.text
    assert any(answer.status_code == 200 for answer in answers), [a.text for a in answers]


def test_two_concurrent_pay_now_requests_charge_once_and_answer_paid_or_409(clean_stack, tokens):
    account = clean_stack.admin.sub
    stripe_invoice = _failed_invoice(clean_stack, account, "2026-09")
    path = f"/billing/invoices/inv_2026-09_{account}/pay"

    answers = _at_once(*[lambda: _post(clean_stack, path, tokens.admin)] * 2)

    _assert_paid_or_conflict(answers)
    paid = clean_stack.stripe_client().v1.invoices.retrieve(stripe_invoice)
    assert (paid.status, paid.attempt_count, paid.amount_paid) == ("paid", 2, 3774)
    assert _charges(clean_stack, stripe_invoice) == 1


@pytest.mark.parametrize("label", ["2026-05", "2026-06", "2026-07", "2026-08"])
def test_pay_now_racing_the_operators_retry_charges_once_and_none_answers_502(clean_stack, tokens, label):
    # Pay-now and the retry key their attempt apart (``pay-now`` / ``retry``): one that reads the invoice
    # open but pays after another paid it is refused by Stripe with "Invoice is already paid". Four of
    # each, four times: the old code answered 502 in about every other round.
    account = clean_stack.admin.sub
    stripe_invoice = _failed_invoice(clean_stack, account, label)
    invoice_id = f"inv_{label}_{account}"

    answers = _at_once(
        *[lambda: _post(clean_stack, f"/billing/invoices/{invoice_id}/pay", tokens.admin)] * 4,
        *[lambda: _post(clean_stack, f"/operator/invoices/{invoice_id}/retry", tokens.operator)] * 4,
    )

    _assert_paid_or_conflict(answers)
    assert clean_stack.stripe_client().v1.invoices.retrieve(stripe_invoice).status == "paid"
    assert _charges(clean_stack, stripe_invoice) == 1


class PaidInBetween(StripePaymentGateway):
    """The stack's Stripe gateway, where another payment pays the invoice right after the use case read it."""

    def __init__(self, stack) -> None:
        super().__init__(
            FakeSecretsProvider(secret_key=stack.stripe_secret_key),
            api_base=stack.info["stripe_api_base"],
            max_network_retries=0,
        )
        self._stack = stack

    def retrieve_invoice(self, invoice_id: str) -> StripeInvoice:
        current = super().retrieve_invoice(invoice_id)
        if current.status == "open":  # the racing request wins: it pays under its own key
            self._stack.stripe_client().v1.invoices.pay(
                invoice_id, params={"off_session": True}, options={"idempotency_key": f"racer:{invoice_id}"}
            )
        return current


def test_stripe_answering_already_paid_to_the_operators_retry_is_a_conflict_not_a_provider_error(clean_stack):
    account = "kunde-race"
    stripe_invoice = _failed_invoice(clean_stack, account, "2026-10")
    record = _an_invoice(account, "2026-10", stripe_invoice, InvoiceStatus.PAYMENT_FAILED)
    operator = OperatorInvoices(FakeInvoiceRepository([record]), PaidInBetween(clean_stack), FakeAuditLog())

    with pytest.raises(InvoiceNotRetryable, match="paid"):
        operator.retry(record.invoice_id, actor="operator:race")

    assert _charges(clean_stack, stripe_invoice) == 1


def test_stripe_answering_already_paid_to_pay_now_is_already_paid(clean_stack):
    stripe_invoice = _failed_invoice(clean_stack, "kunde-race", "2026-11")
    record = _an_invoice("kunde-race", "2026-11", stripe_invoice, InvoiceStatus.PAYMENT_FAILED)

    with pytest.raises(AlreadyPaid):
        pay_again(PaidInBetween(clean_stack), record, purpose="pay-now")

    assert _charges(clean_stack, stripe_invoice) == 1


def test_the_operators_retry_of_an_invoice_stripe_already_paid_is_a_409(clean_stack, tokens):
    account = "kunde-paid"
    stripe_invoice = _failed_invoice(clean_stack, account, "2026-10")
    clean_stack.stripe_client().v1.invoices.pay(stripe_invoice, params={"off_session": True})  # record not yet told

    answer = _post(clean_stack, f"/operator/invoices/inv_2026-10_{account}/retry", tokens.operator)

    assert answer.status_code == 409, answer.text
    assert answer.json()["error"]["code"] == "conflict" and "paid" in answer.json()["error"]["message"]
    assert _charges(clean_stack, stripe_invoice) == 1


def test_pay_now_without_a_payment_method_is_a_clear_decline_not_a_502(clean_stack, tokens):
    account = clean_stack.admin.sub
    customer = _customer(clean_stack, None)
    invoice = _open_invoice(clean_stack, customer.id)
    _record(clean_stack, account, "2026-10", invoice.id, InvoiceStatus.OPEN)

    answer = _post(clean_stack, f"/billing/invoices/inv_2026-10_{account}/pay", tokens.admin)

    assert answer.status_code == 200, (answer.status_code, answer.text, NOT_A_502)
    assert answer.json() == {
        "invoiceId": f"inv_2026-10_{account}",
        "paid": False,
        "stripeStatus": "open",
        "declined": "no_payment_method",
        "actionUrl": None,
    }
    assert clean_stack.stripe_client().v1.invoices.retrieve(invoice.id).status == "open"


def test_pay_now_after_adding_the_missing_payment_method_pays(clean_stack, tokens):
    # The declined attempt's key is not spent on a payment: Stripe answers it with the refusal it saved.
    account = clean_stack.admin.sub
    customer = _customer(clean_stack, None)
    invoice = _open_invoice(clean_stack, customer.id)
    _record(clean_stack, account, "2026-10", invoice.id, InvoiceStatus.OPEN)
    path = f"/billing/invoices/inv_2026-10_{account}/pay"
    assert _post(clean_stack, path, tokens.admin).json()["declined"] == "no_payment_method"

    _use_card(clean_stack, customer.id, "pm_card_visa")
    answers = _at_once(*[lambda: _post(clean_stack, path, tokens.admin)] * 2)

    _assert_paid_or_conflict(answers)
    assert _charges(clean_stack, invoice.id) == 1


def test_the_operators_retry_without_a_payment_method_reports_the_decline(clean_stack, tokens):
    customer = _customer(clean_stack, None)
    invoice = _open_invoice(clean_stack, customer.id)
    _record(clean_stack, "kunde-ohne", "2026-10", invoice.id, InvoiceStatus.PAYMENT_FAILED)

    answer = _post(clean_stack, "/operator/invoices/inv_2026-10_kunde-ohne/retry", tokens.operator)

    assert answer.status_code == 200, (answer.status_code, answer.text, NOT_A_502)
    assert (answer.json()["paid"], answer.json()["declined"]) == (False, "no_payment_method")
